/**
 * One pool's sampling loop: every interval, run the enabled probes in parallel (each bounded by the
 * probe timeout), turn their samples into one observation, step the classification state machine, and
 * keep the result for /metrics (which never waits on a pool). Liveness is a series of heartbeats, so
 * this runs in the background, not at scrape time.
 */
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { classifyPool, type ClassifyPolicy, type PoolMemory, type Sample, type StateChange } from '../core/classify/state-machine.ts';
import type { PoolSnapshot } from '../core/model/snapshot.ts';
import { deadAfterInForce, type DeadAfterInForce } from '../core/classify/dead-after.ts';
import { preflight, type MonitorSetup, type PreflightResult, type StorageHeartbeatRead } from '../core/preflight.ts';
import { failuresToTolerate, type Capacity } from '../core/planner/capacity.ts';
import { fromPoolSnapshot } from '../core/planner/model.ts';
import { PoolConnection, type ConnectionOptions } from '../io/xapi/connection.ts';
import { createProbes, type ConfiguredProbe, type ProbeRound } from '../plugins/probes/index.ts';
import { resolvePassword, type PoolConfig } from './config.ts';

export interface SamplerCounters {
  /** State transitions per host. */
  transitions: Map<string, number>;
  /** Each time one path alone would have declared a live host dead, by that path. */
  falsePositivesAverted: { network: number; storage: number };
  /** Changes of a path's status (up, degraded, down) per host and path: flaps. */
  pathFlaps: Map<string, number>;
  rounds: number;
  probeErrors: Map<string, number>;
}

export interface PoolState {
  memory: PoolMemory | undefined;
  snapshot: PoolSnapshot | null;
  preflight: PreflightResult[];
  lastRoundAt: number | null;
  lastRoundSeconds: number | null;
  /** The values of the series probes declare, by series name, from each probe's last completed round. */
  series: Map<string, SeriesValue[]>;
  /** Failures the pool can absorb, from the planner; null until VMs were fetched. */
  capacity: Capacity | null;
  /** The dead-after of the last round, and why that value. */
  deadAfter: DeadAfterInForce;
  /** Whether the last round had a storage heartbeat (else no host may be dead), and why. */
  storageHeartbeat: PreflightResult | null;
}

/** One value of a probe's own series for one host. */
export interface SeriesValue {
  host: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** The XAPI connection a pool's config asks for. */
export function connectionOptions(config: PoolConfig, password: string, log: Logger): ConnectionOptions {
  return {
    name: config.name,
    urls: config.urls,
    user: config.user,
    password,
    allowUnauthorized: config.allowUnauthorized,
    callTimeoutMs: config.timing.xapiTimeout,
    vmRefreshMs: config.timing.capacityInterval,
    retryMinMs: 500,
    retryMaxMs: 10_000,
    limits: config.limits,
    log,
  };
}

export class PoolSampler {
  readonly connection: PoolConnection;
  readonly probes: ConfiguredProbe[];
  readonly counters: SamplerCounters = {
    transitions: new Map(),
    falsePositivesAverted: { network: 0, storage: 0 },
    pathFlaps: new Map(),
    rounds: 0,
    probeErrors: new Map(),
  };
  readonly state: PoolState = {
    memory: undefined,
    snapshot: null,
    preflight: [],
    lastRoundAt: null,
    lastRoundSeconds: null,
    series: new Map(),
    capacity: null,
    deadAfter: deadAfterInForce(undefined, null, 0),
    storageHeartbeat: null,
  };
  private capacityKey = '';
  private snapshotSeen: PoolSnapshot | null = null;
  readonly changes: StateChange[] = [];
  /** The classification policy of the last round (its dead-after follows the pool's HA timeout). */
  policy: ClassifyPolicy;
  private readonly monitor: MonitorSetup;
  /**
   * The storage heartbeat a probe last said it read, with xenha-heartbeat's summary (kept until one
   * says otherwise).
   */
  private heartbeatRead: StorageHeartbeatRead | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private stopped = false;
  private masterDownRounds = 0;
  private lastPathStatus = new Map<string, string>();
  private readonly inFlight = new Set<string>();

