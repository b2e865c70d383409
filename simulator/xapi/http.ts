/**
 * XAPI over HTTP for one host: JSON-RPC on `/jsonrpc`, XML-RPC on `/` and every other path (xapi
 * routes by longest prefix, so `/xmlrpc` and `/RPC2` land there too). Added latency (the slow-XAPI
 * fault) delays the answer; a client that goes away aborts a waiting `event.from`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { HostRuntime, SimulatedPool } from '../pool.ts';
import { dispatch, lookupMethod, type CallContext } from './methods.ts';
import { XapiFailure } from './errors.ts';
import type { SessionTable } from './sessions.ts';
import { jsonRpcResponse, parseJsonRpcCall, parseXmlRpcCall, WireError, xmlRpcResponse, xmlRpcValueResponse } from './wire.ts';
import type { XapiValue } from './database.ts';

/**
 * The largest RPC body xapi reads: `http_limit_max_rpc_size` = 300 KiB (ocaml/xapi-consts/constants.ml,
 * and its twin in ocaml/database/db_globs.ml), for XML-RPC and JSON-RPC alike (ocaml/xapi/api_server.ml
 * `callback` and `jsoncallback` call `Http_svr.read_body ~limit`).
 */
export const MAX_RPC_BODY = 300 * 1024;

export interface XapiHttpShared {
  pool: SimulatedPool;
  password: string;
  sessions: SessionTable;
  log: Logger;
  /** Counts calls by method, for tests and the control API; names the simulator does not know count as one. */
  callCounts: Map<string, number>;
}

/** The key unknown method names are counted under: the map stays as small as the method table. */
export const UNKNOWN_METHOD_KEY = '(unknown method)';

/** ocaml/libs/http-lib/http_svr.ml escape_html. */
function escapeHtml(s: string): string {
  return s.replace(/[<>'"&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;', '&': '&amp;' })[c]!);
}

/**
 * What xapi sends when a handler raises anything but an API error (http_svr.ml handle_one →
 * response_internal_error): HTTP 500 "Internal Error", an HTML page naming the exception, and the
 * connection closed. `exception` is the exception as OCaml's Printexc.to_string prints it.
 */
function internalError(res: ServerResponse, exception: string): void {
  const body =
    '<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please wait a while and try again. ' +
    'If the problem persists, please contact your support representative.' +
    `<h1> Additional information </h1>${escapeHtml(exception)}</body></html>`;
  res.writeHead(500, 'Internal Error', {
    'Content-Type': 'text/html',
    Connection: 'close',
    'Cache-Control': 'no-cache, no-store',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

class BodyRefused extends Error {}

/**
 * Http_svr.read_body ~limit (ocaml/libs/http-lib/http_svr.ml): the body is read only by its
 * Content-Length, which must be given (`failwith "We require a content-length: HTTP header"`) and not
 * exceed the limit (`raise Client_requested_size_over_limit`, before a byte of the body is read). Both
 * escape the RPC handler, so xapi answers 500 with the exception's name and closes the connection; the
 * simulator does the same (no 413: xapi never sends one) and reads nothing of such a body. Node's
 * parser delivers no more than Content-Length bytes; the count below guards it all the same, so no
 * more than `limit` bytes are ever buffered.
 */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = req.headers['content-length'];
  if (declared === undefined) return Promise.reject(new BodyRefused('Failure("We require a content-length: HTTP header")'));
  if (Number(declared) > limit) return Promise.reject(new BodyRefused('Http_svr.Client_requested_size_over_limit'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.pause();
        reject(new BodyRefused('Http_svr.Client_requested_size_over_limit'));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

async function outcomeOf(
  ctx: CallContext,
  method: string,
  params: unknown[],
  shared: XapiHttpShared,
): Promise<{ value: XapiValue } | { failure: XapiFailure }> {
  const key = lookupMethod(ctx.pool.built.db, method) ? method : UNKNOWN_METHOD_KEY;
  shared.callCounts.set(key, (shared.callCounts.get(key) ?? 0) + 1);
  try {
    return { value: await dispatch(ctx, method, params) };
  } catch (e) {
    if (e instanceof XapiFailure) return { failure: e };
    shared.log.error({ err: e, method }, 'internal error in simulated XAPI call');
    return { failure: new XapiFailure('INTERNAL_ERROR', [(e as Error).message]) };
  }
}

/** The headers of every RPC answer (api_server.ml callback / jsoncallback, http_svr.ml response_of_request). */
function rpcHeaders(contentType: string): Record<string, string> {
  return {
    'Content-Type': contentType,
    'Cache-Control': 'no-cache, no-store',
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Headers': 'X-Requested-With',
  };
}

export function xapiRequestHandler(shared: XapiHttpShared, host: HostRuntime, maxBody = MAX_RPC_BODY) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method !== 'POST') {
      res.writeHead(req.method === 'GET' && path === '/' ? 200 : 404, { 'Content-Type': 'text/plain' });
      res.end(req.method === 'GET' && path === '/' ? `xenha simulated XAPI on ${host.built.name}\n` : 'not found\n');
      return;
    }
    const isJson = path === '/jsonrpc' || path.startsWith('/jsonrpc/');
    let body: string;
    try {
      body = await readBody(req, maxBody);
    } catch (e) {
      if (!(e instanceof BodyRefused)) throw e;
      internalError(res, e.message);
      return;
    }
    const ctx: CallContext = { pool: shared.pool, host, password: shared.password, sessions: shared.sessions, signal: abort.signal };
    try {
      if (isJson) {
        const call = parseJsonRpcCall(body);
        const outcome = await outcomeOf(ctx, call.method, call.params, shared);
        await delay(shared.pool.latencyFor(host), abort.signal);
        if (abort.signal.aborted) return;
        res.writeHead(200, rpcHeaders('application/json'));
        res.end(jsonRpcResponse(call, outcome));
      } else {
        const call = parseXmlRpcCall(body);
        const outcome = await outcomeOf(ctx, call.method, call.params, shared);
        await delay(shared.pool.latencyFor(host), abort.signal);
        if (abort.signal.aborted) return;
        res.writeHead(200, rpcHeaders('text/xml'));
        // system.listMethods is the one answer xapi sends without the Status wrapper.
        res.end(call.method === 'system.listMethods' && 'value' in outcome ? xmlRpcValueResponse(outcome.value) : xmlRpcResponse(outcome));
      }
    } catch (e) {
      // An envelope xapi's parsers refuse (Xmlrpc.call_of_string, Jsonrpc.version_id_and_call_of_string)
      // raises out of the handler too: 500 with the reason, not 400.
      if (!(e instanceof WireError)) shared.log.error({ err: e }, 'XAPI request failed');
      if (!res.headersSent) internalError(res, (e as Error).message);
    }
  };
}
