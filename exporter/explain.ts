/** Why a host is in its state: the rule, the reason, the timings and the last samples per path and home. */
import type { ClassifyRule, Decision, HostMemory, HostState, PathStatus, Sample } from '../core/classify/state-machine.ts';
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
  deadAfterSeconds: number;
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
    deadAfterSeconds: s.policy.deadAfterMs / 1000,
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
  const mark = (up: boolean | null) => (up === null ? '?' : up ? 'up' : 'DOWN');
  const lines = [
    `${e.pool} / ${e.host.name}${e.host.master ? ' (master)' : ''}  ${e.host.uuid}`,
    `state      ${e.state}  for ${e.inStateSeconds.toFixed(1)} s`,
    `rule       ${e.rule}`,
    `why        ${e.reason}`,
    `paths      network ${e.network}, storage ${e.storage}${e.bothDownSeconds !== null ? `; both down for ${e.bothDownSeconds.toFixed(1)} s of ${e.deadAfterSeconds} s dead-after` : ''}`,
    `last round ${e.lastVerdict.state} (${e.lastVerdict.rule})${e.pending ? `, ${e.pending.count} round(s) in a row say ${e.pending.verdict}` : ''}${e.sampledSecondsAgo !== null ? `, ${e.sampledSecondsAgo.toFixed(1)} s ago` : ''}`,
    `observer   ${e.observerIsolated ? 'ISOLATED: ' : ''}${e.observerReason}`,
    '',
    'path     probe              home       up    latency   detail',
    ...e.samples.map(
      (x) =>
        `${x.path.padEnd(8)} ${x.probe.padEnd(18)} ${x.home.padEnd(10)} ${mark(x.up).padEnd(5)} ${x.latencySeconds === null ? '-'.padEnd(9) : `${(x.latencySeconds * 1000).toFixed(1)}ms`.padEnd(9)} ${x.detail}${x.observerSide ? ' [monitor-side]' : ''}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
