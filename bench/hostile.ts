/**
 * Hostile-XAPI benchmark (issue 8): one exporter process (bin/xenha.js, default timing) watches two
 * pools, one through the fake XAPI of test/helpers/hostile-xapi.ts, one healthy. After a steady
 * minute, each hostile shape is applied for a fixed window; during it the exporter's resident memory
 * is sampled (and its peak read from VmHWM, reset before each shape) and /metrics scraped every
 * 250 ms. Goal: RSS never above 2× steady state, every scrape ≤ 1 s. Then SIGTERM-to-exit of an
 * exporter whose event.from long poll is in flight, median of 5 (goal ≤ 5 s, exit 0).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { generatePoolSpec } from '../simulator/pool-spec.ts';
import { startSimulator, type Simulator } from '../simulator/simulator.ts';
import { HostileXapi, poolYaml, SHAPES } from '../test/helpers/hostile-xapi.ts';
import { machine, writeSection } from './report.ts';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin/xenha.js');
const PASSWORD_ENV = 'XENHA_BENCH_PASSWORD';
const PASSWORD = 'bench';
const WINDOW_MS = 20_000;
const STEADY_MS = 60_000;
const silent = pino({ level: 'silent' });

const kib = (pid: number, field: 'VmRSS' | 'VmHWM') =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
/** Resets the process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0; needs the same user or root). */
const resetPeak = (pid: number) => writeFileSync(`/proc/${pid}/clear_refs`, '5');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pool = (name: string, sim: Simulator, url: string) => poolYaml(name, sim, url, PASSWORD_ENV);

async function startExporter(config: string): Promise<{ child: ChildProcess; metrics: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'xenha-bench-hostile-'));
  const file = join(dir, 'xenha.yaml');
  writeFileSync(file, config);
  const child = spawn(
    process.execPath,
    ['--max-semi-space-size=2', '--optimize-for-size', BIN, 'exporter', '--config', file, '--log-level', 'error'],
    {
      env: { ...process.env, [PASSWORD_ENV]: PASSWORD },
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 30_000;
  let metrics: string | undefined;
  while (!(metrics = /(http:\/\/\S+\/metrics)/.exec(out)?.[1])) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the exporter did not start: ${out}`);
    await sleep(100);
  }
  const ready = metrics.replace(/\/metrics$/, '/-/ready');
  while ((await fetch(ready).catch(() => null))?.status !== 200) {
    if (Date.now() > deadline) throw new Error('the exporter did not get ready');
    await sleep(200);
  }
  return { child, metrics };
}

async function timedScrape(url: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  await res.text();
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return performance.now() - t;
}

export async function benchHostile(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('the CLI is not built (no dist/cli/main.js): run `npm run build` first');
  const sim = (seed: number, addressBase: string) =>
    startSimulator({
      spec: generatePoolSpec({ hosts: 8, vms: 100, seed }),
      port: 0,
      controlPort: 0,
      password: PASSWORD,
      addressBase,
      log: silent,
    });
  const hostileSim = await sim(3, '127.0.50.1');
  const healthySim = await sim(4, '127.0.60.1');
  const proxy = new HostileXapi(hostileSim.info().masterUrl);
  await proxy.start();
  let child: ChildProcess | undefined;
  const rows: string[] = [];
  try {
    const started = await startExporter(
      [
        'listen: 127.0.0.1:0',
        'pools:',
        pool('hostile', hostileSim, proxy.url),
        pool('healthy', healthySim, healthySim.info().masterUrl),
      ].join('\n'),
    );
    child = started.child;
    const pid = child.pid!;
    // Steady state: a minute of normal running (VM fetches every 30 s included), the peak over it.
    resetPeak(pid);
    const steadyScrapes: number[] = [];
    for (const end = Date.now() + STEADY_MS; Date.now() < end; await sleep(250)) steadyScrapes.push(await timedScrape(started.metrics));
    const steadyPeak = kib(pid, 'VmHWM');
    const steadyWorstScrape = Math.max(...steadyScrapes);
    rows.push(`| steady state (${STEADY_MS / 1000} s) | ${mib(steadyPeak)} MiB | 1.00× | ${steadyWorstScrape.toFixed(1)} ms | up |`);
    let worstRatio = 1;
    let worstScrape = steadyWorstScrape;
    for (const shape of SHAPES.filter((s) => s !== 'pass')) {
      resetPeak(pid);
      proxy.set(shape);
      hostileSim.pool.built.db.update('pool', hostileSim.pool.built.poolRef, { other_config: { poke: shape } });
      let shapeWorst = 0;
      for (const end = Date.now() + WINDOW_MS; Date.now() < end; await sleep(250)) {
        if (child.exitCode !== null) throw new Error(`the exporter exited (${child.exitCode}) under ${shape}`);
        shapeWorst = Math.max(shapeWorst, await timedScrape(started.metrics));
      }
      const peak = kib(pid, 'VmHWM');
      proxy.set('pass');
      worstRatio = Math.max(worstRatio, peak / steadyPeak);
      worstScrape = Math.max(worstScrape, shapeWorst);
      rows.push(
        `| ${shape} | ${mib(peak)} MiB | ${(peak / steadyPeak).toFixed(2)}× | ${shapeWorst.toFixed(1)} ms | ${child.exitCode === null ? 'up' : 'EXITED'} |`,
      );
      process.stdout.write(`${rows.at(-1)}\n`);
      await sleep(5000); // let the hostile pool recover before the next shape
    }
    child.kill('SIGKILL');
    child = undefined;

    // SIGTERM to exit, with the long poll in flight.
    const stops: number[] = [];
    const codes: (number | null)[] = [];
    for (let i = 0; i < 5; i++) {
      const s = await startExporter(['listen: 127.0.0.1:0', 'pools:', pool('healthy', healthySim, healthySim.info().masterUrl)].join('\n'));
      await sleep(2000); // past the initial fetch: the event.from long poll is in flight
      const exited = new Promise<number | null>((r) => s.child.once('exit', (code) => r(code)));
      const t = performance.now();
      s.child.kill('SIGTERM');
      codes.push(await exited);
      stops.push(performance.now() - t);
    }
    stops.sort((a, b) => a - b);
    writeSection(
      'hostile',
      [
        '## Hostile XAPI',
        '',
        `Command: \`npm run bench -- hostile\` · ${machine()} · ${new Date().toISOString().slice(0, 10)}`,
        '',
        `One exporter process (default timing), two pools of 8 hosts × 100 VMs: one behind the fake XAPI of`,
        '`test/helpers/hostile-xapi.ts`, one healthy. Each shape is applied for',
        `${WINDOW_MS / 1000} s; peak RSS is the process's VmHWM over the window (reset before it), beside the peak over a`,
        `${STEADY_MS / 1000} s steady state; /metrics scraped every 250 ms.`,
        '',
        '| shape | peak RSS | × steady | worst scrape | process |',
        '|---|---|---|---|---|',
        ...rows,
        '',
        `Worst: **${worstRatio.toFixed(2)}×** steady RSS (goal ≤ 2×), worst scrape **${worstScrape.toFixed(1)} ms** (goal ≤ 1 s).`,
        '',
        `SIGTERM to exit with the event.from long poll in flight (5 runs): median **${(stops[2]! / 1000).toFixed(2)} s**, worst ${(stops[4]! / 1000).toFixed(2)} s, exit codes ${[...new Set(codes)].join(', ')} (goal ≤ 5 s, 0).`,
      ].join('\n'),
    );
  } finally {
    child?.kill('SIGKILL');
    await proxy.stop();
    await hostileSim.stop();
    await healthySim.stop();
  }
}
