/**
 * The recovery plan for hosts that are dead: an ordered list of typed steps, each with its reason.
 * Pure. Order and safety:
 * 1. fence each host the gates allow, and confirm it is off (a host already fenced is only confirmed);
 * 2. if the master is among them, hand the master role to a survivor before anything needs XAPI —
 *    `pool.emergency_transition_to_master` on it and `pool.emergency_reset_master` on the others; with
 *    HA on, xapi refuses that (HA_IS_ENABLED) and xhad elects the master, so the plan waits for it;
 * 3. reset the power state of the fenced hosts' VMs (XAPI still says Running);
 * 4. start their `restart` VMs by `order` (ascending, negative last), honouring `start_delay`, each on
 *    a survivor with room; then `best-effort` VMs while room lasts. Nothing is started on a host that
 *    is not confirmed fenced first, nothing beyond a host's free memory.
 */
import { failuresToTolerate, lowerBoundTolerable } from './capacity.ts';
import { decideFences, type FenceDecision, type FenceHistory, type FencePolicy } from './fence-gates.ts';
import { canHost, hostFree, isResident, stateOf, type PlannerSnapshot, type PlannerVm } from './model.ts';

export type Step =
  | { kind: 'fence'; host: string; reason: string }
  | { kind: 'confirm-fenced'; host: string; reason: string }
  | { kind: 'await-master-election'; reason: string }
  | { kind: 'transition-master'; host: string; reason: string }
  | { kind: 'follow-master'; host: string; master: string; reason: string }
  | { kind: 'reset-power-state'; vm: string; host: string; reason: string }
  | { kind: 'start-vm'; vm: string; host: string; reason: string }
  | { kind: 'wait'; seconds: number; reason: string };

export interface RecoveryPlan {
  steps: Step[];
  fences: FenceDecision;
  /** Protected or best-effort VMs of the recovered hosts that get no host, with why. */
  unplaced: { vm: string; name: string; reason: string }[];
  /** VMs of the recovered hosts HA does not restart (no priority). */
  notRestarted: { vm: string; name: string }[];
}

