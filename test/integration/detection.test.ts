/**
 * Detection as real pools behave, against the simulator on an injected clock: dead counted from the
 * last evidence of life; the dead-after in force taken from the pool's HA timeout and following its
 * changes; pools without a storage heartbeat (HA off, or the statefile not read) never calling a host
 * dead, and saying so (metric, preflight, state API). Claims that something never happens are checked
 * at every counted round.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { applyFault } from '../../simulator/faults.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import { FAST_LIFE_WINDOW_MS, metricValue, roundsUntil, startSteppedLoop, type SteppedLoop } from '../helpers/exporter.ts';

const HOSTS = ['host-01', 'host-02', 'host-03'];
/** The fast test timing without deadAfter: the pool's own HA timeout is in force. */
const NO_DEAD_AFTER = {
  sampleInterval: '100ms',
  probeTimeout: '80ms',
  xapiTimeout: '2s',
  flapWindow: '3s',
  flapThreshold: 6,
  confirmSamples: 2,
  capacityInterval: '500ms',
};

let loop: SteppedLoop | undefined;
afterEach(async () => {
  await loop?.stop();
  loop = undefined;
});

async function ready(opts: Parameters<typeof startSteppedLoop>[0] = {}): Promise<SteppedLoop> {
  const l = await startSteppedLoop(opts);
  loop = l;
  await roundsUntil(l, 'every host healthy on the evidence', () => HOSTS.every((h) => l.healthy(h)));
  return l;
}

const uuidOf = (l: SteppedLoop, name: string) => l.sim.pool.host(name).built.uuid;

describe('dead is counted from the last evidence of life', () => {
  it('a crash reads dead no sooner than dead-after after the last life shown, and within the confirmation after it', async () => {
    const l = await ready();
    const interval = l.sampler.config.timing.sampleInterval;
    const confirm = l.sampler.config.timing.confirmSamples;
    const crashedAt = l.now();
    applyFault(l.sim.pool, { kind: 'host-crash', host: 'host-03' });
    // Whatever XAPI's mirror says meanwhile (xapi's live lags the crash by T + 38 s: set aside as
    // stale), dead is decided on the monitor's connects and the statefile.
    const deadAfter = l.sampler.policy.deadAfterMs;
    let deadAt: number | null = null;
    await roundsUntil(
      l,
      'host-03 dead',
      () => l.state('host-03') === 'dead',
      () => {
        if (l.state('host-03') !== 'dead' || deadAt !== null) return;
        deadAt = l.now();
        const mem = l.sampler.state.memory!.hosts[uuidOf(l, 'host-03')]!;
        const lastLife = Math.max(mem.lastLife.network ?? -Infinity, mem.lastLife.storage ?? -Infinity);
        // Dead is counted from the latest the life last seen could have lasted unseen: one round for the
        // monitor's connects, a slot's write interval or a heartbeat's for the statefile's word.
        const window = Math.max(interval, FAST_LIFE_WINDOW_MS);
        // The last life the exporter saw came from before the crash (no sample after it shows any).
        // The last life the exporter saw came from before the crash: no sample after it shows any. (A
        // peer's word is dated from when the probe saw its slot change, up to one round after the
        // write: life may read up to one round newer than it was, never older.)
        expect(lastLife).toBeLessThanOrEqual(crashedAt + interval);
        expect(deadAt - lastLife).toBeGreaterThanOrEqual(deadAfter);
        expect(deadAt - lastLife).toBeLessThanOrEqual(deadAfter + window + interval * (confirm + 1));
      },
    );
    // From the crash itself: the slot's last write came at most one statefile interval before it.
    expect(deadAt! - crashedAt).toBeLessThanOrEqual(deadAfter + Math.max(interval, FAST_LIFE_WINDOW_MS) + interval * (confirm + 1));
    const m = await l.metrics();
    // The heartbeat age the metric exports is the age dead was counted from.
    const age = metricValue(m, 'xenha_host_heartbeat_age_seconds', { pool: 'sim', host: 'host-03', path: 'network' })!;
    expect(age).toBeGreaterThanOrEqual(deadAfter / 1000);
  });
});

