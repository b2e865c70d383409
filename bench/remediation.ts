/**
 * Remediation service benchmark (issue text: "On loopback, in one run, 20 connections: a bare Express
 * JSON endpoint as the baseline, then the webhook with authentication, validation, de-duplication and
 * the durable journal, fed real Alertmanager payloads of which half are duplicates. Goal: ≥ 80 % of the
 * baseline's throughput, p99 ≤ 1.5× the baseline's. And: a dead host (simulated pool, 8 hosts × 100
 * VMs) from the webhook's arrival to the last protected VM started, with fence_dummy: median of 10
 * runs, goal ≤ 2 s plus the plan's own start_delays.")
 *
 * 1. Webhook throughput. One simulated HA-off pool (8 hosts × 100 VMs, the real xenha-heartbeat on
 *    every host, the simulator's default timing) so that the alerts' pool and host labels resolve; the
 *    service as `xenha remediate` starts it (startRemediation with a user's defaults: dry-run, its
 *    journal on the tmpdir's disk, its pool watched with the default timing, pino at info writing to
 *    /dev/null instead of stderr) except a quiet period of 1 h, so that only the webhook path runs (no
 *    evaluation of the incidents). The baseline is a bare Express 5 app, `express.json()` and
 *    `{ ok: true }`, in the same process. The load comes from a worker thread (its own event loop, as
 *    Alertmanager is its own process): undici's Pool, 20 connections, 20 in flight, a fixed number of
 *    requests after a warm-up, in rounds that alternate baseline and webhook. Both get the same bodies:
 *    Alertmanager v4 notifications like test/fixtures/alertmanager (one XenhaHostDead alert each, every
 *    label and annotation the fixtures have), half of them new — a host of the pool, a startsAt not seen
 *    before — and half re-sends of one sent 50 requests earlier, as Alertmanager's HA peer sends its copy
 *    (same alert, its own externalURL). The service de-duplicates per incident (pool, host, boot), so
 *    an 8-host pool holds 8 incidents: the first notification for each host opens it ('new'), every
 *    later one, new notification or re-send, lands on it as 'duplicate'; each request journals two
 *    records (the notification, then the incident or duplicate) before its 200.
 * 2. Recovery. Per run a fresh simulated HA-off pool (8 hosts × 100 VMs, seed = 100 + run, the
 *    generated start_delays kept, xenha-heartbeat with its defaults, the simulator's default timing)
 *    and a service in enforce mode with a user's defaults (pool timing, powerTimeout, powerPoll) but a
 *    quiet period of 0 s, each host's fence level Debian's fence_dummy (type=file) on the simulator's
 *    power file. Once its own sampler has seen every host healthy on both paths, a seeded non-master
 *    host with protected (restart) VMs crashes; once its own sampler says dead, the notification is
 *    posted; latency = from the POST to the last protected VM the plan starts seen Running (the
 *    simulator's database polled every 5 ms), less the plan's `wait` steps before that start.
 *
 * Every pool, daemon, service, server and worker is stopped in a finally, the temp dir removed; every
 * wait is bounded; loopback only.
 *
 * Environment (for development; the published figures use the defaults):
 *   XENHA_BENCH_REMEDIATION_REQUESTS  measured requests per round and side (default 6000)
 *   XENHA_BENCH_REMEDIATION_ROUNDS    rounds of baseline + webhook (default 10: short rounds taking turns, so that the machine's drifts hit both sides alike)
 *   XENHA_BENCH_REMEDIATION_RUNS      recovery runs (default 10)
 *   XENHA_BENCH_REMEDIATION_PROFILE   a directory: write a V8 CPU profile of the main thread per webhook round there
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import express from 'express';
import { pino, type Logger } from 'pino';
import { unsafeUniformIntDistribution, xoroshiro128plus } from 'pure-rand';
import { routeLibraryLogs } from '../io/library-logs.ts';
import type { remediationConfig as RemediationConfigSchema } from '../remediation/config.ts';
import type { RunningRemediation, startRemediation as StartRemediation } from '../remediation/service.ts';
import type { Plan } from '../remediation/state.ts';
import { generatePoolSpec, type PoolSpec } from '../simulator/pool-spec.ts';
import { startSimulator, type Simulator } from '../simulator/simulator.ts';
import { machine, tree, writeSection } from './report.ts';
import { median, positiveInt, until } from './util.ts';
import { benchPoolInput } from './pool-config.ts';
import { protectedRunning, watchRestarts } from './restarts.ts';
import { FENCE_DUMMY } from '../loop/binaries.ts';

const PASSWORD_ENV = 'XENHA_BENCH_PASSWORD';
const PASSWORD = 'bench';
const TOKEN = 'bench-webhook-token';
const POOL = 'bench';
const HOSTS = 8;
const VMS = 100;
const CONNECTIONS = 20;
const WARMUP = 2000;
/** A re-send follows its original this many notifications later. */
const RESEND_LAG = 50;
const PATH = '/webhook/alertmanager';
const THROUGHPUT_BASE = '127.0.92.1';
const RECOVERY_BASE = '127.0.96.1';
const READY_TIMEOUT_MS = 120_000;
const DEAD_TIMEOUT_MS = 120_000;
const LOAD_TIMEOUT_MS = 600_000;
/** After the plan's own waits, how long the recovery may take before the run fails. */
const RECOVERY_SLACK_MS = 120_000;
const POLL_MS = 5;

