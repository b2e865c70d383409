/**
 * Exporter benchmarks (issue 3):
 * 1. one scrape of a 64-host, 1000-VM pool, as a ratio to prom-client serialising the same series
 *    in a bare registry (goal ≤ 2×);
 * 2. XAPI calls per minute in steady state (goal: the event.from long poll, about one a second at most);
 * 3. resident memory of an exporter process watching 10 pools × 64 hosts (goal ≤ 150 MiB).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Gauge, Registry } from 'prom-client';
import { exporterConfig } from '../exporter/config.ts';
import { startExporter } from '../exporter/exporter.ts';
import { createRegistry } from '../exporter/metrics.ts';
import { generatePoolSpec } from '../simulator/pool-spec.ts';
import { startSimulator, type Simulator } from '../simulator/simulator.ts';
import { machine, writeSection } from './report.ts';

const PASSWORD_ENV = 'XENHA_BENCH_PASSWORD';
const PASSWORD = 'bench';
process.env[PASSWORD_ENV] = PASSWORD;
const silent = pino({ level: 'silent' });

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function poolConfig(sim: Simulator, name: string) {
  const info = sim.info();
  return {
    name,
    urls: info.hosts.slice(0, 3).flatMap((h) => h.urls),
    passwordEnv: PASSWORD_ENV,
    probes: {
      'network-tcp': {},
      'network-xapi': {},
      'storage-xapi': {},
      'storage-statefile': { devices: [{ home: '0', path: info.statefile }], readMode: 'buffered' },
    },
  };
}

function sim(hosts: number, vms: number, seed: number, addressBase: string): Promise<Simulator> {
  return startSimulator({
    spec: generatePoolSpec({ hosts, vms, seed }),
    port: 0,
    controlPort: 0,
    password: PASSWORD,
    addressBase,
    log: silent,
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeScrapes(reg: Registry, n: number): Promise<number> {
  for (let i = 0; i < 20; i++) await reg.metrics();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await reg.metrics();
    times.push(performance.now() - t);
  }
  return median(times);
}

/** A bare registry holding the same families, label sets and values as a scrape, set once. */
function bareTwin(text: string): Registry {
  const reg = new Registry();
  const families = new Map<string, { help: string; series: { labels: Record<string, string>; value: number }[] }>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const name = brace >= 0 ? line.slice(0, brace) : line.slice(0, line.indexOf(' '));
    const labels =
      brace >= 0
        ? Object.fromEntries(
            [...line.slice(brace + 1, line.lastIndexOf('}')).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]),
          )
        : {};
    const f = families.get(name) ?? { help: name, series: [] };
    f.series.push({ labels, value: Number(line.slice(line.lastIndexOf(' ') + 1)) });
    families.set(name, f);
  }
  for (const [name, f] of families) {
    const labelNames = [...new Set(f.series.flatMap((s) => Object.keys(s.labels)))];
    const g = new Gauge({ name: `bare_${name}`, help: f.help, labelNames, registers: [reg] });
    for (const s of f.series) g.set(s.labels, s.value);
  }
  return reg;
}

