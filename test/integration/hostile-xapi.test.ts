/**
 * The exporter against a hostile XAPI: a real exporter process (bin/xenha.js) watches two pools, one
 * through a fake XAPI in front of a simulator that answers in every shape that used to break it, one
 * healthy. For each shape: the process stays up, the healthy pool stays `xenha_xapi_up 1` with fresh
 * samples, /metrics answers within a second, resident memory stays within twice its steady state,
 * the hostile pool's errors are counted, and after the fault the hostile pool recovers (a change
 * made in it afterwards shows in the metrics).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyFault } from '../../simulator/faults.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { metricValue } from '../helpers/exporter.ts';
import { HostileXapi, poolYaml, SHAPES, type Shape } from '../helpers/hostile-xapi.ts';
import { XENHA_BIN } from '../helpers/run.ts';
import { PASSWORD, startTestSim } from '../helpers/sim.ts';
import { waitFor } from '../helpers/wait.ts';

const PASSWORD_ENV = 'XENHA_HOSTILE_TEST_PASSWORD';
let hostileSim: Simulator | undefined;
let healthySim: Simulator | undefined;
let proxy: HostileXapi | undefined;
let exporter: ChildProcess | undefined;
let metricsUrl = '';
let steadyRss = 0;
let stderr = '';

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

async function scrape(): Promise<{ text: string; ms: number }> {
  const t = performance.now();
  const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  expect(res.status).toBe(200);
  return { text, ms: performance.now() - t };
}

const errorsOf = (text: string, pool: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(`xenha_xapi_errors_total{pool="${pool}"`))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

const TEST_TIMING = '{ sampleInterval: 250ms, probeTimeout: 200ms, xapiTimeout: 2s, capacityInterval: 2s }';
const poolConfig = (name: string, sim: Simulator, url: string) => poolYaml(name, sim, url, PASSWORD_ENV, TEST_TIMING);

/** A change in the hostile pool that only XAPI's events carry: host-02's statefile access, seen through storage-xapi. */
async function hostilePoolFollows(): Promise<void> {
  const seen = (v: number) => async () =>
    metricValue((await scrape()).text, 'xenha_host_path_up', {
      pool: 'hostile',
      host: 'host-02',
      path: 'storage',
      probe: 'storage-xapi',
      home: 'statefile',
    }) === v;
  applyFault(hostileSim!.pool, { kind: 'storage-down', host: 'host-02' });
  await waitFor('the hostile pool shows host-02 without its statefile', seen(0), { timeoutMs: 30_000, intervalMs: 200 });
  applyFault(hostileSim!.pool, { kind: 'heal', host: 'host-02' });
  await waitFor('the hostile pool shows host-02 with its statefile again', seen(1), { timeoutMs: 30_000, intervalMs: 200 });
}

beforeAll(async () => {
  const spec = { ...generatePoolSpec({ hosts: 3, vms: 9, seed: 5 }), haEnabled: true };
  hostileSim = await startTestSim({ spec });
  healthySim = await startTestSim({ spec: generatePoolSpec({ hosts: 3, vms: 9, seed: 6 }), addressBase: '127.0.8.1' });
  proxy = new HostileXapi(hostileSim.info().masterUrl);
  await proxy.start();
  const dir = mkdtempSync(join(tmpdir(), 'xenha-hostile-'));
  const file = join(dir, 'xenha.yaml');
  writeFileSync(
    file,
    [
      'listen: 127.0.0.1:0',
      'pools:',
      poolConfig('hostile', hostileSim, proxy.url),
      poolConfig('healthy', healthySim, healthySim.info().masterUrl),
    ].join('\n'),
  );
  exporter = spawn(
    process.execPath,
    ['--max-semi-space-size=2', '--optimize-for-size', XENHA_BIN, 'exporter', '--config', file, '--log-level', 'warn'],
    {
      env: { ...process.env, [PASSWORD_ENV]: PASSWORD },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  // The last 20 kB or so of the log, cut at a line boundary.
  exporter.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 40_000) stderr = stderr.slice(stderr.indexOf('\n', stderr.length - 20_000) + 1);
  });
  let stdout = '';
  exporter.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  metricsUrl = await waitFor('the exporter to print its URL', () => /(http:\/\/\S+\/metrics)/.exec(stdout)?.[1], { timeoutMs: 20_000 });
  let last = '';
  await waitFor(
    'both pools connected and sampled',
    async () => {
      const { text } = await scrape();
      last = text;
      return ['hostile', 'healthy'].every(
        (p) =>
          metricValue(text, 'xenha_xapi_up', { pool: p }) === 1 &&
          metricValue(text, 'xenha_exporter_sample_rounds_total', { pool: p })! > 4,
      );
    },
    { timeoutMs: 20_000 },
  ).catch((e: Error) => {
    throw new Error(
      `${e.message}\n${last
        .split('\n')
        .filter((l) => /xapi_up|rounds_total|errors_total/.test(l))
        .join('\n')}\n${stderr}`,
    );
  });
  await hostilePoolFollows();
  steadyRss = rssBytes(exporter.pid!);
}, 60_000);

