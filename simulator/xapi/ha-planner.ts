/**
 * The simulator's HA-computation calls (pool.ha_compute_max_host_failures_to_tolerate, the
 * hypothetical variant, ha_failover_plan_exists) answer with xenha's planner (core/planner), on the
 * simulated pool's own records. Like xapi they answer one number: the planner's exact figure where
 * it has one, else its lower bound (a number of failures the pool provably tolerates).
 */
import { buildSnapshot, type RecordsByClass } from '../../core/model/snapshot.ts';
import { failuresToTolerate } from '../../core/planner/capacity.ts';
import { fromPoolSnapshot, isResident, type PlannerVm } from '../../core/planner/model.ts';
import type { SimulatedPool } from '../pool.ts';

function records(pool: SimulatedPool): RecordsByClass {
  const db = pool.built.db;
  const out: Record<string, Record<string, unknown>> = {};
  for (const cls of ['pool', 'host', 'host_metrics', 'PIF', 'PBD', 'SR', 'VDI', 'VM', 'VBD']) out[cls] = Object.fromEntries(db.all(cls));
  return out;
}

/** Max host failures to tolerate; `priorities` (VM ref → priority) answers the hypothetical call. */
export function computeMaxFailures(pool: SimulatedPool, priorities?: Record<string, string>): number {
  const snap = buildSnapshot(records(pool));
  const planner = fromPoolSnapshot(snap);
  let override: ((v: PlannerVm) => boolean) | undefined;
  if (priorities) {
    const byUuid = new Map(snap.vms.map((v) => [v.uuid, priorities[v.ref]]));
    override = (v) => isResident(v) && !v.isControlDomain && (byUuid.get(v.uuid) ?? v.haRestartPriority) === 'restart';
  }
  const c = failuresToTolerate(planner, undefined, override);
  return c.exact ?? c.lower;
}
