/**
 * An in-process exporter watching an in-process simulator, with fast timing, stopped by the test:
 * either running on its own timers (startLoop), or stepped by the test on an injected clock
 * (startSteppedLoop), where a claim that something never happens is checked round by round.
 */
import { pino } from 'pino';
import type { Registry } from 'prom-client';
import { exporterConfig, type ExporterConfig } from '../../exporter/config.ts';
import { startExporter, type RunningExporter } from '../../exporter/exporter.ts';
import { createRegistry } from '../../exporter/metrics.ts';
import { PoolSampler } from '../../exporter/sampler.ts';
import type { HostState } from '../../core/classify/state-machine.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { PASSWORD, startTestSim } from './sim.ts';
import type { SimulatorOptions } from '../../simulator/simulator.ts';
import type { PoolSpec } from '../../simulator/pool-spec.ts';

export const EXPORTER_PASSWORD_ENV = 'XENHA_TEST_POOL_PASSWORD';
/** The fast test simulator writes slots every 80 ms and sends heartbeats every 40 ms (test/helpers/sim.ts). */
export const FAST_LIFE_WINDOW_MS = 80;

export interface Loop {
  sim: Simulator;
  exporter: RunningExporter;
  /** The host's current state. */
  state(host: string): HostState | undefined;
  /**
   * Healthy because both paths were seen up on every home (rule both-paths-up), not merely not yet
   * classified (a host starts healthy by rule `initial`): every probe has watched it, the statefile's
   * slot has been seen advancing.
   */
  healthy(host: string): boolean;
  /** Every state the host has been in since the loop started (or since the last reset), in order. */
  history(host: string): HostState[];
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/** The host is healthy because both paths were seen up on every home (see Loop.healthy). */
export function healthyOnEvidence(sampler: PoolSampler, uuid: string): boolean {
  const h = sampler.state.memory?.hosts[uuid];
  return h?.state === 'healthy' && h.rule === 'both-paths-up';
}

export function fastPoolConfig(sim: Simulator, overrides: Record<string, unknown> = {}): ExporterConfig['pools'][number] {
  return exporterConfig.parse({ pools: [fastPoolInput(sim, overrides)] }).pools[0]!;
}

/** The fast test pool as a config file says it (before validation: durations as strings). */
export function fastPoolInput(sim: Simulator, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const info = sim.info();
  return {
    name: 'sim',
    urls: info.hosts.flatMap((h) => h.urls),
    passwordEnv: EXPORTER_PASSWORD_ENV,
    probes: {
      'network-tcp': {},
      'network-xapi': {},
      'storage-xapi': {},
      // The simulator's xenha-heartbeat file when it runs the daemons, read with the probe's defaults
      // (its windows follow the interval the slots say); else xhad's statefile.
      'storage-statefile': info.heartbeat
        ? { devices: [{ home: '0', path: info.heartbeat.file }], readMode: 'buffered' }
        : {
            devices: [{ home: '0', path: info.statefile }],
            readMode: 'buffered',
            // As the defaults are ordered (6 s and 11 s at T = 30 s): a slot stalls before the peers'
            // word on a silent host runs out, so a crash never reads network_isolated on the way.
            stallAfterMs: 600,
            peerHeartbeatTimeoutMs: 800,
            // The fast simulator's slots and heartbeats come far more often than xhad's (2–3 s at T = 30 s).
            lifeWindowMs: FAST_LIFE_WINDOW_MS,
          },
    },
    timing: {
      sampleInterval: '100ms',
      probeTimeout: '80ms',
      xapiTimeout: '2s',
      deadAfter: '1s',
      flapWindow: '3s',
      flapThreshold: 6,
      confirmSamples: 2,
      capacityInterval: '500ms',
    },
    ...overrides,
  };
}

export async function startLoop(opts: Partial<SimulatorOptions> & { spec?: PoolSpec; pool?: Record<string, unknown> } = {}): Promise<Loop> {
  process.env[EXPORTER_PASSWORD_ENV] = PASSWORD;
  const sim = await startTestSim(opts);
  let exporter: RunningExporter;
  try {
    exporter = await startExporter({ listen: '127.0.0.1:0', pools: [fastPoolConfig(sim, opts.pool)] }, pino({ level: 'silent' }));
  } catch (e) {
    await sim.stop();
    throw e;
  }
  const sampler = exporter.samplers[0]!;
  const uuidOf = (name: string) => sim.pool.host(name).built.uuid;
  return {
    sim,
    exporter,
    state: (host) => sampler.state.memory?.hosts[uuidOf(host)]?.state,
    healthy: (host) => healthyOnEvidence(sampler, uuidOf(host)),
    history: (host) => {
      const uuid = uuidOf(host);
      const out: HostState[] = ['healthy'];
      for (const c of sampler.changes) if (c.host === uuid) out.push(c.to);
      return out;
    },
    metrics: async () => (await fetch(`${exporter.url}/metrics`)).text(),
    stop: async () => {
      await exporter.stop();
      await sim.stop();
    },
  };
}

/** The loop on an injected clock: nothing moves until the test steps it. */
export interface SteppedLoop {
  sim: Simulator;
  sampler: PoolSampler;
  registry: Registry;
  /** The injected clock (ms). */
  now(): number;
  /** Advances the clock by one sample interval: the pool ticks through it, then one sampling round. */
  round(): Promise<void>;
  state(host: string): HostState | undefined;
  /** As Loop.healthy. */
  healthy(host: string): boolean;
  history(host: string): HostState[];
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The simulator (autoTick off) and one pool sampler share an injected clock; the sampler's XAPI
 * connection runs for real over loopback (its events arrive in real time), its rounds only when the
 * test calls round().
 */
export async function startSteppedLoop(
  opts: Partial<SimulatorOptions> & { spec?: PoolSpec; pool?: Record<string, unknown> } = {},
): Promise<SteppedLoop> {
  process.env[EXPORTER_PASSWORD_ENV] = PASSWORD;
  let t = 1_000_000;
  const now = () => t;
  const sim = await startTestSim({ ...opts, autoTick: false, now });
  let config: ExporterConfig['pools'][number];
  let sampler: PoolSampler;
  try {
    config = fastPoolConfig(sim, opts.pool);
    sampler = new PoolSampler(config, pino({ level: 'silent' }), now);
  } catch (e) {
    await sim.stop();
    throw e;
  }
  sampler.connection.start();
  const registry = createRegistry([sampler], now, false);
  const uuidOf = (name: string) => sim.pool.host(name).built.uuid;
  const tickMs = sim.pool.timing.tickMs;
  return {
    sim,
    sampler,
    registry,
    now,
    async round() {
      const until = t + config.timing.sampleInterval;
      while (t < until) {
        t = Math.min(until, t + tickMs);
        await sim.step(t);
      }
      await sampler.round();
    },
    state: (host) => sampler.state.memory?.hosts[uuidOf(host)]?.state,
    healthy: (host) => healthyOnEvidence(sampler, uuidOf(host)),
    history: (host) => {
      const uuid = uuidOf(host);
      return ['healthy', ...sampler.changes.filter((c) => c.host === uuid).map((c) => c.to)];
    },
    metrics: () => registry.metrics(),
    stop: async () => {
      await sampler.stop();
      await sim.stop();
    },
  };
}

/**
 * Runs rounds until `done` holds, at most `maxRounds` (and `timeoutMs` of real time, for what
 * arrives over XAPI in real time); `each` checks every round on the way. Returns the rounds run.
 */
export async function roundsUntil(
  l: SteppedLoop,
  what: string,
  done: () => boolean,
  each: () => void = () => {},
  { maxRounds = 600, timeoutMs = 15_000 } = {},
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (let n = 1; n <= maxRounds; n++) {
    await l.round();
    each();
    if (done()) return n;
    if (Date.now() > deadline) break;
    // Paced, so that what arrives over XAPI in real time (events, timeouts) can arrive between rounds.
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${what}: not reached within ${maxRounds} rounds or ${timeoutMs} ms`);
}

/** The value of one series in a scrape, or undefined. The labels given must be exactly the series' labels. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const got = Object.fromEntries([...body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.keys(got).length === want.length && want.every(([k, v]) => got[k] === v))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}
