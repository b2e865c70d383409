/**
 * XAPI over HTTP for one host: JSON-RPC on `/jsonrpc`, XML-RPC on `/` and every other path (xapi
 * routes by longest prefix, so `/xmlrpc` and `/RPC2` land there too). Added latency (the slow-XAPI
 * fault) delays the answer; a client that goes away aborts a waiting `event.from`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { HostRuntime, SimulatedPool } from '../pool.ts';
import { dispatch, type CallContext } from './methods.ts';
import { XapiFailure } from './errors.ts';
import { jsonRpcResponse, parseJsonRpcCall, parseXmlRpcCall, WireError, xmlRpcResponse, xmlRpcValueResponse } from './wire.ts';
import type { XapiValue } from './database.ts';

const MAX_BODY = 16 * 1024 * 1024;

export interface XapiHttpShared {
  pool: SimulatedPool;
  password: string;
  sessions: Map<string, { user: string; since: number }>;
  log: Logger;
  /** Counts calls by method, for tests and the control API. */
  callCounts: Map<string, number>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new WireError(`request body over ${MAX_BODY} bytes`));
        req.destroy();
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
  shared.callCounts.set(method, (shared.callCounts.get(method) ?? 0) + 1);
  try {
    return { value: await dispatch(ctx, method, params) };
  } catch (e) {
    if (e instanceof XapiFailure) return { failure: e };
    shared.log.error({ err: e, method }, 'internal error in simulated XAPI call');
    return { failure: new XapiFailure('INTERNAL_ERROR', [(e as Error).message]) };
  }
}

export function xapiRequestHandler(shared: XapiHttpShared, host: HostRuntime) {
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
      body = await readBody(req);
    } catch (e) {
      res.writeHead(413, { 'Content-Type': 'text/plain' });
      res.end(`${(e as Error).message}\n`);
      return;
    }
    const ctx: CallContext = { pool: shared.pool, host, password: shared.password, sessions: shared.sessions, signal: abort.signal };
    try {
      if (isJson) {
        const call = parseJsonRpcCall(body);
        const outcome = await outcomeOf(ctx, call.method, call.params, shared);
        await delay(shared.pool.latencyFor(host), abort.signal);
        if (abort.signal.aborted) return;
        res.writeHead(200, { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*' });
        res.end(jsonRpcResponse(call, outcome));
      } else {
        const call = parseXmlRpcCall(body);
        const outcome = await outcomeOf(ctx, call.method, call.params, shared);
        await delay(shared.pool.latencyFor(host), abort.signal);
        if (abort.signal.aborted) return;
        res.writeHead(200, { 'Content-Type': 'text/xml', 'Access-Control-Allow-Origin': '*' });
        // system.listMethods is the one answer xapi sends without the Status wrapper.
        res.end(call.method === 'system.listMethods' && 'value' in outcome ? xmlRpcValueResponse(outcome.value) : xmlRpcResponse(outcome));
      }
    } catch (e) {
      if (!(e instanceof WireError)) shared.log.error({ err: e }, 'XAPI request failed');
      if (!res.headersSent) {
        res.writeHead(400, { 'Content-Type': 'text/plain' });
        res.end(`${(e as Error).message}\n`);
      }
    }
  };
}
