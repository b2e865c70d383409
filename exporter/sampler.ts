/**
 * One pool's sampling loop: every interval, run the enabled probes in parallel (each bounded by the
 * probe timeout), turn their samples into one observation, step the classification state machine, and
 * keep the result for /metrics (which never waits on a pool). Liveness is a series of heartbeats, so
 * this runs in the background, not at scrape time.
 */
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import {
  classifyPool, type ClassifyPolicy, type PoolMemory, type Sample, type StateChange,
} from '../core/classify/state-machine.ts';
import type { PoolSnapshot } from '../core/model/snapshot.ts';
import { preflight, type PreflightResult } from '../core/preflight.ts';
import { failuresToTolerate, type Capacity } from '../core/planner/capacity.ts';
import { fromPoolSnapshot } from '../core/planner/model.ts';
import { PoolConnection } from '../io/xapi/connection.ts';
import { probeDefinition, type Probe } from '../plugins/probes/index.ts';
import { probeOptions, resolvePassword, type PoolConfig } from './config.ts';

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
  /** Per probe, per host UUID: figures the probe keeps (e.g. statefile sequence, peers seen). */
  extras: Map<string, Map<string, Record<string, number>>>;
  /** Failures the pool can absorb, from the planner; null until VMs were fetched. */
  capacity: Capacity | null;
}

export class PoolSampler {
  readonly connection: PoolConnection;
  readonly probes: Probe[];
  readonly counters: SamplerCounters = {
    transitions: new Map(), falsePositivesAverted: { network: 0, storage: 0 }, pathFlaps: new Map(), rounds: 0, probeErrors: new Map(),
  };
  readonly state: PoolState = { memory: undefined, snapshot: null, preflight: [], lastRoundAt: null, lastRoundSeconds: null, extras: new Map(), capacity: null };
  private capacityKey = '';
  private snapshotSeen: PoolSnapshot | null = null;
  readonly changes: StateChange[] = [];
  readonly policy: ClassifyPolicy;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private stopped = false;
  private masterDownRounds = 0;
  private lastPathStatus = new Map<string, string>();
  private readonly inFlight = new Set<string>();

  constructor(readonly config: PoolConfig, readonly log: Logger, private readonly clock: () => number = () => performance.now()) {
    this.connection = new PoolConnection({
      name: config.name, urls: config.urls, user: config.user, password: resolvePassword(config), allowUnauthorized: config.allowUnauthorized,
      callTimeoutMs: config.timing.xapiTimeout, vmRefreshMs: config.timing.capacityInterval, retryMinMs: 500, retryMaxMs: 10_000, log,
    });
    this.probes = probeOptions(config).map(({ name, options }) => probeDefinition(name)!.create(options, { log, pool: config.name }));
    this.policy = {
      confirmSamples: config.timing.confirmSamples, deadAfterMs: config.timing.deadAfter,
      flapWindowMs: config.timing.flapWindow, flapThreshold: config.timing.flapThreshold,
    };
  }

