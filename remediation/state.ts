/**
 * The remediation service's state, rebuilt from its journal: incidents (one per host death: pool, host
 * UUID, boot), plans with each step's state, and the fence history the gates read. Pure: `apply` folds
 * one record in; the service applies each record as it is journaled and, at start, every record replayed.
 */
import type { FenceHistory } from '../core/planner/fence-policy.ts';
import type { JournalEntry, Mode, PlanState, PlanStep, RefusalGate, StepState } from './records.ts';

export interface Incident {
  id: string;
  pool: string;
  host: string;
  hostName: string;
  boot: string;
  openedAt: string;
  fingerprints: string[];
  duplicates: number;
  resolvedAt: string | null;
  refusals: { at: string; gate: RefusalGate; reason: string; ownState: string | null }[];
  plan: string | null;
}

export interface StepView {
  index: number;
  step: PlanStep;
  state: StepState;
  outcome: string | null;
  detail: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface Plan {
  id: string;
  incident: string;
  pool: string;
  host: string;
  hostName: string;
  mode: Mode;
  modeReason: string | null;
  state: PlanState;
  stateReason: string;
  createdAt: string;
  updatedAt: string;
  steps: StepView[];
  names: Record<string, string>;
  /** Management addresses of the hosts the plan names, as journaled with it (empty for older journals). */
  addresses: Record<string, string>;
  unplaced: { vm: string; name: string; reason: string }[];
  refused: { host: string; gate: string; reason: string }[];
  acks: { at: string; by: string; kind: 'approve' | 'host-off' }[];
}

export interface RemediationState {
  incidents: Map<string, Incident>;
  plans: Map<string, Plan>;
  /** Per pool: fences attempted (for cooldowns and storm windows). */
  fences: Map<string, { host: string; at: number; outcome: string }[]>;
  lastSeq: number;
}

export function emptyState(): RemediationState {
  return { incidents: new Map(), plans: new Map(), fences: new Map(), lastSeq: 0 };
}

export const incidentId = (pool: string, host: string, boot: string) => `${pool}/${host}/${boot}`;

/** Plans that were started and have not finished: a restarted service resumes them. */
export function unfinishedPlans(s: RemediationState): Plan[] {
  return [...s.plans.values()].filter((p) => p.state === 'running');
}

/** The fence history of a pool as the gates read it: fences started, and hosts whose fence is running. */
export function fenceHistory(s: RemediationState, pool: string): FenceHistory {
  const inFlight = new Set<string>();
  for (const p of s.plans.values()) {
    if (p.pool !== pool || p.state !== 'running') continue;
    for (const st of p.steps) if (st.step.kind === 'fence' && st.state === 'running') inFlight.add(st.step.host);
  }
  return { fences: (s.fences.get(pool) ?? []).map((f) => ({ host: f.host, at: f.at })), inFlight: [...inFlight] };
}

/** Hosts of a pool a plan confirmed off (fenced), by host UUID: the planner's `fenced`. */
export function confirmedFenced(s: RemediationState, pool: string, host: string, boot: string): boolean {
  const inc = s.incidents.get(incidentId(pool, host, boot));
  const plan = inc?.plan ? s.plans.get(inc.plan) : undefined;
  return plan?.steps.some((st) => st.step.kind === 'confirm-fenced' && st.step.host === host && st.state === 'done') ?? false;
}

/**
 * The protected VMs of a pool that a finished plan (`done`) listed unplaced and that are still down
 * now, by the VM records given (the service's own view): `restart` priority and not Running. A VM a
 * person (or a later plan) started, unprotected since, or gone from the pool no longer counts.
 */
export function protectedVmsStillUnplaced(
  s: RemediationState,
  pool: string,
  vms: readonly { uuid: string; powerState: string; haRestartPriority: string }[],
): string[] {
  const listed = new Set<string>();
  for (const p of s.plans.values()) if (p.pool === pool && p.state === 'done') for (const u of p.unplaced) listed.add(u.vm);
  if (listed.size === 0) return [];
  return vms.filter((v) => listed.has(v.uuid) && v.haRestartPriority === 'restart' && v.powerState !== 'Running').map((v) => v.uuid);
}

/** Folds one journal record into the state (mutates it: the service keeps one state). */
export function apply(s: RemediationState, r: JournalEntry): RemediationState {
  s.lastSeq = Math.max(s.lastSeq, r.seq);
  switch (r.type) {
    case 'notification':
      break;
    case 'incident':
      // A second record for one incident (two copies landing at once, before the lock) changes nothing.
      if (s.incidents.has(r.incident)) break;
      s.incidents.set(r.incident, {
        id: r.incident,
        pool: r.pool,
        host: r.host,
        hostName: r.hostName,
        boot: r.boot,
        openedAt: r.at,
        fingerprints: [r.fingerprint],
        duplicates: 0,
        resolvedAt: null,
        refusals: [],
        plan: null,
      });
      break;
    case 'duplicate': {
      const inc = s.incidents.get(r.incident);
      if (inc) {
        inc.duplicates++;
        if (!inc.fingerprints.includes(r.fingerprint)) inc.fingerprints.push(r.fingerprint);
        inc.resolvedAt = null; // firing again: the incident is open again
      }
      break;
    }
    case 'refusal':
      s.incidents.get(r.incident)?.refusals.push({ at: r.at, gate: r.gate, reason: r.reason, ownState: r.ownState });
      break;
    case 'resolved': {
      const inc = s.incidents.get(r.incident);
      if (inc) inc.resolvedAt = r.at;
      break;
    }
    case 'plan': {
      s.plans.set(r.plan, {
        id: r.plan,
        incident: r.incident,
        pool: r.pool,
        host: r.host,
        hostName: r.hostName,
        mode: r.mode,
        modeReason: r.modeReason,
        state: r.state,
        stateReason: 'planned',
        createdAt: r.at,
        updatedAt: r.at,
        steps: r.steps.map((step, index) => ({
          index,
          step,
          state: 'pending',
          outcome: null,
          detail: '',
          startedAt: null,
          finishedAt: null,
        })),
        names: r.names,
        addresses: r.addresses ?? {},
        unplaced: r.unplaced,
        refused: r.refused,
        acks: [],
      });
      const inc = s.incidents.get(r.incident);
      if (inc) inc.plan = r.plan;
      break;
    }
    case 'step': {
      const p = s.plans.get(r.plan);
      const st = p?.steps[r.index];
      if (p && st) {
        st.state = r.state;
        st.outcome = r.outcome;
        st.detail = r.detail;
        if (r.state === 'running') st.startedAt = r.at;
        else st.finishedAt = r.at;
        p.updatedAt = r.at;
      }
      break;
    }
    case 'plan-state': {
      const p = s.plans.get(r.plan);
      if (p) {
        p.state = r.state;
        p.stateReason = r.reason;
        p.updatedAt = r.at;
      }
      break;
    }
    case 'ack':
      s.plans.get(r.plan)?.acks.push({ at: r.at, by: r.by, kind: r.kind });
      break;
    case 'fence': {
      const list = s.fences.get(r.pool) ?? [];
      if (r.outcome === 'cancelled') {
        // A fence cancelled before any off was sent is no fence: it leaves the cooldown and storm history.
        const i = list.findLastIndex((f) => f.host === r.host && f.outcome === 'started');
        if (i >= 0) list.splice(i, 1);
      } else list.push({ host: r.host, at: Date.parse(r.at), outcome: r.outcome });
      s.fences.set(r.pool, list);
      break;
    }
  }
  return s;
}
