/**
 * CLI start-up benchmark: the wall time of `xenha --help`, `xenha plan --input …` (a snapshot file)
 * and `xenha fault state` (against a simulator started here), each beside `node -e 0` in the same
 * run: 2 warm-up rounds, then the median of 10, the commands interleaved round by round so that the
 * machine's noise hits all of them alike. Goal: each ≤ 5× node's bare start-up. It runs the built
 * CLI (bin/xenha.js runs dist/) and builds nothing: `npm run build` first.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { generatePoolSpec } from '../simulator/pool-spec.ts';
import { startSimulator } from '../simulator/simulator.ts';
import { machine, writeSection } from './report.ts';

const ROOT = join(import.meta.dirname, '..');
const WARMUP = 2;
const ROUNDS = 10;
const GOAL = 5;

/** CPU time (user + system, ms) of this process's children that have exited, where Linux tells it. */
function childrenCpuMs(): number | undefined {
  try {
    // /proc/self/stat after the command name: fields 16 and 17 (cutime, cstime), in clock ticks of 10 ms.
    const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return undefined;
  }
}

/** One run of `node <args>` from the repository root: its wall time and CPU time, in ms. */
function once(args: string[]): Promise<{ wallMs: number; cpuMs: number | undefined }> {
  return new Promise((resolve, reject) => {
    const cpu0 = childrenCpuMs();
    const t0 = performance.now();
    const p = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stdout.resume();
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      const wallMs = performance.now() - t0;
      const cpu1 = childrenCpuMs();
      if (code !== 0) reject(new Error(`node ${args.join(' ')} exited with ${code}: ${stderr.trim()}`));
      else resolve({ wallMs, cpuMs: cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0 });
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function benchCli(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('the CLI is not built (no dist/cli/main.js): run `npm run build` first');
  const stateDir = mkdtempSync(join(tmpdir(), 'xenha-bench-cli-'));
  const sim = await startSimulator({
    spec: generatePoolSpec({ hosts: 4, vms: 16, seed: 1 }),
    port: 0,
    controlPort: 0,
    addressBase: '127.0.0.1',
    password: 'bench',
    stateDir,
    log: pino({ level: 'silent' }),
  });
  const commands = [
    { label: '`node -e 0`', args: ['-e', '0'] },
    { label: '`xenha --help`', args: ['bin/xenha.js', '--help'] },
    {
      label: '`xenha plan --input deploy/planner-snapshot.example.json`',
      args: ['bin/xenha.js', 'plan', '--input', 'deploy/planner-snapshot.example.json'],
    },
    { label: '`xenha fault state --control <simulator>`', args: ['bin/xenha.js', 'fault', 'state', '--control', sim.info().controlUrl] },
  ].map((c) => ({ ...c, wall: [] as number[], cpu: [] as number[] }));
  try {
    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      // Interleaved, and each round starting one further along, so no command always runs first.
      for (let k = 0; k < commands.length; k++) {
        const c = commands[(round + k) % commands.length]!;
        const r = await once(c.args);
        if (round < WARMUP) continue;
        c.wall.push(r.wallMs);
        if (r.cpuMs !== undefined) c.cpu.push(r.cpuMs);
      }
    }
  } finally {
    await sim.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }

  const node = median(commands[0]!.wall);
  const rows = commands.map((c, i) => {
    const wall = median(c.wall);
    const ratio = wall / node;
    const cpu = c.cpu.length === c.wall.length ? `${median(c.cpu).toFixed(0)} ms` : 'n/a';
    return `| ${c.label} | **${wall.toFixed(0)} ms** | ${Math.min(...c.wall).toFixed(0)}–${Math.max(...c.wall).toFixed(0)} ms | ${cpu} | ${i === 0 ? '1×' : `**${ratio.toFixed(2)}×**`} | ${i === 0 ? '' : `≤ ${GOAL}×${ratio <= GOAL ? '' : ' — MISSED'}`} |`;
  });
  const lines = [
    `### Start-up, wall time (median of ${ROUNDS} after ${WARMUP} warm-ups, interleaved), beside bare node`,
    '',
    '| command | wall time | range | CPU (user + system, median) | × `node -e 0` | goal |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    "Each command is `node bin/xenha.js …` (the compiled CLI in dist/, without the shebang's V8 flags), started from the",
    "repository root; `fault state` asks a simulated pool (4 hosts, 16 VMs) started in the benchmark's process. CPU",
    "time is the children's, from /proc/self/stat, in 10 ms steps.",
    '',
  ];
  writeSection(
    'cli',
    [
      '## CLI start-up',
      '',
      `Command: \`npm run build && npm run bench -- cli\` · ${machine()} · ${new Date().toISOString().slice(0, 10)}`,
      '',
      ...lines,
    ].join('\n'),
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}
