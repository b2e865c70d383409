/** The exporter's HTTP face: promtool on a real scrape, readiness, explain, a dead pool beside a live one. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startExporter, type RunningExporter } from '../../exporter/exporter.ts';
import { exporterConfig } from '../../exporter/config.ts';
import { applyFault } from '../../simulator/faults.ts';
import { maxFailuresBruteForce, readPool } from '../helpers/brute-force.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { EXPORTER_PASSWORD_ENV, fastPoolConfig, metricValue } from '../helpers/exporter.ts';
import { PASSWORD, requireFile, startTestSim } from '../helpers/sim.ts';
import { waitFor } from '../helpers/wait.ts';
import { run, xenha } from '../helpers/run.ts';

const PROMTOOL = '/usr/bin/promtool';

let sim: Simulator;
let exporter: RunningExporter;

beforeAll(async () => {
  process.env[EXPORTER_PASSWORD_ENV] = PASSWORD;
  sim = await startTestSim();
  // A second pool nobody answers for: it must not hold the first one back.
  const dead = exporterConfig.parse({
    pools: [
      {
        name: 'gone',
        urls: ['http://127.0.0.1:9'],
        passwordEnv: EXPORTER_PASSWORD_ENV,
        timing: { sampleInterval: '100ms', probeTimeout: '80ms', xapiTimeout: '1s' },
      },
    ],
  }).pools[0]!;
  exporter = await startExporter({ listen: '127.0.0.1:0', pools: [fastPoolConfig(sim), dead] }, pino({ level: 'silent' }));
  await waitFor('pool sim classified', () => exporter.samplers[0]!.ready);
});
afterAll(async () => {
  await exporter?.stop();
  await sim?.stop();
});

describe('exporter over HTTP', () => {
  it('passes promtool check metrics on a real scrape', async () => {
    requireFile(PROMTOOL, 'apt-get install prometheus');
    const text = await (await fetch(`${exporter.url}/metrics`)).text();
    expect(text).toContain('xenha_host_state{');
    const r = await run(PROMTOOL, ['check', 'metrics'], { input: text });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('deploy/prometheus.yml passes promtool check config', async () => {
    requireFile(PROMTOOL, 'apt-get install prometheus');
    // Its rule file is read from its own directory, where the operator installs it
    // (test/integration/deploy-configs.test.ts checks it with the real alerts/ rules).
    const etc = mkdtempSync(join(tmpdir(), 'xenha-prometheus-'));
    try {
      copyFileSync(join(import.meta.dirname, '../../deploy/prometheus.yml'), join(etc, 'prometheus.yml'));
      writeFileSync(join(etc, 'xenha.rules.yml'), 'groups: []\n');
      const r = await run(PROMTOOL, ['check', 'config', join(etc, 'prometheus.yml')]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
    } finally {
      rmSync(etc, { recursive: true, force: true });
    }
  });

  it("keeps a live pool's metrics while another pool is unreachable, and says which pool is not ready", async () => {
    const text = await (await fetch(`${exporter.url}/metrics`)).text();
    expect(metricValue(text, 'xenha_xapi_up', { pool: 'sim' })).toBe(1);
    expect(metricValue(text, 'xenha_xapi_up', { pool: 'gone' })).toBe(0);
    expect(metricValue(text, 'xenha_xapi_errors_total', { pool: 'gone', code: 'ECONNREFUSED' })).toBeGreaterThanOrEqual(1);
    const ready = await fetch(`${exporter.url}/-/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain('gone');
    expect((await fetch(`${exporter.url}/-/healthy`)).status).toBe(200);
  });

  it('exports the HA settings, the master and the preflight checks', async () => {
    const text = await (await fetch(`${exporter.url}/metrics`)).text();
    expect(metricValue(text, 'xenha_pool_ha_enabled', { pool: 'sim' })).toBe(1);
    expect(metricValue(text, 'xenha_pool_ha_host_failures_to_tolerate', { pool: 'sim' })).toBe(1);
    expect(metricValue(text, 'xenha_pool_master_info', { pool: 'sim', host: 'host-01' })).toBe(1);
    expect(metricValue(text, 'xenha_preflight_check', { pool: 'sim', check: 'static_ip_all_hosts' })).toBe(1);
    expect(metricValue(text, 'xenha_statefile_slot_peers', { pool: 'sim', host: 'host-01', domain: 'network' })).toBe(3);
    // A two-path verdict is possible here (HA on, the statefile read), and the dead-after in force is the config's.
    expect(metricValue(text, 'xenha_preflight_check', { pool: 'sim', check: 'storage_heartbeat' })).toBe(1);
    expect(metricValue(text, 'xenha_pool_storage_heartbeat', { pool: 'sim' })).toBe(1);
    expect(metricValue(text, 'xenha_pool_dead_after_seconds', { pool: 'sim' })).toBe(1);
  });

  it('says in /api/v1/state which dead-after is in force and why, and whether each pool has a storage heartbeat', async () => {
    const state = (await (await fetch(`${exporter.url}/api/v1/state`)).json()) as {
      pools: { pool: string; deadAfter: { seconds: number; source: string; reason: string }; storageHeartbeat: unknown }[];
    };
    const byName = Object.fromEntries(state.pools.map((p) => [p.pool, p]));
    expect(byName.sim).toMatchObject({
      deadAfter: { seconds: 1, source: 'config', reason: 'deadAfter 1 s set in the config' },
      storageHeartbeat: { ok: true, reason: expect.stringContaining('two-path verdicts') },
    });
    // The pool nobody answers for: nothing read yet, so no storage heartbeat known, and the HA-off default.
    expect(byName.gone).toMatchObject({
      deadAfter: { seconds: 30, source: 'ha-off-default', reason: expect.stringContaining('the pool is not read yet') },
      storageHeartbeat: null,
    });
  });

  it("exports failures tolerable equal to a brute force over the pool's own records, as built and after changes that move it", async () => {
    const sampler = exporter.samplers[0]!;
    const db = sim.pool.built.db;
    const poolRec = () => db.peek('pool', sim.pool.built.poolRef);
    await waitFor('capacity figures', () => sampler.state.capacity !== null);
    const scrape = async () => {
      const text = await (await fetch(`${exporter.url}/metrics`)).text();
      const bound = (b: string) => metricValue(text, 'xenha_pool_failures_tolerable', { pool: 'sim', bound: b });
      return { text, lower: bound('lower'), upper: bound('upper'), exact: bound('exact') };
    };
    /** Polls until the exporter's exact figure is `want`; checks the bounds on that same scrape. */
    const expectExact = async (want: number) => {
      const got = await waitFor(`the exporter's exact failures tolerable to be ${want}`, async () => {
        const f = await scrape();
        if (f.exact !== want) throw new Error(`exact ${f.exact}, lower ${f.lower}, upper ${f.upper}; the brute force says ${want}`);
        return f;
      });
      expect(got.lower).toBeDefined();
      expect(got.upper).toBeDefined();
      expect(got.lower!).toBeLessThanOrEqual(got.exact!);
      expect(got.exact!).toBeLessThanOrEqual(got.upper!);
      return got;
    };

    // The pool as built.
    const asBuilt = maxFailuresBruteForce(readPool(db));
    const first = await expectExact(asBuilt);
    const configured = Number(poolRec().ha_host_failures_to_tolerate);
    expect(metricValue(first.text, 'xenha_pool_capacity_overcommitted', { pool: 'sim' })).toBe(first.lower! < configured ? 1 : 0);
    expect(sampler.connection.calls.get('VM.get_all_records') ?? 0).toBeGreaterThanOrEqual(1);

    // Changes that move the figure, each followed by the exporter (VMs are refetched every
    // capacityInterval, host_metrics come through event.from); undone whatever happens.
    const pool = readPool(db);
    const pinned = pool.vms.filter((v) => v.protected && v.pinnedTo !== null);
    const undo: (() => void)[] = [];
    try {
      // 1. The protected VMs on host-local storage lose their priority: their hosts' failure is survivable again.
      expect(pinned.length, 'the test pool has a protected VM on local storage').toBeGreaterThan(0);
      for (const v of pinned) {
        undo.push(() => db.update('VM', v.ref, { ha_restart_priority: v.priority }));
        db.update('VM', v.ref, { ha_restart_priority: '' });
      }
      const unpinned = maxFailuresBruteForce(readPool(db));
      expect(unpinned).not.toBe(asBuilt);
      await expectExact(unpinned);

      // 2. The live host with the least free memory is left with one byte less than the protected
      //    VMs of every other host need (losing all the others is no longer survivable), then with
      //    exactly that (it is again: a VM fits in free memory equal to its need). Each figure differs
      //    from the one before, so a stale figure cannot pass for the new one.
      const live = readPool(db).hosts.filter((h) => h.live);
      const smallest = [...live].sort((a, b) => a.free - b.free)[0]!;
      const othersNeed = readPool(db)
        .vms.filter((v) => v.protected && v.host !== smallest.ref)
        .reduce((sum, v) => sum + v.need, 0);
      const metricsRef = db.peek('host', smallest.ref).metrics as string;
      const total = Number(db.peek('host_metrics', metricsRef).memory_total);
      undo.push(() => db.update('host_metrics', metricsRef, { memory_total: total }));
      const leaveFree = (bytes: number) => {
        db.update('host_metrics', metricsRef, { memory_total: total - (smallest.free - bytes) });
        expect(readPool(db).hosts.find((h) => h.ref === smallest.ref)!.free).toBe(bytes);
        return maxFailuresBruteForce(readPool(db));
      };
      const short = leaveFree(othersNeed - 1);
      expect(short).not.toBe(unpinned);
      await expectExact(short);
      const exactFit = leaveFree(othersNeed);
      expect(exactFit).not.toBe(short);
      await expectExact(exactFit);
    } finally {
      for (const u of undo.reverse()) u();
    }
    await expectExact(asBuilt);
  });

  it('follows changes through the event.from long poll, with no polling of get_all_records', async () => {
    const c = exporter.samplers[0]!.connection;
    const before = { records: c.calls.get('host.get_all_records') ?? 0, events: c.calls.get('event.from') ?? 0 };
    const statefiles = () => c.snapshot()?.hosts.find((h) => h.name === 'host-03')?.haStatefiles.length;
    // Six changes, each seen by the exporter before the next is made: each one came by an event.
    for (let i = 0; i < 3; i++) {
      applyFault(sim.pool, { kind: 'storage-down', host: 'host-03' });
      await waitFor('host-03 without its statefile, as XAPI says', () => statefiles() === 0);
      applyFault(sim.pool, { kind: 'heal', host: 'host-03' });
      await waitFor('host-03 with its statefile again, as XAPI says', () => (statefiles() ?? 0) > 0);
    }
    expect(c.calls.get('host.get_all_records') ?? 0).toBe(before.records);
    // Six deliveries need six event.from calls; the first may have been in flight already.
    expect(c.calls.get('event.from') ?? 0).toBeGreaterThanOrEqual(before.events + 5);
  });

  it('xenha explain prints why a host is in its state', async () => {
    applyFault(sim.pool, { kind: 'network-down', host: 'host-02' });
    await waitFor(
      'host-02 network_isolated',
      () => exporter.samplers[0]!.state.memory?.hosts[sim.pool.host('host-02').built.uuid]?.state === 'network_isolated',
    );
    const r = await xenha(['explain', '--pool', 'sim', '--host', 'host-02', '--exporter', exporter.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('state      network_isolated');
    expect(r.stdout).toContain('rule       network-down-storage-alive');
    // Each sample with its source and age: the monitor's failed connect has none; the slot shows life a fraction of a second old.
    expect(r.stdout).toMatch(/network +network-tcp +0 +DOWN +monitor +- /);
    expect(r.stdout).toMatch(/storage +storage-statefile +0 +up +statefile +\d+\.\ds /);
    // The master's word: still "live" (set aside as old) until xhad drops the host and xapi's monitor
    // writes it, DOWN after; either way not what decided.
    expect(r.stdout).toMatch(/network +network-xapi +master +(old|DOWN) +master /);
    // The ages it decided on, and the dead-after in force with why.
    expect(r.stdout).toMatch(/^life +network \d+\.\d s ago, storage \d+\.\d s ago; dead after 1 s without any$/m);
    expect(r.stdout).toContain('dead-after 1 s (config): deadAfter 1 s set in the config');
    // A healthy host: the master's "live" is dated as late as it may be (T = 30 s, xhad's 18 s fault
    // handler wait, xapi's 20 s monitor: 68 s), older than dead-after: set aside, marked old.
    const healthy = await xenha(['explain', '--pool', 'sim', '--host', 'host-01', '--exporter', exporter.url]);
    expect(healthy.code, healthy.stderr).toBe(0);
    expect(healthy.stdout).toMatch(/network +network-xapi +master +old +master +68\.0s /);
    expect(healthy.stdout).toMatch(/^old: up, but its life is 1 s old or more \(dead-after\)/m);
    expect(healthy.stdout).toMatch(/network +network-tcp +0 +up +monitor +0\.0s /);
    const missing = await xenha(['explain', '--pool', 'sim', '--host', 'host-99', '--exporter', exporter.url]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no classified host host-99 in pool sim (hosts: host-01, host-02, host-03)');
    applyFault(sim.pool, { kind: 'heal' });
  });
});

describe('xenha exporter CLI', () => {
  it('fails clearly without a config, and on a bad one', async () => {
    const none = await xenha(['exporter']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no config: pass --config <path>');
    const dir = mkdtempSync(join(tmpdir(), 'xenha-cfg-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'pools:\n  - name: a\n    urls: [http://127.0.0.1:1]\n    passwordEnv: X\n    probes:\n      network-ping: {}\n');
    const bad = await xenha(['exporter', '--config', file]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(
      'pools.0.probes.network-ping (line 6): unknown probe "network-ping" (available: network-tcp, network-xapi, storage-statefile, storage-xapi)',
    );
  });
});