  constructor(
    readonly config: PoolConfig,
    readonly log: Logger,
    private readonly clock: () => number = () => performance.now(),
    /** The probes to run: by default, the ones the config enables. */
    probes?: ConfiguredProbe[],
    /** What the pool is read through: by default an XAPI connection to the config's URLs (the safety campaign passes its in-process pool). */
    connection?: PoolConnection,
  ) {
    this.connection = connection ?? new PoolConnection(connectionOptions(config, resolvePassword(config), log));
    this.probes = probes ?? createProbes(config.probes, { log });
    this.monitor = { storageHeartbeatProbes: this.probes.filter((p) => p.storageHeartbeat).map((p) => p.name) };
    this.state.deadAfter = this.deadAfterFor(null);
    this.policy = {
      confirmSamples: config.timing.confirmSamples,
      deadAfterMs: this.state.deadAfter.ms,
      flapWindowMs: config.timing.flapWindow,
      flapThreshold: config.timing.flapThreshold,
    };
  }

  private deadAfterFor(s: PoolSnapshot | null): DeadAfterInForce {
    const t = this.config.timing;
    return deadAfterInForce(t.deadAfter, s, t.sampleInterval * t.confirmSamples);
  }

  start(): void {
    this.connection.start();
    const tick = () => {
      if (this.stopped) return;
      // A round that overruns is not stacked: the next one starts when it ends.
      this.running ??= this.round()
        .catch((e) => this.log.error({ err: e }, 'sampling round failed'))
        .finally(() => (this.running = null));
    };
    this.timer = setInterval(tick, this.config.timing.sampleInterval);
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    await this.connection.stop();
  }

  /**
   * A round now, after the one running (if any) — never two at once: the remediation service looks
   * again right before it fences, rather than trust a verdict up to a round old.
   */
  async roundNow(): Promise<void> {
    while (this.running) await this.running;
    this.running = this.round()
      .catch((e) => this.log.error({ err: e }, 'sampling round failed'))
      .finally(() => (this.running = null));
    await this.running;
  }

  /** Ready once XAPI answered and a round classified the hosts. */
  get ready(): boolean {
    return this.state.snapshot !== null && this.state.memory !== undefined;
  }

  /** One sampling round; public so tests and benchmarks can drive it. */
  async round(): Promise<void> {
    const started = this.clock();
    const snapshot = this.connection.snapshot();
    const xapiConnected = this.connection.status === 'connected';
    if (snapshot) this.state.snapshot = snapshot;
    const s = this.state.snapshot;
    if (!s) return;
    // These follow the pool's configuration (HA on or off, its timeout) as XAPI reports it, and what
    // storage heartbeat the probes last read (xenha-heartbeat's file with its per-host summary: the
    // xenha_heartbeat_* checks); the preflight's storage check is the round's.
    this.state.preflight = preflight(s, this.monitor, this.heartbeatRead);
    this.state.deadAfter = this.deadAfterFor(s);
    this.policy = { ...this.policy, deadAfterMs: this.state.deadAfter.ms };
    const storageHeartbeat = this.state.preflight.find((r) => r.check === 'storage_heartbeat')!;
    this.state.storageHeartbeat = storageHeartbeat;
    const ac = new AbortController();
    // Every TCP connect of the round listens on this one signal (two per host): no leak, many listeners.
    setMaxListeners(0, ac.signal);
    const timer = setTimeout(() => ac.abort(), this.config.timing.probeTimeout);
    const xapiUrl = new URL(this.config.urls[0]!);
    // Each probe is raced against the timeout: one that hangs (I/O on a dead LUN cannot be
    // interrupted) gives no samples this round, and is not started again while it still runs.
    const expired = new Promise<'timeout'>((resolve) => ac.signal.addEventListener('abort', () => resolve('timeout'), { once: true }));
    const results = await Promise.all(
      this.probes.map((p) =>
        this.runProbe(
          p,
          {
            snapshot: s,
            xapiConnected,
            xapiUrl,
            now: started,
            timeoutMs: this.config.timing.probeTimeout,
            signal: ac.signal,
          },
          expired,
        ),
      ),
    );
    clearTimeout(timer);
    ac.abort();
    const samplesOf = new Map<string, Sample[]>();
    for (const r of results) {
      if (!r) continue;
      for (const [host, list] of r.samples) {
        const all = samplesOf.get(host);
        if (all) all.push(...list);
        else samplesOf.set(host, list);
      }
      for (const [name, values] of r.series) this.state.series.set(name, values);
    }
    const hosts = s.hosts.map((h) => ({ host: h.uuid, samples: samplesOf.get(h.uuid) ?? [] }));
    const { next, changes } = classifyPool(this.state.memory, { at: started, hosts, storageHeartbeat: storageHeartbeat.ok }, this.policy);
    this.state.memory = next;
    this.state.lastRoundAt = started;
    this.state.lastRoundSeconds = (this.clock() - started) / 1000;
    this.counters.rounds++;
    this.account(changes, next);
    this.watchMaster(s, hosts);
    this.updateCapacity(s, next);
  }

