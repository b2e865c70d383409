/**
 * The seeded safety campaign: many stories, each drawn from its own seed and played on the injected
 * clock (world.ts), judged (checks.ts) and summed up in one table. Stories run in this thread or in
 * worker threads (each plays its share; the results are the same, the order of arrival is not).
 */
import { Worker } from 'node:worker_threads';
import { judge } from './checks.ts';
import { generateStory, story as storySchema, STORY_KINDS, type Story } from './story.ts';
import { playStory, type Violation } from './world.ts';

/** One story's result, small enough to pass between threads. */
export interface StoryResult {
  seed: number;
  kinds: string[];
  hosts: number;
  haEnabled: boolean;
  deadAfterMs: number;
  violations: Violation[];
  fences: number;
  backBeforeCut: number;
  falseFences: number;
  missedRecoveries: number;
  refusals: Record<string, number>;
  heldBy: string[];
  /** Deaths that lasted long enough for a fence to be due, and of those the ones fenced. */
  due: number;
  fencedDue: number;
  /** Death → dead verdict, minus dead-after. */
  detectionMs: number[];
  /** Death → last protected VM running, minus dead-after; the fence device's own off time in it. */
  recoveries: { ms: number; deviceMs: number; bounded: boolean }[];
  unplaced: number;
  simulatedMs: number;
  wallMs: number;
}

/** The seed of the i-th story of a campaign (so a campaign's story i replays alone with `--replay`). */
export function storySeed(campaignSeed: number, i: number): number {
  return (Math.imul(campaignSeed >>> 0, 1_000_003) + i) >>> 0;
}

export async function playAndJudge(s: Story): Promise<StoryResult> {
  const w = await playStory(s);
  const v = judge(w);
  return {
    seed: s.seed,
    kinds: s.kinds,
    hosts: s.pool.hosts,
    haEnabled: s.pool.haEnabled,
    deadAfterMs: w.deadAfterMs,
    violations: v.violations,
    fences: v.fences,
    backBeforeCut: v.backBeforeCut,
    falseFences: v.falseFences,
    missedRecoveries: v.missedRecoveries,
    refusals: v.refusals,
    heldBy: v.episodes.flatMap((e) => (e.heldBy ? [e.heldBy] : [])),
    due: v.episodes.filter((e) => e.due).length,
    fencedDue: v.episodes.filter((e) => e.due && e.episode.fencedAt !== null).length,
    // Beyond dead-after: what xenha adds to the wait the pool's timeout imposes.
    detectionMs: v.episodes.flatMap((e) => (e.detectionMs === null ? [] : [e.detectionMs - e.deadAfterMs])),
    recoveries: v.episodes.flatMap((e) =>
      e.recoveryMs === null ? [] : [{ ms: e.recoveryMs - e.deadAfterMs, deviceMs: e.deviceMs, bounded: e.bounded }],
    ),
    unplaced: v.episodes.reduce((n, e) => n + e.unplaced, 0),
    simulatedMs: w.endMs,
    wallMs: w.wallMs,
  };
}

export interface CampaignOptions {
  stories: number;
  seed: number;
  /** Worker threads (default 1: this thread). */
  workers?: number;
  onResult?: (r: StoryResult) => void;
}

export async function runCampaign(o: CampaignOptions): Promise<CampaignReport> {
  const started = performance.now();
  const seeds = Array.from({ length: o.stories }, (_, i) => storySeed(o.seed, i));
  const results: StoryResult[] = [];
  const take = (r: StoryResult) => {
    results.push(r);
    o.onResult?.(r);
  };
  const workers = Math.max(1, Math.min(o.workers ?? 1, seeds.length));
  if (workers === 1) for (const seed of seeds) take(await playAndJudge(generateStory(seed)));
  else await inWorkers(seeds, workers, take);
  results.sort((a, b) => seeds.indexOf(a.seed) - seeds.indexOf(b.seed));
  return summarise(o.seed, results, performance.now() - started);
}

/** Plays seeds in worker threads, each taking the next seed when it is done with one. */
function inWorkers(seeds: number[], n: number, take: (r: StoryResult) => void): Promise<void> {
  const url = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
  let next = 0;
  return new Promise((resolve, reject) => {
    let running = n;
    for (let k = 0; k < n; k++) {
      const w = new Worker(url);
      const feed = () => (next < seeds.length ? w.postMessage(seeds[next++]) : void w.terminate());
      w.on('message', (r: StoryResult) => {
        take(r);
        feed();
      });
      w.on('error', (e) => {
        void w.terminate();
        reject(e);
      });
      w.on('exit', () => {
        if (--running === 0) resolve();
      });
      feed();
    }
  });
}

