/**
 * The `code` label of xenha_xapi_errors_total: a fixed set, so that a pool cannot grow the label
 * without bound by inventing error codes. Anything else counts as `other` (the full code is in the
 * log line and the state API's lastError).
 */
const KNOWN = new Set([
  // xenha's own
  'CONNECTION_FAILED',
  'EVENT_FETCH_FAILED',
  'VM_FETCH_FAILED',
  'VDI_FETCH_FAILED',
  'SNAPSHOT_FAILED',
  'INVALID_ANSWER',
  'MIRROR_BROKEN',
  'TOO_MANY_RECORDS',
  'ANSWER_TOO_LARGE',
  'NOT_JSON_RPC',
  'TIMEOUT',
  // XAPI's that a monitor meets
  'SESSION_AUTHENTICATION_FAILED',
  'SESSION_INVALID',
  'HOST_IS_SLAVE',
  'HOST_STILL_BOOTING',
  'HOST_HAS_NO_MANAGEMENT_IP',
  'MESSAGE_METHOD_UNKNOWN',
  'MESSAGE_PARAMETER_COUNT_MISMATCH',
  'EVENTS_LOST',
  'RBAC_PERMISSION_DENIED',
  'INTERNAL_ERROR',
  'HANDLE_INVALID',
  'USER_IS_NOT_LOCAL_SUPERUSER',
  'LICENCE_RESTRICTION',
  'HOST_OFFLINE',
  'HOST_NOT_LIVE',
  'TOO_BUSY',
  // the network's (Node, undici)
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
  'EPROTO',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
  'UND_ERR_ABORTED',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_INFO',
  'HTTP_5XX',
  'HTTP_4XX',
]);

/** The label value for an error code: the code itself when known, else `other`. */
export function errorCodeLabel(code: string): string {
  if (KNOWN.has(code)) return code;
  if (/^HTTP_5\d\d$/.test(code)) return 'HTTP_5XX';
  if (/^HTTP_4\d\d$/.test(code)) return 'HTTP_4XX';
  return 'other';
}
