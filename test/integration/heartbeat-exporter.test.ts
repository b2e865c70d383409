/**
 * The exporter end to end on a pool without HA, with xenha's own heartbeat: the simulator runs the real
 * xenha-heartbeat daemon (Python) for each host, on that host's loopback management addresses, writing
 * its slot in the shared heartbeat file that the exporter's storage-statefile probe reads, with its paths
 * cut by the pool's faults. The pool then has a storage heartbeat (two-path verdicts) though HA is off:
 * a network-only cut (one home or all) or a storage-only cut is never dead, checked at every sampling
 * round for three times dead-after; a crash (the host and its daemon gone) reads dead within
 * dead-after + 2 s. Real time throughout (the daemons run on the wall clock); every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostState } from '../../core/classify/state-machine.ts';
import { applyFault, type FaultRequest } from '../../simulator/faults.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import { healthyOnEvidence, metricValue, startLoop, type Loop } from '../helpers/exporter.ts';
import { waitFor } from '../helpers/wait.ts';

const DEAD_AFTER_MS = 1000;

let loop: Loop;
const sampler = () => loop.exporter.samplers[0]!;
const uuidOf = (name: string) => loop.sim.pool.host(name).built.uuid;

beforeAll(async () => {
  loop = await startLoop({
    spec: { ...generatePoolSpec({ hosts: 3, vms: 6, seed: 21 }), haEnabled: false },
    addressBase: '127.0.52.1',
    heartbeat: { intervalMs: 100, peerWindowMs: 400 },
  });
}, 30_000);

afterAll(async () => {
  await loop?.stop();
});

/** Holds the host in `state` for three times dead-after, checked at every sampling round, never dead. */
async function heldWithoutDeath(host: string, state: HostState): Promise<void> {
  await waitFor(`${host} ${state}`, () => loop.state(host) === state, { timeoutMs: 10_000 });
  const from = sampler().counters.rounds;
  const rounds = Math.ceil((3 * DEAD_AFTER_MS) / sampler().config.timing.sampleInterval);
  let seen = from;
  let checked = 0;
  await waitFor(
    `${rounds} rounds of ${state}`,
    () => {
      const now = sampler().counters.rounds;
      if (now !== seen) {
        seen = now;
        checked++;
        expect(loop.state(host)).toBe(state);
      }
      return now - from >= rounds;
    },
    { timeoutMs: 20_000, intervalMs: 10 },
  );
  expect(checked).toBeGreaterThan(rounds / 2);
  expect(loop.history(host)).not.toContain('dead');
}

async function healAndWait(host: string): Promise<void> {
  applyFault(loop.sim.pool, { kind: 'heal', host });
  await waitFor(`${host} healthy again`, () => loop.healthy(host), { timeoutMs: 15_000 });
}

describe('an HA-off pool with xenha-heartbeat run by the simulator', () => {
  it('has a storage heartbeat: every host healthy on both paths, the metric and the preflight check say so', async () => {
    const names = loop.sim.pool.hosts.map((h) => h.built.name);
    // Until the daemons have written the file, XAPI's word alone makes the hosts healthy: wait for both.
    await waitFor(
      'the heartbeat file read and every host healthy on both paths',
      () => sampler().state.storageHeartbeat?.ok === true && names.every((n) => healthyOnEvidence(sampler(), uuidOf(n))),
      { timeoutMs: 15_000 },
    );
    expect(sampler().state.storageHeartbeat).toMatchObject({ ok: true, reason: expect.stringMatching(/^xenha-heartbeat's file read/) });
    const m = await loop.metrics();
    expect(metricValue(m, 'xenha_pool_ha_enabled', { pool: 'sim' })).toBe(0);
    expect(metricValue(m, 'xenha_pool_storage_heartbeat', { pool: 'sim' })).toBe(1);
    expect(metricValue(m, 'xenha_preflight_check', { pool: 'sim', check: 'storage_heartbeat' })).toBe(1);
    // Every host writes, hears every other on both homes, with the simulator's one pool secret.
    await waitFor(
      "xenha-heartbeat's three checks ok",
      () =>
        ['xenha_heartbeat_written_all_hosts', 'xenha_heartbeat_heard_all_homes', 'xenha_heartbeat_secret_consistent'].every(
          (check) => sampler().state.preflight.find((p) => p.check === check)?.ok === true,
        ),
      { timeoutMs: 5000 },
    );
  });

  const oneSided: { what: string; fault: FaultRequest; state: HostState }[] = [
    { what: 'a network cut on one home', fault: { kind: 'network-down', host: 'host-02', homes: [1] }, state: 'healthy' },
    { what: 'a network cut on every home', fault: { kind: 'network-down', host: 'host-02' }, state: 'network_isolated' },
    {
      what: 'a storage-only cut (its daemon cannot write, its UDP heartbeats go on)',
      fault: { kind: 'storage-down', host: 'host-03' },
      state: 'storage_lost',
    },
  ];
  for (const c of oneSided) {
    it(`${c.what} reads ${c.state}, never dead`, async () => {
      const host = 'host' in c.fault && c.fault.host !== undefined ? c.fault.host : 'none';
      applyFault(loop.sim.pool, c.fault);
      try {
        await heldWithoutDeath(host, c.state);
      } finally {
        await healAndWait(host);
      }
    });
  }

  it('a crash (the host and its daemon gone) reads dead within dead-after + 2 s', async () => {
    const crashedAt = Date.now();
    applyFault(loop.sim.pool, { kind: 'host-crash', host: 'host-03' });
    await waitFor('host-03 dead', () => loop.state('host-03') === 'dead', { timeoutMs: DEAD_AFTER_MS + 2000, intervalMs: 20 });
    expect(Date.now() - crashedAt).toBeLessThanOrEqual(DEAD_AFTER_MS + 2000);
    expect(sampler().state.memory!.hosts[uuidOf('host-03')]!.rule).toBe('dead-after');
    expect(loop.sim.state().runtime.find((r) => r.name === 'host-03')?.heartbeatDaemon?.running).toBe(false);
    // The file is no longer written by every host, and the check names the one.
    const written = sampler().state.preflight.find((p) => p.check === 'xenha_heartbeat_written_all_hosts');
    expect(written).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^not writing xenha-heartbeat's file: host-03 \(stalled for/),
    });
  });
});