export interface PlanContext {
  observerIsolated: boolean;
  history: FenceHistory;
  fencePolicy: FencePolicy;
  now: number;
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

/** `order` ascending, negative orders last (xapi's restart order). */
function orderKey(o: number): number {
  return o < 0 ? Number.MAX_SAFE_INTEGER + o : o;
}

export function planRecovery(s: PlannerSnapshot, ctx: PlanContext): RecoveryPlan {
  const name = new Map(s.hosts.map((h) => [h.uuid, h.name]));
  const fences = decideFences(s, ctx.observerIsolated, ctx.history, ctx.fencePolicy, ctx.now);
  const steps: Step[] = [];
  for (const h of fences.fence) {
    steps.push({ kind: 'fence', host: h, reason: `${name.get(h)} is dead: both paths down on every home for dead-after` });
    steps.push({
      kind: 'confirm-fenced',
      host: h,
      reason: `${name.get(h)}'s fence agent must report it off before any of its VMs restarts`,
    });
  }
  for (const h of fences.alreadyFenced) {
    steps.push({ kind: 'confirm-fenced', host: h, reason: `${name.get(h)} was fenced already: confirm it is still off` });
  }
  const recovered = new Set([...fences.fence, ...fences.alreadyFenced]);
  const plan: RecoveryPlan = { steps, fences, unplaced: [], notRestarted: [] };
  if (recovered.size === 0) return plan;

  // A host silent on both paths whose own verdict has confirmed it (suspect: not dead yet) may be dying
  // too: it takes neither VMs nor the master role (the quorum gate counts it as looking dead). One silent
  // this round whose verdict still holds it up (unconfirmed: a host dying a round after, or the monitor's
  // own stall, which silences every host at once) is a last resort, used for what fits nowhere else: the
  // executor starts a VM elsewhere if that host turns out gone.
  const survivors = s.hosts
    .filter((h) => canHost(h) && !recovered.has(h.uuid) && !(h.anyPathUp === false && stateOf(h) === 'suspect'))
    .sort((a, b) => silentNow(a) - silentNow(b) || rank(a.state) - rank(b.state) || a.uuid.localeCompare(b.uuid));
  const showingLife = survivors.filter((h) => !silentNow(h)).map((h) => h.uuid);
  const silentThisRound = survivors.filter((h) => silentNow(h)).map((h) => h.uuid);
  const vmsOf = s.vms.filter((v) => isResident(v) && recovered.has(v.residentOn!) && !v.isControlDomain);
  const masterHost = s.hosts.find((h) => h.uuid === s.pool.master);
  const masterDead = masterHost !== undefined && stateOf(masterHost) === 'dead';
  if (masterDead && !recovered.has(s.pool.master)) {
    // Resets and restarts go through XAPI, which the dead master no longer serves, and the role can
    // only move once it is fenced: nothing more until then.
    for (const v of vmsOf.filter((x) => x.haRestartPriority !== '')) {
      plan.unplaced.push({
        vm: v.uuid,
        name: v.name,
        reason: `the master ${name.get(s.pool.master)} is dead and not fenced yet: no XAPI to restart through`,
      });
    }
    return plan;
  }
  if (recovered.has(s.pool.master)) {
    const next = survivors[0];
    if (s.pool.haEnabled) {
      steps.push({
        kind: 'await-master-election',
        reason: `the master ${name.get(s.pool.master)} is dead and HA is on: xhad elects the new master (xapi refuses a manual transition then)`,
      });
    } else if (next) {
      steps.push({
        kind: 'transition-master',
        host: next.uuid,
        reason: `the master ${name.get(s.pool.master)} is dead: ${next.name} (${next.state ?? 'live'}, lowest UUID among the healthiest) takes over before anything needs XAPI`,
      });
      // Every other live host follows, hosts that cannot take VMs (disabled) included.
      const followers = s.hosts.filter((h) => h.live && h.state !== 'dead' && !h.fenced && !recovered.has(h.uuid) && h.uuid !== next.uuid);
      for (const o of followers)
        steps.push({ kind: 'follow-master', host: o.uuid, master: next.uuid, reason: `${o.name} follows the new master ${next.name}` });
    }
  }
  if (survivors.length === 0) {
    // No host left to run XAPI or VMs: fencing is all that can be done.
    for (const v of vmsOf.filter((x) => x.haRestartPriority !== ''))
      plan.unplaced.push({ vm: v.uuid, name: v.name, reason: 'no live, enabled host left' });
    return plan;
  }
  for (const v of vmsOf) {
    steps.push({
      kind: 'reset-power-state',
      vm: v.uuid,
      host: v.residentOn!,
      reason: `${v.name} is still ${v.powerState} on ${name.get(v.residentOn!)} in XAPI; its host is fenced`,
    });
  }

  const why = (v: PlannerVm) =>
    v.pinnedTo !== null && recovered.has(v.pinnedTo)
      ? `its disk is on ${name.get(v.pinnedTo)}'s local storage`
      : `needs ${gib(v.memoryNeed)}, no survivor has that much free`;

  // Where the protected VMs go: of the candidate placements, the one that keeps the most host
  // failures tolerable afterwards (the pool should still hold k − 1 after losing one of k).
  const protectedVms = vmsOf.filter((v) => v.haRestartPriority === 'restart');
  const chosen = choosePlacement(s, recovered, showingLife, protectedVms);
  const placed = new Map(chosen.placement);
  const lastResort = new Set<string>();
  const left = protectedVms.filter((v) => !placed.has(v.uuid));
  if (left.length > 0 && silentThisRound.length > 0) {
    for (const [vm, host] of choosePlacement(withPlacement(s, recovered, placed), recovered, silentThisRound, left).placement) {
      placed.set(vm, host);
      lastResort.add(vm);
    }
  }
  const groups = [...new Set(protectedVms.map((v) => v.order))].sort((a, b) => orderKey(a) - orderKey(b));
  let started = 0;
  const start = (v: PlannerVm, host: string, what: string, how: string) => {
    steps.push({ kind: 'start-vm', vm: v.uuid, host, reason: `${what} ${v.name} (${gib(v.memoryNeed)}) on ${name.get(host)}: ${how}` });
    started++;
    if (v.startDelay > 0) steps.push({ kind: 'wait', seconds: v.startDelay, reason: `${v.name}'s start_delay` });
  };
  groups.forEach((order, gi) => {
    if (gi > 0 && started > 0) steps.push({ kind: 'wait', seconds: 0, reason: `order ${groups[gi - 1]} started before order ${order}` });
    for (const v of protectedVms
      .filter((x) => x.order === order)
      .sort((a, b) => b.memoryNeed - a.memoryNeed || a.uuid.localeCompare(b.uuid))) {
      const host = placed.get(v.uuid);
      if (host)
        start(
          v,
          host,
          `restart (order ${order})`,
          lastResort.has(v.uuid)
            ? 'no survivor showing life has room; this one is silent this round, its verdict not confirmed'
            : chosen.how,
        );
      else plan.unplaced.push({ vm: v.uuid, name: v.name, reason: why(v) });
    }
  });
  // Best-effort VMs only where room is left over the failover reserve: a start that would lower the
  // failures the pool tolerates below what the restart placement kept is left out (as xapi's
  // overcommit protection refuses it).
  const bestEffort = vmsOf
    .filter((v) => v.haRestartPriority === 'best-effort')
    .sort((a, b) => orderKey(a.order) - orderKey(b.order) || b.memoryNeed - a.memoryNeed || a.uuid.localeCompare(b.uuid));
  if (bestEffort.length > 0 && started > 0)
    steps.push({ kind: 'wait', seconds: 0, reason: 'every restart VM started before the best-effort ones' });
  let current = withPlacement(s, recovered, placed);
  const keep = failuresToTolerate(current);
  const keepK = keep.exact ?? keep.lower;
  for (const v of bestEffort) {
    const free = hostFree(current);
    const options = survivors
      .map((h) => h.uuid)
      .filter((h) => (v.pinnedTo === null || v.pinnedTo === h) && free.get(h)! >= v.memoryNeed)
      .sort(
        (a, b) =>
          Number(silentThisRound.includes(a)) - Number(silentThisRound.includes(b)) || free.get(b)! - free.get(a)! || a.localeCompare(b),
      );
    let host: string | null = null;
    for (const h of options) {
      const trial = withPlacement(current, recovered, new Map([[v.uuid, h]]));
      const after = keep.exact !== null ? (failuresToTolerate(trial).exact ?? lowerBoundTolerable(trial)) : lowerBoundTolerable(trial);
      if (after >= keepK) {
        host = h;
        current = trial;
        break;
      }
    }
    if (host) {
      placed.set(v.uuid, host);
      start(
        v,
        host,
        'best-effort',
        silentThisRound.includes(host)
          ? 'no survivor showing life has room that keeps the failures tolerable; this one is silent this round, its verdict not confirmed'
          : 'the survivor with the most free memory that keeps the failures tolerable',
      );
    } else {
      plan.unplaced.push({
        vm: v.uuid,
        name: v.name,
        reason: options.length === 0 ? `best-effort: ${why(v)}` : `best-effort: would leave fewer than ${keepK} host failure(s) tolerable`,
      });
    }
  }

  plan.notRestarted = vmsOf.filter((v) => v.haRestartPriority === '').map((v) => ({ vm: v.uuid, name: v.name }));
  return plan;
}

/** The snapshot once the recovered hosts are off and their VMs placed (unplaced ones Halted). */
function withPlacement(s: PlannerSnapshot, recovered: ReadonlySet<string>, placement: ReadonlyMap<string, string>): PlannerSnapshot {
  return {
    ...s,
    hosts: s.hosts.map((h) => (recovered.has(h.uuid) ? { ...h, live: false, fenced: true, state: 'dead' as const } : h)),
    vms: s.vms.map((v) => {
      const to = placement.get(v.uuid);
      if (to) return { ...v, residentOn: to, powerState: 'Running' as const };
      if (v.residentOn === null || !recovered.has(v.residentOn) || v.isControlDomain) return v;
      return { ...v, residentOn: null, powerState: 'Halted' as const };
    }),
  };
}

/**
 * Candidate placements of the protected VMs, scored by how many VMs they place and then by the
 * failures the pool still tolerates afterwards (exact where affordable, else the lower bound).
 * Candidates: largest first onto the most free host (xapi's), onto the tightest fit, first fit;
 * and, for small cases, every placement.
 */
function choosePlacement(
  s: PlannerSnapshot,
  recovered: ReadonlySet<string>,
  survivors: string[],
  vms: PlannerVm[],
): { placement: Map<string, string>; how: string } {
  const free0 = hostFree(s);
  const sorted = [...vms].sort((a, b) => b.memoryNeed - a.memoryNeed || a.uuid.localeCompare(b.uuid));
  const allowed = (v: PlannerVm, h: string) => v.pinnedTo === null || v.pinnedTo === h;
  const greedy = (pick: (v: PlannerVm, free: Map<string, number>) => string | undefined) => {
    const free = new Map(survivors.map((h) => [h, free0.get(h)!]));
    const out = new Map<string, string>();
    for (const v of sorted) {
      const h = pick(v, free);
      if (h !== undefined) {
        out.set(v.uuid, h);
        free.set(h, free.get(h)! - v.memoryNeed);
      }
    }
    return out;
  };
  const fitting = (v: PlannerVm, free: Map<string, number>) => survivors.filter((h) => allowed(v, h) && free.get(h)! >= v.memoryNeed);
  const candidates: { placement: Map<string, string>; how: string }[] = [
    {
      placement: greedy((v, f) => fitting(v, f).sort((a, b) => f.get(b)! - f.get(a)! || a.localeCompare(b))[0]),
      how: 'the survivor with the most free memory',
    },
    { placement: greedy((v, f) => fitting(v, f).sort((a, b) => f.get(a)! - f.get(b)! || a.localeCompare(b))[0]), how: 'the tightest fit' },
    { placement: greedy((v, f) => fitting(v, f)[0]), how: 'the first survivor with room' },
  ];
  if (sorted.length <= 8 && survivors.length <= 8) {
    // Every placement of every VM (small cases): bounded by the numbers above.
    const free = new Map(survivors.map((h) => [h, free0.get(h)!]));
    const cur = new Map<string, string>();
    let budget = 4000;
    const dfs = (i: number) => {
      if (budget <= 0) return;
      if (i === sorted.length) {
        budget--;
        candidates.push({ placement: new Map(cur), how: 'a placement that keeps the most failures tolerable' });
        return;
      }
      const v = sorted[i]!;
      for (const h of fitting(v, free)) {
        free.set(h, free.get(h)! - v.memoryNeed);
        cur.set(v.uuid, h);
        dfs(i + 1);
        cur.delete(v.uuid);
        free.set(h, free.get(h)! + v.memoryNeed);
      }
    };
    dfs(0);
  }
  let best = candidates[0]!;
  let bestScore = [-1, -1];
  const seen = new Set<string>();
  for (const c of candidates) {
    const key = [...c.placement].sort().join(';');
    if (seen.has(key)) continue;
    seen.add(key);
    const cap = failuresToTolerate(withPlacement(s, recovered, c.placement));
    const score = [c.placement.size, cap.exact ?? cap.lower];
    if (score[0]! > bestScore[0]! || (score[0] === bestScore[0] && score[1]! > bestScore[1]!)) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

/** 1 for a host that shows no life on any path this round (its verdict not confirmed: see survivors), else 0. */
function silentNow(h: { anyPathUp?: boolean }): number {
  return h.anyPathUp === false ? 1 : 0;
}

function rank(state: string | undefined): number {
  return state === 'healthy' || state === undefined ? 0 : state === 'degraded' ? 1 : 2;
}

/** The pool as it would be once the plan ran: recovered hosts off, VMs where the plan put them. */
export function applyPlan(s: PlannerSnapshot, plan: RecoveryPlan): PlannerSnapshot {
  const recovered = new Set([...plan.fences.fence, ...plan.fences.alreadyFenced]);
  const startedOn = new Map(plan.steps.flatMap((st) => (st.kind === 'start-vm' ? [[st.vm, st.host] as const] : [])));
  const after = withPlacement(s, recovered, startedOn);
  const transition = plan.steps.find((st) => st.kind === 'transition-master');
  return transition?.kind === 'transition-master' ? { ...after, pool: { ...after.pool, master: transition.host } } : after;
}
