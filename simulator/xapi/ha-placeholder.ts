/**
 * PLACEHOLDER for the HA-computation calls (pool.ha_compute_max_host_failures_to_tolerate, the
 * hypothetical variant, ha_failover_plan_exists) until the planner issue lands its exact planner in
 * core/planner; then these calls answer with it. Documented as a placeholder in docs/simulator.md.
 *
 * What it computes: the largest r such that, when the r live hosts holding the most protected memory
 * fail, their protected VMs' memory fits in the survivors' total free memory and the biggest of those
 * VMs fits in the survivor with the most free memory. It ignores bin-packing fragmentation, so it can
 * be too optimistic; do not base a decision on it.
 */
import type { SimulatedPool } from '../pool.ts';

export function computeMaxFailuresPlaceholder(pool: SimulatedPool, priorities?: Record<string, string>): number {
  const db = pool.built.db;
  const live = pool.hosts.filter((h) => pool.isUp(h) && db.peek('host_metrics', h.built.metricsRef).live === true);
  const protectedOn = new Map(live.map((h) => [h.built.ref, [] as number[]]));
  for (const [ref, vm] of db.all('VM')) {
    const priority = priorities?.[ref] ?? (vm.ha_restart_priority as string);
    if (priority !== 'restart' || vm.is_control_domain || vm.power_state === 'Halted') continue;
    protectedOn.get(vm.resident_on as string)?.push((vm.memory_static_max as number) + (vm.memory_overhead as number));
  }
  const byLoad = [...live].sort((a, b) => sum(protectedOn.get(b.built.ref)!) - sum(protectedOn.get(a.built.ref)!));
  let best = 0;
  for (let r = 1; r < live.length; r++) {
    const failed = byLoad.slice(0, r);
    const survivors = byLoad.slice(r);
    const moved = failed.flatMap((h) => protectedOn.get(h.built.ref)!);
    const free = survivors.map((h) => pool.memoryFree(h));
    if (sum(moved) > sum(free) || Math.max(0, ...moved) > Math.max(0, ...free)) break;
    best = r;
  }
  return best;
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