describe('dead-after in force', () => {
  it("is the pool's HA timeout when the config names none, and follows the pool's configuration", async () => {
    const spec = { ...generatePoolSpec({ hosts: 3, vms: 3, seed: 7 }), haTimeout: 12 };
    const l = await ready({ spec, pool: { timing: NO_DEAD_AFTER } });
    expect(l.sampler.state.deadAfter).toEqual({
      ms: 12_000,
      source: 'pool-ha-timeout',
      reason: expect.stringContaining('T = 12 s (ha_configuration.timeout)'),
    });
    expect(metricValue(await l.metrics(), 'xenha_pool_dead_after_seconds', { pool: 'sim' })).toBe(12);
    const db = l.sim.pool.built.db;
    const poolRef = l.sim.pool.built.poolRef;
    // The pool's configuration changes (xapi's order: ha_configuration.timeout, then other_config.default_ha_timeout).
    db.update('pool', poolRef, { ha_configuration: { timeout: '20' } });
    await roundsUntil(l, 'dead-after 20 s', () => l.sampler.state.deadAfter.ms === 20_000);
    db.update('pool', poolRef, { ha_configuration: {}, other_config: { default_ha_timeout: '15' } });
    await roundsUntil(l, 'dead-after 15 s from other_config', () => l.sampler.state.deadAfter.ms === 15_000);
    expect(l.sampler.state.deadAfter.reason).toContain('other_config.default_ha_timeout');
    expect(l.sampler.policy.deadAfterMs).toBe(15_000);
    db.update('pool', poolRef, { other_config: {} });
    await roundsUntil(l, "xapi's default T (60 s)", () => l.sampler.state.deadAfter.ms === 60_000);
    // The state API says which value is in force and why.
    const state = l.sampler.state;
    expect(state.deadAfter).toMatchObject({ source: 'pool-ha-timeout', reason: expect.stringContaining("xapi's default") });
  });

  it('an explicit deadAfter in the config wins over the pool', async () => {
    const l = await ready({ spec: { ...generatePoolSpec({ hosts: 3, vms: 3, seed: 7 }), haTimeout: 12 } });
    expect(l.sampler.state.deadAfter).toEqual({ ms: 1000, source: 'config', reason: 'deadAfter 1 s set in the config' });
    expect(l.sampler.policy.deadAfterMs).toBe(1000);
  });
});

describe('pools without a storage heartbeat never call a host dead', () => {
  async function crashNeverDead(l: SteppedLoop, rule: RegExp): Promise<void> {
    applyFault(l.sim.pool, { kind: 'host-crash', host: 'host-03' });
    const neverDead = () => expect(l.state('host-03')).not.toBe('dead');
    await roundsUntil(l, 'host-03 suspect', () => l.state('host-03') === 'suspect', neverDead);
    // Held for three times dead-after, every round checked.
    const rounds = Math.ceil((3 * l.sampler.policy.deadAfterMs) / l.sampler.config.timing.sampleInterval);
    for (let n = 0; n < rounds; n++) {
      await l.round();
      neverDead();
    }
    expect(l.history('host-03')).not.toContain('dead');
    const mem = l.sampler.state.memory!.hosts[uuidOf(l, 'host-03')]!;
    expect(mem.rule, JSON.stringify(mem.lastSamples)).toMatch(rule);
  }

  it('HA off: no statefile heartbeat; the metric, the preflight check and the dead-after say so', async () => {
    const l = await ready({
      spec: { ...generatePoolSpec({ hosts: 3, vms: 3, seed: 7 }), haEnabled: false },
      pool: { timing: NO_DEAD_AFTER },
    });
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_pool_storage_heartbeat', { pool: 'sim' })).toBe(0);
    expect(metricValue(m, 'xenha_preflight_check', { pool: 'sim', check: 'storage_heartbeat' })).toBe(0);
    expect(l.sampler.state.storageHeartbeat).toMatchObject({ ok: false, reason: expect.stringMatching(/^HA is off/) });
    expect(l.sampler.state.deadAfter).toMatchObject({ ms: 30_000, source: 'ha-off-default' });
    // With HA off nothing reads the storage path but the host's own PBD, frozen once it is gone: a
    // crash leaves one path's word, and the pool has no storage heartbeat anyway.
    await crashNeverDead(l, /^no-storage-heartbeat$/);
    expect(l.sampler.state.memory!.hosts[uuidOf(l, 'host-03')]!.reason).toMatch(/^network path down, no evidence on the storage path/);
  });

  it('HA on but the statefile not read: both paths down stays suspect, with the reason', async () => {
    const probes = { 'network-tcp': {}, 'network-xapi': {}, 'storage-xapi': {} };
    const l = await ready({ pool: { probes } });
    const m = await l.metrics();
    expect(metricValue(m, 'xenha_pool_storage_heartbeat', { pool: 'sim' })).toBe(0);
    expect(l.sampler.state.storageHeartbeat).toMatchObject({ ok: false, reason: expect.stringMatching(/^no statefile device configured/) });
    await crashNeverDead(l, /^no-storage-heartbeat$/);
    expect(l.sampler.state.memory!.hosts[uuidOf(l, 'host-03')]!.reason).toMatch(/no storage heartbeat the monitor reads/);
  });

  it('HA on and the statefile read: the metric says a two-path verdict is possible', async () => {
    const l = await ready();
    expect(metricValue(await l.metrics(), 'xenha_pool_storage_heartbeat', { pool: 'sim' })).toBe(1);
    expect(l.sampler.state.storageHeartbeat).toMatchObject({ ok: true });
  });
});
