/**
 * The Alertmanager webhook over HTTP: a real Express 5 app with webhookRouter on 127.0.0.1:0, a fake
 * intake that records its calls (and, by receiver name, throws, refuses or takes its time), every
 * status the router answers, then ten thousand malformed requests generated with fast-check — each
 * must get the status an independent reading of it predicts (a 4xx, or 200 when it happens to be a
 * valid payload), never a 5xx, and the server must still serve a valid notification at the end.
 */
import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fc } from '@fast-check/vitest';
import { alertmanagerPayload, GO_ZERO_TIME, type AlertmanagerPayload } from '../../remediation/alertmanager.ts';
import {
  DEFAULT_BODY_LIMIT_BYTES,
  DRAIN_LIMIT_BYTES,
  DRAIN_TIMEOUT_MS,
  jsonErrorHandler,
  jsonNotFound,
  MAX_ERROR_DETAILS,
  WEBHOOK_PATH,
  webhookRouter,
  type IntakeMeta,
  type IntakeResult,
} from '../../remediation/webhook.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = 'xenha-webhook-test-token-4f1c2a9e0b7d';
const LIMIT = DEFAULT_BODY_LIMIT_BYTES;
const FIXTURES = join(import.meta.dirname, '../fixtures/alertmanager');
const fixtureBytes = (name: string): Buffer => readFileSync(join(FIXTURES, name));
const fixture = (name: string): AlertmanagerPayload => JSON.parse(fixtureBytes(name).toString('utf8')) as AlertmanagerPayload;
const FIXTURE_NAMES = ['grouped-firing.json', 'repeated.json', 'resolved.json', 'truncated.json'];

// ---- the fake intake: what a journal would answer, chosen by the notification's receiver ----

/** Receivers that make the fake intake misbehave; the generated payloads never use them. */
const THROW = 'test:throw';
const THROW_503 = 'test:throw-503';
const REFUSE_ALL = 'test:refuse-all';
const REFUSE_FIRST = 'test:refuse-first';
const SLOW = 'test:slow';
const BAD_RESULT = 'test:bad-result';

const intakeCalls: { payload: AlertmanagerPayload; meta: IntakeMeta; done: boolean }[] = [];
const incidents = new Map<string, string>();

async function fakeIntake(payload: AlertmanagerPayload, meta: IntakeMeta): Promise<IntakeResult> {
  const call = { payload, meta, done: false };
  intakeCalls.push(call);
  switch (payload.receiver) {
    case THROW:
      throw new Error('journal: no space left on device');
    case THROW_503:
      throw Object.assign(new Error('journal: busy'), { status: 503 });
    case BAD_RESULT:
      return { incidents: 'none' } as unknown as IntakeResult;
    case REFUSE_ALL:
      return {
        incidents: payload.alerts.map((a) => ({ fingerprint: a.fingerprint, outcome: 'refused', reason: `unknown pool ${a.labels.pool}` })),
      };
    case SLOW:
      await sleep(150);
  }
  const result: IntakeResult = {
    incidents: payload.alerts.map((a, i) => {
      if (payload.receiver === REFUSE_FIRST && i === 0) return { fingerprint: a.fingerprint, outcome: 'refused', reason: 'unknown host' };
      const key = `${a.fingerprint}@${a.startsAt}`;
      const known = incidents.get(key);
      if (a.status === 'resolved') return { fingerprint: a.fingerprint, outcome: 'resolved', ...(known && { incident: known }) };
      if (known) return { fingerprint: a.fingerprint, outcome: 'duplicate', incident: known };
      const id = `inc-${incidents.size + 1}`;
      incidents.set(key, id);
      return { fingerprint: a.fingerprint, outcome: 'new', incident: id };
    }),
  };
  call.done = true;
  return result;
}

// ---- the server ----

const statuses: number[] = [];
const logLines: string[] = [];
let server: Server;
let origin: string;
const agent = new Agent({ connections: 24, pipelining: 1, keepAliveTimeout: 10_000 });

