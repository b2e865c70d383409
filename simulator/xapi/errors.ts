/** A XAPI failure as it travels on the wire: an error code and string parameters (api_errors.ml). */
export class XapiFailure extends Error {
  readonly code: string;
  readonly params: string[];
  constructor(code: string, params: readonly (string | number)[] = []) {
    super(`${code}(${params.join(', ')})`);
    this.code = code;
    this.params = params.map(String);
  }
}

export const failure = {
  sessionAuthenticationFailed: () => new XapiFailure('SESSION_AUTHENTICATION_FAILED', ['root', 'Authentication failure']),
  sessionInvalid: (handle: string) => new XapiFailure('SESSION_INVALID', [handle]),
  hostIsSlave: (masterAddress: string) => new XapiFailure('HOST_IS_SLAVE', [masterAddress]),
  handleInvalid: (cls: string, ref: string) => new XapiFailure('HANDLE_INVALID', [cls, ref]),
  uuidInvalid: (cls: string, uuid: string) => new XapiFailure('UUID_INVALID', [cls, uuid]),
  methodUnknown: (method: string) => new XapiFailure('MESSAGE_METHOD_UNKNOWN', [method]),
  parameterCountMismatch: (method: string, expected: number, received: number) =>
    new XapiFailure('MESSAGE_PARAMETER_COUNT_MISMATCH', [method, expected, received]),
  fieldTypeError: (param: string) => new XapiFailure('FIELD_TYPE_ERROR', [param]),
  hostOffline: (host: string) => new XapiFailure('HOST_OFFLINE', [host]),
  vmBadPowerState: (vm: string, expected: string, actual: string) =>
    new XapiFailure('VM_BAD_POWER_STATE', [vm, expected, actual.toLowerCase()]),
  mapDuplicateKey: (cls: string, field: string, ref: string, key: string) => new XapiFailure('MAP_DUPLICATE_KEY', [cls, field, ref, key]),
  eventsLost: () => new XapiFailure('EVENTS_LOST', []),
  tokenParseFailure: (token: string) => new XapiFailure('EVENT_FROM_TOKEN_PARSE_FAILURE', [token]),
};
