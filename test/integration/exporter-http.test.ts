/** The exporter's HTTP face: promtool on a real scrape, readiness, explain, a dead pool beside a live one. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startExporter, type RunningExporter } from '../../exporter/exporter.ts';
import { exporterConfig } from '../../exporter/config.ts';
import { applyFault } from '../../simulator/faults.ts';
import { computeMaxFailures } from '../../simulator/xapi/ha-planner.ts';
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
  const dead = exporterConfig.parse({ pools: [{ name: 'gone', urls: ['http://127.0.0.1:9'], passwordEnv: EXPORTER_PASSWORD_ENV, timing: { sampleInterval: '100ms', probeTimeout: '80ms', xapiTimeout: '1s' } }] }).pools[0]!;
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
    const r = await run(PROMTOOL, ['check', 'config', join(import.meta.dirname, '../../deploy/prometheus.yml')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('keeps a live pool\'s metrics while another pool is unreachable, and says which pool is not ready', async () => {
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
  });

  it('exports the planner\'s failures tolerable, equal to what the pool\'s HA call answers', async () => {
    await waitFor('capacity figures', () => exporter.samplers[0]!.state.capacity !== null);
    const text = await (await fetch(`${exporter.url}/metrics`)).text();
    const lower = metricValue(text, 'xenha_pool_failures_tolerable', { pool: 'sim', bound: 'lower' })!;
    const upper = metricValue(text, 'xenha_pool_failures_tolerable', { pool: 'sim', bound: 'upper' })!;
    const exact = metricValue(text, 'xenha_pool_failures_tolerable', { pool: 'sim', bound: 'exact' })!;
    expect(lower).toBeLessThanOrEqual(exact);
    expect(exact).toBeLessThanOrEqual(upper);
    expect(exact).toBe(computeMaxFailures(sim.pool));
    expect(metricValue(text, 'xenha_pool_capacity_overcommitted', { pool: 'sim' })).toBe(lower < 1 ? 1 : 0);
    expect(exporter.samplers[0]!.connection.calls.get('VM.get_all_records') ?? 0).toBeGreaterThanOrEqual(1);
  });

  it('uses the event.from long poll, not polling of get_all_records', async () => {
    const calls = exporter.samplers[0]!.connection.calls;
    const before = calls.get('host.get_all_records') ?? 0;
    await new Promise((r) => setTimeout(r, 1000));
    sim.pool.built.db.update('pool', sim.pool.built.poolRef, { other_config: { poke: String(Date.now()) } });
    await new Promise((r) => setTimeout(r, 500));
    expect(calls.get('host.get_all_records') ?? 0).toBe(before);
    expect(calls.get('event.from') ?? 0).toBeGreaterThan(0);
  });

  it('xenha explain prints why a host is in its state', async () => {
    applyFault(sim.pool, { kind: 'network-down', host: 'host-02' });
    await waitFor('host-02 network_isolated', () => exporter.samplers[0]!.state.memory?.hosts[sim.pool.host('host-02').built.uuid]?.state === 'network_isolated');
    const r = await xenha(['explain', '--pool', 'sim', '--host', 'host-02', '--exporter', exporter.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('state      network_isolated');
    expect(r.stdout).toContain('rule       network-down-storage-alive');
    expect(r.stdout).toMatch(/network +network-tcp +0 +DOWN/);
    expect(r.stdout).toMatch(/storage +storage-statefile +0 +up/);
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
    expect(bad.stderr).toContain('pools.0.probes.network-ping (line 6): unknown probe "network-ping" (available: network-tcp, network-xapi, storage-statefile, storage-xapi)');
  });
});
