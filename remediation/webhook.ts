/**
 * The Alertmanager webhook receiver: `POST /webhook/alertmanager`, Express 5 routes (`mountWebhook` adds
 * them to an app, `webhookRouter` makes a router of them).
 *
 * Alertmanager retries a notification on a 5xx or a connection error and gives up on anything else
 * (docs/research: "If you want the Alertmanager to retry, a 5xx will do it"). So:
 * - bad input of any kind is a 4xx, never a 5xx — the same bytes will never be acceptable;
 * - the intake (which resolves once the notification is durably journaled) failing is the only 5xx:
 *   Alertmanager then sends the notification again, which the intake deduplicates;
 * - a notification whose every alert the intake refused is a 422 with the reasons.
 *
 * The order of the checks is the order of the costs: the token before anything of the body is read
 * (401), then the content type (415), the body's size (413, before it is read when Content-Length
 * says so), JSON (400), the v4 schema (422). After an answer sent before the body was wholly read,
 * the rest is read off and dropped up to DRAIN_LIMIT_BYTES, then the connection is cut.
 *
 * Every error body is JSON `{ error, message, details? }`. Paths under /webhook that are not the
 * webhook answer a JSON 404; the app they are mounted on answers for every other path, and
 * should end with `jsonNotFound` and `jsonErrorHandler` (below) to keep its own answers JSON. The
 * webhook reads the body itself: mount it before any body parser (express.json()) of the app, or
 * scope those to their own paths.
 *
 * Logs never carry the Authorization header or the token: the only request fields logged are the
 * status, the remote address, the duration, the body's size and, once parsed, the group key and the
 * number of alerts.
 */
import {
  Router,
  type ErrorRequestHandler,
  type IRouter,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { alertmanagerPayload, type AlertmanagerPayload } from './alertmanager.ts';
import { tokenMatches } from './token.ts';
import type { RefusalGate } from './records.ts';

export const WEBHOOK_PATH = '/webhook/alertmanager';
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;
/** Details listed in one error body at most (the message says how many more there were). */
export const MAX_ERROR_DETAILS = 50;

export type IntakeOutcome = 'new' | 'duplicate' | 'resolved' | 'refused';

/** What the intake made of each alert of a notification, in any order. */
export interface IntakeResult {
  /** A refused alert names the gate that refused it (records.ts REFUSAL_GATES) and why. */
  incidents: { fingerprint: string; outcome: IntakeOutcome; incident?: string; gate?: RefusalGate; reason?: string }[];
}

export interface IntakeMeta {
  /** Date.now() when the request arrived (before its body was read). */
  receivedAt: number;
  /** The client's address (req.ip: honours the app's `trust proxy`). */
  remote: string;
}

/** Journals the notification and resolves once it is durable; throws when it could not be stored. */
export type Intake = (payload: AlertmanagerPayload, meta: IntakeMeta) => Promise<IntakeResult>;

export interface WebhookOptions {
  /** The bearer token (remediation/token.ts loadToken). */
  token: Buffer;
  /** Largest body accepted; default 1 MiB. */
  bodyLimitBytes?: number;
  intake: Intake;
  log: Logger;
  /** Called once per request under /webhook with the status answered (499 when the client went away first). */
  onRequest?: (status: number) => void;
  /** Clock for receivedAt; default Date.now. */
  now?: () => number;
}

/** Every error body. */
export interface ErrorBody {
  error: string;
  message: string;
  details?: unknown[];
}

/** Per-request facts the log line and onRequest report. */
interface Observed {
  /** The socket's peer address, read when the request arrived (req.ip is derived from it when logged). */
  socketAddress?: string;
  bytes?: number;
  groupKey?: string;
  alerts?: number;
}
const observed = new WeakMap<Request, Observed>();

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Bytes of an unread body read off and dropped after an early answer, before the connection is cut instead. */
export const DRAIN_LIMIT_BYTES = 4 * 1024 * 1024;
/** Time allowed for that, after which the connection is cut. */
export const DRAIN_TIMEOUT_MS = 5_000;

/**
 * After an answer sent before the body was wholly received (401, 415, 413, 404, 405): read the rest off
 * and drop it, so that the client, still writing, reads the answer rather than a reset and the
 * connection can serve the next request; but no more than DRAIN_LIMIT_BYTES and DRAIN_TIMEOUT_MS
 * (Node alone would read any amount, for as long as the client sends), then cut the connection.
 */
function drainRest(req: Request): void {
  if (req.complete || req.destroyed) return;
  let drained = 0;
  const cut = (): void => {
    req.socket.destroy();
  };
  const timer = setTimeout(cut, DRAIN_TIMEOUT_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_LIMIT_BYTES) cut();
  });
  req.once('close', () => clearTimeout(timer));
  req.resume();
}

/**
 * Answers JSON with the status and the headers set so far, straight through Node's `writeHead` and `end`
 * rather than Express's `res.json` (content-type parsing, settings lookups, ETag and freshness checks:
 * a share of the webhook's hot path, and of no use to Alertmanager).
 */
