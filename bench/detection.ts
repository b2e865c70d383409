/**
 * Detection-latency benchmark (issue 9): how long the exporter, with a user's DEFAULT timing (no
 * `timing` key at all) and all four probes (network-tcp, network-xapi, storage-xapi and
 * storage-statefile reading the simulator's statefile with its default options), takes to reach the
 * right verdict after a fault, against a 4-host simulated pool with HA on, for T = 30 s and T = 10 s.
 *
 * Each run is one simulator (its own seed) and one PoolSampler sharing an injected clock: the
 * simulator with autoTick off is stepped tick by tick, a sampling round runs once per sampleInterval
 * of simulated time (read from the parsed config), and before each round real time passes until the
 * exporter's XAPI mirror, fed by events over loopback in real time, has caught up with the pool (see
 * SteppedPool). Every wait is bounded in rounds (simulated time) and in real time. The pool spec is
 * generatePoolSpec's with `haTimeout` set to T (the simulator derives its timing from it). In each run, in order, on distinct hosts, each fault injected at
 * a random offset (seeded PRNG) within lcm(sampleInterval, statefile interval) after a round that saw
 * every host healthy:
 *   1. network cut on all homes of a non-master host → network_isolated; held T + 10 s after the
 *      verdict, then healed → healthy;
 *   2. storage cut on all legs of another non-master host → storage_lost; held T + 10 s, healed;
 *   3. crash of a third non-master host → dead; healed (it reboots);
 *   4. crash of the master → the old master dead.
 * Latency = simulated time from the fault to the first round at which the host is in the target
 * state. On a one-path cut, every round from the fault to the end of the hold is checked: a host
 * ever `dead` fails the benchmark (after its figures are written), `suspect` is counted.
 *
 * Environment (for development; the published figures use the defaults):
 *   XENHA_BENCH_DETECTION_RUNS      runs per HA timeout (default 10)
 *   XENHA_BENCH_DETECTION_TIMEOUTS  HA timeouts in seconds, comma-separated (default "30,10")
 *   XENHA_BENCH_DETECTION_TRACE     set (to 1): print, from each fault to its verdict, every round's
 *                                   state, paths, rule and samples of the faulted host (on stderr)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { unsafeUniformIntDistribution, xoroshiro128plus, type RandomGenerator } from 'pure-rand';
import type { HostState } from '../core/classify/state-machine.ts';
import { statefileIntervalMs } from '../core/model/ha-timeouts.ts';
import { exporterConfig } from '../exporter/config.ts';
import { PoolSampler } from '../exporter/sampler.ts';
import { routeLibraryLogs } from '../io/library-logs.ts';
import { generatePoolSpec } from '../simulator/pool-spec.ts';
import type { HostRuntime } from '../simulator/pool.ts';
import { startSimulator, type Simulator } from '../simulator/simulator.ts';
import { machine, tree, writeSection } from './report.ts';
import { benchPoolInput } from './pool-config.ts';

const PASSWORD_ENV = 'XENHA_BENCH_PASSWORD';
const PASSWORD = 'bench';
const HOSTS = 4;
const VMS = 16;
const ADDRESS_BASE = '127.0.80.1';
/** Where the injected clock starts (ms): a multiple of every tick and interval, and not 0. */
const CLOCK_START = 1_000_000;
/** Real time between rounds, for what arrives over XAPI in real time. */
const YIELD_MS = 5;
/** Real time the exporter's mirror may take to catch up with the simulator before a round. */
const SYNC_TIMEOUT_MS = 1000;
/** Real time any one wait may take. */
const REAL_TIMEOUT_MS = 60_000;

function envList(name: string, fallback: number[]): number[] {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return fallback;
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x <= 0)) throw new Error(`${name} must be positive integers, comma-separated: ${v}`);
  return xs;
}

const RUNS = envList('XENHA_BENCH_DETECTION_RUNS', [10])[0]!;
const HA_TIMEOUTS = envList('XENHA_BENCH_DETECTION_TIMEOUTS', [30, 10]);
const TRACE = (process.env.XENHA_BENCH_DETECTION_TRACE ?? '') !== '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

