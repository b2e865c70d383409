/**
 * The simulator's XAPI endpoints, over real HTTP on 127.0.0.1, answer a hostile client as xapi does:
 * unknown method names (JavaScript property names included) on both wires, bodies over xapi's 300 KiB
 * limit or without a Content-Length, envelopes its parsers refuse, sessions that idle out or overflow
 * their originator's cap (on an injected clock), and fault bodies that name no home.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import type { Simulator, SimulatorOptions } from '../../simulator/simulator.ts';
import { MAX_RPC_BODY, UNKNOWN_METHOD_KEY } from '../../simulator/xapi/http.ts';
import { parseXmlRpcCall } from '../../simulator/xapi/wire.ts';
import { PASSWORD, SIM_CLOCK_START, startTestSim } from '../helpers/sim.ts';
import { jsonRpc } from '../helpers/rpc.ts';

let sims: Simulator[] = [];
afterEach(async () => {
  await Promise.all(sims.map((s) => s.stop()));
  sims = [];
});

async function start(opts: Partial<SimulatorOptions> = {}): Promise<Simulator> {
  const sim = await startTestSim(opts);
  sims.push(sim);
  return sim;
}

/** A simulator on a manual clock: time moves only when the test sets it and steps. */
async function startClocked(opts: Partial<SimulatorOptions> = {}) {
  let t = SIM_CLOCK_START;
  const sim = await start({ ...opts, autoTick: false, now: () => t });
  return {
    sim,
    /** Sets the clock without a tick (logins and calls happen at this time). */
    set: (ms: number) => void (t = SIM_CLOCK_START + ms),
    /** Sets the clock and runs one tick there (a session GC pass runs when due). */
    stepTo: (ms: number) => sim.step((t = SIM_CLOCK_START + ms)),
  };
}

type XmlFailure = { Status: 'Failure'; ErrorDescription: string[] } | { Status: 'Success'; Value: unknown };

/** A bare XML-RPC call, as XenAPI.py sends one: strings as <string>, a methodResponse back. */
async function xmlRpc(baseUrl: string, method: string, params: string[]): Promise<XmlFailure> {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const body =
    `<?xml version='1.0'?><methodCall><methodName>${esc(method)}</methodName><params>` +
    params.map((p) => `<param><value><string>${esc(p)}</string></value></param>`).join('') +
    '</params></methodCall>';
  const res = await fetch(new URL('/', baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'text/xml' },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/xml');
  // The answer is a methodResponse whose one param is the Status struct; the call parser reads the same values.
  const text = await res.text();
  const asCall = text.replace('<methodResponse>', '<methodCall><methodName>r</methodName>').replace('</methodResponse>', '</methodCall>');
  return parseXmlRpcCall(asCall).params[0] as XmlFailure;
}

async function login(url: string, originator?: string): Promise<string> {
  const r = await jsonRpc(url, 'session.login_with_password', ['root', PASSWORD, '1.0', ...(originator === undefined ? [] : [originator])]);
  if (typeof r.result !== 'string') throw new Error(`login failed: ${JSON.stringify(r.error)}`);
  return r.result;
}

/** A raw HTTP exchange: sends `head` (and `body`), reads until the server closes or `ms` pass. */
function rawHttp(
  port: number,
  head: string,
  body: Buffer | string = '',
  ms = 5000,
): Promise<{ response: string; closedByServer: boolean; bytesSent: number }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let response = '';
    let bytesSent = 0;
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ response, closedByServer: false, bytesSent });
    }, ms);
    s.on('connect', () => {
      s.write(head);
      if (body.length > 0) s.write(body);
      bytesSent = Buffer.byteLength(head) + Buffer.byteLength(body);
    });
    s.on('data', (d: Buffer) => (response += d.toString('latin1')));
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ECONNRESET' && response) resolve({ response, closedByServer: true, bytesSent });
      else reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ response, closedByServer: true, bytesSent });
    });
  });
}

/** xapi's http_limit_max_rpc_size (ocaml/xapi-consts/constants.ml), written out so the test pins it. */
const XAPI_RPC_LIMIT = 300 * 1024;

const OVER_LIMIT_PAGE =
  '<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please wait a while and try again. ' +
  'If the problem persists, please contact your support representative.<h1> Additional information </h1>' +
  'Http_svr.Client_requested_size_over_limit</body></html>';