  /**
   * Runs one probe for one round through a report bound to it: the samples carry the probe's name,
   * path and side; anything reported after the round ended (a probe that overran) is dropped. Null
   * when the probe failed, overran or is still running from an earlier round.
   */
  private async runProbe(
    p: ConfiguredProbe,
    base: Omit<ProbeRound, 'report' | 'observe' | 'storageHeartbeatRead'>,
    expired: Promise<'timeout'>,
  ): Promise<{ samples: Map<string, Sample[]>; series: Map<string, SeriesValue[]> } | null> {
    const fail = (why: string, e?: unknown) => {
      this.counters.probeErrors.set(p.name, (this.counters.probeErrors.get(p.name) ?? 0) + 1);
      this.log.warn({ err: e, probe: p.name }, why);
      return null;
    };
    if (this.inFlight.has(p.name)) return fail('probe still running from an earlier round; skipped');
    const samples = new Map<string, Sample[]>();
    const series = new Map<string, SeriesValue[]>(Object.values(p.series).map((d) => [d.name, []]));
    let open = true;
    let badObservations = 0;
    const round: ProbeRound = {
      ...base,
      report: (host, home, up, detail, extra) => {
        if (!open) return;
        const list = samples.get(host) ?? [];
        samples.set(host, list);
        list.push({
          probe: p.name,
          path: extra?.path ?? p.path,
          home,
          up,
          latencySeconds: extra?.latencySeconds ?? null,
          detail,
          observerSide: p.observerSide,
          source: extra?.source ?? p.source,
          ageMs: extra?.ageMs !== undefined ? extra.ageMs : up === true ? 0 : null,
          // Life seen in this round may have gone on until the next round looks again.
          ...(up === true && { lifeWindowMs: extra?.lifeWindowMs ?? this.config.timing.sampleInterval }),
        });
      },
      storageHeartbeatRead: (read) => {
        if (open) this.heartbeatRead = read;
      },
      observe: (key, host, value, labels = {}) => {
        const def = p.series[key];
        if (!open || !def) return;
        // A value whose labels are not the series' declared ones would make every scrape fail: dropped.
        const names = Object.keys(labels);
        if (
          names.length !== def.labelNames.length ||
          !def.labelNames.every((n) => typeof labels[n] === 'string') ||
          typeof value !== 'number'
        ) {
          badObservations++;
          return;
        }
        series.get(def.name)!.push({ host, labels, value });
      },
    };
    let run: Promise<void>;
    try {
      run = p.probe.sample(round);
    } catch (e) {
      open = false;
      return fail('probe failed', e);
    }
    this.inFlight.add(p.name);
    void run.catch(() => {}).finally(() => this.inFlight.delete(p.name));
    try {
      const r = await Promise.race([run, expired]);
      if (r === 'timeout') return fail(`probe did not answer within ${this.config.timing.probeTimeout} ms`);
      if (badObservations > 0)
        fail(`${badObservations} value(s) of the probe's series dropped: labels other than the declared ones, or not a number`);
      return { samples, series };
    } catch (e) {
      return fail('probe failed', e);
    } finally {
      open = false;
    }
  }