type Scenario = 'crash' | 'master-crash' | 'network-cut' | 'storage-cut' | 'heal';
const SCENARIOS: { key: Scenario; what: string; target: HostState }[] = [
  { key: 'crash', what: 'host crash (non-master)', target: 'dead' },
  { key: 'master-crash', what: 'master crash', target: 'dead' },
  { key: 'network-cut', what: 'network cut, every home', target: 'network_isolated' },
  { key: 'storage-cut', what: 'storage cut, every leg', target: 'storage_lost' },
  { key: 'heal', what: 'heal after the network cut', target: 'healthy' },
];

interface RunResult {
  run: string;
  latencyMs: Partial<Record<Scenario, number>>;
  /**
   * The states the faulted host went through, in order, from the one it was in at the fault to the
   * verdict (for a one-path cut, to the end of the hold).
   */
  states: Partial<Record<Scenario, HostState[]>>;
  /** Other hosts' states other than healthy while a fault was in place ("host-02 degraded during master-crash"). */
  bystanders: Set<string>;
  problems: string[];
  /** Rounds that ran before the exporter's mirror had caught up (see SteppedPool). */
  syncTimeouts: number;
  rounds: number;
}

/**
 * One simulator and one sampler on a shared injected clock. XAPI events travel in real time (and
 * xen-api waits 200 ms of real time between two event.from calls), while a round of simulated time
 * takes a few ms of real time: left alone, the exporter's mirror would lag the simulated pool by
 * many rounds. So before each round the pool is stepped to just before the round's time, then real
 * time passes until the exporter has asked for events past every change made so far (its latest
 * event.from names a token at or after them; seen by wrapping the simulator's long poll), then the
 * tick at the round's time runs and the round: a change is seen by the first round more than a tick
 * after it, as with a real pool (events within a few hundred ms, rounds every second).
 */
class SteppedPool {
  private roundAt: number;
  readonly interval: number;
  readonly tickMs: number;
  /** The exporter's latest event.from: the classes and the generation it asked for events after. */
  private lastPoll: { classes: readonly string[]; since: number } | null = null;
  /** Rounds at which the mirror had not caught up within SYNC_TIMEOUT_MS (the connection down, or slow). */
  syncTimeouts = 0;
  rounds = 0;

  constructor(
    /** The injected clock both read (ms). */
    private readonly clock: { t: number },
    readonly sim: Simulator,
    readonly sampler: PoolSampler,
  ) {
    this.interval = sampler.config.timing.sampleInterval;
    this.tickMs = sim.pool.timing.tickMs;
    this.roundAt = CLOCK_START + this.interval;
    const db = sim.pool.built.db;
    const waitForEvents = db.waitForEvents.bind(db);
    db.waitForEvents = (classes, since, timeoutMs, signal) => {
      this.lastPoll = { classes, since };
      return waitForEvents(classes, since, timeoutMs, signal);
    };
  }

  get t(): number {
    return this.clock.t;
  }

  state(h: HostRuntime): HostState | undefined {
    return this.sampler.state.memory?.hosts[h.built.uuid]?.state;
  }

  rule(h: HostRuntime): string | undefined {
    return this.sampler.state.memory?.hosts[h.built.uuid]?.rule;
  }

  /** Ticks the simulator on its grid up to `x` (a tick at `x` included), then sets the clock to `x`. */
  private async stepTo(x: number): Promise<void> {
    for (;;) {
      const nextTick = CLOCK_START + (Math.floor((this.t - CLOCK_START) / this.tickMs) + 1) * this.tickMs;
      if (nextTick > x) break;
      this.clock.t = nextTick;
      await this.sim.step(nextTick);
    }
    this.clock.t = x;
  }

  /** Whether the simulator holds changes the exporter has not asked for yet. */
  private behind(): boolean {
    if (this.sampler.connection.status !== 'connected') return false;
    // Connected but not polling yet: the initial fetch is done, the first event.from comes 200 ms later.
    if (this.lastPoll === null) return true;
    return this.sim.pool.built.db.eventsSince(this.lastPoll.classes, this.lastPoll.since).events.length > 0;
  }

  /** Real time passes until the exporter's mirror holds every change made so far (bounded). */
  private async syncEvents(): Promise<void> {
    const deadline = Date.now() + SYNC_TIMEOUT_MS;
    while (this.behind()) {
      if (Date.now() > deadline) {
        this.syncTimeouts++;
        return;
      }
      await sleep(2);
    }
  }