describe('method names that are not in the method table', () => {
  const NAMES = [
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    'valueOf',
    'isPrototypeOf',
    'host.get_constructor',
    'host.get___proto__',
    'host.get_toString',
    'host.get_nosuchfield',
    'VM.get_hasOwnProperty',
    'VM.frobnicate',
  ];

  it('answer MESSAGE_METHOD_UNKNOWN [name] on JSON-RPC 2.0 and 1.0, with the session checked first', async () => {
    const sim = await start();
    const url = sim.info().masterUrl;
    const session = await login(url);
    const hostRef = sim.pool.master.built.ref;
    for (const name of NAMES) {
      expect(await jsonRpc(url, name, [session]), name).toEqual({
        jsonrpc: '2.0',
        error: { code: 1, message: 'MESSAGE_METHOD_UNKNOWN', data: [name] },
        id: 1,
      });
      // Arguments do not matter: a getter of a field the class lacks is no method, whatever the ref.
      expect((await jsonRpc(url, name, [session, hostRef])).error, name).toEqual({
        code: 1,
        message: 'MESSAGE_METHOD_UNKNOWN',
        data: [name],
      });
      expect((await jsonRpc(url, name, [session, 'OpaqueRef:nope', 1, {}])).error?.data, name).toEqual([name]);
      expect((await jsonRpc(url, name, [])).error, name).toEqual({ code: 1, message: 'MESSAGE_METHOD_UNKNOWN', data: [name] });
      // gen_server.ml: an unknown call with arguments is a host extension call: its session is checked first.
      expect((await jsonRpc(url, name, ['OpaqueRef:bogus'])).error, name).toEqual({
        code: 1,
        message: 'SESSION_INVALID',
        data: ['OpaqueRef:bogus'],
      });
    }
    const v1 = await fetch(new URL('/jsonrpc', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ method: 'constructor', params: [session], id: 'a' }),
    });
    expect(await v1.json()).toEqual({ result: null, error: ['MESSAGE_METHOD_UNKNOWN', 'constructor'], id: 'a' });
  });

  it('answer MESSAGE_METHOD_UNKNOWN [name] on XML-RPC', async () => {
    const sim = await start();
    const url = sim.info().masterUrl;
    const session = await login(url);
    for (const name of NAMES) {
      expect(await xmlRpc(url, name, [session, sim.pool.master.built.ref]), name).toEqual({
        Status: 'Failure',
        ErrorDescription: ['MESSAGE_METHOD_UNKNOWN', name],
      });
      expect(await xmlRpc(url, name, []), name).toEqual({ Status: 'Failure', ErrorDescription: ['MESSAGE_METHOD_UNKNOWN', name] });
    }
  });

  it('while real getters still answer, and a served-empty class has its getters (HANDLE_INVALID)', async () => {
    const sim = await start();
    const url = sim.info().masterUrl;
    const session = await login(url);
    const master = sim.pool.master;
    expect((await jsonRpc(url, 'host.get_name_label', [session, master.built.ref])).result).toBe(master.built.name);
    expect(await xmlRpc(url, 'host.get_name_label', [session, master.built.ref])).toEqual({ Status: 'Success', Value: master.built.name });
    expect((await jsonRpc(url, 'task.get_status', [session, 'OpaqueRef:nope'])).error).toEqual({
      code: 1,
      message: 'HANDLE_INVALID',
      data: ['task', 'OpaqueRef:nope'],
    });
    // A map key named like a JavaScript property is a key like any other.
    const poolRef = sim.pool.built.poolRef;
    expect((await jsonRpc(url, 'pool.add_to_other_config', [session, poolRef, '__proto__', 'x'])).error).toBeUndefined();
    expect((await jsonRpc(url, 'pool.add_to_other_config', [session, poolRef, '__proto__', 'y'])).error?.message).toBe('MAP_DUPLICATE_KEY');
    const oc = (await jsonRpc(url, 'pool.get_other_config', [session, poolRef])).result as Record<string, string>;
    expect(Object.getOwnPropertyDescriptor(oc, '__proto__')?.value).toBe('x');
    // Unknown names are counted under one key: the map cannot grow with them.
    const keys = sim.shared.callCounts.size;
    for (const name of ['constructor', '__proto__', 'x.y', 'host.get_nosuchfield']) await jsonRpc(url, name, [session]);
    expect(sim.shared.callCounts.get(UNKNOWN_METHOD_KEY)).toBe(4);
    expect(sim.shared.callCounts.size).toBe(keys + 1);
  });
});

