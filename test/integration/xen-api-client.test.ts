/**
 * The real `xen-api` client (Xen Orchestra's) against the simulator's real HTTP endpoints, over both
 * transports: login, every class, event.from, XAPI errors, HOST_IS_SLAVE followed to the master.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type Xapi } from 'xen-api';
import type { Simulator } from '../../simulator/simulator.ts';
import { SIM_CLASSES } from '../../simulator/build.ts';
import { PASSWORD, startTestSim } from '../helpers/sim.ts';
import { waitFor } from '../helpers/wait.ts';

let sim: Simulator;
const clients: Xapi[] = [];

beforeAll(async () => {
  sim = await startTestSim();
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.disconnect()));
  await sim?.stop();
});

function client(url: string, transport: 'json-rpc' | 'xml-rpc' | 'auto', extra: Record<string, unknown> = {}): Xapi {
  const c = createClient({ url, auth: { user: 'root', password: PASSWORD }, transport, watchEvents: false, callTimeout: 20_000, ...extra });
  clients.push(c);
  return c;
}

async function codeOf(p: Promise<unknown>): Promise<{ code: string; params: string[] }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code: string; params: string[] };
    return { code: err.code, params: err.params };
  }
  throw new Error('the call succeeded; an XAPI error was expected');
}

describe.each(['json-rpc', 'xml-rpc'] as const)('xen-api client over %s', (transport) => {
  let x: Xapi;
  beforeAll(async () => {
    x = client(sim.info().masterUrl, transport);
    await x.connect();
  });

  it('logs in and reads every class', async () => {
    expect(x.status).toBe('connected');
    const db = sim.pool.built.db;
    for (const cls of SIM_CLASSES) {
      const records = await x.call<Record<string, Record<string, unknown>>>(`${cls}.get_all_records`);
      expect(Object.keys(records).sort(), cls).toEqual(db.refs(cls).sort());
    }
    const hosts =
      await x.call<Record<string, { name_label: string; memory_overhead: unknown; ha_network_peers: string[] }>>('host.get_all_records');
    const h1 = Object.values(hosts).find((h) => h.name_label === 'host-01')!;
    // XAPI int64 travels as a number in JSON-RPC, as a string in XML-RPC.
    expect(typeof h1.memory_overhead).toBe(transport === 'json-rpc' ? 'number' : 'string');
    expect(h1.ha_network_peers).toHaveLength(3);
    const [vmRef] = await x.call<string[]>('VM.get_by_name_label', 'vm-0001');
    expect(await x.call('VM.get_name_label', vmRef)).toBe('vm-0001');
    const uuid = await x.call<string>('VM.get_uuid', vmRef);
    expect(await x.call('VM.get_by_uuid', uuid)).toBe(vmRef);
    expect(await x.call('pool.get_all')).toEqual([sim.pool.built.poolRef]);
  });

  it('gets XAPI errors with their codes and parameters', async () => {
    expect(await codeOf(x.call('VM.get_record', 'OpaqueRef:nope'))).toEqual({ code: 'HANDLE_INVALID', params: ['VM', 'OpaqueRef:nope'] });
    expect(await codeOf(x.call('VM.get_by_uuid', 'nope'))).toEqual({ code: 'UUID_INVALID', params: ['VM', 'nope'] });
    expect((await codeOf(x.call('VM.frobnicate'))).code).toBe('MESSAGE_METHOD_UNKNOWN');
    expect(await codeOf(x.call('VM.get_record'))).toEqual({
      code: 'MESSAGE_PARAMETER_COUNT_MISMATCH',
      params: ['VM.get_record', '1', '0'],
    });
    const running = sim.pool.built.db.all('VM').find(([, v]) => v.power_state === 'Running' && !v.is_control_domain)![0];
    expect(await codeOf(x.call('VM.start', running, false, false))).toEqual({
      code: 'VM_BAD_POWER_STATE',
      params: [running, 'halted', 'running'],
    });
    const poolRef = sim.pool.built.poolRef;
    const key = `xenha-lock-${transport}`;
    await x.call('pool.add_to_other_config', poolRef, key, 'holder-1');
    expect(await codeOf(x.call('pool.add_to_other_config', poolRef, key, 'holder-2'))).toEqual({
      code: 'MAP_DUPLICATE_KEY',
      params: ['pool', 'other_config', poolRef, key],
    });
    await x.call('pool.remove_from_other_config', poolRef, key);
    await x.call('pool.add_to_other_config', poolRef, key, 'holder-2');
    expect((await x.call<Record<string, string>>('pool.get_other_config', poolRef))[key]).toBe('holder-2');
  });

  it('fails to log in with a wrong password', async () => {
    const bad = createClient({ url: sim.info().masterUrl, auth: { user: 'root', password: 'wrong' }, transport, watchEvents: false });
    clients.push(bad);
    expect((await codeOf(bad.connect())).code).toBe('SESSION_AUTHENTICATION_FAILED');
  });

  it('follows event.from: a long poll that wakes on change and honours its timeout', async () => {
    const poolRef = sim.pool.built.poolRef;
    const token = await x.call<string>('event.inject', 'pool', poolRef);
    const first = await x.call<{ events: { class: string; operation: string; ref: string }[]; token: string }>(
      'event.from',
      ['pool'],
      token,
      10.0,
    );
    expect(first.events.map((e) => [e.class, e.operation, e.ref])).toEqual([['pool', 'mod', poolRef]]);
    // Nothing changes: the call returns empty after its timeout (0.3 s here), with a token.
    const quiet = await x.call<{ events: unknown[]; token: string }>('event.from', ['pool'], first.token, 0.3);
    expect(quiet.events).toEqual([]);
    // A change wakes a waiting call long before its timeout.
    const started = Date.now();
    const waiting = x.call<{ events: { snapshot: { other_config: Record<string, string> } }[] }>('event.from', ['pool'], quiet.token, 30.0);
    setTimeout(() => void sim.pool.built.db.update('pool', poolRef, { other_config: { woke: transport } }), 100);
    const woke = await waiting;
    expect(woke.events[0]!.snapshot.other_config.woke).toBe(transport);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it("follows HOST_IS_SLAVE from a slave's second home to the master", async () => {
    const slave = sim.info().hosts.find((h) => !h.master)!;
    const s = client(slave.urls[1]!, transport);
    await s.connect();
    expect(s.status).toBe('connected');
    expect(Object.keys(await s.call<Record<string, unknown>>('host.get_all_records'))).toHaveLength(3);
  });
});

describe('xen-api client defaults', () => {
  it('auto transport settles on JSON-RPC and keeps xapi.objects current through event.from', async () => {
    const x = client(sim.info().masterUrl, 'auto', { watchEvents: ['VM', 'host'], debounce: 20 });
    await x.connect();
    await x.objectsFetched;
    expect(sim.shared.callCounts.get('event.from') ?? 0).toBeGreaterThan(0);
    const vmRef = sim.pool.built.db.all('VM').find(([, v]) => v.power_state === 'Running' && !v.is_control_domain)![0];
    expect(x.getObject<{ power_state: string }>(vmRef).power_state).toBe('Running');
    await x.call('VM.hard_shutdown', vmRef);
    await waitFor('the halted VM in the client cache', () => x.getObject<{ power_state: string }>(vmRef).power_state === 'Halted');
  });
});
