/**
 * The exporter against the simulator, for every fault kind: the state sequence and the metrics. The
 * exporter runs in-process with its real HTTP server, the real xen-api client over the simulator's
 * real XAPI endpoints, the real statefile.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { applyFault } from '../../simulator/faults.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import { metricValue, startLoop, type Loop } from '../helpers/exporter.ts';
import { waitFor } from '../helpers/wait.ts';

let loop: Loop | undefined;
afterEach(async () => {
  await loop?.stop();
  loop = undefined;
});

async function ready(l: Loop): Promise<void> {
  await waitFor('every host healthy', () => ['host-01', 'host-02', 'host-03'].every((h) => l.state(h) === 'healthy'));
}

/** `expected` appears in order within `actual` (other states may come between). */
function inOrder(actual: string[], expected: string[]): boolean {
  let i = 0;
  for (const s of actual) if (s === expected[i]) i++;
  return i === expected.length;
}

describe('exporter against the simulator, fault by fault', () => {
  it('network cut on both homes → network_isolated, the network false positive averted, never dead', async () => {
    loop = await startLoop();
    await ready(loop);
    applyFault(loop.sim.pool, { kind: 'network-down', host: 'host-02' });
    const l = loop;
    await waitFor('host-02 network_isolated', () => l.state('host-02') === 'network_isolated');
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_host_state', { pool: 'sim', host: 'host-02', state: 'network_isolated' })).toBe(1);
    expect(metricValue(m, 'xenha_host_state', { pool: 'sim', host: 'host-02', state: 'healthy' })).toBe(0);
    expect(metricValue(m, 'xenha_false_positives_averted_total', { pool: 'sim', path: 'network' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'xenha_host_path_up', { pool: 'sim', host: 'host-02', probe: 'network-tcp', home: '0' })).toBe(0);
    expect(metricValue(m, 'xenha_host_path_up', { pool: 'sim', host: 'host-02', probe: 'storage-statefile', home: '0' })).toBe(1);
    // Held for longer than dead-after: still not dead.
    await new Promise((r) => setTimeout(r, 1500));
    expect(l.state('host-02')).toBe('network_isolated');
    expect(l.history('host-02')).not.toContain('dead');
    expect(l.state('host-01')).toBe('healthy');
  });

  it('storage cut → storage_lost and the storage false positive averted', async () => {
    loop = await startLoop();
    await ready(loop);
    applyFault(loop.sim.pool, { kind: 'storage-down', host: 'host-03' });
    const l = loop;
    await waitFor('host-03 storage_lost', () => l.state('host-03') === 'storage_lost');
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_false_positives_averted_total', { pool: 'sim', path: 'storage' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(m, 'xenha_host_path_up', { pool: 'sim', host: 'host-03', probe: 'storage-xapi', home: 'statefile' })).toBe(0);
  });

  it('one home of each path lost → degraded', async () => {
    loop = await startLoop();
    await ready(loop);
    applyFault(loop.sim.pool, { kind: 'network-down', host: 'host-02', homes: [1] });
    const l = loop;
    await waitFor('host-02 degraded', () => l.state('host-02') === 'degraded');
    applyFault(loop.sim.pool, { kind: 'heal' });
    await waitFor('host-02 healthy', () => l.state('host-02') === 'healthy');
    applyFault(loop.sim.pool, { kind: 'storage-down', host: 'host-02', homes: [0] });
    await waitFor('host-02 degraded by a multipath leg', () => l.state('host-02') === 'degraded');
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_host_path_up', { pool: 'sim', host: 'host-02', probe: 'storage-xapi', home: 'leg-1' })).toBe(0);
  });

  it('crash → suspect, then dead after dead-after; heal → healthy again', async () => {
    loop = await startLoop();
    await ready(loop);
    applyFault(loop.sim.pool, { kind: 'host-crash', host: 'host-03' });
    const l = loop;
    await waitFor('host-03 dead', () => l.state('host-03') === 'dead');
    expect(inOrder(l.history('host-03'), ['healthy', 'suspect', 'dead'])).toBe(true);
    expect(l.history('host-03')).not.toContain('network_isolated');
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_host_state', { pool: 'sim', host: 'host-03', state: 'dead' })).toBe(1);
    expect(metricValue(m, 'xenha_host_state_transitions_total', { pool: 'sim', host: 'host-03' })).toBeGreaterThanOrEqual(2);
    applyFault(loop.sim.pool, { kind: 'heal', host: 'host-03' });
    await waitFor('host-03 healthy', () => l.state('host-03') === 'healthy');
  });

  it('flapping path → flapping', async () => {
    loop = await startLoop();
    await ready(loop);
    applyFault(loop.sim.pool, { kind: 'flap', host: 'host-02', path: 'network', periodMs: 500 });
    const l = loop;
    await waitFor('host-02 flapping', () => l.state('host-02') === 'flapping');
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_host_path_flaps_total', { pool: 'sim', host: 'host-02', path: 'network' })).toBeGreaterThanOrEqual(4);
  });

  it('observer isolation → the pool flagged, no host dead, hosts stay healthy', async () => {
    loop = await startLoop();
    await ready(loop);
    applyFault(loop.sim.pool, { kind: 'observer-isolation' });
    const l = loop;
    await waitFor('observer isolated', async () => metricValue(await l.metrics(), 'xenha_pool_observer_isolated', { pool: 'sim' }) === 1);
    await new Promise((r) => setTimeout(r, 1500)); // longer than dead-after
    for (const h of ['host-01', 'host-02', 'host-03']) {
      expect(l.history(h)).not.toContain('dead');
      expect(l.state(h)).toBe('healthy');
    }
    expect(metricValue(await l.metrics(), 'xenha_xapi_up', { pool: 'sim' })).toBe(0);
  });

  it('slow XAPI → /metrics still answers at once and the hosts stay healthy', async () => {
    loop = await startLoop();
    await ready(loop);
    applyFault(loop.sim.pool, { kind: 'slow-xapi', latencyMs: 3000 });
    const l = loop;
    const t = performance.now();
    const m = await l.metrics();
    expect(performance.now() - t).toBeLessThan(1000);
    expect(metricValue(m, 'xenha_host_state', { pool: 'sim', host: 'host-01', state: 'healthy' })).toBe(1);
    await new Promise((r) => setTimeout(r, 500));
    expect(['host-01', 'host-02', 'host-03'].map((h) => l.state(h))).toEqual(['healthy', 'healthy', 'healthy']);
  });

  it('a lost session (XAPI restarted: every session invalid) → the exporter logs in again and keeps following events', async () => {
    loop = await startLoop();
    await ready(loop);
    const l = loop;
    const s = l.exporter.samplers[0]!;
    const logins = s.connection.calls.get('session.login_with_password') ?? 0;
    l.sim.shared.sessions.clear();
    applyFault(l.sim.pool, { kind: 'storage-down', host: 'host-02' }); // changes host records: events must flow
    await waitFor('a new login', () => (s.connection.calls.get('session.login_with_password') ?? 0) > logins, { timeoutMs: 20_000 });
    await waitFor('host-02 storage_lost', () => l.state('host-02') === 'storage_lost');
    await waitFor('ha_statefiles seen empty through XAPI', () => s.state.snapshot?.hosts.find((h) => h.name === 'host-02')?.haStatefiles.length === 0);
    expect(metricValue(await l.metrics(), 'xenha_xapi_up', { pool: 'sim' })).toBe(1);
  });

  it('master crash → the exporter finds the new master after the hand-over; the old master goes dead', async () => {
    loop = await startLoop({ timing: { autoElectMasterMs: 800 }, spec: generatePoolSpec({ hosts: 3, vms: 6, seed: 21 }) });
    await ready(loop);
    const l = loop;
    const old = l.sim.pool.master.built.name;
    applyFault(l.sim.pool, { kind: 'master-crash' });
    await waitFor('a new master', () => l.sim.pool.master.built.name !== old);
    const next = l.sim.pool.master.built.name;
    await waitFor('the exporter on the new master', async () => metricValue(await l.metrics(), 'xenha_pool_master_info', { pool: 'sim', host: next }) === 1, { timeoutMs: 20_000 });
    await waitFor('old master dead', () => l.state(old) === 'dead', { timeoutMs: 20_000 });
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_xapi_up', { pool: 'sim' })).toBe(1);
    expect(metricValue(m, 'xenha_xapi_connects_total', { pool: 'sim' })).toBeGreaterThanOrEqual(2);
    expect(l.state(next)).toBe('healthy');
  });
});