  /** Recomputes the capacity figures when the snapshot or a host's state changed. */
  private updateCapacity(s: PoolSnapshot, mem: PoolMemory): void {
    if (this.connection.vmsFetchedAt === null) return;
    const states = Object.fromEntries(
      Object.values(mem.hosts).map((h) => [
        h.host,
        { state: h.state, anyPathUp: h.network === 'up' || h.network === 'degraded' || h.storage === 'up' || h.storage === 'degraded' },
      ]),
    );
    const key = `${this.connection.vmsFetchedAt}|${JSON.stringify(states)}`;
    if (this.snapshotSeen === s && key === this.capacityKey) return;
    this.snapshotSeen = s;
    this.capacityKey = key;
    try {
      this.state.capacity = failuresToTolerate(fromPoolSnapshot(s, states));
    } catch (e) {
      this.log.warn({ err: e }, 'capacity computation failed');
    }
  }

  private account(changes: StateChange[], mem: PoolMemory): void {
    // Hosts that left the pool leave the counters too (their series vanish with them).
    for (const key of [...this.counters.transitions.keys()]) if (!mem.hosts[key]) this.counters.transitions.delete(key);
    for (const key of [...this.counters.pathFlaps.keys()]) if (!mem.hosts[key.split('/')[0]!]) this.counters.pathFlaps.delete(key);
    for (const c of changes) {
      this.counters.transitions.set(c.host, (this.counters.transitions.get(c.host) ?? 0) + 1);
      if (c.to === 'network_isolated') this.counters.falsePositivesAverted.network++;
      if (c.to === 'storage_lost') this.counters.falsePositivesAverted.storage++;
      this.changes.push(c);
      this.log.info({ host: c.host, from: c.from, to: c.to, rule: c.rule }, c.reason);
    }
    if (this.changes.length > 1000) this.changes.splice(0, this.changes.length - 1000);
    for (const h of Object.values(mem.hosts)) {
      for (const path of ['network', 'storage'] as const) {
        const status = h[path];
        if (status === 'unknown') continue;
        const key = `${h.host}/${path}`;
        const was = this.lastPathStatus.get(key);
        if (was !== undefined && was !== status) this.counters.pathFlaps.set(key, (this.counters.pathFlaps.get(key) ?? 0) + 1);
        this.lastPathStatus.set(key, status);
      }
    }
  }

  /**
   * The monitor's own reach to the master (observer-side network samples) failed for two rounds: ask the connection to check its
   * session (one cheap call) and fail over only if that fails too, so a TCP probe on the wrong port
   * cannot cause a reconnect storm.
   */
  private watchMaster(s: PoolSnapshot, hosts: { host: string; samples: Sample[] }[]): void {
    const master = s.hosts.find((h) => h.ref === s.masterRef);
    const reach =
      hosts.find((h) => h.host === master?.uuid)?.samples.filter((x) => x.observerSide && x.path === 'network' && x.up !== null) ?? [];
    this.masterDownRounds = reach.length > 0 && reach.every((x) => x.up === false) ? this.masterDownRounds + 1 : 0;
    if (this.masterDownRounds >= 2) {
      this.masterDownRounds = 0;
      void this.connection.checkOrFailover(`master ${master?.name} unreachable on every address`);
    }
  }
}