describe('get_all_records_where names database columns, as xapi does', () => {
  it('takes name__label for a namespaced field and fails on a column the table lacks', async () => {
    const sim = await start();
    const url = sim.info().masterUrl;
    const session = await login(url);
    const where = async (cls: string, expr: string) => jsonRpc(url, `${cls}.get_all_records_where`, [session, expr]);
    const [vmRef] = sim.pool.built.db.all('VM').find(([, v]) => v.name_label === 'vm-0001')!;
    expect(Object.keys((await where('VM', 'field "name__label" = "vm-0001"')).result as object)).toEqual([vmRef]);
    const poolName = sim.info().pool.name;
    expect(Object.keys((await where('pool', `field "name_label" = "${poolName}"`)).result as object)).toEqual([sim.pool.built.poolRef]);
    expect(Object.keys((await where('VDI', 'field "type" = "ha_statefile"')).result as object)).toEqual([sim.pool.built.statefileVdiRef]);
    for (const [cls, column] of [
      ['VM', 'name_label'],
      ['VM', 'constructor'],
      ['host', '__proto__'],
      ['VM', 'nosuch__field'],
    ]) {
      expect((await where(cls!, `field "${column}" = ""`)).error, `${cls} ${column}`).toEqual({
        code: 1,
        message: 'INTERNAL_ERROR',
        data: ['missing field', column, ''],
      });
    }
    // An empty table evaluates nothing: no error (db_filter.ml evaluates the expression row by row).
    expect((await where('task', 'field "nosuch" = ""')).result).toEqual({});
  });
});

