/**
 * The simulator answers as xapi does where a hostile client pokes: method names that are JavaScript
 * property names, XML-RPC bodies built to cost, sessions that outlive xapi's GC, fault bodies that
 * name no home. Units here; the HTTP endpoints in test/integration/simulator-hardening.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from '@commander-js/extra-typings';
import { SessionTable, XAPI_SESSION_POLICY } from '../../simulator/xapi/sessions.ts';
import { MAX_XML_DEPTH, parseXmlRpcCall, WireError } from '../../simulator/xapi/wire.ts';
import { listMethods, lookupMethod } from '../../simulator/xapi/methods.ts';
import { buildPool, NETWORK_HOMES, STORAGE_HOMES } from '../../simulator/build.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import { defaultTiming, SimulatedPool } from '../../simulator/pool.ts';
import { faultRequest } from '../../simulator/faults.ts';
import { intListArg } from '../../cli/args.ts';
import { registerFault, SIM_HOMES } from '../../cli/fault.ts';

const call = (inner: string) => `<?xml version="1.0"?><methodCall><methodName>m</methodName><params>${inner}</params></methodCall>`;
const param = (value: string) => call(`<param>${value}</param>`);

describe('method lookup never reaches JavaScript object properties', () => {
  const db = buildPool(generatePoolSpec({ hosts: 2, vms: 2, seed: 3 }), '127.0.0.1').db;

  it.each([
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    'valueOf',
    '__defineGetter__',
    'host.get_constructor',
    'host.get___proto__',
    'host.get_toString',
    'host.get_hasOwnProperty',
    'host.get_nosuchfield',
    'VM.get_',
    'host.__proto__',
    'constructor.get_all',
    'host.add_to_nosuchmap',
    'host.remove_from___proto__',
  ])('%s is not a method', (name) => {
    expect(lookupMethod(db, name)).toBeUndefined();
  });

  it('field getters exist for the fields a class has, task included (served empty)', () => {
    expect(lookupMethod(db, 'host.get_name_label')).toBeDefined();
    expect(lookupMethod(db, 'VM.get_power_state')).toBeDefined();
    expect(lookupMethod(db, 'task.get_status')).toBeDefined();
    expect(lookupMethod(db, 'pool.add_to_other_config')).toBeDefined();
    expect(lookupMethod(db, 'session.login_with_password')).toBeDefined();
  });

  it('system.listMethods names what dispatch answers, getters included, and nothing else', () => {
    const list = listMethods(db);
    expect(list).toEqual(expect.arrayContaining(['host.get_name_label', 'VM.get_power_state', 'task.get_status', 'session.local_logout']));
    expect(list.filter((m) => /constructor|__proto__|toString/.test(m))).toEqual([]);
    for (const m of list) expect(lookupMethod(db, m), m).toBeDefined();
  });
});

describe('XML-RPC parsing as xapi (xmlm) parses, within bounds', () => {
  it('decodes the XML entities and character references, and keeps CDATA as it is', () => {
    expect(parseXmlRpcCall(param('<value>x&#65;&#x42;&quot;&apos;&lt;&gt;&amp;</value>')).params).toEqual(['xAB"\'<>&']);
    expect(parseXmlRpcCall(param('<value><string><![CDATA[<&amp;>]]></string></value>')).params).toEqual(['<&amp;>']);
  });

  it('never expands a DOCTYPE entity, and refuses entities it does not know or a bare &', () => {
    const bomb = `<!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>${param('<value>&b;&b;&b;</value>')}`;
    expect(() => parseXmlRpcCall(bomb)).toThrow(/unknown entity &b;/);
    expect(() => parseXmlRpcCall(param('<value>&nbsp;</value>'))).toThrow(/unknown entity &nbsp;/);
    expect(() => parseXmlRpcCall(param('<value>a & b</value>'))).toThrow(/bare "&"/);
    expect(() => parseXmlRpcCall(param('<value>&#0;</value>'))).toThrow(WireError);
  });

  it('keeps a struct member named __proto__ as a member', () => {
    const [s] = parseXmlRpcCall(param('<value><struct><member><name>__proto__</name><value>p</value></member></struct></value>'))
      .params as [Record<string, unknown>];
    expect(Object.hasOwn(s, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(s, '__proto__')?.value).toBe('p');
    expect(Object.getPrototypeOf(s)).toBe(Object.prototype);
  });

  it(`refuses nesting deeper than ${MAX_XML_DEPTH} elements, and accepts what real calls nest`, () => {
    const nest = (levels: number) => {
      let v = '<value>x</value>';
      for (let i = 0; i < levels; i++) v = `<value><array><data>${v}</data></array></value>`;
      return param(v);
    };
    // methodCall, params, param, then 3 elements per level, then the innermost value
    expect(parseXmlRpcCall(nest(20)).params).toHaveLength(1);
    const deep = nest(Math.ceil(MAX_XML_DEPTH / 3) + 1);
    expect(() => parseXmlRpcCall(deep)).toThrow(/nested/);
    // A body that fills xapi's 300 KiB limit with nesting is refused at once.
    const huge = nest(15_000);
    const t = performance.now();
    expect(() => parseXmlRpcCall(huge)).toThrow(WireError);
    expect(performance.now() - t).toBeLessThan(2000);
  });
});

describe('sessions as xapi keeps them (SessionTable)', () => {
  function table(policy: Partial<typeof XAPI_SESSION_POLICY> = {}) {
    let t = 1_000_000;
    return { s: new SessionTable(() => t, policy), at: (v: number) => (t = v), now: () => t };
  }

  it("defaults to xapi's figures", () => {
    expect(new SessionTable(() => 0).policy).toEqual({
      idleTimeoutMs: 24 * 3600 * 1000,
      maxPerOriginator: 500,
      maxWithoutOriginator: 400,
      gcIntervalMs: 30_000,
      lastActiveRefreshMs: 600_000,
    });
  });

  it('a GC pass destroys a session idle for the timeout or more, not one idle a millisecond less', () => {
    const { s, at } = table({ idleTimeoutMs: 5000 });
    const a = s.create('root', 'o');
    at(1_000_000 + 4999);
    expect(s.gc()).toEqual([]);
    expect(s.check(a, 'H', true).ok).toBe(true);
    at(1_000_000 + 5000);
    expect(s.gc()).toEqual([a]);
    expect(s.check(a, 'H', true)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('passes run every gcIntervalMs only: a session outlives its timeout until the next pass', () => {
    const { s, at } = table({ idleTimeoutMs: 5000, gcIntervalMs: 3000 });
    const a = s.create('root', 'o');
    at(1_003_000);
    expect(s.maybeGc()).toEqual([]); // a pass, at age 3000
    at(1_005_999);
    expect(s.maybeGc()).toEqual([]); // no pass due: still there at age 5999
    expect(s.has(a)).toBe(true);
    at(1_006_000);
    expect(s.maybeGc()).toEqual([a]);
  });

  it('a call refreshes last_active only past the threshold, as session_check.ml does', () => {
    const { s, at } = table({ idleTimeoutMs: 10_000, lastActiveRefreshMs: 2000 });
    const a = s.create('root', 'o');
    at(1_002_000);
    s.check(a, 'H', true); // exactly at the threshold: not refreshed
    expect(s.get(a)?.lastActive).toBe(1_000_000);
    at(1_002_001);
    s.check(a, 'H', true);
    expect(s.get(a)?.lastActive).toBe(1_002_001);
  });

  it('keeps the most recently active sessions of an originator; the others go at the pass', () => {
    const { s, at } = table({ maxPerOriginator: 3, lastActiveRefreshMs: 0 });
    const refs = [1, 2, 3, 4].map((i) => {
      at(1_000_000 + i);
      return s.create('root', 'xo');
    });
    const other = s.create('root', 'someone-else');
    at(1_000_010);
    s.check(refs[0]!, 'H', true); // the oldest login is the most recently active now
    expect(s.size).toBe(5); // over the cap until a pass runs
    expect(s.gc()).toEqual([refs[1]]);
    expect([...refs, other].map((r) => s.has(r))).toEqual([true, false, true, true, true]);
  });

  it('caps root logins without an originator in their own group; among equals the older login goes', () => {
    const { s } = table({ maxWithoutOriginator: 2, maxPerOriginator: 10 });
    const [a, b, c] = [s.create('root', ''), s.create('root', ''), s.create('root', '')];
    const named = s.create('root', 'n');
    expect(s.gc()).toEqual([a]);
    expect([a, b, c, named].map((r) => s.has(r))).toEqual([false, true, true, true]);
  });

  it("keeps a host's local session out of the GC, valid on that host only; a pool session is the master's", () => {
    const { s, at } = table({ idleTimeoutMs: 1000, maxPerOriginator: 0, maxWithoutOriginator: 0 });
    const local = s.create('root', '', 'HOST-2');
    const pooled = s.create('root', 'o');
    expect(s.check(pooled, 'HOST-2', false)).toEqual({ ok: false, reason: 'not-on-this-host' });
    at(1_000_000 + 10_000);
    expect(s.gc()).toEqual([pooled]);
    expect(s.check(local, 'HOST-2', false).ok).toBe(true);
    expect(s.check(local, 'HOST-1', true)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('refuses a policy that is not one', () => {
    expect(() => new SessionTable(() => 0, { idleTimeoutMs: -1 })).toThrow(/idleTimeoutMs/);
    expect(() => new SessionTable(() => 0, { gcIntervalMs: 0 })).toThrow(/gcIntervalMs/);
  });
});

describe('home lists: an empty one is refused, never "every home"', () => {
  const homes = intListArg(0, 1, 'home');

  it('the CLI parser takes a non-empty list of homes in range', () => {
    expect(homes('0')).toEqual([0]);
    expect(homes('1, 0')).toEqual([1, 0]);
    expect(() => homes(',,,')).toThrow(/an empty home list/);
    expect(() => homes('')).toThrow(/an empty home list/);
    expect(() => homes(' ')).toThrow(/an empty home list/);
    expect(() => homes('0,,1')).toThrow(/an empty home in "0,,1"/);
    expect(() => homes('0,')).toThrow(/an empty home/);
    expect(() => homes('5')).toThrow(/home 5 out of range 0..1/);
    expect(() => homes('-1')).toThrow(/home -1 out of range 0..1/);
    expect(() => homes('x')).toThrow(/expected an integer home, got "x"/);
  });

  it("the CLI's home count is the simulator's", () => {
    expect(SIM_HOMES).toBe(NETWORK_HOMES);
    expect(SIM_HOMES).toBe(STORAGE_HOMES);
  });

  it.each([',,,', '', '0,,1', '2'])('xenha fault network-down host-02 --homes %j stops before any request', async (list) => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerFault(program);
    program.commands.forEach((c) => c.exitOverride().commands.forEach((cc) => cc.exitOverride().configureOutput({ writeErr: () => {} })));
    const e = await program
      .parseAsync(['fault', 'network-down', 'host-02', '--homes', list, '--control', 'http://127.0.0.1:1'], { from: 'user' })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(e).toBeInstanceOf(CommanderError);
    expect((e as CommanderError).code).toBe('commander.invalidArgument');
    expect((e as CommanderError).message).toMatch(list === '2' ? /home 2 out of range 0..1/ : /an empty home/);
  });

  it('the fault schema (control API and CLI) refuses the same lists, with the valid range', () => {
    const issue = (body: unknown) => {
      const r = faultRequest.safeParse(body);
      return r.success ? null : r.error.issues.map((i) => i.message).join('; ');
    };
    expect(issue({ kind: 'network-down', host: 'h', homes: [] })).toMatch(/an empty home list: name at least one network home \(0..1\)/);
    expect(issue({ kind: 'storage-down', host: 'h', homes: [2] })).toMatch(/home 2 out of range 0..1: a host has 2 storage homes/);
    expect(issue({ kind: 'network-down', host: 'h', homes: [-1, 0] })).toMatch(/home -1 out of range/);
    expect(issue({ kind: 'flap', host: 'h', path: 'storage', periodMs: 100, homes: [] })).toMatch(/empty home list/);
    expect(issue({ kind: 'flap', host: 'h', path: 'storage', periodMs: 100, homes: [7] })).toMatch(
      /home 7 out of range 0..1: a host has 2 storage/,
    );
    expect(issue({ kind: 'network-down', host: 'h', homes: [1, 0, 1] })).toBeNull();
    expect(issue({ kind: 'network-down', host: 'h' })).toBeNull();
  });
});

describe("the pool's own fault calls", () => {
  let pool: SimulatedPool | undefined;
  afterEach(() => pool?.close());

  it('refuse an empty home list instead of cutting every home', () => {
    pool = new SimulatedPool({
      spec: generatePoolSpec({ hosts: 2, vms: 2, seed: 5 }),
      stateDir: mkdtempSync(join(tmpdir(), 'xenha-hard-')),
      addressBase: '127.0.0.1',
      now: () => 1_000_000,
      timing: { ...defaultTiming(30, true), tickMs: 100, statefileIntervalMs: 1000, bootMs: 5000, autoElectMasterMs: null },
    });
    const h = pool.host('host-02');
    expect(() => pool!.pathDown(h, 'network', [])).toThrow(/an empty home list/);
    expect(() => pool!.flap(h, 'storage', 1000, [])).toThrow(/an empty home list/);
    expect(h.networkDown).toEqual([false, false]);
    expect(h.flaps).toEqual([]);
    pool.pathDown(h, 'network');
    expect(h.networkDown).toEqual([true, true]);
  });
});