  /** The next sampling round (see the class comment). Returns its time. */
  async round(): Promise<number> {
    const at = this.roundAt;
    await this.stepTo(at - 1);
    await this.syncEvents();
    await this.stepTo(at);
    await this.sampler.round();
    this.roundAt += this.interval;
    this.rounds++;
    await sleep(YIELD_MS);
    return at;
  }

  /** Runs the rounds due up to `at` (inclusive), then ticks to `at`: the moment a fault is injected. */
  async advanceTo(at: number): Promise<void> {
    while (this.roundAt <= at) await this.round();
    await this.stepTo(at);
  }

  /** Rounds until `done` holds after one; `each` runs after every round. Bounded in simulated and real time. Returns the round's time. */
  async until(what: string, done: () => boolean, maxSimMs: number, each: () => void = () => {}): Promise<number> {
    const simDeadline = this.t + maxSimMs;
    const realDeadline = Date.now() + REAL_TIMEOUT_MS;
    for (;;) {
      const at = await this.round();
      each();
      if (done()) return at;
      if (this.t > simDeadline || Date.now() > realDeadline)
        throw new Error(`${what}: not reached within ${maxSimMs / 1000} s of simulated time or ${REAL_TIMEOUT_MS / 1000} s of real time`);
    }
  }
}