const REQUESTS = positiveInt('XENHA_BENCH_REMEDIATION_REQUESTS', 6_000);
const ROUNDS = positiveInt('XENHA_BENCH_REMEDIATION_ROUNDS', 10);
const RUNS = positiveInt('XENHA_BENCH_REMEDIATION_RUNS', 10);
const PROFILE_DIR = process.env.XENHA_BENCH_REMEDIATION_PROFILE;

/** Runs `f` under the V8 CPU profiler when PROFILE_DIR is set, writing `<name>.cpuprofile` there. */
async function profiled<T>(name: string, f: () => Promise<T>): Promise<T> {
  if (!PROFILE_DIR) return f();
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await f();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(PROFILE_DIR, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

/**
 * The service as `xenha remediate` runs it: the compiled modules in dist/ (`npm run bench` builds them
 * first), not this file's tsx transform (which wraps every function for its names, a cost no user has).
 */
async function compiledService(): Promise<{
  startRemediation: typeof StartRemediation;
  remediationConfig: typeof RemediationConfigSchema;
}> {
  const dist = join(import.meta.dirname, '..', 'dist', 'remediation');
  if (!existsSync(join(dist, 'service.js')))
    throw new Error('the service is not built (no dist/remediation/service.js): run `npm run build` first');
  const [{ startRemediation }, { remediationConfig }] = await Promise.all([
    import(join(dist, 'service.js')) as Promise<{ startRemediation: typeof StartRemediation }>,
    import(join(dist, 'config.js')) as Promise<{ remediationConfig: typeof RemediationConfigSchema }>,
  ]);
  return { startRemediation, remediationConfig };
}

function quantile(sorted: ArrayLike<number>, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

/** The pool as the exporter's config says it: all four probes, the heartbeat file, the default timing. */
function poolInput(sim: Simulator): Record<string, unknown> {
  return benchPoolInput(sim, POOL, PASSWORD_ENV);
}

function haOffSpec(seed: number): PoolSpec {
  return { ...generatePoolSpec({ hosts: HOSTS, vms: VMS, seed }), haEnabled: false };
}

function startSim(spec: PoolSpec, addressBase: string, stateDir: string): Promise<Simulator> {
  return startSimulator({ spec, port: 0, controlPort: 0, addressBase, password: PASSWORD, stateDir, heartbeat: {} });
}

// ------------------------------------------------------------------ Alertmanager notifications

/** Alertmanager's fingerprint is a hash of the label set: any stable hash of the sorted labels does here. */
function fingerprintOf(labels: Record<string, string>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\xff');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

interface Alert {
  host: string;
  hostUuid: string;
  startsAt: string;
}

/** One notification as Alertmanager 0.2x sends it (the shape of test/fixtures/alertmanager/grouped-firing.json). */
function notification(alerts: Alert[], peer = 0): Record<string, unknown> {
  const full = alerts.map((a) => {
    const labels = {
      alertname: 'XenhaHostDead',
      host: a.host,
      host_uuid: a.hostUuid,
      instance: 'xenha-exporter:9100',
      job: 'xenha',
      pool: POOL,
      severity: 'critical',
    };
    return {
      status: 'firing',
      labels,
      annotations: {
        description: `xenha sees ${a.host} dead on the network and the storage path for longer than dead-after (> 30s)`,
        runbook_url: 'https://example.org/runbooks/xenha#host-dead',
        summary: `Host ${a.host} of pool ${POOL} is dead on both paths`,
      },
      startsAt: a.startsAt,
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus-0.example:9090/graph?g0.expr=xenha_host_state%7Bstate%3D%22dead%22%7D+%3D%3D+1&g0.tab=1',
      fingerprint: fingerprintOf(labels),
    };
  });
  const common = Object.fromEntries(Object.entries(full[0]!.labels).filter(([k, v]) => full.every((a) => a.labels[k as 'pool'] === v)));
  return {
    receiver: 'xenha-remediation',
    status: 'firing',
    alerts: full,
    groupLabels: { alertname: 'XenhaHostDead', pool: POOL },
    commonLabels: common,
    commonAnnotations: { runbook_url: 'https://example.org/runbooks/xenha#host-dead' },
    externalURL: `http://alertmanager-${peer}.example:9093`,
    version: '4',
    groupKey: `{}/{severity="critical"}:{alertname="XenhaHostDead", pool="${POOL}"}`,
    truncatedAlerts: 0,
  };
}

/**
 * `count` bodies: new notifications (host k mod 8, a startsAt never sent before) and, RESEND_LAG
 * notifications after each, its copy from the HA peer; half and half. `offset` keeps rounds apart.
 */
function bodies(hosts: { name: string; uuid: string }[], count: number, offset: number): { bodies: string[]; resends: boolean[] } {
  const fresh = (k: number) => {
    const h = hosts[k % hosts.length]!;
    const startsAt = new Date(Date.UTC(2026, 0, 1) + (offset + k) * 1000).toISOString();
    return { alert: { host: h.name, hostUuid: h.uuid, startsAt } };
  };
  const out: string[] = [];
  const resends: boolean[] = [];
  const half = Math.ceil(count / 2);
  for (let k = 0; out.length < count; k++) {
    if (k < half) {
      out.push(JSON.stringify(notification([fresh(k).alert], 0)));
      resends.push(false);
    }
    const r = k - RESEND_LAG;
    if (r >= 0 && r < half && out.length < count) {
      out.push(JSON.stringify(notification([fresh(r).alert], 1)));
      resends.push(true);
    }
  }
  return { bodies: out, resends };
}

// ------------------------------------------------------------------ the load generator (a worker thread)

/**
 * Plain JavaScript, run with `eval` (tsx's loader does not reach worker threads on Node 20): CONNECTIONS
 * loops over one undici Pool, each sending the next body as soon as its previous answer is read.
 */
const LOAD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { Pool } = require(workerData.undici);
const { origin, path, headers, bodies, connections, warmup } = workerData;
const pool = new Pool(origin, { connections, pipelining: 1 });
async function phase(from, end, measure) {
  let next = from;
  const n = end - from;
  const latencies = new Float64Array(measure ? n : 0);
  const statuses = {};
  const outcomes = {};
  let errors = 0;
  let firstError = '';
  const t0 = performance.now();
  await Promise.all(Array.from({ length: connections }, async () => {
    while (next < end) {
      const i = next++;
      const s = performance.now();
      try {
        const res = await pool.request({ method: 'POST', path, headers, body: bodies[i] });
        const text = await res.body.text();
        const ms = performance.now() - s;
        if (measure) latencies[i - from] = ms;
        statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
        if (res.statusCode !== 200 && firstError === '') firstError = res.statusCode + ' ' + text.slice(0, 300);
        const body = JSON.parse(text);
        for (const inc of body.incidents || []) outcomes[inc.outcome] = (outcomes[inc.outcome] || 0) + 1;
      } catch (e) {
        errors++;
        if (firstError === '') firstError = String(e && e.message || e);
      }
    }
  }));
  return { seconds: (performance.now() - t0) / 1000, latencies, statuses, outcomes, errors, firstError };
}
(async () => {
  const w = await phase(0, warmup, false);
  parentPort.postMessage({ measuring: true });
  const e0 = performance.eventLoopUtilization();
  const m = await phase(warmup, bodies.length, true);
  m.busy = performance.eventLoopUtilization(e0).utilization;
  await pool.close();
  parentPort.postMessage({ warmup: w, measured: m }, [m.latencies.buffer]);
})().catch((e) => parentPort.postMessage({ failed: String(e && e.stack || e) }));
`;

interface Phase {
  seconds: number;
  latencies: Float64Array;
  statuses: Record<string, number>;
  outcomes: Record<string, number>;
  errors: number;
  firstError: string;
  /** The event loop's utilisation over the measured phase: the load generator's (measured), the server's (set by load()). */
  busy: number;
  serverBusy: number;
}

async function load(
  origin: string,
  headers: Record<string, string>,
  all: string[],
  warmup: number,
): Promise<{ warmup: Phase; measured: Phase }> {
  const worker = new Worker(LOAD_WORKER, {
    eval: true,
    workerData: {
      undici: createRequire(import.meta.url).resolve('undici'),
      origin,
      path: PATH,
      headers,
      bodies: all,
      connections: CONNECTIONS,
      warmup,
    },
  });
  let timer: NodeJS.Timeout | undefined;
  let elu0: EventLoopUtilization | undefined;
  try {
    const answer = await Promise.race([
      new Promise<{ warmup: Phase; measured: Phase } | { failed: string }>((resolve, reject) => {
        worker.on('message', (m: { measuring: true } | { warmup: Phase; measured: Phase } | { failed: string }) => {
          if ('measuring' in m) elu0 = performance.eventLoopUtilization();
          else resolve(m);
        });
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`the load worker exited (${code}) before it answered`)));
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the load took longer than ${LOAD_TIMEOUT_MS} ms`)), LOAD_TIMEOUT_MS);
      }),
    ]);
    if ('failed' in answer) throw new Error(`the load worker failed: ${answer.failed}`);
    answer.measured.serverBusy = elu0 ? performance.eventLoopUtilization(elu0).utilization : NaN;
    return answer;
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
}