export async function benchExporter(): Promise<void> {
  const lines: string[] = [];
  // --- 1 and 2: one 64-host, 1000-VM pool, in-process
  const big = await sim(64, 1000, 64, '127.0.40.1');
  const exp = await startExporter(exporterConfig.parse({ listen: '127.0.0.1:0', pools: [poolConfig(big, 'big')] }), silent);
  try {
    const s = exp.samplers[0]!;
    await until('the 64-host pool classified', () => s.ready && s.counters.rounds >= 3);
    const reg = createRegistry(exp.samplers, () => performance.now(), false);
    const text = await reg.metrics();
    const series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    const ours = await timeScrapes(reg, 200);
    const bare = await timeScrapes(bareTwin(text), 200);
    lines.push(
      '### Scrape cost, 64 hosts × 1000 VMs',
      '',
      `| series | xenha scrape (median of 200) | bare prom-client, same series | ratio | goal |`,
      '|---|---|---|---|---|',
      `| ${series} | ${ours.toFixed(2)} ms | ${bare.toFixed(2)} ms | **${(ours / bare).toFixed(2)}×** | ≤ 2× |`,
      '',
    );
    // Steady state: calls made over a window, after the initial fetch.
    const total = () => [...s.connection.calls.values()].reduce((a, b) => a + b, 0);
    await new Promise((r) => setTimeout(r, 2000));
    const windowS = 65; // longer than one event.from long poll (60 s)
    const before = new Map(s.connection.calls);
    const c0 = total();
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const made = total() - c0;
    const byMethod = [...s.connection.calls].map(([m, n]) => [m, n - (before.get(m) ?? 0)] as const).filter(([, n]) => n > 0);
    lines.push(
      `### XAPI calls in steady state, 64 hosts × 1000 VMs, sampling every 1 s, over ${windowS} s`,
      '',
      `| calls | per minute | by method | goal |`,
      '|---|---|---|---|',
      `| ${made} | **${((made * 60) / windowS).toFixed(1)}** | ${byMethod.map(([m, n]) => `${m} ${n}`).join(', ') || 'none'} | the event.from long poll, ≤ 60/min |`,
      '',
    );
  } finally {
    await exp.stop();
    await big.stop();
  }

  // --- 3: an exporter process watching 10 pools × 64 hosts (1000 VMs each)
  const sims: Simulator[] = [];
  try {
    for (let k = 0; k < 10; k++) sims.push(await sim(64, 1000, 100 + k, `127.${50 + 2 * k}.0.1`));
    const dir = mkdtempSync(join(tmpdir(), 'xenha-bench-'));
    const cfgPath = join(dir, 'xenha.yaml');
    const cfg = { listen: '127.0.0.1:0', pools: sims.map((x, k) => poolConfig(x, `pool-${k}`)) };
    writeFileSync(cfgPath, JSON.stringify(cfg)); // JSON is YAML
    // Started as a user starts it: the executable, with its shebang's node flags.
    const child = spawn(
      join(import.meta.dirname, '../bin/xenha.js'),
      ['exporter', '--config', cfgPath, '--listen', '127.0.0.1:19947', '--log-level', 'warn'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env },
      },
    );
    try {
      await until('the 10-pool exporter ready', async () => {
        try {
          return (await fetch('http://127.0.0.1:19947/-/ready')).status === 200;
        } catch {
          return false;
        }
      });
      // Steady state: RSS sampled every 5 s for 30 s (its maximum is the figure), CPU over the window.
      const cpu = () =>
        readFileSync(`/proc/${child.pid}/stat`, 'utf8')
          .split(') ')[1]!
          .split(' ')
          .slice(11, 13)
          .reduce((a, b) => a + Number(b), 0);
      const rssOf = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]);
      await new Promise((r) => setTimeout(r, 5_000));
      const cpu0 = cpu();
      const rssSamples: number[] = [];
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 5_000));
        rssSamples.push(rssOf());
      }
      const cpuShare = (cpu() - cpu0) / 100 / 30; // clock ticks at 100 Hz, over 30 s
      const rssKiB = Math.max(...rssSamples);
      const t = performance.now();
      const scrape = await (await fetch('http://127.0.0.1:19947/metrics')).text();
      const scrapeMs = performance.now() - t;
      const series = scrape.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
      lines.push(
        '### Resident memory, one exporter process, 10 pools × 64 hosts × 1000 VMs, every probe, sampling every 1 s',
        '',
        '| RSS, max of 6 samples over 30 s steady | CPU (one core = 100 %) | series per scrape | one scrape over HTTP | goal |',
        '|---|---|---|---|---|',
        `| **${(rssKiB / 1024).toFixed(1)} MiB** (${rssSamples.map((k) => (k / 1024).toFixed(0)).join(', ')}) | ${(cpuShare * 100).toFixed(0)} % | ${series} | ${scrapeMs.toFixed(1)} ms | ≤ 150 MiB |`,
        '',
      );
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  } finally {
    await Promise.all(sims.map((x) => x.stop()));
  }

  writeSection(
    'exporter',
    [
      '## Exporter',
      '',
      `Command: \`npm run bench -- exporter\` · ${machine()} · ${new Date().toISOString().slice(0, 10)}`,
      '',
      ...lines,
    ].join('\n'),
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}
