/**
 * Crash → dead on a pool without HA (xenha-heartbeat) beside the same pool with HA on (xhad's
 * statefile), in one run (issue 10). Each run starts two simulated pools from one spec (4 hosts, 16 VMs,
 * seed = run): one with HA on and the simulator's default timing (T = 30 s), one with HA off and the
 * simulator running the real xenha-heartbeat daemon per host with its documented defaults (interval 2 s,
 * peer window 8 s); one exporter watches both with a user's DEFAULT timing (no `timing` key) and all four
 * probes, `storage-statefile` given only its device (the statefile, or the heartbeat file). Once every
 * host of both pools is healthy on both paths, the same non-master host (seeded) crashes in both pools at
 * the same instant (after a seeded 0–2 s delay, so the crash falls anywhere in the writers' intervals);
 * latency = wall-clock time from the crash to the exporter's first `dead` for it, polled every 20 ms.
 * Any other host of either pool reaching `dead` is a problem. Real time (the daemons run on the wall
 * clock); every wait is bounded; every pool, daemon and the exporter are stopped in a finally.
 *
 * Environment (for development; the published figures use the defaults):
 *   XENHA_BENCH_HA_OFF_RUNS  runs (default 5)
 */
import { pino } from 'pino';
import { unsafeUniformIntDistribution, xoroshiro128plus } from 'pure-rand';
import { exporterConfig } from '../exporter/config.ts';
import { startExporter, type RunningExporter } from '../exporter/exporter.ts';
import { routeLibraryLogs } from '../io/library-logs.ts';
import { generatePoolSpec } from '../simulator/pool-spec.ts';
import { startSimulator, type Simulator } from '../simulator/simulator.ts';
import { machine, tree, writeSection } from './report.ts';
import { benchPoolInput } from './pool-config.ts';

const PASSWORD_ENV = 'XENHA_BENCH_PASSWORD';
const PASSWORD = 'bench';
const HOSTS = 4;
const VMS = 16;
const BASES = { on: '127.0.84.1', off: '127.0.88.1' } as const;
const WARMUP_TIMEOUT_MS = 180_000;
const DEAD_TIMEOUT_MS = 120_000;
const POLL_MS = 20;
const RUNS = (() => {
  const v = process.env.XENHA_BENCH_HA_OFF_RUNS;
  if (v === undefined || v.trim() === '') return 5;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`XENHA_BENCH_HA_OFF_RUNS must be a positive integer: ${v}`);
  return n;
})();