// ------------------------------------------------------------------ 1. throughput

type Side = 'baseline' | 'webhook';
const SIDES: Side[] = ['baseline', 'webhook'];

interface SideTotals {
  requests: number;
  seconds: number;
  latencies: number[];
  statuses: Record<string, number>;
  outcomes: Record<string, number>;
  errors: number;
  firstError: string;
  perRound: number[];
  /** Event loop utilisation per round: the server's (main thread: service or baseline, the simulator, the sampler) and the load generator's. */
  serverBusy: number[];
  clientBusy: number[];
}

interface ThroughputResult {
  sides: Record<Side, SideTotals>;
  /** Outcomes of the warm-ups (the first notification per host opens its incident there). */
  warmupOutcomes: Record<string, number>;
  incidentRecords: number;
  journalRecords: number;
  journalBatches: number;
  fsyncSeconds: number;
  resendShare: number;
  bodyBytes: number;
  load: number;
}

/** The bare baseline: Express 5, express.json(), `{ ok: true }`. */
async function startBaseline(): Promise<{ url: string; close: () => Promise<void> }> {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json());
  app.post(PATH, (_req, res) => {
    res.json({ ok: true });
  });
  const server: Server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A metric's value from the service's /metrics (the sum of its series). */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (m?.[1] === name) sum += Number(m[2]);
  }
  return sum;
}

