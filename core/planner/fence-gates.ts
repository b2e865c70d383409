/**
 * Which dead hosts may be fenced now. Pure. Every refusal carries its reason. The gates, in order:
 * only hosts classified dead; never a host with any path up (checked again, whatever its state
 * says); never while the monitor is cut off (observer isolation); quorum — when more than a share of
 * the pool looks dead at once, suspect the observer or a partition and refuse unless an operator
 * overrides; never a host without two-path evidence (unless an operator allows it); never a second
 * fence of a host already fenced; a cooldown per host; storm limits — at
 * most N fences in flight and at most M within a window (as medik8s's NHC does).
 */
import { stateOf, type PlannerSnapshot } from './model.ts';
import type { FenceGate, FenceHistory, FencePolicy } from './fence-policy.ts';

export { DEFAULT_FENCE_POLICY, FENCE_GATES, type FenceGate, type FenceHistory, type FencePolicy } from './fence-policy.ts';

export interface FenceDecision {
  /** Dead hosts to fence now, in order (the master first). */
  fence: string[];
  /** Dead hosts already fenced: recovery goes on without a second fence. */
  alreadyFenced: string[];
  refused: { host: string; gate: FenceGate; reason: string }[];
}

export function decideFences(
  s: PlannerSnapshot,
  observerIsolated: boolean,
  history: FenceHistory,
  policy: FencePolicy,
  now: number,
  /**
   * Decide for this host alone (the remediation service: one incident, one host). The others still
   * count for the quorum, but only fences really in flight or done count against the storm limits —
   * not the fences this decision would make of other dead hosts, which are their own incidents'.
   */
  focus?: string,
): FenceDecision {
  const out: FenceDecision = { fence: [], alreadyFenced: [], refused: [] };
  const dead = s.hosts
    .filter((h) => stateOf(h) === 'dead')
    .sort((a, b) => (a.uuid === s.pool.master ? -1 : b.uuid === s.pool.master ? 1 : a.uuid.localeCompare(b.uuid)));
  const refuse = (host: string, gate: FenceGate, reason: string) => out.refused.push({ host, gate, reason });
  if (observerIsolated) {
    for (const h of dead)
      refuse(h.uuid, 'observer-isolated', "the monitor is cut off from the pool: what looks dead may be the monitor's own isolation");
    return out;
  }
  // Hosts already fenced are known to be down, not "looking dead": they do not count for quorum. Hosts
  // silent on both paths but not dead yet (suspect, no path up) do: deaths close together are seen a
  // round apart, and the first of a mass death must not pass the quorum alone (found by the campaign).
  const looking = s.hosts.filter((h) => !h.fenced && (stateOf(h) === 'dead' || (stateOf(h) === 'suspect' && h.anyPathUp === false))).length;
  if (looking > 0 && looking / s.hosts.length > policy.quorumFraction && !policy.overrideQuorum) {
    for (const h of dead)
      refuse(
        h.uuid,
        'quorum',
        `${looking} of ${s.hosts.length} hosts look dead at once (> ${Math.round(policy.quorumFraction * 100)} %): suspect the observer or a partition; an operator may override`,
      );
    return out;
  }
  let inFlight = history.inFlight.length;
  let inWindow = history.fences.filter((f) => now - f.at < policy.fenceWindowMs).length;
  for (const h of focus === undefined ? dead : dead.filter((x) => x.uuid === focus)) {
    if (h.anyPathUp === true) {
      refuse(h.uuid, 'path-up', 'classified dead, but a sample of one of its paths says it is alive');
      continue;
    }
    if (h.anyPathUp === undefined && !h.fenced && !policy.allowWithoutPathEvidence) {
      refuse(
        h.uuid,
        'no-path-evidence',
        "no two-path evidence for this host (no classification from the exporter): never fence on one path's word",
      );
      continue;
    }
    if (h.fenced) {
      out.alreadyFenced.push(h.uuid);
      continue;
    }
    if (history.inFlight.includes(h.uuid)) {
      refuse(h.uuid, 'in-flight', 'a fence of this host is already running');
      continue;
    }
    const last = Math.max(-Infinity, ...history.fences.filter((f) => f.host === h.uuid).map((f) => f.at));
    if (now - last < policy.cooldownMs) {
      refuse(h.uuid, 'cooldown', `fenced ${Math.round((now - last) / 1000)} s ago; cooldown ${policy.cooldownMs / 1000} s`);
      continue;
    }
    if (inFlight >= policy.maxConcurrentFences) {
      refuse(h.uuid, 'storm-concurrent', `${inFlight} fence(s) in flight, limit ${policy.maxConcurrentFences}`);
      continue;
    }
    if (inWindow >= policy.maxFencesInWindow) {
      refuse(h.uuid, 'storm-window', `${inWindow} fence(s) within ${policy.fenceWindowMs / 1000} s, limit ${policy.maxFencesInWindow}`);
      continue;
    }
    out.fence.push(h.uuid);
    inFlight++;
    inWindow++;
  }
  return out;
}