type Side = keyof typeof BASES;
const SIDES: Side[] = ['on', 'off'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

interface RunResult {
  latencyMs: Record<Side, number>;
  problems: string[];
}

async function oneRun(run: number): Promise<RunResult> {
  const spec = generatePoolSpec({ hosts: HOSTS, vms: VMS, seed: run + 1 });
  const sims: Partial<Record<Side, Simulator>> = {};
  let exporter: RunningExporter | undefined;
  try {
    for (const side of SIDES)
      sims[side] = await startSimulator({
        spec: { ...spec, haEnabled: side === 'on' },
        port: 0,
        controlPort: 0,
        addressBase: BASES[side],
        password: PASSWORD,
        ...(side === 'off' && { heartbeat: {} }),
      });
    const pool = (side: Side) => benchPoolInput(sims[side]!, `ha-${side}`, PASSWORD_ENV);
    const config = exporterConfig.parse({ listen: '127.0.0.1:0', pools: SIDES.map(pool) });
    exporter = await startExporter(config, pino({ level: 'silent' }));
    const samplers = Object.fromEntries(SIDES.map((s, i) => [s, exporter!.samplers[i]!])) as Record<
      Side,
      RunningExporter['samplers'][number]
    >;
    const hostState = (side: Side, uuid: string) => samplers[side].state.memory?.hosts[uuid];
    const uuids = spec.hosts.map((h) => sims.on!.pool.host(h.name).built.uuid);
    await until(
      'every host of both pools healthy on both paths',
      () =>
        SIDES.every((s) =>
          uuids.every((u) => {
            const h = hostState(s, u);
            return h?.state === 'healthy' && h.rule === 'both-paths-up';
          }),
        ),
      WARMUP_TIMEOUT_MS,
    );
    const rng = xoroshiro128plus(run + 1);
    const candidates = spec.hosts.map((h) => h.name).filter((n) => sims.on!.pool.host(n) !== sims.on!.pool.master);
    const victim = candidates[unsafeUniformIntDistribution(0, candidates.length - 1, rng)]!;
    await sleep(unsafeUniformIntDistribution(0, 2000, rng));
    const uuid = sims.on!.pool.host(victim).built.uuid;
    const crashedAt = performance.now();
    for (const s of SIDES) sims[s]!.pool.crash(sims[s]!.pool.host(victim));
    const latencyMs: Partial<Record<Side, number>> = {};
    const problems: string[] = [];
    await until(
      `${victim} dead in both pools`,
      () => {
        for (const s of SIDES) {
          if (latencyMs[s] === undefined && hostState(s, uuid)?.state === 'dead') latencyMs[s] = performance.now() - crashedAt;
          for (const u of uuids)
            if (u !== uuid && hostState(s, u)?.state === 'dead') {
              const p = `run ${run + 1}: HA ${s}: bystander ${u} dead`;
              if (!problems.includes(p)) problems.push(p);
            }
        }
        return SIDES.every((s) => latencyMs[s] !== undefined);
      },
      DEAD_TIMEOUT_MS,
    );
    return { latencyMs: latencyMs as Record<Side, number>, problems };
  } finally {
    await exporter?.stop();
    await Promise.all(SIDES.map((s) => sims[s]?.stop() ?? Promise.resolve()));
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function benchHaOffDetection(): Promise<void> {
  process.env[PASSWORD_ENV] = PASSWORD;
  const restoreLogs = routeLibraryLogs(pino({ level: 'silent' }));
  const started = performance.now();
  const results: RunResult[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const r = await oneRun(run);
      results.push(r);
      process.stdout.write(
        `run ${run + 1}: crash → dead, HA on ${secs(r.latencyMs.on)}, HA off (xenha-heartbeat) ${secs(r.latencyMs.off)}\n`,
      );
      for (const p of r.problems) process.stdout.write(`  PROBLEM: ${p}\n`);
    }
  } finally {
    restoreLogs();
  }
  const defaults = exporterConfig.parse({ pools: [{ name: 'x', urls: ['http://127.0.0.1'], passwordEnv: PASSWORD_ENV }] }).pools[0]!.timing;
  const row = (side: Side, what: string) => {
    const xs = results.map((r) => r.latencyMs[side]);
    return `| ${what} | ${secs(median(xs))} | ${secs(Math.min(...xs))} | ${secs(Math.max(...xs))} |`;
  };
  const problems = results.flatMap((r) => r.problems);
  const body = [
    '## Crash → dead with HA off (xenha-heartbeat) beside HA on',
    '',
    `Command: \`npm run bench -- ha-off-detection\` · ${machine()} · ${tree()} · ${new Date().toISOString().slice(0, 10)} · ` +
      `${RUNS} runs, ${((performance.now() - started) / 1000).toFixed(0)} s real`,
    '',
    `Two simulated ${HOSTS}-host pools from one spec per run, side by side in real time: HA on (xhad's statefile, T = 30 s) and HA off ` +
      "with the real xenha-heartbeat daemon on every host (its defaults: interval 2 s, peer window 8 s). One exporter watches both with a user's " +
      `default timing (sample interval ${defaults.sampleInterval / 1000} s; dead-after: the pool's HA timeout with HA on, 30 s with HA off, so 30 s for both here) and all four probes. ` +
      'The same non-master host crashes in both pools at the same instant; latency = wall clock from the crash to the first `dead`.',
    '',
    '| pool | median | best | worst |',
    '|---|---|---|---|',
    row('on', 'HA on (xhad statefile)'),
    row('off', 'HA off (xenha-heartbeat)'),
    '',
    `Goal: dead within dead-after + 2 s (32 s) on both. Other hosts ever dead: ${problems.length === 0 ? 'none' : problems.join('; ')}.`,
  ].join('\n');
  writeSection('ha-off-detection', body);
  process.stdout.write(`${body}\n`);
  if (problems.length > 0) throw new Error(`bystanders reached dead: ${problems.join('; ')}`);
}
