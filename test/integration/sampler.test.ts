/**
 * The sampler's handling of probes, with probes written here against the real contract and a real
 * XAPI connection to a stepped simulator: a probe that overruns gives nothing that round and is not
 * started again while it runs, what it reports late is dropped, series values with undeclared labels
 * are dropped (a scrape must never fail on them), and the monitor's own reach to the master failing
 * for two rounds makes the connection check its session (once), not reconnect.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { PoolSampler } from '../../exporter/sampler.ts';
import { createRegistry } from '../../exporter/metrics.ts';
import type { ConfiguredProbe, Probe } from '../../plugins/probes/index.ts';
import type { PathName } from '../../core/classify/state-machine.ts';
import { EXPORTER_PASSWORD_ENV, fastPoolConfig, metricValue } from '../helpers/exporter.ts';
import { PASSWORD, startTestSim } from '../helpers/sim.ts';
import { waitFor } from '../helpers/wait.ts';
import type { Simulator } from '../../simulator/simulator.ts';

let sim: Simulator | undefined;
let sampler: PoolSampler | undefined;
afterEach(async () => {
  await sampler?.stop();
  await sim?.stop();
  sim = sampler = undefined;
});

function configured(
  name: string,
  path: PathName,
  probe: Probe,
  o: { observerSide?: boolean; series?: ConfiguredProbe['series'] } = {},
): ConfiguredProbe {
  const observerSide = o.observerSide ?? false;
  return { name, path, observerSide, source: observerSide ? 'monitor' : 'master', storageHeartbeat: false, series: o.series ?? {}, probe };
}

async function start(probes: ConfiguredProbe[]): Promise<{ s: PoolSampler; sim: Simulator; masterUuid: string }> {
  process.env[EXPORTER_PASSWORD_ENV] = PASSWORD;
  let t = 1_000_000;
  sim = await startTestSim({ autoTick: false, now: () => t });
  const s = new PoolSampler(fastPoolConfig(sim), pino({ level: 'silent' }), () => (t += 100), probes);
  sampler = s;
  s.connection.start();
  await waitFor('the first pool snapshot', () => s.connection.snapshot() !== null);
  return { s, sim, masterUuid: sim.pool.master.built.uuid };
}

const samplesOf = (s: PoolSampler, probe: string) =>
  Object.values(s.state.memory?.hosts ?? {}).flatMap((h) => h.lastSamples.filter((x) => x.probe === probe));

describe('the sampler and its probes', () => {
  it('an overrunning probe gives no sample that round, is skipped while it runs, and its late reports are dropped', async () => {
    let release: () => void = () => {};
    let mode: 'hang' | 'quick' = 'hang';
    const hanging = configured('hanging', 'storage', {
      async sample(round) {
        if (mode === 'quick') {
          for (const h of round.snapshot.hosts) round.report(h.uuid, 'h', true, 'on time');
          return;
        }
        await new Promise<void>((r) => (release = r));
        for (const h of round.snapshot.hosts) round.report(h.uuid, 'h', true, 'late');
      },
    });
    const steady = configured('steady', 'network', {
      async sample(round) {
        for (const h of round.snapshot.hosts) round.report(h.uuid, 'n', true, 'steady');
      },
    });
    const { s } = await start([hanging, steady]);
    await s.round();
    expect(s.counters.probeErrors.get('hanging')).toBe(1);
    expect(samplesOf(s, 'hanging')).toEqual([]);
    expect(samplesOf(s, 'steady').length).toBe(s.state.snapshot!.hosts.length);
    // Still running from round 1: skipped, counted again.
    await s.round();
    expect(s.counters.probeErrors.get('hanging')).toBe(2);
    // It finishes now, after its round: what it reports goes nowhere.
    mode = 'quick';
    release();
    await new Promise((r) => setImmediate(r));
    await s.round();
    const after = samplesOf(s, 'hanging');
    expect(after.length).toBe(s.state.snapshot!.hosts.length);
    expect(after.every((x) => x.detail === 'on time' && x.path === 'storage' && x.home === 'h')).toBe(true);
    expect(s.counters.probeErrors.get('hanging')).toBe(2);
    expect(s.counters.probeErrors.get('steady')).toBeUndefined();
  });

  it('a probe that throws at once or rejects gives nothing that round and the others still count', async () => {
    const thrower = configured('thrower', 'storage', {
      sample() {
        throw new Error('synchronous');
      },
    });
    const rejecter = configured('rejecter', 'storage', {
      async sample() {
        throw new Error('asynchronous');
      },
    });
    const steady = configured('steady', 'network', {
      async sample(round) {
        for (const h of round.snapshot.hosts) round.report(h.uuid, 'n', true, 'steady');
      },
    });
    const { s } = await start([thrower, rejecter, steady]);
    await s.round();
    expect(s.counters.probeErrors.get('thrower')).toBe(1);
    expect(s.counters.probeErrors.get('rejecter')).toBe(1);
    expect(samplesOf(s, 'steady').length).toBe(s.state.snapshot!.hosts.length);
    expect(s.counters.rounds).toBe(1);
  });

  it('keeps series values with the declared labels, drops the others, and the scrape still answers', async () => {
    const series = { slots: { name: 'xenha_test_slots', help: 'A test series.', labelNames: ['domain'] } };
    const counting = configured(
      'counting',
      'storage',
      {
        async sample(round) {
          const [a, b] = round.snapshot.hosts;
          round.observe('slots', a!.uuid, 3, { domain: 'network' });
          round.observe('slots', b!.uuid, 4, { domain: 'network', extra: 'x' });
          round.observe('slots', b!.uuid, 5, {});
        },
      },
      { series },
    );
    const { s } = await start([counting]);
    await s.round();
    expect(s.state.series.get('xenha_test_slots')).toEqual([
      { host: s.state.snapshot!.hosts[0]!.uuid, labels: { domain: 'network' }, value: 3 },
    ]);
    expect(s.counters.probeErrors.get('counting')).toBe(1);
    const text = await createRegistry([s], () => 0, false).metrics();
    expect(metricValue(text, 'xenha_test_slots', { pool: 'sim', host: s.state.snapshot!.hosts[0]!.name, domain: 'network' })).toBe(3);
    expect(text.match(/^xenha_test_slots\{/gm)).toHaveLength(1);
  });

  it("the monitor's reach to the master lost for two rounds: one session check, no reconnect", async () => {
    let masterDown = false;
    const reach = configured(
      'reach',
      'network',
      {
        async sample(round) {
          const master = round.snapshot.hosts.find((h) => h.ref === round.snapshot.masterRef)!;
          for (const h of round.snapshot.hosts) round.report(h.uuid, '0', !(masterDown && h === master), 'test reach');
        },
      },
      { observerSide: true },
    );
    const { s } = await start([reach]);
    const checks = () => s.connection.calls.get('pool.get_all') ?? 0;
    const before = checks();
    await s.round();
    masterDown = true;
    await s.round();
    expect(checks()).toBe(before);
    await s.round();
    await waitFor('the session check', () => checks() === before + 1);
    // It answered: the same session stays; further rounds within 10 s do not check again.
    for (let i = 0; i < 4; i++) await s.round();
    expect(checks()).toBe(before + 1);
    expect(s.connection.connects).toBe(1);
    expect(s.connection.status).toBe('connected');
  });
});
