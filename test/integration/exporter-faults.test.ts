/**
 * The exporter against the simulator, for every fault kind: the state sequence and the metrics. The
 * exporter runs in-process with the real xen-api client over the simulator's real XAPI endpoints and
 * the real statefile. Where a test claims timing or that something never happens, the simulator and
 * the sampler share an injected clock and the claim is checked at every counted round; elsewhere the
 * loop runs on its own timers and the test polls with a deadline.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { exporterApp } from '../../exporter/server.ts';
import { applyFault } from '../../simulator/faults.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import { metricValue, roundsUntil, startLoop, startSteppedLoop, type Loop, type SteppedLoop } from '../helpers/exporter.ts';
import { waitFor } from '../helpers/wait.ts';

const HOSTS = ['host-01', 'host-02', 'host-03'];
let loop: Loop | SteppedLoop | undefined;
afterEach(async () => {
  await loop?.stop();
  loop = undefined;
});

async function steppedReady(): Promise<SteppedLoop> {
  const l = await startSteppedLoop();
  loop = l;
  await roundsUntil(l, 'every host healthy on the evidence', () => HOSTS.every((h) => l.healthy(h)));
  return l;
}

/** Rounds that cover `ms` of the injected clock (at the fast config's 100 ms interval). */
const roundsFor = (l: SteppedLoop, ms: number) => Math.ceil(ms / l.sampler.config.timing.sampleInterval);

async function ready(l: Loop): Promise<void> {
  await waitFor('every host healthy on the evidence', () => HOSTS.every((h) => l.healthy(h)));
}

/** `expected` appears in order within `actual` (other states may come between). */
function inOrder(actual: string[], expected: string[]): boolean {
  let i = 0;
  for (const s of actual) if (s === expected[i]) i++;
  return i === expected.length;
}