beforeAll(async () => {
  const log = pino({ level: 'debug' }, { write: (s: string) => void logLines.push(s) });
  const app = express();
  app.disable('x-powered-by');
  app.use(webhookRouter({ token: Buffer.from(TOKEN), intake: fakeIntake, log, onRequest: (s) => statuses.push(s) }));
  app.get('/-/healthy', (_req, res) => {
    res.type('text/plain').send('OK\n');
  });
  app.use(jsonNotFound);
  app.use(jsonErrorHandler);
  server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await agent.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

// ---- the client ----

interface Req {
  method?: string;
  path?: string;
  /** The Authorization header; undefined sends none. Default: the right token. */
  auth?: string | undefined;
  /** Default application/json; undefined sends none. */
  contentType?: string | undefined;
  body?: string | Buffer | Readable;
  headers?: Record<string, string>;
}

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

/** Requests sent under /webhook, so onRequest's count can be checked. */
let webhookRequests = 0;

async function send(r: Req): Promise<Res> {
  const headers: Record<string, string> = { ...r.headers };
  const auth = 'auth' in r ? r.auth : `Bearer ${TOKEN}`;
  const contentType = 'contentType' in r ? r.contentType : 'application/json';
  if (auth !== undefined) headers.authorization = auth;
  if (contentType !== undefined) headers['content-type'] = contentType;
  const path = r.path ?? WEBHOOK_PATH;
  if (path.toLowerCase().startsWith('/webhook')) webhookRequests++;
  const res = await request(`${origin}${path}`, { method: (r.method ?? 'POST') as 'POST', headers, body: r.body, dispatcher: agent });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

const post = (body: string | Buffer | Readable, more: Omit<Req, 'body'> = {}): Promise<Res> => send({ ...more, body });
const payloadWith = (receiver: string, base = fixture('grouped-firing.json')): string => JSON.stringify({ ...base, receiver });

function expectError(r: Res, status: number, error: string): { error: string; message: string; details?: unknown[] } {
  expect(r.status, r.text).toBe(status);
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  const body = r.json as { error: string; message: string; details?: unknown[] };
  expect(body.error).toBe(error);
  expect(typeof body.message).toBe('string');
  expect(Object.keys(body).every((k) => ['error', 'message', 'details'].includes(k))).toBe(true);
  return body;
}

describe('POST /webhook/alertmanager', () => {
  it('hands a valid notification to the intake and answers its result with 200', async () => {
    const before = Date.now();
    const r = await post(fixtureBytes('grouped-firing.json'));
    expect(r.status, r.text).toBe(200);
    const call = intakeCalls.at(-1)!;
    expect(call.payload).toEqual(fixture('grouped-firing.json'));
    expect(call.meta.remote).toBe('127.0.0.1');
    expect(call.meta.receivedAt).toBeGreaterThanOrEqual(before);
    expect(call.meta.receivedAt).toBeLessThanOrEqual(Date.now());
    expect(r.json).toEqual({
      incidents: [
        { fingerprint: 'c3d4a19be1f20a77', outcome: 'new', incident: expect.any(String) },
        { fingerprint: '1f0e9d8c7b6a5f43', outcome: 'new', incident: expect.any(String) },
        { fingerprint: '8e7a6b5c4d3e2f10', outcome: 'new', incident: expect.any(String) },
      ],
    });
  });

  it('answers the repeat of a notification (the HA peer, or repeat_interval) with what the intake says: duplicates', async () => {
    const first = (await post(fixtureBytes('grouped-firing.json'))).json as IntakeResult;
    const r = await post(fixtureBytes('repeated.json'));
    expect(r.status).toBe(200);
    expect((r.json as IntakeResult).incidents.map((i) => [i.outcome, i.incident])).toEqual(
      first.incidents.map((i) => ['duplicate', i.incident]),
    );
  });

  it('takes a resolved and a truncated notification', async () => {
    const resolved = await post(fixtureBytes('resolved.json'));
    expect(resolved.status).toBe(200);
    expect((resolved.json as IntakeResult).incidents.map((i) => i.outcome)).toEqual(['resolved', 'resolved']);
    const truncated = await post(fixtureBytes('truncated.json'));
    expect(truncated.status).toBe(200);
    expect(intakeCalls.at(-1)!.payload.truncatedAlerts).toBe(3);
  });

  it('passes only the fields it knows to the intake', async () => {
    const r = await post(JSON.stringify({ ...fixture('resolved.json'), somethingNew: { a: 1 } }));
    expect(r.status).toBe(200);
    expect(intakeCalls.at(-1)!.payload).toEqual(fixture('resolved.json'));
  });

  it('waits for the intake (the journal) before it answers', async () => {
    const start = performance.now();
    const r = await post(payloadWith(SLOW, fixture('resolved.json')));
    expect(r.status).toBe(200);
    expect(performance.now() - start).toBeGreaterThanOrEqual(140);
    expect(intakeCalls.at(-1)!.done).toBe(true);
  });

  describe('401', () => {
    it('without the right bearer token, with WWW-Authenticate: Bearer, and the intake never called', async () => {
      const calls = intakeCalls.length;
      const body = fixtureBytes('grouped-firing.json');
      for (const auth of [
        undefined,
        'Bearer wrong',
        `Bearer ${TOKEN}x`,
        `Bearer ${TOKEN.slice(0, -1)}`,
        `Basic ${TOKEN}`,
        TOKEN,
        `Bearer  ${TOKEN}`,
        '',
      ]) {
        const r = await post(body, { auth });
        expectError(r, 401, 'unauthorized');
        expect(r.headers['www-authenticate']).toBe('Bearer');
      }
      expect(intakeCalls.length).toBe(calls);
    });

    it('accepts the scheme in any case', async () => {
      expect((await post(fixtureBytes('resolved.json'), { auth: `bearer ${TOKEN}` })).status).toBe(200);
      expect((await post(fixtureBytes('resolved.json'), { auth: `BEARER ${TOKEN}` })).status).toBe(200);
    });

    it('comes before the content type, the size and the JSON are looked at', async () => {
      expectError(await post('{}', { auth: 'Bearer no', contentType: 'text/plain' }), 401, 'unauthorized');
      expectError(await post('{"version": ', { auth: 'Bearer no' }), 401, 'unauthorized');
      expectError(await post(Buffer.alloc(LIMIT * 2, 0x20), { auth: undefined }), 401, 'unauthorized');
    });

    it('is sent before the body is read: a body that never ends still gets its 401', async () => {
      const body = new Readable({ read() {} });
      body.push('{"version":"4",');
      try {
        const r = await Promise.race([post(body, { auth: 'Bearer no' }), sleep(3000).then(() => 'timeout' as const)]);
        expect(r).not.toBe('timeout');
        expectError(r as Res, 401, 'unauthorized');
      } finally {
        body.destroy();
      }
    });

    it('reads off no more than DRAIN_LIMIT_BYTES of what a refused client keeps sending, then cuts it off', async () => {
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const body = new Readable({
        read() {
          sent += chunk.length;
          this.push(chunk);
        },
      });
      const r = await post(body, { auth: 'Bearer no' });
      expectError(r, 401, 'unauthorized');
      await waitFor('the client cut off', () => body.destroyed, { timeoutMs: DRAIN_TIMEOUT_MS + 2000 });
      // What the client wrote: the drained bytes, plus what the socket buffers held when it was cut.
      expect(sent).toBeLessThan(DRAIN_LIMIT_BYTES + 16 * 1024 * 1024);
      expect((await post(fixtureBytes('resolved.json'))).status).toBe(200);
    });
  });

  describe('415', () => {
    it('unless the content type is application/json in UTF-8', async () => {
      const body = fixtureBytes('resolved.json');
      for (const contentType of [
        undefined,
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/jsonp',
        'application/json; charset=latin1',
        'multipart/form-data; boundary=x',
      ])
        expectError(await post(body, { contentType }), 415, 'unsupported_media_type');
      for (const contentType of [
        'application/json; charset=utf-8',
        'Application/JSON;charset="UTF-8"',
        'application/json; charset=utf8; q=1',
      ])
        expect((await post(body, { contentType })).status, contentType).toBe(200);
    });

    it('for a compressed body', async () => {
      expectError(await post(fixtureBytes('resolved.json'), { headers: { 'content-encoding': 'gzip' } }), 415, 'unsupported_media_type');
    });
  });

  describe('413', () => {
    /** A valid notification padded with spaces to exactly n bytes. */
    const padded = (n: number): Buffer => {
      const b = fixtureBytes('resolved.json');
      return Buffer.concat([b, Buffer.alloc(n - b.length, 0x20)]);
    };

    it('over the body limit (1 MiB by default), and not at it', async () => {
      expect((await post(padded(LIMIT))).status).toBe(200);
      const r = expectError(await post(padded(LIMIT + 1)), 413, 'payload_too_large');
      expect(r.message).toContain(String(LIMIT));
      expectError(await post(Buffer.alloc(3 * LIMIT, 0x20)), 413, 'payload_too_large');
    });

    it('over the limit in a body of unknown length (chunked), while the client still sends', async () => {
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const body = Readable.from(
        (function* () {
          for (let i = 0; i < (2 * LIMIT) / chunk.length; i++) yield chunk;
        })(),
      );
      expectError(await post(body), 413, 'payload_too_large');
    });

    it('with a body limit of the caller’s choice', async () => {
      const app = express();
      const log = pino({ level: 'silent' });
      app.use(webhookRouter({ token: Buffer.from(TOKEN), intake: fakeIntake, log, bodyLimitBytes: 1000 }));
      const small = app.listen(0, '127.0.0.1');
      await new Promise((r) => small.once('listening', r));
      try {
        const url = `http://127.0.0.1:${(small.address() as AddressInfo).port}${WEBHOOK_PATH}`;
        const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
        const r = await request(url, { method: 'POST', headers, body: fixtureBytes('resolved.json'), dispatcher: agent });
        expect(r.statusCode).toBe(413);
        expect(await r.body.json()).toMatchObject({ error: 'payload_too_large' });
      } finally {
        small.closeAllConnections();
        await new Promise((r) => small.close(r));
      }
    });
  });

  describe('400', () => {
    it('for a body that is not JSON', async () => {
      for (const body of [
        '',
        '{',
        '{"version": "4",}',
        'version=4',
        fixtureBytes('resolved.json').subarray(0, 100),
        Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
      ])
        expectError(await post(body), 400, 'invalid_json');
    });

    it('for a byte-order mark or text that is not UTF-8', async () => {
      expectError(await post(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), fixtureBytes('resolved.json')])), 400, 'invalid_json');
      expectError(await post(Buffer.from('{"receiver": "caf\xe9"}', 'latin1')), 400, 'invalid_json');
    });
  });

  describe('422', () => {
    it('for JSON that is not a v4 payload, with the issues (path and message)', async () => {
      const p = fixture('grouped-firing.json') as unknown as Record<string, unknown> & { alerts: Record<string, unknown>[] };
      p.version = '3';
      p.alerts[1]!.startsAt = 'yesterday';
      p.alerts[2]!.labels = { pool: 1 };
      const r = expectError(await post(JSON.stringify(p)), 422, 'invalid_payload');
      expect(r.details).toEqual([
        { path: 'version', message: 'version must be "4" (the only Alertmanager webhook payload version xenha reads)' },
        {
          path: 'alerts[1].startsAt',
          message:
            'startsAt must be an RFC 3339 timestamp such as "2024-05-01T12:00:00.123Z" (0001-01-01T00:00:00Z for unset), not "yesterday"',
        },
        { path: 'alerts[2].labels.pool', message: 'labels values must be strings' },
      ]);
      for (const body of ['null', '[]', '"4"', '0', '{}'])
        expect(expectError(await post(body), 422, 'invalid_payload').details!.length, body).toBeGreaterThan(0);
    });

    it('caps the issues it lists', async () => {
      const alerts = Array.from({ length: 500 }, () => ({ status: 'x', fingerprint: 1 }));
      const r = expectError(await post(JSON.stringify({ ...fixture('resolved.json'), alerts })), 422, 'invalid_payload');
      expect(r.details).toHaveLength(MAX_ERROR_DETAILS);
      expect(r.message).toMatch(new RegExp(`the first ${MAX_ERROR_DETAILS} of \\d+ listed`));
    });

    it('when the intake refused every alert, with the reasons; 200 when it took some', async () => {
      const r = expectError(await post(payloadWith(REFUSE_ALL)), 422, 'refused');
      expect(r.details).toEqual(
        fixture('grouped-firing.json').alerts.map((a) => ({ fingerprint: a.fingerprint, reason: 'unknown pool lab' })),
      );
      const some = await post(payloadWith(REFUSE_FIRST));
      expect(some.status).toBe(200);
      expect((some.json as IntakeResult).incidents.map((i) => i.outcome)).toEqual(['refused', 'duplicate', 'duplicate']);
    });
  });

  describe('5xx: only when the intake could not store the notification (Alertmanager retries)', () => {
    it('500 when the intake throws, logged', async () => {
      const r = expectError(await post(payloadWith(THROW)), 500, 'intake_failed');
      expect(r.message).not.toContain('no space left');
      await waitFor('the intake error logged', () =>
        logLines.some((l) => l.includes('journal: no space left on device') && l.includes('"level":50')),
      );
    });

    it('the 5xx the error carries (503)', async () => {
      expectError(await post(payloadWith(THROW_503)), 503, 'intake_failed');
    });

    it('500 when the intake answers something that is not a result (a bug: never a 2xx or a 4xx, so Alertmanager retries)', async () => {
      expectError(await post(payloadWith(BAD_RESULT)), 500, 'intake_failed');
    });
  });

  describe('other methods and paths', () => {
    it('405 with Allow: POST for every other method on the path', async () => {
      for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
        const r = await send({ method, auth: undefined, body: method === 'GET' ? undefined : '{}' });
        expectError(r, 405, 'method_not_allowed');
        expect(r.headers.allow).toBe('POST');
      }
      const head = await send({ method: 'HEAD', auth: undefined });
      expect(head.status).toBe(405);
    });

    it('404 JSON for unknown paths under /webhook, and from the app’s own jsonNotFound elsewhere', async () => {
      for (const path of ['/webhook', '/webhook/', '/webhook/alertmanagerx', '/webhook/alertmanager/x', '/webhook/other', '/nope'])
        expectError(await send({ path, body: fixtureBytes('resolved.json') }), 404, 'not_found');
      expect((await send({ method: 'GET', path: '/-/healthy' })).text).toBe('OK\n');
    });
  });

  it('calls onRequest once per request with its status', async () => {
    await waitFor('onRequest for every request so far', () => statuses.length === webhookRequests);
    const before = statuses.length;
    await post(fixtureBytes('resolved.json'));
    await post('{', { auth: 'Bearer no' });
    await send({ method: 'GET' });
    await waitFor('three more', () => statuses.length === before + 3);
    expect(statuses.slice(before)).toEqual([200, 401, 405]);
  });
});

