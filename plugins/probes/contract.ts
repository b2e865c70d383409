/**
 * The probe contract. A probe samples one liveness path of every host of a pool, on every home it
 * can see, and says for each: up, down, or cannot tell (null), with latency and a detail. Its `path`
 * is the path it watches; a sample names the path it is evidence for (storage-statefile also reads
 * what each slot says of the network heartbeat between hosts).
 *
 * Probes register themselves in the registry with a zod schema of their options; the exporter's
 * config names the probes to run. Adding a probe touches no other probe.
 */
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { PathName, Sample } from '../../core/classify/state-machine.ts';
import type { PoolSnapshot } from '../../core/model/snapshot.ts';

export interface ProbeContext {
  pool: string;
  /** The latest pool snapshot (possibly stale: see xapiConnected), null before the first fetch. */
  snapshot: PoolSnapshot | null;
  xapiConnected: boolean;
  /** The first configured XAPI URL, for scheme and port. */
  xapiUrl: URL;
  /** Monotonic milliseconds. */
  now: number;
  timeoutMs: number;
  signal: AbortSignal;
}

/** Samples by host UUID. */
export type ProbeResult = Map<string, Sample[]>;

export interface Probe {
  readonly name: string;
  readonly path: PathName;
  sample(ctx: ProbeContext): Promise<ProbeResult>;
  /** Extra per-host figures for metrics and explain (e.g. slot sequence, peers seen). */
  readonly extras?: () => Map<string, Record<string, number>>;
}

export interface ProbeDefinition<O extends z.ZodType = z.ZodType> {
  name: string;
  path: PathName;
  description: string;
  options: O;
  create(options: z.output<O>, deps: { log: Logger; pool: string }): Probe;
}

const registry = new Map<string, ProbeDefinition>();

export function registerProbe<O extends z.ZodType>(def: ProbeDefinition<O>): void {
  if (registry.has(def.name)) throw new Error(`probe ${def.name} registered twice`);
  registry.set(def.name, def as unknown as ProbeDefinition);
}

export function probeDefinition(name: string): ProbeDefinition | undefined {
  return registry.get(name);
}

export function probeNames(): string[] {
  return [...registry.keys()].sort();
}

export function sample(probe: string, path: PathName, home: string, up: boolean | null, detail: string, latencySeconds: number | null = null, observerSide = false): Sample {
  return { probe, path, home, up, latencySeconds, detail, observerSide };
}