describe('exporter against the simulator, fault by fault', () => {
  it('network cut on both homes → network_isolated, the network false positive averted, never dead over 3× dead-after', async () => {
    const l = await steppedReady();
    applyFault(l.sim.pool, { kind: 'network-down', host: 'host-02' });
    const notDead = () => expect(l.state('host-02')).not.toBe('dead');
    await roundsUntil(l, 'host-02 network_isolated', () => l.state('host-02') === 'network_isolated', notDead);
    // Held for three times dead-after, checked at every round: still network_isolated, never dead.
    const held = roundsFor(l, 3 * l.sampler.policy.deadAfterMs);
    for (let n = 0; n < held; n++) {
      await l.round();
      expect(l.state('host-02')).toBe('network_isolated');
    }
    expect(l.history('host-02')).not.toContain('dead');
    expect(l.state('host-01')).toBe('healthy');
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_host_state', { pool: 'sim', host: 'host-02', state: 'network_isolated' })).toBe(1);
    expect(metricValue(m, 'xenha_host_state', { pool: 'sim', host: 'host-02', state: 'healthy' })).toBe(0);
    expect(metricValue(m, 'xenha_false_positives_averted_total', { pool: 'sim', path: 'network' })).toBe(1);
    expect(metricValue(m, 'xenha_host_path_up', { pool: 'sim', host: 'host-02', path: 'network', probe: 'network-tcp', home: '0' })).toBe(
      0,
    );
    expect(
      metricValue(m, 'xenha_host_path_up', { pool: 'sim', host: 'host-02', path: 'storage', probe: 'storage-statefile', home: '0' }),
    ).toBe(1);
  });

  it('storage cut → storage_lost and the storage false positive averted', async () => {
    loop = await startLoop();
    await ready(loop);
    applyFault(loop.sim.pool, { kind: 'storage-down', host: 'host-03' });
    const l = loop;
    await waitFor('host-03 storage_lost', () => l.state('host-03') === 'storage_lost');
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_false_positives_averted_total', { pool: 'sim', path: 'storage' })).toBeGreaterThanOrEqual(1);
    // The slot that stalled decided; xapi's ha_statefiles still lists the statefile until xhad drops the host (3T + 18 s later).
    expect(
      metricValue(m, 'xenha_host_path_up', { pool: 'sim', host: 'host-03', path: 'storage', probe: 'storage-statefile', home: '0' }),
    ).toBe(0);
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
    expect(
      metricValue(m, 'xenha_host_path_up', { pool: 'sim', host: 'host-02', path: 'storage', probe: 'storage-xapi', home: 'leg-1' }),
    ).toBe(0);
  });

  it('crash → suspect, then dead no sooner than dead-after after the crash; heal → healthy again', async () => {
    const l = await steppedReady();
    const crashedAt = l.now();
    applyFault(l.sim.pool, { kind: 'host-crash', host: 'host-03' });
    const deadAfter = l.sampler.policy.deadAfterMs;
    await roundsUntil(
      l,
      'host-03 dead',
      () => l.state('host-03') === 'dead',
      () => {
        if (l.state('host-03') === 'dead') expect(l.now() - crashedAt).toBeGreaterThanOrEqual(deadAfter);
      },
    );
    expect(inOrder(l.history('host-03'), ['healthy', 'suspect', 'dead'])).toBe(true);
    // Its slot stalls before its peers' word on its heartbeat runs out: storage_lost may show for a
    // moment on the way (docs/classification.md), network_isolated never.
    expect(l.history('host-03')).not.toContain('network_isolated');
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_host_state', { pool: 'sim', host: 'host-03', state: 'dead' })).toBe(1);
    expect(metricValue(m, 'xenha_host_state_transitions_total', { pool: 'sim', host: 'host-03' })).toBe(l.history('host-03').length - 1);
    applyFault(l.sim.pool, { kind: 'heal', host: 'host-03' });
    await roundsUntil(l, 'host-03 healthy', () => l.state('host-03') === 'healthy');
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

  it('observer isolation → the pool flagged, no host dead over 3× dead-after, hosts stay healthy', async () => {
    const l = await steppedReady();
    applyFault(l.sim.pool, { kind: 'observer-isolation' });
    const allHealthy = () => {
      for (const h of HOSTS) expect(l.state(h)).toBe('healthy');
    };
    await roundsUntil(l, 'observer isolated', () => l.sampler.state.memory?.observerIsolated === true, allHealthy);
    const held = roundsFor(l, 3 * l.sampler.policy.deadAfterMs);
    for (let n = 0; n < held; n++) {
      await l.round();
      allHealthy();
      expect(l.sampler.state.memory?.observerIsolated).toBe(true);
    }
    for (const h of HOSTS) expect(l.history(h)).toEqual(['healthy']);
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_pool_observer_isolated', { pool: 'sim' })).toBe(1);
    await waitFor('the XAPI session given up', () => l.sampler.connection.status !== 'connected');
    expect(metricValue(await l.metrics(), 'xenha_xapi_up', { pool: 'sim' })).toBe(0);
  });

  it('slow XAPI (answers slower than the XAPI timeout) → calls time out, /metrics still answers at once, hosts stay healthy', async () => {
    const l = await steppedReady();
    const server = createServer(exporterApp([l.sampler], l.registry, l.now));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
      const latencyMs = 3000;
      expect(latencyMs).toBeGreaterThan(l.sampler.config.timing.xapiTimeout);
      const errors = () => [...l.sampler.connection.errors.values()].reduce((a, b) => a + b, 0);
      const before = errors();
      applyFault(l.sim.pool, { kind: 'slow-xapi', latencyMs });
      // Until a call has actually timed out (real time: the XAPI timeout), every round: all healthy.
      await roundsUntil(
        l,
        'an XAPI call timed out',
        () => errors() > before,
        () => {
          for (const h of HOSTS) expect(l.state(h)).toBe('healthy');
        },
        { maxRounds: 5000, timeoutMs: 20_000 },
      );
      const t = performance.now();
      const m = await (await fetch(url)).text();
      expect(performance.now() - t).toBeLessThan(1000);
      for (const h of HOSTS) expect(metricValue(m, 'xenha_host_state', { pool: 'sim', host: h, state: 'healthy' })).toBe(1);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
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
    await waitFor(
      'ha_statefiles seen empty through XAPI',
      () => s.state.snapshot?.hosts.find((h) => h.name === 'host-02')?.haStatefiles.length === 0,
    );
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
    await waitFor(
      'the exporter on the new master',
      async () => metricValue(await l.metrics(), 'xenha_pool_master_info', { pool: 'sim', host: next }) === 1,
      { timeoutMs: 20_000 },
    );
    await waitFor('old master dead', () => l.state(old) === 'dead', { timeoutMs: 20_000 });
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_xapi_up', { pool: 'sim' })).toBe(1);
    expect(metricValue(m, 'xenha_xapi_connects_total', { pool: 'sim' })).toBeGreaterThanOrEqual(2);
    expect(l.state(next)).toBe('healthy');
  });
});