function sendJson(res: Response, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(req: Request, res: Response, status: number, error: string, message: string, details?: unknown[]): void {
  drainRest(req);
  const body: ErrorBody = { error, message };
  if (details !== undefined) body.details = details;
  sendJson(res, status, body);
}

/** The media type is application/json, with no charset or UTF-8; undefined when so, else why not. */
function contentTypeProblem(header: string | undefined): string | undefined {
  if (header === undefined || header.trim() === '') return 'Content-Type is missing: send application/json';
  const [type, ...params] = header.split(';');
  if (type!.trim().toLowerCase() !== 'application/json')
    return `Content-Type ${JSON.stringify(header.slice(0, 100))} is not application/json`;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const charset = p
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8') return `charset ${JSON.stringify(charset.slice(0, 40))} is not supported: send UTF-8`;
  }
  return undefined;
}

/** The whole body, at most `limit` bytes; a HttpError 413 as soon as it is known to be larger. */
function readBody(req: Request, limit: number): Promise<Buffer> {
  if (req.readableEnded)
    return Promise.reject(new Error('the request body was already read: mount the webhook router before body parsers'));
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity')
    return Promise.reject(
      new HttpError(415, 'unsupported_media_type', `Content-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not supported`),
    );
  const declared = req.headers['content-length'];
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > limit)
    return Promise.reject(new HttpError(413, 'payload_too_large', `the body is ${declared} bytes, more than the limit of ${limit}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) done(new HttpError(413, 'payload_too_large', `the body is more than the limit of ${limit} bytes`));
      else chunks.push(chunk);
    };
    const onEnd = (): void => done();
    const onError = (e: Error): void => done(new HttpError(400, 'bad_request', `the request body could not be read: ${e.message}`));
    const onClose = (): void => done(new HttpError(400, 'bad_request', 'the client closed the request before its end'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The body as JSON, or a HttpError 400 that says why not. */
function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw new HttpError(400, 'invalid_json', 'the body is empty: expected a JSON object');
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, 'invalid_json', `the body is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const k of path) {
    if (typeof k === 'number') s += `[${k}]`;
    else if (typeof k === 'string' && /^[A-Za-z_$][\w$]*$/.test(k)) s += s === '' ? k : `.${k}`;
    else s += `[${JSON.stringify(String(k))}]`;
  }
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/** Zod's issues as `{ path, message }`, at most MAX_ERROR_DETAILS of them. */
export function issueDetails(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.slice(0, MAX_ERROR_DETAILS).map((i) => ({ path: formatPath(i.path), message: i.message.slice(0, 300) }));
}

const more = (n: number): string => (n > MAX_ERROR_DETAILS ? ` (the first ${MAX_ERROR_DETAILS} of ${n} listed)` : '');

function httpStatusOf(err: unknown): number {
  const e = err as { status?: unknown; statusCode?: unknown } | null;
  const s = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  return s !== undefined && Number.isInteger(s) && s >= 500 && s <= 599 ? s : 500;
}

/** The client's address as the app sees it (req.ip honours `trust proxy`), else the socket's. */
function remoteOf(req: Request, facts: Observed): string | undefined {
  return req.ip ?? facts.socketAddress;
}

/** The webhook as a router of its own, to mount with `app.use` before any body parser. */
export function webhookRouter(opts: WebhookOptions): Router {
  const router = Router();
  mountWebhook(router, opts);
  return router;
}

/**
 * Adds the webhook's routes to `app` (an Express app or router) itself, before whatever `app` adds
 * next: what the service does (one router layer less than `app.use(webhookRouter(…))` on every request).
 */
export function mountWebhook(router: IRouter, opts: WebhookOptions): void {
  const { token, intake, log, onRequest } = opts;
  const limit = opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const now = opts.now ?? Date.now;
  if (!Number.isInteger(limit) || limit <= 0) throw new RangeError(`bodyLimitBytes must be a positive integer, not ${limit}`);
  if (token.length === 0) throw new RangeError('the webhook token is empty');

  // Under /webhook: one log line and one onRequest per request, once it is answered or abandoned. Each
  // handler below starts with it (rather than a router.use middleware: one layer less on the hot path).
  const observe = (req: Request, res: Response): Observed => {
    const seen = observed.get(req);
    if (seen) return seen;
    const start = performance.now();
    // The socket's address is read now (Node keeps it once read: a closed socket no longer tells it);
    // req.ip, which walks X-Forwarded-For under `trust proxy`, only when a line is logged.
    const facts: Observed = { socketAddress: req.socket.remoteAddress };
    observed.set(req, facts);
    res.once('close', () => {
      const status = res.writableFinished ? res.statusCode : 499;
      // An accepted notification at debug: its incident, plan or refusal is logged at info by the service,
      // and every request is counted (xenha_remediation_webhook_requests_total).
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'debug';
      if (log.isLevelEnabled(level))
        log[level](
          {
            status,
            method: req.method,
            remote: remoteOf(req, facts),
            bytes: facts.bytes,
            groupKey: facts.groupKey,
            alerts: facts.alerts,
            ms: Math.round((performance.now() - start) * 10) / 10,
          },
          'alertmanager webhook',
        );
      try {
        onRequest?.(status);
      } catch (e) {
        log.error({ err: e }, 'webhook onRequest callback threw');
      }
    });
    return facts;
  };

  const handle: RequestHandler = async (req, res) => {
    const receivedAt = now();
    const facts = observe(req, res);
    if (!tokenMatches(req.headers.authorization, token)) {
      res.set('WWW-Authenticate', 'Bearer');
      sendError(req, res, 401, 'unauthorized', 'a valid "Authorization: Bearer <token>" header is required');
      return;
    }
    const ctProblem = contentTypeProblem(req.headers['content-type']);
    if (ctProblem !== undefined) {
      sendError(req, res, 415, 'unsupported_media_type', ctProblem);
      return;
    }
    let raw: unknown;
    try {
      const body = await readBody(req, limit);
      facts.bytes = body.length;
      raw = parseJson(body);
    } catch (e) {
      if (e instanceof HttpError) {
        sendError(req, res, e.status, e.code, e.message);
        return;
      }
      throw e;
    }
    const parsed = alertmanagerPayload.safeParse(raw);
    if (!parsed.success) {
      sendError(
        req,
        res,
        422,
        'invalid_payload',
        `not an Alertmanager webhook payload of version 4${more(parsed.error.issues.length)}`,
        issueDetails(parsed.error),
      );
      return;
    }
    const payload = parsed.data;
    facts.groupKey = payload.groupKey.slice(0, 200);
    facts.alerts = payload.alerts.length;

    let result: IntakeResult;
    try {
      // The intake is the service's own typed code, not input: its answer is not validated again by
      // schema, but a bug that breaks its shape is a 5xx (Alertmanager retries), never a 2xx or a 4xx.
      result = await intake(payload, {
        receivedAt,
        get remote() {
          return remoteOf(req, facts) ?? 'unknown';
        },
      });
      if (
        !Array.isArray(result?.incidents) ||
        result.incidents.some((i) => typeof i?.fingerprint !== 'string' || typeof i.outcome !== 'string')
      )
        throw new Error('the intake answered an invalid result');
    } catch (e) {
      const status = httpStatusOf(e);
      log.error(
        { err: e, groupKey: facts.groupKey, alerts: facts.alerts },
        'webhook intake failed: answering %d so that Alertmanager retries',
        status,
      );
      sendError(req, res, status, 'intake_failed', 'the notification could not be stored; Alertmanager retries it');
      return;
    }
    const refused = result.incidents.filter((i) => i.outcome === 'refused');
    if (result.incidents.length > 0 && refused.length === result.incidents.length) {
      sendError(
        req,
        res,
        422,
        'refused',
        `every alert of the notification was refused${more(refused.length)}`,
        refused.slice(0, MAX_ERROR_DETAILS).map((i) => ({
          fingerprint: i.fingerprint,
          ...(i.gate !== undefined && { gate: i.gate }),
          reason: (i.reason ?? 'refused').slice(0, 500),
        })),
      );
      return;
    }
    // Only the known fields go back to Alertmanager.
    sendJson(res, 200, {
      incidents: result.incidents.map((i) => ({
        fingerprint: i.fingerprint,
        outcome: i.outcome,
        ...(i.incident !== undefined && { incident: i.incident }),
        ...(i.gate !== undefined && { gate: i.gate }),
        ...(i.reason !== undefined && { reason: i.reason }),
      })),
    });
  };

  router
    .route(WEBHOOK_PATH)
    .post(handle)
    .all((req, res) => {
      observe(req, res);
      res.set('Allow', 'POST');
      sendError(req, res, 405, 'method_not_allowed', `${req.method} is not allowed on ${WEBHOOK_PATH}: use POST`);
    });
  router.use('/webhook', (req, res) => {
    observe(req, res);
    jsonNotFound(req, res, () => {});
  });
  // Only a bug reaches this: bad input has its 4xx above.
  router.use('/webhook', ((err: unknown, req: Request, res: Response, next: NextFunction) => {
    observe(req, res);
    log.error({ err }, 'webhook internal error');
    if (res.headersSent) return next(err);
    sendError(req, res, 500, 'internal', 'internal error');
  }) as ErrorRequestHandler);
}

/** A JSON 404 for the end of an app's stack. */
export const jsonNotFound: RequestHandler = (req, res) => {
  sendError(req, res, 404, 'not_found', `no route for ${req.method} ${req.originalUrl.slice(0, 200)}`);
};

/**
 * A JSON error handler for the end of an app's stack: the error's own status when it is a 4xx (as
 * express's body parsers set), else 500.
 */
export const jsonErrorHandler: ErrorRequestHandler = (err: unknown, req, res, next) => {
  if (res.headersSent) {
    next(err);
    return;
  }
  const e = err as { status?: unknown; type?: unknown; message?: unknown } | null;
  const status = typeof e?.status === 'number' && e.status >= 400 && e.status <= 599 ? e.status : 500;
  const code = status < 500 && typeof e?.type === 'string' ? e.type : status < 500 ? 'bad_request' : 'internal';
  sendError(req, res, status, code, status < 500 && typeof e?.message === 'string' ? e.message.slice(0, 300) : 'internal error');
};
