/**
 * Why a host is in its state: the rule, the reason, the ages it decided on (when each path last
 * showed life, against the dead-after in force and why that value) and the last samples per path and
 * home, each with its source and age.
 */
import type { DeadAfterInForce } from '../core/classify/dead-after.ts';
import type { ClassifyRule, Decision, HostMemory, HostState, PathStatus, Sample } from '../core/classify/state-machine.ts';
import type { PreflightResult } from '../core/preflight.ts';
import type { PoolSampler } from './sampler.ts';

export interface Explanation {
  pool: string;
  host: { name: string; uuid: string; master: boolean };
  state: HostState;
  rule: ClassifyRule;
  reason: string;
  inStateSeconds: number;
  network: PathStatus;
  storage: PathStatus;
  lastVerdict: Decision;
  pending: HostMemory['pending'];
  bothDownSeconds: number | null;
  /** Seconds since each path last showed life (null: never seen alive since the exporter started). */
  lifeAgeSeconds: { network: number | null; storage: number | null };
  deadAfterSeconds: number;
  deadAfter: DeadAfterInForce;
  /** Whether the pool has a storage heartbeat the exporter reads (else no host is called dead), and why. */
  storageHeartbeat: PreflightResult | null;
  /** Up samples showing life this old or older are set aside for the verdict (null: none is). */
  staleAfterSeconds: number | null;
  observerIsolated: boolean;
  observerReason: string;
  samples: Sample[];
  sampledSecondsAgo: number | null;
}

export function explainHost(s: PoolSampler, hostNameOrUuid: string, now: number): Explanation | null {
  const snap = s.state.snapshot;
  const mem = s.state.memory;
  const view = snap?.hosts.find((h) => h.name === hostNameOrUuid || h.uuid === hostNameOrUuid);
  if (!snap || !mem || !view) return null;
  const h = mem.hosts[view.uuid];
  if (!h) return null;
  const secs = (t: number | null) => (t === null ? null : Math.max(0, (now - t) / 1000));
  return {
    pool: s.config.name,
    host: { name: view.name, uuid: view.uuid, master: view.ref === snap.masterRef },
    state: h.state,
    rule: h.rule,
    reason: h.reason,
    inStateSeconds: secs(h.since)!,
    network: h.network,
    storage: h.storage,
    lastVerdict: h.lastRawDecision,
    pending: h.pending,
    bothDownSeconds: secs(h.bothDownSince),
    lifeAgeSeconds: { network: secs(h.lastLife.network), storage: secs(h.lastLife.storage) },
    deadAfterSeconds: s.state.deadAfter.ms / 1000,
    deadAfter: s.state.deadAfter,
    storageHeartbeat: s.state.storageHeartbeat,
    staleAfterSeconds: s.state.storageHeartbeat?.ok ? s.state.deadAfter.ms / 1000 : null,
    observerIsolated: mem.observerIsolated,
    observerReason: mem.observerReason,
    samples: [...h.lastSamples].sort(
      (a, b) => a.path.localeCompare(b.path) || a.probe.localeCompare(b.probe) || a.home.localeCompare(b.home),
    ),
    sampledSecondsAgo: secs(h.lastSampleAt),
  };
}

/** The explanation as a person reads it in a terminal. */
export function formatExplanation(e: Explanation): string {
  const stale = (x: Sample) => e.staleAfterSeconds !== null && x.up === true && (x.ageMs ?? 0) / 1000 >= e.staleAfterSeconds;
  // An up sample set aside as stale reads "old": its life is older than dead-after.
  const mark = (x: Sample) => (x.up === null ? '?' : x.up ? (stale(x) ? 'old' : 'up') : 'DOWN');
  const age = (s: number | null) => (s === null ? 'never seen' : `${s.toFixed(1)} s ago`);
  const sampleAge = (x: Sample) => (x.ageMs === null ? '-' : `${(x.ageMs / 1000).toFixed(1)}s`);
  const lines = [
    `${e.pool} / ${e.host.name}${e.host.master ? ' (master)' : ''}  ${e.host.uuid}`,
    `state      ${e.state}  for ${e.inStateSeconds.toFixed(1)} s`,
    `rule       ${e.rule}`,
    `why        ${e.reason}`,
    `paths      network ${e.network}, storage ${e.storage}${e.bothDownSeconds !== null ? `; both down for ${e.bothDownSeconds.toFixed(1)} s` : ''}`,
    `life       network ${age(e.lifeAgeSeconds.network)}, storage ${age(e.lifeAgeSeconds.storage)}; dead after ${e.deadAfterSeconds} s without any`,
    `dead-after ${e.deadAfterSeconds} s (${e.deadAfter.source}): ${e.deadAfter.reason}`,
    ...(e.storageHeartbeat && !e.storageHeartbeat.ok ? [`NEVER DEAD ${e.storageHeartbeat.reason}`] : []),
    `last round ${e.lastVerdict.state} (${e.lastVerdict.rule})${e.pending ? `, ${e.pending.count} round(s) in a row say ${e.pending.verdict}` : ''}${e.sampledSecondsAgo !== null ? `, ${e.sampledSecondsAgo.toFixed(1)} s ago` : ''}`,
    `observer   ${e.observerIsolated ? 'ISOLATED: ' : ''}${e.observerReason}`,
    '',
    'path     probe              home       up    source     age     latency   detail',
    ...e.samples.map(
      (x) =>
        `${x.path.padEnd(8)} ${x.probe.padEnd(18)} ${x.home.padEnd(10)} ${mark(x).padEnd(5)} ${x.source.padEnd(10)} ${sampleAge(x).padEnd(7)} ${x.latencySeconds === null ? '-'.padEnd(9) : `${(x.latencySeconds * 1000).toFixed(1)}ms`.padEnd(9)} ${x.detail}${x.observerSide ? ' [monitor-side]' : ''}`,
    ),
    ...(e.samples.some(stale)
      ? [
          '',
          `old: up, but its life is ${e.staleAfterSeconds} s old or more (dead-after): set aside for the verdict, fresher evidence exists`,
        ]
      : []),
  ];
  return `${lines.join('\n')}\n`;
}
