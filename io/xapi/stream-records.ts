/**
 * `<class>.get_all_records` over JSON-RPC, parsed as it streams: each record is picked down to the
 * fields xenha reads as soon as it is parsed, so memory follows what is kept, not the answer's size
 * (a pool's VM records run to tens of megabytes; xenha keeps a few fields of each). Bounded in record
 * count and in time. Used for the VMs and VBDs of the capacity figures; the small classes of the
 * mirror go through the guarded client, whose answers are bounded in bytes.
 */
import { JSONParser } from '@streamparser/json';
import { request, type Dispatcher } from 'undici';

export class NotJsonRpcError extends Error {
  readonly code = 'NOT_JSON_RPC';
}

export class StreamedCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly params: unknown[] = [],
  ) {
    super(message);
  }
}

export interface StreamRecordsOptions {
  /** The host's base URL (scheme, address, port). */
  url: string;
  sessionId: string;
  method: string;
  /** Arguments after the session (a query's expression). */
  args?: readonly unknown[];
  dispatcher: Dispatcher;
  /** Fields kept of each record. */
  fields: readonly string[];
  /** Whether to keep a record at all (e.g. not a template). */
  keep: (record: Record<string, unknown>) => boolean;
  maxRecords: number;
  /** The largest single record, in bytes of its JSON. */
  maxRecordBytes: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The fields of a record that xenha reads (the rest is dropped to save memory). */
export function pickFields(record: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const f of fields) if (f in record) picked[f] = record[f];
  return picked;
}

export async function streamAllRecords(o: StreamRecordsOptions): Promise<Record<string, Record<string, unknown>>> {
  const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]) : AbortSignal.timeout(o.timeoutMs);
  const res = await request(new URL('/jsonrpc', o.url), {
    method: 'POST',
    dispatcher: o.dispatcher,
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: o.method, params: [o.sessionId, ...(o.args ?? [])] }),
    signal,
  });
  // An abort (the timeout) can surface as an 'error' on the body after the reading stopped: it is ours, handled below.
  res.body.on('error', () => {});
  try {
    if (res.statusCode < 200 || res.statusCode > 299)
      throw new StreamedCallError(`HTTP_${res.statusCode}`, `${o.method}: HTTP ${res.statusCode}`);
    if (!String(res.headers['content-type'] ?? '').startsWith('application/json'))
      throw new NotJsonRpcError(`${o.method}: not a JSON-RPC answer`);
    const out: Record<string, Record<string, unknown>> = {};
    let count = 0;
    let sinceLast = 0; // bytes written since the last record was complete
    let error: unknown;
    const parser = new JSONParser({ paths: ['$.result.*', '$.error'], keepStack: false });
    parser.onValue = ({ value, key, stack }) => {
      if (stack.length === 1) {
        error = value; // $.error
        return;
      }
      sinceLast = 0;
      if (typeof key !== 'string' || !isObject(value))
        throw new StreamedCallError('INVALID_ANSWER', `${o.method}: a record that is not an object`);
      if (++count > o.maxRecords) throw new StreamedCallError('TOO_MANY_RECORDS', `${o.method}: more than ${o.maxRecords} records`);
      if (!o.keep(value)) return;
      out[key] = pickFields(value, o.fields);
    };
    // Written in slices, so that a record that never ends is caught within a slice of the bound.
    const slice = Math.max(1024, Math.floor(o.maxRecordBytes / 4));
    for await (const chunk of res.body) {
      const bytes = chunk as Uint8Array;
      for (let at = 0; at < bytes.length; at += slice) {
        const part = bytes.subarray(at, at + slice);
        sinceLast += part.length; // reset by onValue when a record completes within the part
        parser.write(part);
        if (sinceLast > o.maxRecordBytes)
          throw new StreamedCallError('ANSWER_TOO_LARGE', `${o.method}: a record larger than ${o.maxRecordBytes} bytes`);
      }
    }
    if (!parser.isEnded) parser.end();
    if (error !== undefined) {
      const e = isObject(error) ? error : {};
      const code = typeof e.message === 'string' ? e.message : 'INVALID_ANSWER';
      throw new StreamedCallError(code, `${o.method}: ${code}`, Array.isArray(e.data) ? e.data : []);
    }
    return out;
  } finally {
    // Whatever is left of the body is not read (a refused answer stops streaming here).
    if (!res.body.destroyed) res.body.destroy();
  }
}
