/**
 * The probe contract. A probe samples one liveness path of every host of a pool, on every home it can
 * see, and reports for each: up, down, or cannot tell (null), with a detail and, when it measured one,
 * a latency. It reports through a round bound to it: the probe's name, its path and whether its
 * samples are the monitor's own reach are filled in by the binding, and a report that arrives after
 * its round ended is dropped. A probe may also export series of its own (declared here, set through
 * the same round); the exporter turns every declared series into a metric family without knowing the
 * probe (as each node_exporter collector owns its metrics).
 *
 * The probes xenha has are listed in index.ts, one line each. Adding a probe touches no other probe.
 */
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { EvidenceSource, PathName } from '../../core/classify/state-machine.ts';
import type { StorageHeartbeatRead } from '../../core/preflight.ts';
import type { PoolSnapshot } from '../../core/model/snapshot.ts';
import type { ReadMode, StatefileRead } from '../../io/statefile-reader.ts';

/** What a TCP connect found. */
export interface TcpConnectResult {
  up: boolean;
  seconds: number;
  detail: string;
}

/** A per-host series a probe exports beside the liveness samples (labels pool and host are added). */
export interface SeriesDefinition {
  name: string;
  help: string;
  /** Extra label names, each with a small fixed set of values. */
  labelNames: readonly string[];
}

/** What a probe may add to a sample beyond up and detail. */
export interface SampleExtra {
  latencySeconds?: number | null;
  path?: PathName;
  source?: EvidenceSource;
  /** How old the evidence is (see Sample.ageMs). */
  ageMs?: number | null;
  /** How much longer the life shown could have lasted unseen (see Sample.lifeWindowMs); default: one sampling round. */
  lifeWindowMs?: number;
}

/** One round of one probe: what it may read, and where it reports. */
export interface ProbeRound<S extends string = string> {
  /** The latest pool snapshot (possibly stale: see xapiConnected). */
  snapshot: PoolSnapshot;
  xapiConnected: boolean;
  /** The first configured XAPI URL, for scheme and port. */
  xapiUrl: URL;
  /** Monotonic milliseconds, the round's time. */
  now: number;
  timeoutMs: number;
  /** Aborted when the round's time is up. */
  signal: AbortSignal;
  /**
   * One sample for a host (UUID) on one home. `path` defaults to the probe's own: a probe may report
   * evidence for the other path (the statefile's slots say who hears whom on the network). `source`
   * defaults to the probe's own; `ageMs` to 0 for an up sample (life seen this round), else null.
   */
  report(host: string, home: string, up: boolean | null, detail: string, extra?: SampleExtra): void;
  /** Sets one of the probe's declared series for a host. */
  observe(series: S, host: string, value: number, labels?: Readonly<Record<string, string>>): void;
  /**
   * Says which storage heartbeat the probe read this round (a probe declaring `storageHeartbeat`
   * only); for xenha-heartbeat's file, with its summary per host (the preflight's xenha_heartbeat_* checks).
   */
  storageHeartbeatRead(read: StorageHeartbeatRead): void;
}

export interface Probe<S extends string = string> {
  sample(round: ProbeRound<S>): Promise<void>;
}

/**
 * The I/O a probe does, replaceable as a whole: by default the real socket and block-device reads; the
 * safety campaign (campaign/) answers them from its in-process simulated pool on its injected clock.
 */
export interface ProbeIo {
  tcpConnect: (host: string, port: number, timeoutMs: number, signal: AbortSignal) => Promise<TcpConnectResult>;
  readStatefile: (path: string, mode: ReadMode, signal: AbortSignal) => Promise<StatefileRead>;
}

export interface ProbeDeps {
  log: Logger;
  /** Default: the real I/O. */
  io?: ProbeIo;
}

export interface ProbeDefinition<O extends z.ZodType = z.ZodType, S extends string = string> {
  name: string;
  /** The path the probe watches. */
  path: PathName;
  /**
   * Its samples measure the monitor's own reach to a host (a TCP connect from the exporter), not what
   * the pool sees: under observer isolation they are set aside.
   */
  observerSide: boolean;
  /** Where its evidence comes from, unless a sample says otherwise. */
  source: EvidenceSource;
  /**
   * It reads a storage heartbeat (the statefile): a pool where such a probe runs, with HA on, can
   * have a two-path verdict; elsewhere no host is called dead.
   */
  storageHeartbeat?: boolean;
  /** Runs when a pool's config names no probe (it needs no option without a default). */
  enabledByDefault: boolean;
  description: string;
  /** The probe's options in the config (a strict zod schema). */
  options: O;
  series: Readonly<Record<S, SeriesDefinition>>;
  create(options: z.output<O>, deps: ProbeDeps): Probe<S>;
}

/** Types a probe definition (its options and series names are inferred). */
export function defineProbe<O extends z.ZodType, S extends string = never>(def: ProbeDefinition<O, S>): ProbeDefinition<O, S> {
  return def;
}