// ---- ten thousand malformed requests ----

/** The status a request must get, read independently of the router. */
interface FuzzCase {
  method: string;
  path: string;
  auth: string | undefined;
  contentType: { value: string | undefined; ok: boolean };
  body: Buffer;
  kind: string;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function expectedStatus(c: FuzzCase): number {
  if (c.path.toLowerCase() !== WEBHOOK_PATH) return 404;
  if (c.method !== 'POST') return 405;
  const m = c.auth === undefined ? null : /^bearer (.*)$/is.exec(c.auth);
  if (!m || m[1] !== TOKEN) return 401;
  if (!c.contentType.ok) return 415;
  if (c.body.length > LIMIT) return 413;
  let v: unknown;
  try {
    v = JSON.parse(strictUtf8.decode(c.body));
  } catch {
    return 400;
  }
  return alertmanagerPayload.safeParse(v).success ? 200 : 422;
}

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((n) => String.fromCharCode(n)), minLength: 1, maxLength: 80 });
const authArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 30, arbitrary: fc.constant(`Bearer ${TOKEN}`) },
  { weight: 2, arbitrary: fc.constantFrom(`bearer ${TOKEN}`, `BEARER ${TOKEN}`) },
  { weight: 2, arbitrary: fc.constant(undefined) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN.toUpperCase()}`,
      `Basic ${TOKEN}`,
      TOKEN,
      `Bearer  ${TOKEN}`,
      'Bearer',
      'Bearer x',
    ),
  },
  { weight: 2, arbitrary: printable.map((s) => s.trim()).filter((s) => s.length > 0) },
);

const contentTypeArb = fc.oneof(
  { weight: 30, arbitrary: fc.constant({ value: 'application/json', ok: true }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      { value: 'application/json; charset=utf-8', ok: true },
      { value: 'Application/JSON;charset="UTF-8"', ok: true },
      { value: 'application/json; foo=bar', ok: true },
    ),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      { value: undefined, ok: false },
      { value: 'text/plain', ok: false },
      { value: 'application/x-www-form-urlencoded', ok: false },
      { value: 'application/json; charset=iso-8859-1', ok: false },
      { value: 'application/jsonx', ok: false },
      { value: 'multipart/form-data; boundary=x', ok: false },
      { value: 'application/vnd.api+json', ok: false },
    ),
  },
);

// A payload Alertmanager could send, from the fixtures or generated.
const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,15}$/).filter((k) => k !== '__proto__');
const labelMap = fc.dictionary(labelName, fc.string({ maxLength: 30 }), { maxKeys: 8 });
const time = fc
  .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const url = fc.constantFrom('', 'http://alertmanager.example:9093', 'http://prometheus.example:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1');
const generatedPayload = fc.record({
  receiver: fc.constantFrom('xenha-remediation', 'default', ''),
  status: fc.constantFrom('firing', 'resolved'),
  alerts: fc.array(
    fc.record({
      status: fc.constantFrom('firing', 'resolved'),
      labels: labelMap,
      annotations: labelMap,
      startsAt: time,
      endsAt: fc.oneof(fc.constant(GO_ZERO_TIME), time),
      generatorURL: url,
      fingerprint: fc.stringMatching(/^[0-9a-f]{16}$/),
    }),
    { minLength: 1, maxLength: 6 },
  ),
  groupLabels: labelMap,
  commonLabels: labelMap,
  commonAnnotations: labelMap,
  externalURL: url,
  version: fc.constant('4'),
  groupKey: fc.string({ minLength: 1, maxLength: 60 }),
  truncatedAlerts: fc.nat(),
});
const validPayload: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...FIXTURE_NAMES.map((n) => fixture(n))).map((p) => structuredClone(p) as unknown),
  generatedPayload,
);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every place in a JSON value, as [parent, key] pairs (the root's parent is a box). */
function places(root: { v: Json }): [Record<string, Json> | Json[], string | number][] {
  const out: [Record<string, Json> | Json[], string | number][] = [[root, 'v']];
  const walk = (v: Json): void => {
    if (Array.isArray(v))
      v.forEach((x, i) => {
        out.push([v, i]);
        walk(x);
      });
    else if (v !== null && typeof v === 'object')
      for (const k of Object.keys(v)) {
        out.push([v, k]);
        walk(v[k]!);
      }
  };
  walk(root.v);
  return out;
}

const otherType = (v: Json): Json =>
  typeof v === 'string'
    ? 4
    : typeof v === 'number'
      ? String(v)
      : typeof v === 'boolean'
        ? 'true'
        : v === null
          ? {}
          : Array.isArray(v)
            ? {}
            : [];

const mutation = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('delete', 'replace', 'wrong-type', 'huge', 'wrap', 'deep', 'null'),
  value: fc.jsonValue({ maxDepth: 3 }),
  size: fc.integer({ min: 900, max: 40_000 }),
});

const mutatedPayload = fc.tuple(validPayload, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([p, ms]) => {
  const root = { v: structuredClone(p) as Json };
  for (const m of ms) {
    const all = places(root);
    const [parent, key] = all[m.at % all.length]!;
    const cur = (parent as Record<string | number, Json>)[key]!;
    let next: Json | undefined;
    switch (m.op) {
      case 'delete':
        next = undefined;
        break;
      case 'replace':
        next = m.value as Json;
        break;
      case 'wrong-type':
        next = otherType(cur);
        break;
      case 'huge':
        next = 'x'.repeat(m.size);
        break;
      case 'wrap':
        next = [cur];
        break;
      case 'deep':
        // A marker, nested after JSON.stringify (which recurses, and would overflow the stack).
        next = `\u0000deep:${1 + (m.size % 3000)}`;
        break;
      case 'null':
        next = null;
    }
    if (next === undefined) {
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key as string];
    } else (parent as Record<string | number, Json>)[key] = next;
  }
  return JSON.stringify(root.v ?? null).replace(/"\\u0000deep:(\d+)"/g, (_, n: string) => '['.repeat(Number(n)) + ']'.repeat(Number(n)));
});

const bodyArb: fc.Arbitrary<{ body: Buffer; kind: string }> = fc.oneof(
  { weight: 16, arbitrary: validPayload.map((p) => ({ body: Buffer.from(JSON.stringify(p)), kind: 'valid' })) },
  { weight: 48, arbitrary: mutatedPayload.map((s) => ({ body: Buffer.from(s), kind: 'mutated' })) },
  { weight: 16, arbitrary: fc.jsonValue().map((v) => ({ body: Buffer.from(JSON.stringify(v)), kind: 'random-json' })) },
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((b) => ({ body: Buffer.from(b), kind: 'random-bytes' })) },
  {
    weight: 8,
    arbitrary: validPayload
      .map((p) => JSON.stringify(p))
      .chain((s) => fc.nat({ max: s.length - 1 }).map((n) => ({ body: Buffer.from(s.slice(0, n)), kind: 'truncated' }))),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        depth: fc.integer({ min: 1, max: 50_000 }),
        shape: fc.constantFrom('array', 'object', 'unterminated', 'unknown-key', 'label'),
      })
      .map(({ depth, shape }) => {
        const arr = '['.repeat(depth) + ']'.repeat(depth);
        const obj = '{"a":'.repeat(depth) + '0' + '}'.repeat(depth);
        const valid = JSON.stringify(fixture('resolved.json'));
        const body =
          shape === 'array'
            ? arr
            : shape === 'object'
              ? obj
              : shape === 'unterminated'
                ? '['.repeat(depth)
                : shape === 'unknown-key'
                  ? `${valid.slice(0, -1)},"extra":${arr}}`
                  : valid.replace('"labels":{', `"labels":{"deep":${arr},`);
        return { body: Buffer.from(body), kind: `deep-${shape}` };
      }),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ size: fc.integer({ min: 100_000, max: LIMIT + 200_000 }), where: fc.constantFrom('label', 'unknown-key', 'string') })
      .map(({ size, where }) => {
        const huge = 'h'.repeat(size);
        const p = fixture('resolved.json') as unknown as Record<string, unknown> & { alerts: { labels: Record<string, string> }[] };
        if (where === 'label') p.alerts[0]!.labels.huge = huge;
        else p.huge = huge;
        return { body: Buffer.from(where === 'string' ? JSON.stringify(huge) : JSON.stringify(p)), kind: `huge-${where}` };
      }),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      ...[
        '',
        ' ',
        'null',
        '0',
        '-0',
        '1e999',
        '"4"',
        '[]',
        '{}',
        'true',
        '{"version":"4"}',
        '{"version":4}',
        '\ufeff{}',
        '{"__proto__":{"version":"4"}}',
        'NaN',
        "{'a':1}",
      ].map((s) => ({ body: Buffer.from(s), kind: 'edge' })),
    ),
  },
);

const fuzzCase: fc.Arbitrary<FuzzCase> = fc
  .record({
    route: fc.oneof(
      { weight: 40, arbitrary: fc.constant({ method: 'POST', path: WEBHOOK_PATH }) },
      {
        weight: 1,
        arbitrary: fc.record({ method: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH'), path: fc.constant(WEBHOOK_PATH) }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          method: fc.constantFrom('POST', 'GET'),
          path: fc.constantFrom('/webhook/other', '/webhook/alertmanager/x', '/webhook/alertmanager2', '/webhook'),
        }),
      },
    ),
    auth: authArb,
    contentType: contentTypeArb,
    body: bodyArb,
  })
  .map(({ route, auth, contentType, body }) => ({ ...route, auth, contentType, body: body.body, kind: body.kind }));

const describeCase = (c: FuzzCase): string =>
  `${c.method} ${c.path} auth=${JSON.stringify(c.auth)} type=${JSON.stringify(c.contentType.value)} kind=${c.kind} ${c.body.length} bytes: ${c.body.subarray(0, 300).toString('utf8')}`;

describe('malformed requests', () => {
  const BATCH = 20;
  const RUNS = 500;

  it(
    `${BATCH * RUNS} generated requests, ${BATCH} at a time: each gets its 4xx (or 200 when valid), never a 5xx`,
    { timeout: 120_000 },
    async () => {
      const calls = intakeCalls.length;
      const seen = new Map<number, number>();
      const kinds = new Map<string, number>();
      let valid = 0;
      await waitFor('onRequest settled', () => statuses.length === webhookRequests);
      const statusesBefore = statuses.length;
      const requestsBefore = webhookRequests;
      const start = performance.now();
      await fc.assert(
        fc.asyncProperty(fc.array(fuzzCase, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
          await Promise.all(
            batch.map(async (c) => {
              const want = expectedStatus(c);
              const r = await send({
                method: c.method,
                path: c.path,
                auth: c.auth,
                contentType: c.contentType.value,
                body: c.method === 'GET' ? undefined : c.body,
              });
              expect(r.status, describeCase(c)).toBeLessThan(500);
              expect(r.status, describeCase(c)).toBe(want);
              if (r.status !== 200)
                expect(r.json, describeCase(c)).toMatchObject({ error: expect.any(String), message: expect.any(String) });
              seen.set(r.status, (seen.get(r.status) ?? 0) + 1);
              kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
              if (want === 200) valid++;
            }),
          );
        }),
        { numRuns: RUNS },
      );
      const seconds = (performance.now() - start) / 1000;
      console.log(
        `webhook fuzz: ${BATCH * RUNS} requests in ${seconds.toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries([...seen].sort()))}; kinds ${JSON.stringify(Object.fromEntries(kinds))}`,
      );
      expect([...seen.keys()].filter((s) => s >= 500)).toEqual([]);
      // Every kind of answer was exercised.
      for (const s of [200, 400, 401, 404, 405, 413, 415, 422]) expect(seen.get(s) ?? 0, `status ${s}`).toBeGreaterThan(0);
      // The intake saw exactly the valid notifications.
      expect(intakeCalls.length - calls).toBe(valid);
      await waitFor('onRequest for every fuzz request', () => statuses.length - statusesBefore === webhookRequests - requestsBefore);

      // Still up, still serving.
      const r = await post(fixtureBytes('grouped-firing.json'));
      expect(r.status).toBe(200);
      expect((await send({ method: 'GET', path: '/-/healthy' })).status).toBe(200);
    },
  );
});

describe('logs', () => {
  it('never carry the token or the Authorization header', () => {
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) {
      expect(line).not.toContain(TOKEN);
      expect(line.toLowerCase()).not.toContain('authorization');
      expect(line.toLowerCase()).not.toContain('bearer');
    }
  });
});