export interface Percentiles {
  n: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

export function percentiles(values: readonly number[]): Percentiles {
  const v = [...values].sort((a, b) => a - b);
  const q = (p: number) => (v.length === 0 ? null : v[Math.min(v.length - 1, Math.ceil(p * v.length) - 1)]!);
  return { n: v.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: v.length === 0 ? null : v[v.length - 1]! };
}

export interface CampaignReport {
  seed: number;
  stories: number;
  kinds: Record<string, number>;
  haOn: number;
  fences: number;
  backBeforeCut: number;
  falseFences: number;
  due: number;
  fencedDue: number;
  missedRecoveries: number;
  lateRecoveries: number;
  violations: { seed: number; check: string; detail: string }[];
  refusals: Record<string, number>;
  heldBy: Record<string, number>;
  unplaced: number;
  detectionMs: Percentiles;
  recoveryMs: Percentiles;
  boundedRecoveryMs: Percentiles;
  simulatedSeconds: number;
  wallSeconds: number;
}

function count(into: Record<string, number>, key: string, n = 1): void {
  into[key] = (into[key] ?? 0) + n;
}

export function summarise(seed: number, results: readonly StoryResult[], wallMs: number): CampaignReport {
  const kinds: Record<string, number> = Object.fromEntries(STORY_KINDS.map((k) => [k, 0]));
  const refusals: Record<string, number> = {};
  const heldBy: Record<string, number> = {};
  for (const r of results) {
    for (const k of r.kinds) count(kinds, k);
    for (const [g, n] of Object.entries(r.refusals)) count(refusals, g, n);
    for (const h of r.heldBy) count(heldBy, h);
  }
  const violations = results.flatMap((r) => r.violations.map((v) => ({ seed: r.seed, ...v })));
  return {
    seed,
    stories: results.length,
    kinds,
    haOn: results.filter((r) => r.haEnabled).length,
    fences: results.reduce((n, r) => n + r.fences, 0),
    backBeforeCut: results.reduce((n, r) => n + r.backBeforeCut, 0),
    falseFences: results.reduce((n, r) => n + r.falseFences, 0),
    due: results.reduce((n, r) => n + r.due, 0),
    fencedDue: results.reduce((n, r) => n + r.fencedDue, 0),
    missedRecoveries: results.reduce((n, r) => n + r.missedRecoveries, 0),
    lateRecoveries: violations.filter((v) => v.check === 'late-recovery').length,
    violations,
    refusals,
    heldBy,
    unplaced: results.reduce((n, r) => n + r.unplaced, 0),
    detectionMs: percentiles(results.flatMap((r) => r.detectionMs)),
    recoveryMs: percentiles(results.flatMap((r) => r.recoveries.map((x) => x.ms))),
    // Held to the bound: xenha's own part, without the device's time to cut the power.
    boundedRecoveryMs: percentiles(results.flatMap((r) => r.recoveries.filter((x) => x.bounded).map((x) => x.ms - x.deviceMs))),
    simulatedSeconds: results.reduce((n, r) => n + r.simulatedMs, 0) / 1000,
    wallSeconds: wallMs / 1000,
  };
}

const s = (ms: number | null) => (ms === null ? '–' : `${(ms / 1000).toFixed(1)} s`);

/** The campaign's table, as `xenha campaign` prints it and BENCHMARKS.md keeps it. */
export function formatTable(r: CampaignReport): string {
  const rows: [string, string][] = [
    ['stories', `${r.stories} (seed ${r.seed}; ${r.haOn} with the pool's HA on, ${r.stories - r.haOn} with xenha-heartbeat)`],
    ['fences', `${r.fences} (of which ${r.backBeforeCut} cut a host that came back after its off was sent)`],
    ['false fences', String(r.falseFences)],
    ['deaths due a fence', `${r.due} (fenced ${r.fencedDue}; held back: ${Object.values(r.heldBy).reduce((a, b) => a + b, 0)})`],
    ['missed recoveries', String(r.missedRecoveries)],
    ['late recoveries', String(r.lateRecoveries)],
    ['other violations', String(r.violations.length - r.falseFences - r.missedRecoveries - r.lateRecoveries)],
    ['protected VMs unplaced', `${r.unplaced} (no capacity, or a local disk: the planner says which)`],
    ...Object.entries(r.heldBy)
      .sort()
      .map(([k, n]) => [`held back: ${k}`, String(n)] as [string, string]),
    ...Object.entries(r.refusals)
      .sort()
      .map(([k, n]) => [`refusals: ${k}`, String(n)] as [string, string]),
    [
      'detection (death → dead) − dead-after',
      `p50 ${s(r.detectionMs.p50)}, p90 ${s(r.detectionMs.p90)}, p99 ${s(r.detectionMs.p99)}, max ${s(r.detectionMs.max)} (n ${r.detectionMs.n})`,
    ],
    [
      'recovery (death → last VM running) − dead-after',
      `p50 ${s(r.recoveryMs.p50)}, p90 ${s(r.recoveryMs.p90)}, p99 ${s(r.recoveryMs.p99)}, max ${s(r.recoveryMs.max)} (n ${r.recoveryMs.n})`,
    ],
    [
      '  of which held to the 5 s bound, less the device',
      `p50 ${s(r.boundedRecoveryMs.p50)}, p90 ${s(r.boundedRecoveryMs.p90)}, p99 ${s(r.boundedRecoveryMs.p99)}, max ${s(r.boundedRecoveryMs.max)} (n ${r.boundedRecoveryMs.n})`,
    ],
    [
      'story kinds',
      Object.entries(r.kinds)
        .map(([k, n]) => `${k} ${n}`)
        .join(', '),
    ],
    ['time', `${r.simulatedSeconds.toFixed(0)} s simulated in ${r.wallSeconds.toFixed(1)} s`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `| ${k.padEnd(w)} | ${v} |`);
  return [`| ${'what'.padEnd(w)} | figure |`, `|${'-'.repeat(w + 2)}|--------|`, ...lines].join('\n');
}

/** Parses a story given as JSON (what `--replay FILE` reads). */
export function parseStory(text: string): Story {
  return storySchema.parse(JSON.parse(text));
}
