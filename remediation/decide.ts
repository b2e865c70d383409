/**
 * The sceptical re-check and the plan for one incident, pure: the service's own view of the pool (its
 * own sampler's snapshot and classification, never the exporter's word nor the alert's), the fence
 * history from the journal, the policy and the time in; a refusal with its gate, or a plan, out.
 *
 * One incident is one host. The fence gates see the whole pool (every host that looks dead counts for
 * the quorum); the plan itself leaves other dead hosts to their own incidents (shown to the planner as
 * down and not to be touched: neither fenced nor given VMs by this plan). While the master is dead and
 * it is not this incident's host, nothing is planned (gate master-dead): its incident goes first.
 */
import type { HostMemory } from '../core/classify/state-machine.ts';
import type { PoolSnapshot } from '../core/model/snapshot.ts';
import type { FenceHistory, FencePolicy } from '../core/planner/fence-policy.ts';
import { decideFences } from '../core/planner/fence-gates.ts';
import { fromPoolSnapshot } from '../core/planner/model.ts';
import { planRecovery, type RecoveryPlan } from '../core/planner/plan.ts';
import type { RefusalGate } from './records.ts';

export interface OwnView {
  snapshot: PoolSnapshot;
  /** The service's own classification by host UUID (its sampler's memory). */
  hosts: Readonly<Record<string, Pick<HostMemory, 'state' | 'rule' | 'reason' | 'network' | 'storage'>>>;
  observerIsolated: boolean;
}

export interface DecisionInput {
  host: string;
  view: OwnView;
  history: FenceHistory;
  policy: FencePolicy;
  /** The host was confirmed off by an earlier plan of this incident. */
  alreadyFenced: boolean;
  /** Other hosts of the pool confirmed off by their own incidents' plans (and not booted since). */
  fencedHosts?: readonly string[];
  now: number;
}

export type Decision =
  | { kind: 'refused'; gate: RefusalGate; reason: string; ownState: string | null }
  | { kind: 'plan'; plan: RecoveryPlan; names: Record<string, string> };

const alive = (p: HostMemory['network']) => p === 'up' || p === 'degraded';

export function decide(d: DecisionInput): Decision {
  const own = d.view.hosts[d.host];
  if (!own) return { kind: 'refused', gate: 'not-dead', reason: 'no verdict of its own on this host yet', ownState: null };
  if (own.state !== 'dead')
    return {
      kind: 'refused',
      gate: 'not-dead',
      reason: `its own verdict is ${own.state} (${own.rule}: ${own.reason}), not dead: nothing is done on the alert's word`,
      ownState: own.state,
    };
  const states = Object.fromEntries(
    Object.entries(d.view.hosts).map(([uuid, h]) => [uuid, { state: h.state, anyPathUp: alive(h.network) || alive(h.storage) }]),
  );
  const full = fromPoolSnapshot(d.view.snapshot, states);
  const fenced = new Set(d.fencedHosts ?? []);
  const fullWithFence = {
    ...full,
    hosts: full.hosts.map((h) => (h.uuid === d.host ? { ...h, fenced: d.alreadyFenced } : fenced.has(h.uuid) ? { ...h, fenced: true } : h)),
  };
  // The gates see the whole pool as it is: every host that looks dead counts for the quorum, whichever
  // incident it belongs to (a host another plan fenced is known down: it does not); the storm limits
  // count fences in flight or done, never the ones other incidents would make.
  const gates = decideFences(fullWithFence, d.view.observerIsolated, d.history, d.policy, d.now, d.host);
  const gated = gates.refused.find((r) => r.host === d.host);
  if (gated) return { kind: 'refused', gate: gated.gate, reason: gated.reason, ownState: own.state };
  // Another host's death is its own incident; but without a master nothing can be reset or started:
  // the master's incident hands the role on first, and this one is checked again after it.
  // A master that shows no life (suspect: not dead yet) holds the plan too: deaths close together are
  // seen a round apart, and a plan made while its master is dying could reset no VM.
  const master = full.pool.master;
  const masterNow = d.view.hosts[master];
  if (
    master !== d.host &&
    masterNow &&
    (masterNow.state === 'dead' || (masterNow.state === 'suspect' && !alive(masterNow.network) && !alive(masterNow.storage)))
  )
    return {
      kind: 'refused',
      gate: 'master-dead',
      reason: `the master is ${masterNow.state === 'dead' ? 'dead' : 'silent on both paths (suspect)'} too: its own incident hands the master role on first; this host is checked again after`,
      ownState: own.state,
    };
  const snapshot = {
    ...full,
    hosts: full.hosts.map((h) =>
      h.uuid === d.host
        ? { ...h, fenced: d.alreadyFenced }
        : h.state === 'dead'
          ? // Another incident's host: neither fenced nor given VMs here.
            { ...h, state: 'suspect' as const, live: false }
          : h,
    ),
  };
  const plan = planRecovery(snapshot, { observerIsolated: d.view.observerIsolated, history: d.history, fencePolicy: d.policy, now: d.now });
  const refusal = plan.fences.refused.find((r) => r.host === d.host);
  if (refusal) return { kind: 'refused', gate: refusal.gate, reason: refusal.reason, ownState: own.state };
  // The names of what the plan touches only: a pool's every VM would not fit a journal record.
  const touched = new Set<string>([d.host]);
  for (const st of plan.steps) {
    if ('host' in st) touched.add(st.host);
    if ('vm' in st) touched.add(st.vm);
    if ('master' in st) touched.add(st.master);
  }
  for (const u of plan.unplaced) touched.add(u.vm);
  const names = Object.fromEntries([
    ...snapshot.hosts.filter((h) => touched.has(h.uuid)).map((h) => [h.uuid, h.name] as const),
    ...snapshot.vms.filter((v) => touched.has(v.uuid)).map((v) => [v.uuid, v.name] as const),
  ]);
  return { kind: 'plan', plan, names };
}