afterAll(async () => {
  if (exporter && exporter.exitCode === null) {
    exporter.kill('SIGKILL');
    await new Promise((r) => exporter!.once('exit', r));
  }
  await proxy?.stop();
  await hostileSim?.stop();
  await healthySim?.stop();
});

describe('a hostile XAPI cannot take the exporter down', () => {
  const shapes = SHAPES.filter((s): s is Exclude<Shape, 'pass'> => s !== 'pass');

  it.each(shapes)(
    '%s: the process stays up, the healthy pool is unharmed, memory bounded, the hostile pool recovers',
    async (shape) => {
      const pid = exporter!.pid!;
      const before = errorsOf((await scrape()).text, 'hostile');
      const shapedBefore = proxy!.shaped;
      proxy!.set(shape);
      // Something to answer: an event in the hostile pool (event.from answers it), and the periodic calls.
      hostileSim!.pool.built.db.update('pool', hostileSim!.pool.built.poolRef, { other_config: { poke: shape } });
      let worstMs = 0;
      let worstRss = 0;
      await waitFor(
        `the hostile pool's errors counted under ${shape}`,
        async () => {
          const { text, ms } = await scrape();
          worstMs = Math.max(worstMs, ms);
          worstRss = Math.max(worstRss, rssBytes(pid));
          // A deleted record is no fault: it only has to be taken without harm.
          const harmless = shape === 'del-event';
          return (
            proxy!.shaped > shapedBefore &&
            (harmless || errorsOf(text, 'hostile') > before || metricValue(text, 'xenha_xapi_up', { pool: 'hostile' }) === 0)
          );
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      ).catch(async (e: Error) => {
        const { text } = await scrape();
        throw new Error(
          `${e.message}: shaped ${proxy!.shaped - shapedBefore}, errors ${errorsOf(text, 'hostile')} (before ${before})\n${stderr.slice(-3000)}`,
        );
      });
      // A few more scrapes under the fault: the healthy pool unharmed and fresh.
      for (let i = 0; i < 3; i++) {
        const { text, ms } = await scrape();
        worstMs = Math.max(worstMs, ms);
        worstRss = Math.max(worstRss, rssBytes(pid));
        expect(metricValue(text, 'xenha_xapi_up', { pool: 'healthy' })).toBe(1);
        expect(metricValue(text, 'xenha_exporter_last_sample_age_seconds', { pool: 'healthy' })).toBeLessThan(3);
        expect(metricValue(text, 'xenha_host_state', { pool: 'healthy', host: 'host-01', state: 'healthy' })).toBe(1);
        await new Promise((r) => setTimeout(r, 150)); // pacing between scrapes (less than a sampling round), not evidence
      }
      expect(exporter!.exitCode, stderr).toBeNull();
      // Nothing slipped past the boundary to the process guard.
      const last = (await scrape()).text;
      if (shape === 'del-event') {
        // A deletion is applied to the mirror like any event, without breaking it.
        expect(metricValue(last, 'xenha_xapi_errors_total', { pool: 'hostile', code: 'MIRROR_BROKEN' }) ?? 0).toBe(0);
        expect(errorsOf(last, 'hostile')).toBe(before);
      }
      expect(metricValue(last, 'xenha_exporter_unhandled_errors_total', { kind: 'unhandled_rejection' })).toBe(0);
      expect(metricValue(last, 'xenha_exporter_unhandled_errors_total', { kind: 'uncaught_exception' })).toBe(0);
      expect(worstMs).toBeLessThan(1000);
      expect(worstRss).toBeLessThan(2 * steadyRss);
      proxy!.set('pass');
      await hostilePoolFollows();
      const { text } = await scrape();
      expect(metricValue(text, 'xenha_xapi_up', { pool: 'hostile' })).toBe(1);
      // The error codes stay a small fixed set (unknown ones fold into "other").
      const codes = text
        .split('\n')
        .filter((l) => l.startsWith('xenha_xapi_errors_total{'))
        .map((l) => /code="([^"]*)"/.exec(l)?.[1]);
      for (const c of codes) expect(c).toMatch(/^([A-Z0-9_]+|other)$/);
    },
    90_000,
  );

  it('logs one JSON object per line, whatever the client printed', () => {
    const lines = stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(() => JSON.parse(l) as unknown, l.slice(0, 200)).not.toThrow();
  });
});