  start(): void {
    this.connection.start();
    const tick = () => {
      if (this.stopped) return;
      // A round that overruns is not stacked: the next one starts when it ends.
      this.running ??= this.round().catch((e) => this.log.error({ err: e, pool: this.config.name }, 'sampling round failed')).finally(() => (this.running = null));
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

  /** Ready once XAPI answered and a round classified the hosts. */
  get ready(): boolean {
    return this.state.snapshot !== null && this.state.memory !== undefined;
  }

  /** One sampling round; public so tests and benchmarks can drive it. */
  async round(): Promise<void> {
    const started = this.clock();
    const snapshot = this.connection.snapshot();
    const xapiConnected = this.connection.status === 'connected';
    if (snapshot) {
      this.state.snapshot = snapshot;
      this.state.preflight = preflight(snapshot);
    }
    const s = this.state.snapshot;
    if (!s) return;
    const ac = new AbortController();
    // Every TCP connect of the round listens on this one signal (two per host): no leak, many listeners.
    setMaxListeners(0, ac.signal);
    const timer = setTimeout(() => ac.abort(), this.config.timing.probeTimeout);
    const ctx = {
      pool: this.config.name, snapshot: s, xapiConnected, xapiUrl: new URL(this.config.urls[0]!), now: started,
      timeoutMs: this.config.timing.probeTimeout, signal: ac.signal,
    };
    // Each probe is raced against the timeout: one that hangs (I/O on a dead LUN cannot be
    // interrupted) gives no samples this round, and is not started again while it still runs.
    const expired = new Promise<'timeout'>((resolve) => ac.signal.addEventListener('abort', () => resolve('timeout'), { once: true }));
    const results = await Promise.all(this.probes.map(async (p) => {
      const fail = (why: string, e?: unknown) => {
        this.counters.probeErrors.set(p.name, (this.counters.probeErrors.get(p.name) ?? 0) + 1);
        this.log.warn({ err: e, pool: this.config.name, probe: p.name }, why);
        return new Map<string, Sample[]>();
      };
      if (this.inFlight.has(p.name)) return fail('probe still running from an earlier round; skipped');
      const run = p.sample(ctx);
      this.inFlight.add(p.name);
      void run.catch(() => {}).finally(() => this.inFlight.delete(p.name));
      try {
        const r = await Promise.race([run, expired]);
        return r === 'timeout' ? fail(`probe did not answer within ${this.config.timing.probeTimeout} ms`) : r;
      } catch (e) {
        return fail('probe failed', e);
      }
    }));
    clearTimeout(timer);
    ac.abort();
    for (const p of this.probes) if (p.extras) this.state.extras.set(p.name, p.extras());
    const hosts = s.hosts.map((h) => ({ host: h.uuid, samples: results.flatMap((r) => r.get(h.uuid) ?? []) }));
    const { next, changes } = classifyPool(this.state.memory, { at: started, hosts }, this.policy);
    this.state.memory = next;
    this.state.lastRoundAt = started;
    this.state.lastRoundSeconds = (this.clock() - started) / 1000;
    this.counters.rounds++;
    this.account(changes, next);
    this.watchMaster(s, hosts);
    this.updateCapacity(s, next);
  }

  /** Recomputes the capacity figures when the snapshot or a host's state changed. */
  private updateCapacity(s: PoolSnapshot, mem: PoolMemory): void {
    if (this.connection.vmsFetchedAt === null) return;
    const states = Object.fromEntries(Object.values(mem.hosts).map((h) => [h.host, { state: h.state, anyPathUp: h.network === 'up' || h.network === 'degraded' || h.storage === 'up' || h.storage === 'degraded' }]));
    const key = `${this.connection.vmsFetchedAt}|${JSON.stringify(states)}`;
    if (this.snapshotSeen === s && key === this.capacityKey) return;
    this.snapshotSeen = s;
    this.capacityKey = key;
    try {
      this.state.capacity = failuresToTolerate(fromPoolSnapshot(s, states));
    } catch (e) {
      this.log.warn({ err: e, pool: this.config.name }, 'capacity computation failed');
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
      this.log.info({ pool: this.config.name, host: c.host, from: c.from, to: c.to, rule: c.rule }, c.reason);
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
   * The master's addresses stopped answering TCP for two rounds: ask the connection to check its
   * session (one cheap call) and fail over only if that fails too, so a TCP probe on the wrong port
   * cannot cause a reconnect storm.
   */
  private watchMaster(s: PoolSnapshot, hosts: { host: string; samples: Sample[] }[]): void {
    const master = s.hosts.find((h) => h.ref === s.masterRef);
    const tcp = hosts.find((h) => h.host === master?.uuid)?.samples.filter((x) => x.probe === 'network-tcp' && x.up !== null) ?? [];
    this.masterDownRounds = tcp.length > 0 && tcp.every((x) => x.up === false) ? this.masterDownRounds + 1 : 0;
    if (this.masterDownRounds >= 2) {
      this.masterDownRounds = 0;
      void this.connection.checkOrFailover(`master ${master?.name} unreachable on every address`);
    }
  }
}