describe('request bodies', () => {
  it(`over xapi's ${XAPI_RPC_LIMIT}-byte limit: 500 at once from the Content-Length, the body unread, the connection closed`, async () => {
    expect(MAX_RPC_BODY).toBe(XAPI_RPC_LIMIT);
    const sim = await start();
    const { port } = sim.info();
    for (const path of ['/jsonrpc', '/']) {
      // 17 MB announced, 64 KiB sent: the answer comes without the rest.
      const r = await rawHttp(
        port,
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 17000000\r\n\r\n`,
        Buffer.alloc(64 * 1024, 0x20),
      );
      expect(r.response, path).toMatch(/^HTTP\/1\.1 500 Internal Error\r\n/);
      expect(r.response.toLowerCase(), path).toContain('connection: close');
      expect(r.response.toLowerCase(), path).toContain('content-type: text/html');
      expect(r.response.endsWith(`\r\n\r\n${OVER_LIMIT_PAGE}`), path).toBe(true);
      expect(r.closedByServer, path).toBe(true);
    }
    // One byte over: refused; the limit itself: read and answered.
    const over = await rawHttp(port, `POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Length: ${XAPI_RPC_LIMIT + 1}\r\n\r\n`);
    expect(over.response).toMatch(/^HTTP\/1\.1 500 Internal Error\r\n/);
    expect(over.response).toContain('Client_requested_size_over_limit');
    const call = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'session.login_with_password', params: ['root', PASSWORD] });
    const exact = call + ' '.repeat(XAPI_RPC_LIMIT - call.length);
    const res = await fetch(new URL('/jsonrpc', sim.info().masterUrl), { method: 'POST', body: exact });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { result: string }).result).toMatch(/^OpaqueRef:/);
  });

  it('without a Content-Length (chunked): 500, as xapi requires one', async () => {
    const sim = await start();
    const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'system.listMethods', params: [] });
    const chunk = `${call.length.toString(16)}\r\n${call}\r\n0\r\n\r\n`;
    const r = await rawHttp(sim.info().port, `POST /jsonrpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`, chunk);
    expect(r.response).toMatch(/^HTTP\/1\.1 500 Internal Error\r\n/);
    expect(r.response).toContain('Failure(&quot;We require a content-length: HTTP header&quot;)');
  });

  it('an envelope the parsers refuse, deep nesting included, gets 500 at once and the server goes on', async () => {
    const sim = await start();
    const url = sim.info().masterUrl;
    let deep = '<value>x</value>';
    while (deep.length < XAPI_RPC_LIMIT - 200) deep = `<value><array><data>${deep}</data></array></value>`;
    const bodies: [string, string, RegExp][] = [
      ['/jsonrpc', '{"jsonrpc":"2.0","id":1', /not JSON/],
      [
        '/jsonrpc',
        '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]',
        /not JSON|JSON-RPC/,
      ],
      ['/', 'not xml <', /XML-RPC/],
      ['/', `<methodCall><methodName>m</methodName><params><param>${deep}</param></params></methodCall>`, /nested/],
    ];
    for (const [path, body, reason] of bodies) {
      const t = performance.now();
      const res = await fetch(new URL(path, url), { method: 'POST', body });
      expect(performance.now() - t, path).toBeLessThan(2000);
      expect([res.status, res.statusText], path).toEqual([500, 'Internal Error']);
      expect(res.headers.get('content-type')).toBe('text/html');
      expect(await res.text(), path).toMatch(reason);
    }
    expect((await jsonRpc(url, 'session.login_with_password', ['root', PASSWORD])).result).toMatch(/^OpaqueRef:/);
  });
});

describe('sessions on the pool clock', () => {
  it('a session is valid just before the idle timeout and SESSION_INVALID just after, on both wires', async () => {
    const idle = 5000;
    const { sim, set, stepTo } = await startClocked({ sessionIdleTimeoutMs: idle, sessionGcIntervalMs: 1 });
    const url = sim.info().masterUrl;
    set(1000);
    const s = await login(url, 'idle-test');
    await stepTo(1000 + idle - 1);
    expect((await jsonRpc(url, 'pool.get_all', [s])).result).toEqual([sim.pool.built.poolRef]);
    expect(await xmlRpc(url, 'pool.get_all', [s])).toEqual({ Status: 'Success', Value: [sim.pool.built.poolRef] });
    await stepTo(1000 + idle);
    expect((await jsonRpc(url, 'pool.get_all', [s])).error).toEqual({ code: 1, message: 'SESSION_INVALID', data: [s] });
    expect(await xmlRpc(url, 'pool.get_all', [s])).toEqual({ Status: 'Failure', ErrorDescription: ['SESSION_INVALID', s] });
  });

  it('expiry happens at a GC pass: a session outlives its timeout until the next one', async () => {
    const { sim, set, stepTo } = await startClocked({ sessionIdleTimeoutMs: 5000, sessionGcIntervalMs: 3000 });
    const url = sim.info().masterUrl;
    set(0);
    const s = await login(url, 'gc-test');
    await stepTo(3000); // a pass: age 3000
    await stepTo(5999); // no pass due (the next is at 6000), though the session is past its timeout
    expect((await jsonRpc(url, 'pool.get_all', [s])).error).toBeUndefined();
    await stepTo(6000);
    expect((await jsonRpc(url, 'pool.get_all', [s])).error?.message).toBe('SESSION_INVALID');
  });

  it("a call refreshes last_active only past xapi's threshold, so a busy session's age lags its last call", async () => {
    const { sim, set, stepTo } = await startClocked({
      sessionIdleTimeoutMs: 10_000,
      sessionGcIntervalMs: 1,
      sessionRefreshThresholdMs: 2000,
    });
    const url = sim.info().masterUrl;
    set(0);
    const [a, b] = [await login(url, 'refresh'), await login(url, 'refresh')];
    set(1000);
    expect((await jsonRpc(url, 'pool.get_all', [a])).error).toBeUndefined(); // within the threshold: not refreshed
    set(2001);
    expect((await jsonRpc(url, 'pool.get_all', [b])).error).toBeUndefined(); // refreshed to 2001
    await stepTo(10_000);
    expect((await jsonRpc(url, 'pool.get_all', [a])).error?.message).toBe('SESSION_INVALID'); // used 9 s ago, yet gone
    expect(sim.shared.sessions.has(b)).toBe(true);
    await stepTo(12_000);
    expect(sim.shared.sessions.has(b)).toBe(true);
    await stepTo(12_001);
    expect(sim.shared.sessions.has(b)).toBe(false);
  });

  it('past the cap of an originator, the least recently active sessions go at the next pass; other originators keep theirs', async () => {
    const { sim, set, stepTo } = await startClocked({ maxSessionsPerOriginator: 3, sessionGcIntervalMs: 1 });
    const url = sim.info().masterUrl;
    const sessions: string[] = [];
    for (let i = 1; i <= 4; i++) {
      set(i * 10);
      sessions.push(await login(url, 'capped'));
    }
    set(45);
    const other = await login(url, 'another-client');
    // Over the cap, but no pass has run: every session still answers.
    for (const s of sessions) expect((await jsonRpc(url, 'pool.get_all', [s])).error).toBeUndefined();
    await stepTo(50);
    expect((await jsonRpc(url, 'pool.get_all', [sessions[0]!])).error).toEqual({
      code: 1,
      message: 'SESSION_INVALID',
      data: [sessions[0]],
    });
    for (const s of [...sessions.slice(1), other]) expect((await jsonRpc(url, 'pool.get_all', [s])).error).toBeUndefined();
    expect(await xmlRpc(url, 'pool.get_all', [sessions[0]!])).toEqual({
      Status: 'Failure',
      ErrorDescription: ['SESSION_INVALID', sessions[0]],
    });
  });

  it('logins that name no originator share one capped group', async () => {
    const { sim, set, stepTo } = await startClocked({ maxSessionsWithoutOriginator: 2, sessionGcIntervalMs: 1 });
    const url = sim.info().masterUrl;
    const s: string[] = [];
    for (let i = 1; i <= 3; i++) {
      set(i);
      s.push(await login(url));
    }
    await stepTo(10);
    expect(s.map((x) => sim.shared.sessions.has(x))).toEqual([false, true, true]);
  });

  it("a slave's local session is valid on that host only and never expires; a pool session on a slave answers HOST_IS_SLAVE", async () => {
    const { sim, set, stepTo } = await startClocked({ sessionIdleTimeoutMs: 1000, sessionGcIntervalMs: 1 });
    const info = sim.info();
    const slave = info.hosts.find((h) => !h.master)!;
    const other = info.hosts.find((h) => !h.master && h !== slave)!;
    set(0);
    const local = (await jsonRpc(slave.urls[0]!, 'session.slave_local_login_with_password', ['root', PASSWORD])).result as string;
    const pooled = await login(info.masterUrl, 'x');
    expect((await jsonRpc(slave.urls[1]!, 'session.logout', [pooled])).error).toEqual({
      code: 1,
      message: 'HOST_IS_SLAVE',
      data: [sim.pool.master.built.addresses[0]],
    });
    expect((await jsonRpc(info.masterUrl, 'pool.get_all', [local])).error?.message).toBe('SESSION_INVALID');
    expect((await jsonRpc(other.urls[0]!, 'session.local_logout', [local])).error?.message).toBe('SESSION_INVALID');
    await stepTo(60_000);
    expect((await jsonRpc(info.masterUrl, 'pool.get_all', [pooled])).error?.message).toBe('SESSION_INVALID');
    expect((await jsonRpc(slave.urls[1]!, 'session.local_logout', [local])).error).toBeUndefined();
    expect((await jsonRpc(slave.urls[0]!, 'session.local_logout', [local])).error?.message).toBe('SESSION_INVALID');
  });

  it('session.logout ends a session at once', async () => {
    const sim = await start();
    const url = sim.info().masterUrl;
    const s = await login(url);
    expect((await jsonRpc(url, 'session.logout', [s])).error).toBeUndefined();
    expect((await jsonRpc(url, 'pool.get_all', [s])).error).toEqual({ code: 1, message: 'SESSION_INVALID', data: [s] });
  });
});

describe('fault bodies that name no home', () => {
  it('the control API refuses an empty or out-of-range home list with 400 and the reason, and cuts nothing', async () => {
    const sim = await start();
    const post = (body: unknown) =>
      fetch(`${sim.info().controlUrl}/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const refusals: [unknown, RegExp][] = [
      [{ kind: 'network-down', host: 'host-02', homes: [] }, /an empty home list: name at least one network home \(0\.\.1\)/],
      [{ kind: 'storage-down', host: 'host-02', homes: [] }, /an empty home list/],
      [{ kind: 'network-down', host: 'host-02', homes: [2] }, /home 2 out of range 0\.\.1: a host has 2 network homes/],
      [{ kind: 'storage-down', host: 'host-02', homes: [0, -1] }, /home -1 out of range 0\.\.1/],
      [{ kind: 'flap', host: 'host-02', path: 'network', periodMs: 1000, homes: [] }, /an empty home list/],
    ];
    for (const [body, reason] of refusals) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: string }).error, JSON.stringify(body)).toMatch(reason);
    }
    const h = sim.pool.host('host-02');
    expect([h.networkDown, h.storageDown, h.flaps]).toEqual([[false, false], [false, false], []]);
    expect(sim.pool.eventLog().filter((e) => e.kind === 'fault')).toEqual([]);
    const ok = await post({ kind: 'network-down', host: 'host-02', homes: [1] });
    expect(ok.status).toBe(200);
    expect(h.networkDown).toEqual([false, true]);
  });
});