const journalLines = (path: string) =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
    : [];

async function throughput(dir: string, log: Logger): Promise<ThroughputResult> {
  const started = loadavg()[0]!;
  let sim: Simulator | undefined;
  let baseline: Awaited<ReturnType<typeof startBaseline>> | undefined;
  let service: RunningRemediation | undefined;
  const journal = join(dir, 'throughput.journal');
  try {
    sim = await startSim(haOffSpec(1), THROUGHPUT_BASE, join(dir, 'sim-throughput'));
    baseline = await startBaseline();
    const { startRemediation, remediationConfig } = await compiledService();
    service = await startRemediation(
      remediationConfig.parse({
        pools: [poolInput(sim)],
        remediation: { listen: '127.0.0.1:0', tokenFile: join(dir, 'token'), journal, quietPeriod: '1h' },
      }),
      log,
    );
    const s = service;
    await until('the service has a view of the pool', () => s.samplers[0]!.state.snapshot !== null, READY_TIMEOUT_MS);
    const hosts = sim.info().hosts.map((h) => ({ name: h.name, uuid: h.uuid }));
    const empty = (): SideTotals => ({
      requests: 0,
      seconds: 0,
      latencies: [],
      statuses: {},
      outcomes: {},
      errors: 0,
      firstError: '',
      perRound: [],
      serverBusy: [],
      clientBusy: [],
    });
    const totals: Record<Side, SideTotals> = { baseline: empty(), webhook: empty() };
    const warmupOutcomes: Record<string, number> = {};
    let journalRecords = 0;
    let journalBatches = 0;
    let fsyncSeconds = 0;
    let resends = 0;
    let bytes = 0;
    const add = (into: Record<string, number>, from: Record<string, number>) => {
      for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
    };
    for (let round = 0; round < ROUNDS; round++) {
      const b = bodies(hosts, WARMUP + REQUESTS, round * (WARMUP + REQUESTS));
      resends += b.resends.slice(WARMUP).filter(Boolean).length;
      bytes += b.bodies.slice(WARMUP).reduce((n, x) => n + Buffer.byteLength(x), 0);
      // The two take turns, each first every other round.
      for (const side of round % 2 === 0 ? SIDES : [...SIDES].reverse()) {
        const records0 = journalLines(journal).length;
        const batches0 = await metric(s.url, 'xenha_remediation_journal_fsync_seconds_count');
        const fsync0 = await metric(s.url, 'xenha_remediation_journal_fsync_seconds_sum');
        const r =
          side === 'baseline'
            ? await profiled(`baseline-${round + 1}`, () => load(baseline!.url, { 'content-type': 'application/json' }, b.bodies, WARMUP))
            : await profiled(`webhook-${round + 1}`, () =>
                load(s.url, { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, b.bodies, WARMUP),
              );
        const t = totals[side];
        const m = r.measured;
        t.requests += m.latencies.length;
        t.seconds += m.seconds;
        for (const x of m.latencies) t.latencies.push(x);
        add(t.statuses, m.statuses);
        add(t.outcomes, m.outcomes);
        t.errors += m.errors + r.warmup.errors;
        if (t.firstError === '') t.firstError = m.firstError || r.warmup.firstError;
        t.perRound.push(m.latencies.length / m.seconds);
        t.serverBusy.push(m.serverBusy);
        t.clientBusy.push(m.busy);
        if (side === 'webhook') {
          add(warmupOutcomes, r.warmup.outcomes);
          journalRecords += journalLines(journal).length - records0;
          journalBatches += (await metric(s.url, 'xenha_remediation_journal_fsync_seconds_count')) - batches0;
          fsyncSeconds += (await metric(s.url, 'xenha_remediation_journal_fsync_seconds_sum')) - fsync0;
        }
        const sorted = Float64Array.from(m.latencies).sort();
        process.stdout.write(
          `round ${round + 1}, ${side}: ${(m.latencies.length / m.seconds).toFixed(0)} req/s, p50 ${quantile(sorted, 0.5).toFixed(2)} ms, ` +
            `p99 ${quantile(sorted, 0.99).toFixed(2)} ms, event loops busy: server ${(m.serverBusy * 100).toFixed(0)} %, load ${(m.busy * 100).toFixed(0)} %, statuses ${JSON.stringify(m.statuses)}` +
            `${side === 'webhook' ? `, outcomes ${JSON.stringify(m.outcomes)} (warm-up ${JSON.stringify(r.warmup.outcomes)})` : ''}` +
            `${m.errors + r.warmup.errors > 0 ? `, ${m.errors + r.warmup.errors} errors (${m.firstError || r.warmup.firstError})` : ''}\n`,
        );
      }
    }
    const incidentRecords = journalLines(journal).filter((l) => l.includes('"type":"incident"')).length;
    return {
      sides: totals,
      warmupOutcomes,
      incidentRecords,
      journalRecords,
      journalBatches,
      fsyncSeconds,
      resendShare: resends / (ROUNDS * REQUESTS),
      bodyBytes: bytes / (ROUNDS * REQUESTS),
      load: started,
    };
  } finally {
    await service?.stop();
    await baseline?.close();
    await sim?.stop();
  }
}

// ------------------------------------------------------------------ 2. recovery

interface RecoveryResult {
  run: number;
  victim: string;
  protectedVms: number;
  /** Protected VMs the plan starts. */
  planned: number;
  unplaced: number;
  /** Sum of the start_delays of the protected VMs of the victim, s. */
  delaySum: number;
  /** Sum of the plan's wait steps before its last protected start, s. */
  waitsBefore: number;
  /** POST → last protected VM seen Running, ms. */
  totalMs: number;
  /** totalMs less waitsBefore, ms. */
  netMs: number;
  /** Where the net time went, ms. */
  phases: Record<string, number>;
  problems: string[];
}

const PHASES = [
  'webhook answered',
  'answer → plan made',
  'fence',
  'confirm-fenced',
  'reset-power-state (all)',
  'start-vm (protected)',
  'rest',
] as const;

function fenceLevels(sim: Simulator): Record<string, unknown> {
  return Object.fromEntries(
    sim
      .info()
      .hosts.map((h) => [
        h.name,
        { levels: [{ plugin: 'fence-agent', options: { agent: FENCE_DUMMY, args: { type: 'file', status_file: h.powerFile } } }] },
      ]),
  );
}

const stepMs = (s: Plan['steps'][number]) => (s.startedAt && s.finishedAt ? Date.parse(s.finishedAt) - Date.parse(s.startedAt) : 0);

async function recoveryRun(run: number, dir: string, log: Logger): Promise<RecoveryResult> {
  const seed = 100 + run;
  const spec = haOffSpec(seed);
  let sim: Simulator | undefined;
  let service: RunningRemediation | undefined;
  try {
    sim = await startSim(spec, RECOVERY_BASE, join(dir, `sim-${run}`));
    const sm = sim;
    const { startRemediation, remediationConfig } = await compiledService();
    service = await startRemediation(
      remediationConfig.parse({
        pools: [poolInput(sm)],
        remediation: {
          listen: '127.0.0.1:0',
          mode: 'enforce',
          tokenFile: join(dir, 'token'),
          journal: join(dir, `recovery-${run}.journal`),
          quietPeriod: '0s',
          pools: { [POOL]: { fence: { hosts: fenceLevels(sm) } } },
        },
      }),
      log,
    );
    const s = service;
    const sampler = s.samplers[0]!;
    const own = (uuid: string) => sampler.state.memory?.hosts[uuid];
    const protectedOn = (name: string) => protectedRunning(sm, name);
    const uuids = sm.pool.hosts.map((h) => h.built.uuid);
    await until(
      'every host healthy on both paths in its own view',
      () => uuids.every((u) => own(u)?.state === 'healthy' && own(u)?.rule === 'both-paths-up'),
      READY_TIMEOUT_MS,
    );
    const rng = xoroshiro128plus(seed);
    const candidates = sm.pool.hosts.filter((h) => h !== sm.pool.master && protectedOn(h.built.name).length > 0);
    if (candidates.length === 0) throw new Error(`run ${run + 1}: no non-master host with a protected VM`);
    const victim = candidates[unsafeUniformIntDistribution(0, candidates.length - 1, rng)]!;
    const vName = victim.built.name;
    const vUuid = victim.built.uuid;
    const protectedVms = protectedOn(vName);
    sm.pool.crash(victim);
    await until(`${vName} dead in its own view`, () => own(vUuid)?.state === 'dead', DEAD_TIMEOUT_MS).catch((e: Error) => {
      const h = own(vUuid);
      const samples = (h?.lastSamples ?? []).map((x) => `${x.probe}[${x.home}] ${String(x.up)}: ${x.detail}`).join('; ');
      throw new Error(`${e.message} (its own view: ${h?.state} by ${h?.rule}, network ${h?.network}, storage ${h?.storage}; ${samples})`);
    });

    const body = JSON.stringify(notification([{ host: vName, hostUuid: vUuid, startsAt: new Date().toISOString() }]));
    const watch = watchRestarts(sm, vName, protectedVms, POLL_MS);
    const { seen, check } = watch;
    const wall0 = Date.now();
    const t0 = performance.now();
    let answeredMs: number;
    let incident: string;
    try {
      const res = await fetch(`${s.url}${PATH}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      const answer = (await res.json()) as { incidents?: { outcome: string; incident?: string }[] };
      answeredMs = performance.now() - t0;
      if (res.status !== 200 || answer.incidents?.[0]?.outcome !== 'new')
        throw new Error(`run ${run + 1}: the webhook answered ${res.status} ${JSON.stringify(answer).slice(0, 300)}`);
      incident = answer.incidents[0].incident!;
      const delaySum = protectedVms.reduce((n, v) => n + v.startDelay, 0);
      const plan = await until(
        `the plan for ${vName} to finish`,
        () => {
          const inc = s.state.incidents.get(incident);
          const p = inc?.plan ? s.state.plans.get(inc.plan) : undefined;
          return p && p.state !== 'running' ? p : undefined;
        },
        delaySum * 1000 + RECOVERY_SLACK_MS,
        POLL_MS,
      );
      const starts = plan.steps.filter(
        (x) => x.step.kind === 'start-vm' && protectedVms.some((v) => v.uuid === (x.step as { vm: string }).vm),
      );
      await until(
        `every protected VM the plan started seen Running`,
        () => {
          check();
          return starts.every((x) => seen.has((x.step as { vm: string }).vm)) || undefined;
        },
        10_000,
        POLL_MS,
      ).catch(() => undefined);
      await watch.stop();
      const problems: string[] = [];
      if (plan.state !== 'done') problems.push(`run ${run + 1}: plan ${plan.state}: ${plan.stateReason}`);
      for (const x of plan.steps)
        if (x.state === 'failed') problems.push(`run ${run + 1}: step ${x.index} ${x.step.kind} failed: ${x.outcome} ${x.detail}`);
      const offs = sm.pool.eventLog().filter((e) => e.kind === 'power' && e.host === vName && e.detail.state === 'off').length;
      if (offs !== 1) problems.push(`run ${run + 1}: ${vName} powered off ${offs} times`);
      const missing = starts.filter((x) => !seen.has((x.step as { vm: string }).vm));
      if (missing.length > 0) problems.push(`run ${run + 1}: ${missing.length} planned protected VM(s) never seen Running`);
      if (starts.length === 0) problems.push(`run ${run + 1}: the plan starts no protected VM`);
      const last = starts.at(-1);
      const lastIdx = last?.index ?? -1;
      const waitsBefore = plan.steps
        .filter((x) => x.index < lastIdx && x.step.kind === 'wait')
        .reduce((n, x) => n + (x.step as { seconds: number }).seconds, 0);
      const lastSeen = Math.max(...starts.map((x) => seen.get((x.step as { vm: string }).vm) ?? NaN));
      const totalMs = lastSeen - t0;
      const netMs = totalMs - waitsBefore * 1000;
      // Where the net time went: the journal's step times (ms resolution), up to the last protected start.
      const upto = plan.steps.filter((x) => x.index <= lastIdx);
      const sumOf = (kind: string, only?: (x: Plan['steps'][number]) => boolean) =>
        upto.filter((x) => x.step.kind === kind && (only?.(x) ?? true)).reduce((n, x) => n + stepMs(x), 0);
      const planMade = Date.parse(plan.createdAt) - wall0 - answeredMs;
      const phases: Record<string, number> = {
        'webhook answered': answeredMs,
        'answer → plan made': planMade,
        fence: sumOf('fence'),
        'confirm-fenced': sumOf('confirm-fenced'),
        'reset-power-state (all)': sumOf('reset-power-state'),
        'start-vm (protected)': sumOf('start-vm', (x) => starts.includes(x)),
      };
      phases.rest = netMs - Object.values(phases).reduce((a, b) => a + b, 0);
      return {
        run,
        victim: vName,
        protectedVms: protectedVms.length,
        planned: starts.length,
        unplaced: plan.unplaced.filter((u) => protectedVms.some((v) => v.uuid === u.vm)).length,
        delaySum,
        waitsBefore,
        totalMs,
        netMs,
        phases,
        problems,
      };
    } finally {
      await watch.stop();
    }
  } finally {
    await service?.stop();
    await sim?.stop();
  }
}

// ------------------------------------------------------------------ the report

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function benchRemediation(): Promise<void> {
  if (!existsSync(FENCE_DUMMY)) throw new Error(`${FENCE_DUMMY} is missing: install it with \`apt-get install fence-agents\``);
  process.env[PASSWORD_ENV] = PASSWORD;
  const restoreLogs = routeLibraryLogs(pino({ level: 'silent' }));
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'xenha-bench-remediation-'));
  // As `xenha remediate` logs (pino, info, ISO time, synchronous), to /dev/null rather than stderr.
  const dest = pino.destination({ dest: '/dev/null', sync: true });
  const log = pino({ level: 'info', timestamp: pino.stdTimeFunctions.isoTime }, dest);
  let tp: ThroughputResult;
  const runs: RecoveryResult[] = [];
  const failedRuns: { run: number; error: string }[] = [];
  try {
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
    chmodSync(join(dir, 'token'), 0o600);
    process.stdout.write(
      `webhook throughput: ${ROUNDS} rounds × ${REQUESTS} requests per side after ${WARMUP} warm-up, ${CONNECTIONS} connections\n`,
    );
    tp = await throughput(dir, log);
    process.stdout.write(`recovery: ${RUNS} runs, ${HOSTS} hosts × ${VMS} VMs\n`);
    for (let run = 0; run < RUNS; run++) {
      // A run that fails (bounded waits) is a problem; the others are still measured and reported.
      let r: RecoveryResult;
      try {
        r = await recoveryRun(run, dir, log);
      } catch (e) {
        failedRuns.push({ run, error: (e as Error).message });
        process.stdout.write(`run ${run + 1}: FAILED: ${(e as Error).message}\n`);
        continue;
      }
      runs.push(r);
      process.stdout.write(
        `run ${run + 1}: ${r.victim}, ${r.planned}/${r.protectedVms} protected VMs started (${r.unplaced} unplaced), start_delays ${r.delaySum} s, ` +
          `waits before the last ${r.waitsBefore} s; POST → last protected Running ${secs(r.totalMs)}, less the waits ${secs(r.netMs)} ` +
          `(${PHASES.map((p) => `${p} ${Math.round(r.phases[p] ?? NaN)} ms`).join(', ')})\n`,
      );
      for (const p of r.problems) process.stdout.write(`  PROBLEM: ${p}\n`);
    }
  } finally {
    restoreLogs();
    dest.end();
    rmSync(dir, { recursive: true, force: true });
  }

  // Throughput figures.
  const rate = (side: Side) => tp.sides[side].requests / tp.sides[side].seconds;
  const sorted = (side: Side) => Float64Array.from(tp.sides[side].latencies).sort();
  const p = (side: Side, q: number) => quantile(sorted(side), q);
  const ratio = rate('webhook') / rate('baseline');
  const p99Ratio = p('webhook', 0.99) / p('baseline', 0.99);
  const throughputOk = ratio >= 0.8;
  const p99Ok = p99Ratio <= 1.5;
  const roundRatios = tp.sides.webhook.perRound.map((x, i) => x / tp.sides.baseline.perRound[i]!);
  const w = tp.sides.webhook;
  const problems: string[] = [];
  for (const side of SIDES) {
    const t = tp.sides[side];
    const non200 = Object.entries(t.statuses).filter(([k]) => k !== '200');
    if (t.errors > 0 || non200.length > 0)
      problems.push(`${side}: ${t.errors} errors, statuses ${JSON.stringify(t.statuses)} (${t.firstError})`);
  }
  const newTotal = (w.outcomes.new ?? 0) + (tp.warmupOutcomes.new ?? 0);
  if (newTotal !== HOSTS || tp.incidentRecords !== HOSTS)
    problems.push(
      `de-duplication: ${newTotal} 'new' answers and ${tp.incidentRecords} incident records in the journal for ${HOSTS} hosts (expected ${HOSTS} of each)`,
    );
  const pct = (xs: number[]) => `${(median(xs) * 100).toFixed(0)} %`;
  const row = (side: Side, what: string) =>
    `| ${what} | ${rate(side).toFixed(0)} (${tp.sides[side].perRound.map((x) => x.toFixed(0)).join(', ')}) | ${p(side, 0.5).toFixed(2)} ms | ${p(side, 0.99).toFixed(2)} ms | ${p(side, 0.999).toFixed(2)} ms | ${pct(tp.sides[side].serverBusy)} | ${pct(tp.sides[side].clientBusy)} |`;

  // Recovery figures.
  const nets = runs.map((r) => r.netMs);
  const recoveryOk = runs.length > 0 && median(nets) <= 2000;
  for (const r of runs) problems.push(...r.problems);
  for (const f of failedRuns) problems.push(`run ${f.run + 1} failed: ${f.error}`);
  const runRows = [
    ...runs.map(
      (r) =>
        `| ${r.run + 1} | ${r.victim} | ${r.planned} of ${r.protectedVms}${r.unplaced > 0 ? ` (${r.unplaced} unplaced)` : ''} | ${r.delaySum} s | ${r.waitsBefore} s | ${secs(r.totalMs)} | **${secs(r.netMs)}** |`,
    ),
    ...failedRuns.map((f) => `| ${f.run + 1} | failed (see below) | | | | | |`),
  ].sort((a, b) => Number(a.split(' ')[1]) - Number(b.split(' ')[1]));
  const phaseRow = PHASES.map((ph) => `${ph} ${Math.round(median(runs.map((r) => r.phases[ph] ?? 0)))} ms`).join(' · ');
  const realS = (performance.now() - started) / 1000;
  const body = [
    '## Remediation service: webhook throughput and recovery time',
    '',
    `Command: \`npm run bench -- remediation\` · ${machine()} · ${tree()} · ${new Date().toISOString().slice(0, 10)} · ${realS.toFixed(0)} s of real time · load average ${tp.load.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at the end`,
    '',
    '### Webhook throughput against a bare Express endpoint',
    '',
    `On loopback, ${CONNECTIONS} connections (undici Pool in a worker thread, ${CONNECTIONS} requests in flight), ${ROUNDS} rounds taking turns, each side ${REQUESTS} requests a round after ${WARMUP} of warm-up.`,
    "Baseline: Express 5, `express.json()`, `{ ok: true }`. Webhook: `xenha remediate`'s service (startRemediation, compiled in dist/ as the CLI runs it) with a user's defaults — dry-run,",
    `bearer token from a file, the v4 schema, de-duplication, the journal in ${tmpdir()} (group commit: each request's records are acknowledged once their batch's synced write, O_DSYNC, returns),`,
    'pino at info, here to /dev/null (an accepted notification is a debug line: the webhook path logs nothing at info), its own sampler watching the pool — except a quiet period of 1 h, so that only the webhook path runs.',
    `The pool is simulated (HA off, ${HOSTS} hosts × ${VMS} VMs, xenha-heartbeat on every host) so that the alerts' pool and host labels resolve.`,
    `Both get the same bodies: Alertmanager v4 notifications like test/fixtures/alertmanager (one XenhaHostDead alert, ${tp.bodyBytes.toFixed(0)} bytes on average),`,
    `${(100 - tp.resendShare * 100).toFixed(0)} % new (a host of the pool, a startsAt not sent before) and ${(tp.resendShare * 100).toFixed(0)} % re-sends of one sent ${RESEND_LAG} requests earlier, as Alertmanager's HA peer sends its copy.`,
    `The service de-duplicates per incident (pool, host, boot): an ${HOSTS}-host pool holds ${HOSTS} incidents, so the first notification for each host opens it`,
    '(in the first warm-up) and every later one, new or re-sent, lands on it as a duplicate; accepted either way (200), each request journals two records',
    '(the notification, then the incident or duplicate) before it is answered. Making more incidents would need more hosts than a pool has, and the per-request work is the same.',
    '',
    'Latency: from the request sent to its answer read, at the load generator. Event loop busy: `performance.eventLoopUtilization()` over the measured requests (median of',
    "the rounds) of the server's main thread (the service or the baseline, beside the simulator and the service's sampler) and of the load generator's thread.",
    '',
    '| endpoint | requests/s (per round) | p50 | p99 | p99.9 | server event loop busy | load generator busy |',
    '|---|---|---|---|---|---|---|',
    row('baseline', 'bare Express JSON (baseline)'),
    row('webhook', 'webhook: token, schema, de-duplication, journal'),
    '',
    `Throughput **${(ratio * 100).toFixed(0)} %** of the baseline (goal ≥ 80 %: ${throughputOk ? 'met' : '**not met**'}); p99 **${p99Ratio.toFixed(2)}×** the baseline's (goal ≤ 1.5×: ${p99Ok ? 'met' : '**not met**'}).`,
    `Round by round (each webhook round against the baseline round beside it): ${roundRatios.map((r) => `${(r * 100).toFixed(0)} %`).join(', ')}; ` +
      `median ${(median(roundRatios) * 100).toFixed(0)} %, from ${(Math.min(...roundRatios) * 100).toFixed(0)} % to ${(Math.max(...roundRatios) * 100).toFixed(0)} %: ` +
      'the spread is how far the machine drifting between rounds can move the figure.',
    `Webhook answers: ${JSON.stringify(w.statuses)}; outcomes measured ${JSON.stringify(w.outcomes)}, in the warm-ups ${JSON.stringify(tp.warmupOutcomes)}; incident records in the journal: ${tp.incidentRecords}.`,
    `Journal over the webhook's loads (warm-ups included): ${tp.journalRecords} records in ${tp.journalBatches} batches (${(tp.journalRecords / Math.max(1, tp.journalBatches)).toFixed(1)} records per batch), synced write ${((tp.fsyncSeconds * 1000) / Math.max(1, tp.journalBatches)).toFixed(2)} ms a batch on average.`,
    '',
    '### A dead host: from the webhook to the last protected VM started',
    '',
    `${RUNS} runs, each a fresh simulated pool (HA off, ${HOSTS} hosts × ${VMS} VMs, seed 100 + run, the generated start_delays of 0–10 s kept, xenha-heartbeat with its defaults,`,
    "the simulator's default timing) and a service in enforce mode with a user's defaults (pool timing, powerTimeout 60 s, powerPoll 1 s) but a quiet period of 0 s,",
    "each host's fence level Debian's fence_dummy (type=file) on the simulator's power file. Once its own sampler has seen every host healthy on both paths, a seeded",
    'non-master host with protected (restart) VMs crashes; once its own sampler says dead, the notification is posted. Time = from the POST to the last protected VM the',
    `plan starts seen Running on a survivor (the simulator's database polled every ${POLL_MS} ms), then less the plan's \`wait\` steps before that start (its start_delays:`,
    "the last VM's own delay comes after it). Best-effort VMs start after the protected ones and are not counted.",
    '',
    'Protected VMs started: of those the host ran, the ones the plan starts (the others are left unplaced: no survivor has room, or their disk is on the dead host).',
    "Their start_delays: the sum over the host's protected VMs, as generated.",
    '',
    '| run | host | protected VMs started | their start_delays | waits before the last | POST → last protected Running | less the waits |',
    '|---|---|---|---|---|---|---|',
    ...runRows,
    '',
    `Less the waits, over ${runs.length} runs${failedRuns.length > 0 ? ` (${failedRuns.length} failed)` : ''}: median **${secs(median(nets))}**, best ${secs(Math.min(...nets))}, worst ${secs(Math.max(...nets))} (goal: median ≤ 2 s plus the plan's start_delays: ${recoveryOk ? 'met' : '**not met**'}).`,
    `Where it went (medians, from the journal's step times): ${phaseRow}.`,
    '',
    ...(problems.length > 0 ? ['**Problems**:', '', ...problems.map((x) => `- ${x}`), ''] : []),
  ].join('\n');
  writeSection('remediation', body);
  process.stdout.write(`${body}\n`);
  if (problems.length > 0)
    throw new Error(`remediation benchmark: ${problems.length} problem(s):\n${problems.map((x) => `  ${x}`).join('\n')}`);
}
