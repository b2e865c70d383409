/**
 * The comparison baseline, NOT part of the product: xapi's own failover planner as described in
 * ../shared/research/xapi-ha.md §4 (xapi_ha_vm_failover.ml, binpack.ml).
 * - trivially impossible if live hosts < r, or = r with any protected VM;
 * - n ≤ 32 and C(n, r)·r! < 3500: exhaustive — every r-subset in every order, failing hosts one by
 *   one and re-packing each failed host's VMs with biggest-fit-decreasing (largest VM onto the host
 *   with the most free memory);
 * - otherwise the approximation: every VM as big as the biggest protected one, host capacity =
 *   floor(free / biggest), the r highest-capacity hosts fail, and the plan fails if the r largest
 *   per-host VM counts exceed the remaining capacity;
 * - the maximum is a bisection over [0, n] of "a plan exists".
 */
import { canHost, hostFree, isProtected, type PlannerSnapshot } from '../core/planner/model.ts';

function factorial(n: number): number {
  let r = 1;
  for (let i = 2; i <= n; i++) r *= i;
  return r;
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}

function* subsets<T>(xs: T[], k: number, start = 0, cur: T[] = []): Generator<T[]> {
  if (cur.length === k) {
    yield [...cur];
    return;
  }
  for (let i = start; i < xs.length; i++) {
    cur.push(xs[i]!);
    yield* subsets(xs, k, i + 1, cur);
    cur.pop();
  }
}

function* permutations<T>(xs: T[]): Generator<T[]> {
  if (xs.length <= 1) {
    yield xs;
    return;
  }
  for (let i = 0; i < xs.length; i++) {
    for (const p of permutations([...xs.slice(0, i), ...xs.slice(i + 1)])) yield [xs[i]!, ...p];
  }
}

export function xapiPlanExists(s: PlannerSnapshot, r: number): boolean {
  const hosts = s.hosts.filter(canHost).map((h) => h.uuid);
  const n = hosts.length;
  const prot = s.vms.filter(isProtected);
  if (n < r || (n === r && prot.length > 0)) return false;
  if (prot.length === 0 || r === 0) return true;
  const free0 = hostFree(s);
  if (n <= 32 && binomial(n, r) * factorial(r) < 3500) {
    for (const set of subsets(hosts, r)) {
      for (const order of permutations(set)) {
        const free = new Map(hosts.map((h) => [h, free0.get(h)!]));
        const on = new Map(hosts.map((h) => [h, prot.filter((v) => v.residentOn === h).map((v) => v.memoryNeed)]));
        const alive = new Set(hosts);
        for (const dead of order) {
          alive.delete(dead);
          for (const size of [...on.get(dead)!].sort((a, b) => b - a)) {
            let best: string | null = null;
            for (const h of alive) if (best === null || free.get(h)! > free.get(best)!) best = h;
            if (best === null || free.get(best)! < size) return false;
            free.set(best, free.get(best)! - size);
            on.get(best)!.push(size);
          }
        }
      }
    }
    return true;
  }
  const biggest = Math.max(...prot.map((v) => v.memoryNeed));
  const capacity = hosts.map((h) => ({
    h,
    cap: Math.floor(Math.max(0, free0.get(h)!) / biggest),
    count: prot.filter((v) => v.residentOn === h).length,
  }));
  const failing = [...capacity].sort((a, b) => b.cap - a.cap).slice(0, r);
  const failed = new Set(failing.map((x) => x.h));
  const vmsToMove = [...capacity]
    .map((x) => x.count)
    .sort((a, b) => b - a)
    .slice(0, r)
    .reduce((a, b) => a + b, 0);
  const room = capacity.filter((x) => !failed.has(x.h)).reduce((a, x) => a + x.cap, 0);
  return vmsToMove <= room;
}

/** xapi's maximum failures to tolerate: bisection over [0, n] of "a plan exists". */
export function xapiMaxFailures(s: PlannerSnapshot): number {
  let lo = 0;
  let hi = s.hosts.filter(canHost).length;
  if (!xapiPlanExists(s, 0)) return 0;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (xapiPlanExists(s, mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