async function oneRun(haTimeoutS: number, run: number): Promise<RunResult> {
  const T = haTimeoutS * 1000;
  const name = `T=${haTimeoutS}s run ${run + 1} (pool seed ${run + 1})`;
  const result: RunResult = { run: name, latencyMs: {}, states: {}, bystanders: new Set(), problems: [], syncTimeouts: 0, rounds: 0 };
  const rng: RandomGenerator = xoroshiro128plus(haTimeoutS * 1000 + run);
  const stateDir = mkdtempSync(join(tmpdir(), 'xenha-bench-detection-'));
  let sim: Simulator | undefined;
  let sampler: PoolSampler | undefined;
  let stepped: SteppedPool | undefined;
  try {
    const clock = { t: CLOCK_START };
    const now = () => clock.t;
    sim = await startSimulator({
      spec: { ...generatePoolSpec({ hosts: HOSTS, vms: VMS, seed: run + 1 }), haTimeout: haTimeoutS },
      port: 0,
      controlPort: 0,
      password: PASSWORD,
      addressBase: ADDRESS_BASE,
      stateDir,
      autoTick: false,
      now,
      log: pino({ level: 'silent' }),
    });
    const config = exporterConfig.parse({ pools: [benchPoolInput(sim, 'sim', PASSWORD_ENV)] }).pools[0]!;
    sampler = new PoolSampler(config, pino({ level: 'silent' }), now);
    const p = new SteppedPool(clock, sim, sampler);
    stepped = p;
    const pool = sim.pool;
    sampler.connection.start();
    const realDeadline = Date.now() + REAL_TIMEOUT_MS;
    while (sampler.connection.snapshot() === null) {
      if (Date.now() > realDeadline) throw new Error(`${name}: the exporter did not connect to XAPI within ${REAL_TIMEOUT_MS / 1000} s`);
      await sleep(20);
    }
    const hosts = pool.hosts;
    // Healthy because both paths were seen up on every home (not the `initial` healthy of a host not
    // yet classified): every probe has watched every host, the slots have been seen advancing.
    const allHealthy = () => hosts.every((h) => p.state(h) === 'healthy' && p.rule(h) === 'both-paths-up');
    const settleBound = 3 * T + 60_000;
    const span = (() => {
      const a = p.interval;
      const b = pool.timing.statefileIntervalMs;
      return (a * b) / gcd(a, b);
    })();
    /** A fault time: a random offset within the span after the round that saw every host healthy. */
    const faultTime = () => p.t + unsafeUniformIntDistribution(0, span - 1, rng);

    await p.until(`${name}: every host healthy at start`, allHealthy, settleBound);

    const master = pool.master;
    const others = hosts.filter((h) => h !== master);
    // A seeded shuffle of the non-masters: network cut, storage cut, crash.
    for (let i = others.length - 1; i > 0; i--) {
      const j = unsafeUniformIntDistribution(0, i, rng);
      [others[i], others[j]] = [others[j]!, others[i]!];
    }
    const [netHost, storageHost, crashHost] = others as [HostRuntime, HostRuntime, HostRuntime];

    /** Run after every round of a scenario: the faulted host's states in order, any other host not healthy. */
    const watcher = (scenario: Scenario, host: HostRuntime) => {
      const seen: HostState[] = [];
      result.states[scenario] = seen;
      return () => {
        for (const h of hosts) {
          const s = p.state(h);
          if (h === host) {
            if (s !== undefined && seen.at(-1) !== s) seen.push(s);
          } else if (s !== 'healthy') result.bystanders.add(`${h.built.name} ${s} during ${scenario}`);
        }
      };
    };

    /** Prints what decided the host's state this round (XENHA_BENCH_DETECTION_TRACE). */
    const trace = (scenario: Scenario, host: HostRuntime, faultAt: number) => {
      const m = p.sampler.state.memory?.hosts[host.built.uuid];
      if (!TRACE || !m) return;
      const samples = m.lastSamples.map((x) => `${x.probe}/${x.path}/${x.home}=${x.up === null ? '?' : x.up ? 'up' : 'down'}`).join(' ');
      process.stderr.write(
        `${name} ${scenario} +${((p.t - faultAt) / 1000).toFixed(2)} s ${host.built.name}: ${m.state} (network ${m.network}, storage ${m.storage}; ${m.lastRawDecision.rule}) ${samples}\n`,
      );
    };

    /** Injects a fault at a random offset, then runs rounds until the host is in `target`. Returns the verdict's time. */
    const measure = async (
      scenario: Scenario,
      host: HostRuntime,
      target: HostState,
      inject: () => void,
      each = watcher(scenario, host),
    ) => {
      const faultAt = faultTime();
      await p.advanceTo(faultAt);
      each(); // the state at the fault
      inject();
      const verdictAt = await p.until(
        `${name}: ${scenario} of ${host.built.name} → ${target}`,
        () => p.state(host) === target,
        settleBound,
        () => {
          each();
          trace(scenario, host, faultAt);
        },
      );
      result.latencyMs[scenario] = verdictAt - faultAt;
      return verdictAt;
    };

    /** A one-path cut: the verdict, then T + 10 s more, every round watched; then healed at a random offset. */
    const oneCut = async (scenario: 'network-cut' | 'storage-cut', host: HostRuntime, target: HostState, path: 'network' | 'storage') => {
      const each = watcher(scenario, host);
      const verdictAt = await measure(scenario, host, target, () => pool.pathDown(host, path), each);
      const holdUntil = verdictAt + T + 10_000;
      await p.until(`${name}: ${scenario} held`, () => p.t >= holdUntil, T + 20_000, each);
      if (scenario === 'network-cut') await measure('heal', host, 'healthy', () => pool.heal(host));
      else {
        await p.advanceTo(faultTime());
        pool.heal(host);
      }
      await p.until(`${name}: every host healthy after ${scenario}`, allHealthy, settleBound);
    };

    await oneCut('network-cut', netHost, 'network_isolated', 'network');
    await oneCut('storage-cut', storageHost, 'storage_lost', 'storage');

    await measure('crash', crashHost, 'dead', () => pool.crash(crashHost));
    await p.advanceTo(faultTime());
    pool.heal(crashHost);
    await p.until(`${name}: every host healthy after the crash`, allHealthy, settleBound);

    await measure('master-crash', master, 'dead', () => pool.crashMaster());
  } catch (e) {
    result.problems.push((e as Error).message);
  } finally {
    result.syncTimeouts = stepped?.syncTimeouts ?? 0;
    result.rounds = stepped?.rounds ?? 0;
    await sampler?.stop();
    await sim?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
  return result;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Distinct values with their counts, most frequent first: "a ×3; b ×1". */
function tally(xs: string[]): string {
  const counts = new Map<string, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([x, n]) => `${x} ×${n}`)
    .join('; ');
}

/** One HA timeout's runs: the table rows, and the runs where a one-path cut reached dead. */
function summarise(T: number, results: RunResult[]): { lines: string[]; deadOnOnePath: string[] } {
  const rows = SCENARIOS.map((s) => {
    const xs = results.map((r) => r.latencyMs[s.key]).filter((x): x is number => x !== undefined);
    const goalMs = s.target === 'dead' ? (T + 2) * 1000 : s.key === 'heal' ? undefined : 15_000;
    const goal = goalMs === undefined ? '' : s.target === 'dead' ? `≤ ${T + 2} s (xhad: ${T} s)` : '≤ 15 s';
    if (xs.length === 0) return `| ${s.what} | ${s.target} | — | — | 0 / ${results.length} | ${goal} | |`;
    const worst = Math.max(...xs);
    const met = goalMs === undefined ? '' : worst <= goalMs && xs.length === results.length ? 'yes' : '**no**';
    return `| ${s.what} | ${s.target} | ${secs(median(xs))} | **${secs(worst)}** | ${xs.length} / ${results.length} | ${goal} | ${met} |`;
  });
  const ways = SCENARIOS.map((s) => {
    const seqs = results.map((r) => r.states[s.key]).filter((x): x is HostState[] => x !== undefined);
    return `| ${s.what} | ${tally(seqs.map((q) => q.join(' → ')))} |`;
  });
  const deadOnOnePath: string[] = [];
  const cutRows = (['network-cut', 'storage-cut'] as const).map((c) => {
    const checked = results.filter((r) => r.states[c] !== undefined);
    const dead = checked.filter((r) => r.states[c]!.includes('dead'));
    const suspect = checked.filter((r) => r.states[c]!.includes('suspect'));
    for (const r of dead) deadOnOnePath.push(`${r.run}: the host was dead on a one-path cut (${c}: ${r.states[c]!.join(' → ')})`);
    return `| ${c} | ${checked.length} | **${dead.length}** | ${suspect.length} |`;
  });
  const bystanders = [...new Set(results.flatMap((r) => [...r.bystanders].map((b) => b.replace(/^host-\d+ /, ''))))];
  const lines = [
    `### HA timeout T = ${T} s (${results.length} runs; statefile interval ${statefileIntervalMs(T) / 1000} s, master election after ${T} s)`,
    '',
    '| fault | target state | median | worst | runs reached | goal (worst) | met |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `One-path cuts, every round from the fault to ${T + 10} s after the verdict (goal: never dead):`,
    '',
    '| cut | runs | runs ever dead | runs ever suspect |',
    '|---|---|---|---|',
    ...cutRows,
    '',
    "The faulted host's states, from the fault to the verdict (one-path cuts: to the end of the hold), × runs:",
    '',
    '| fault | states |',
    '|---|---|',
    ...ways,
    '',
    `Other hosts while a fault was in place: ${bystanders.length === 0 ? 'healthy in every round' : bystanders.join('; ')}.`,
    '',
  ];
  return { lines, deadOnOnePath };
}

export async function benchDetection(): Promise<void> {
  process.env[PASSWORD_ENV] = PASSWORD;
  // xen-api prints connection errors (the master crash) straight to the console: routed into a silent log, as the exporter does.
  const restoreLogs = routeLibraryLogs(pino({ level: 'silent' }));
  const started = performance.now();
  const sections: string[] = [];
  const deadOnOnePath: string[] = [];
  const problems: string[] = [];
  let syncTimeouts = 0;
  // The defaults, as a user gets them (for the report).
  const defaults = exporterConfig.parse({ pools: [{ name: 'x', urls: ['http://127.0.0.1'], passwordEnv: PASSWORD_ENV }] }).pools[0]!.timing;
  try {
    for (const T of HA_TIMEOUTS) {
      const results: RunResult[] = [];
      for (let run = 0; run < RUNS; run++) {
        const t0 = performance.now();
        const r = await oneRun(T, run);
        results.push(r);
        syncTimeouts += r.syncTimeouts;
        const lat = SCENARIOS.map((s) => {
          const ms = r.latencyMs[s.key];
          return `${s.key} ${ms === undefined ? '—' : secs(ms)}`;
        }).join(', ');
        const real = ((performance.now() - t0) / 1000).toFixed(1);
        const lagging = r.syncTimeouts > 0 ? `, ${r.syncTimeouts} rounds before the mirror caught up` : '';
        process.stdout.write(`${r.run}: ${lat} (${r.rounds} rounds, ${real} s real${lagging})\n`);
        for (const [scenario, seen] of Object.entries(r.states)) process.stdout.write(`  ${scenario}: ${seen.join(' → ')}\n`);
        for (const b of r.bystanders) process.stdout.write(`  ${b}\n`);
        for (const p of r.problems) {
          process.stdout.write(`  PROBLEM: ${p}\n`);
          problems.push(p);
        }
      }
      const s = summarise(T, results);
      sections.push(...s.lines);
      deadOnOnePath.push(...s.deadOnOnePath);
    }
  } finally {
    restoreLogs();
  }
  const realS = (performance.now() - started) / 1000;
  const body = [
    '## Detection latency',
    '',
    `Command: \`npm run bench -- detection\` · ${machine()} · ${new Date().toISOString().slice(0, 10)} · ${tree()} · ${realS.toFixed(0)} s of real time`,
    '',
    `The exporter with a user's default timing (no \`timing\` key: a round every ${defaults.sampleInterval / 1000} s, ${defaults.confirmSamples} rounds to confirm a`,
    'state, dead-after and the statefile stall time their defaults) and all four probes (`storage-statefile` given only its',
    `device), against a simulated pool of ${HOSTS} hosts × ${VMS} VMs with HA on (tick 250 ms, boot 3 s). The simulator and the`,
    "sampler share an injected clock; the sampler talks XAPI for real over loopback, and each round waits until the exporter's",
    'mirror holds every change the pool made up to the previous tick. In each run (its own pool seed), in turn on three',
    'distinct non-master hosts and then the master, each fault comes at a seeded random offset within the sampling and',
    'statefile intervals; latency is the simulated time from the fault to the first round that shows the target state.',
    'Each one-path cut is held T + 10 s past its verdict, every round checked.',
    '',
    ...sections,
    'Reading the figures:',
    '',
    "- `dead` is counted from the last evidence of life (the last round whose connect succeeded, the slot's last change, the",
    "  peers' last receipt), which may precede the fault by up to a round: so a crash can read `dead` a little under T after",
    '  the fault, and never sooner than T after the last life shown. xhad itself drops a silent host from its liveset',
    "  T + 18 s after its last heartbeat (its fault handler's wait) and xapi writes `live = false` up to 20 s later.",
    "- A crashed host reads `storage_lost` for a few seconds on the way: its slot stalls (3 statefile intervals) before its peers'",
    '  word on its network heartbeat runs out (3 heartbeat intervals + 1 statefile interval). Never grounds to act on alone.',
    '- "heal → healthy" includes the pool\'s own rejoin: xhad\'s fault handler started by the cut runs its course (3T + 18 s',
    "  after the cut for a one-path loss) and the host re-enters the liveset; until then the master's `live` or",
    '  `ha_network_peers` leaves it out, and xenha shows it `degraded` (the pool would not restart VMs on it).',
    '- "Other hosts … degraded during crash" (T = 10 s): for a few rounds the master\'s `ha_network_peers` lists no live peer',
    "  hearing a host that had a storage cut earlier in the run and has not yet rejoined xhad's liveset, as the simulator",
    "  models xha's fault handler. The host is `degraded` (home lost on the master's word), never worse.",
    '',
    ...(syncTimeouts > 0 ? [`Rounds run before the exporter's mirror had caught up (1 s of real time): ${syncTimeouts}.`, ''] : []),
    ...(problems.length > 0 ? ['Runs that did not finish:', '', ...problems.map((p) => `- ${p}`), ''] : []),
    ...(deadOnOnePath.length > 0 ? ['**FAILED**: a host was dead on a one-path cut:', '', ...deadOnOnePath.map((f) => `- ${f}`), ''] : []),
  ].join('\n');
  writeSection('detection', body);
  process.stdout.write(`${body}\n`);
  if (deadOnOnePath.length > 0 || problems.length > 0)
    throw new Error(`detection benchmark failed:\n${[...deadOnOnePath, ...problems].map((x) => `  ${x}`).join('\n')}`);
}
