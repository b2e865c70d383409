/**
 * How many host failures the pool can absorb: the largest k such that for every set of k failed
 * hosts, every protected VM on them (and on hosts already dead) can be placed on the survivors' free
 * memory. Pure.
 *
 * - exact: every failure set, increasing k, each checked exactly (first-fit decreasing, necessary
 *   conditions, then a bounded depth-first search), while the number of sets and search nodes stay
 *   within budget;
 * - lower bound, never too high: a proof that first-fit decreasing succeeds for every set of k
 *   failures. When FFD's first failure would be an item of size x, every survivor b has less than x
 *   left and everything placed is ≥ x: a survivor with free_b ≥ x holds more than free_b − x and at
 *   least one item, so at least g_x(b) = max(free_b − x, x) (0 when free_b < x), and the items placed
 *   weigh at most Σ(items ≥ x) − x (the failing item is not placed). Hence if, for every size x,
 *   Σ_{b∉F} g_x(b) > Σ_{items of F ∪ dead, ≥ x} − x, FFD places everything. The worst F for one x is the k hosts with the largest g_x(h) + (their
 *   protected memory ≥ x): a top-k sum, so the bound costs O(sizes × hosts log hosts);
 * - upper bound: a failure set of k+1 hosts proven infeasible (total memory, a VM bigger than every
 *   survivor, counting slots per size, a pinned VM), searched among the adversarial candidates.
 */
import { canHost, hostFree, isProtected, type PlannerSnapshot, type PlannerVm } from './model.ts';
import { exactFeasible, provablyInfeasible, type Bin, type Item, type Placement } from './packing.ts';

export interface CapacityOptions {
  /** Failure sets the exact search may check before giving up (then only the bounds are reported). */
  maxExactSets: number;
  /** Search nodes per failure set in the exact check. */
  maxNodesPerSet: number;
}

export const DEFAULT_CAPACITY_OPTIONS: CapacityOptions = { maxExactSets: 5000, maxNodesPerSet: 100_000 };

export interface Capacity {
  /** A number of failures the pool provably tolerates. */
  lower: number;
  /** A number of failures beyond which the pool provably does not hold (witness below). */
  upper: number;
  /** The exact figure, when the exhaustive check completed within budget. */
  exact: number | null;
  /** Hosts that can fail: live and not dead (disabled ones included; they take no VM). */
  candidates: number;
  /** Whether the protected VMs of hosts already dead can be placed now (k = 0). */
  planExistsNow: boolean;
  /** A failure set one larger than `upper` that fails, and why. */
  witness: { hosts: string[]; reason: string } | null;
  reasons: string[];
}

interface Model {
  /** Failure candidates (UUIDs): hosts up now. Disabled ones can fail too, but take no VM. */
  hosts: string[];
  /** Free memory of the hosts that can take VMs; 0 for disabled ones. */
  free: Map<string, number>;
  canTake: Set<string>;
  itemsOn: Map<string, Item[]>; // protected VMs per candidate host
  deadItems: Item[]; // protected VMs on hosts that are already down
}

function toItem(v: PlannerVm): Item {
  return { id: v.uuid, size: v.memoryNeed, pinnedTo: v.pinnedTo };
}

function model(s: PlannerSnapshot, protectedOverride?: (v: PlannerVm) => boolean): Model {
  const isProt = protectedOverride ?? isProtected;
  const hosts = s.hosts
    .filter((h) => h.live && !h.fenced && h.state !== 'dead')
    .map((h) => h.uuid)
    .sort();
  const hostSet = new Set(hosts);
  const canTake = new Set(s.hosts.filter(canHost).map((h) => h.uuid));
  const free = new Map([...hostFree(s)].map(([h, f]) => [h, canTake.has(h) ? f : 0]));
  const itemsOn = new Map(hosts.map((h) => [h, [] as Item[]]));
  const deadItems: Item[] = [];
  for (const v of s.vms) {
    if (!isProt(v)) continue;
    if (hostSet.has(v.residentOn!)) itemsOn.get(v.residentOn!)!.push(toItem(v));
    else deadItems.push(toItem(v));
  }
  return { hosts, free, canTake, itemsOn, deadItems };
}

function scenario(m: Model, failed: ReadonlySet<string>): { items: Item[]; bins: Bin[] } {
  const items = [...m.deadItems];
  const bins: Bin[] = [];
  for (const h of m.hosts) {
    if (failed.has(h)) items.push(...m.itemsOn.get(h)!);
    else if (m.canTake.has(h)) bins.push({ id: h, free: Math.max(0, m.free.get(h)!) });
  }
  return { items, bins };
}

function topK(values: number[], k: number): number {
  if (k <= 0) return 0;
  return [...values]
    .sort((a, b) => b - a)
    .slice(0, k)
    .reduce((a, b) => a + b, 0);
}

/** The largest k for which the FFD proof holds for every set of k failures (-1: not even k = 0). */
function lowerBound(m: Model): number {
  const n = m.hosts.length;
  const all = [...m.deadItems, ...m.hosts.flatMap((h) => m.itemsOn.get(h)!)];
  if (m.deadItems.some((i) => i.pinnedTo !== null)) return -1;
  const pinnedHosts = m.hosts.filter((h) => m.itemsOn.get(h)!.some((i) => i.pinnedTo !== null));
  const sizes = [...new Set(all.map((i) => i.size))].sort((a, b) => b - a);
  // Per host, its protected memory in items ≥ x, through sorted sizes and prefix sums.
  const sortedOn = new Map(
    m.hosts.map((h) => [
      h,
      m.itemsOn
        .get(h)!
        .map((i) => i.size)
        .sort((a, b) => b - a),
    ]),
  );
  const memAtLeast = (xs: number[], x: number) => {
    let s = 0;
    for (const v of xs) {
      if (v < x) break;
      s += v;
    }
    return s;
  };
  const deadSorted = m.deadItems.map((i) => i.size).sort((a, b) => b - a);
  let best = n - 1;
  for (const x of sizes) {
    const g = m.hosts.map((h) => {
      const f = m.free.get(h)!;
      return f >= x ? Math.max(f - x, x) : 0;
    });
    const G = g.reduce((a, b) => a + b, 0);
    const d = memAtLeast(deadSorted, x);
    const cost = m.hosts.map((h, i) => g[i]! + memAtLeast(sortedOn.get(h)!, x));
    // Largest k with G − topK(cost, k) > d − x (monotone in k).
    let k = -1;
    while (k + 1 <= best && G - topK(cost, k + 1) > d - x) k++;
    best = Math.min(best, k);
    if (best < 0) return -1;
  }
  if (pinnedHosts.length > 0) best = Math.min(best, 0);
  return best;
}

/** Adversarial failure sets of size k that are the likeliest to be infeasible. */
function witnessCandidates(m: Model, k: number): string[][] {
  const byScore = (score: (h: string) => number) => [...m.hosts].sort((a, b) => score(b) - score(a) || a.localeCompare(b)).slice(0, k);
  const mem = (h: string) => m.itemsOn.get(h)!.reduce((s, i) => s + i.size, 0);
  const out: string[][] = [byScore((h) => mem(h) + m.free.get(h)!), byScore((h) => mem(h)), byScore((h) => m.free.get(h)!)];
  const sizes = [...new Set(m.hosts.flatMap((h) => m.itemsOn.get(h)!.map((i) => i.size)))].sort((a, b) => b - a).slice(0, 16);
  for (const x of sizes) out.push(byScore((h) => m.itemsOn.get(h)!.filter((i) => i.size >= x).length + Math.floor(m.free.get(h)! / x)));
  const pinned = m.hosts.find((h) => m.itemsOn.get(h)!.some((i) => i.pinnedTo !== null));
  if (pinned) out.push([pinned, ...m.hosts.filter((h) => h !== pinned).slice(0, k - 1)]);
  const biggestHost = byScore((h) => Math.max(0, ...m.itemsOn.get(h)!.map((i) => i.size)))[0];
  if (biggestHost)
    out.push([
      biggestHost,
      ...byScore((h) => (h === biggestHost ? -Infinity : m.free.get(h)!))
        .filter((h) => h !== biggestHost)
        .slice(0, k - 1),
    ]);
  return out.filter((f) => f.length === k);
}

function* combinations(n: number, k: number): Generator<number[]> {
  const idx = Array.from({ length: k }, (_, i) => i);
  if (k > n) return;
  for (;;) {
    yield idx;
    let i = k - 1;
    while (i >= 0 && idx[i] === n - k + i) i--;
    if (i < 0) return;
    idx[i]!++;
    for (let j = i + 1; j < k; j++) idx[j] = idx[j - 1]! + 1;
  }
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}

/** Exhaustive up to `maxK` (the upper bound + 1 is enough): null when over budget. */
function exact(m: Model, o: CapacityOptions, maxK: number): { k: number; witness: { hosts: string[]; reason: string } | null } | null {
  const n = m.hosts.length;
  let sets = 0;
  for (let k = 0; k <= Math.min(maxK, n - 1); k++) sets += binomial(n, k);
  if (sets > o.maxExactSets) return null;
  for (let k = 0; k <= Math.min(maxK, n - 1); k++) {
    for (const c of combinations(n, k)) {
      const failed = new Set(c.map((i) => m.hosts[i]!));
      const { items, bins } = scenario(m, failed);
      const r = exactFeasible(items, bins, o.maxNodesPerSet);
      if (r.result === 'unknown') return null;
      if (r.result === 'infeasible')
        return {
          k: k - 1,
          witness: { hosts: [...failed], reason: provablyInfeasible(items, bins) ?? 'no placement exists (exhaustive search)' },
        };
    }
  }
  return { k: Math.min(maxK, n - 1), witness: null };
}

/** The lower bound alone: cheap (no search), for checks inside loops. */
export function lowerBoundTolerable(s: PlannerSnapshot): number {
  return Math.max(0, lowerBound(model(s)));
}

export function failuresToTolerate(
  s: PlannerSnapshot,
  o: CapacityOptions = DEFAULT_CAPACITY_OPTIONS,
  protectedOverride?: (v: PlannerVm) => boolean,
): Capacity {
  const m = model(s, protectedOverride);
  const n = m.hosts.length;
  const reasons: string[] = [];
  const pinned = s.vms.filter((v) => (protectedOverride ?? isProtected)(v) && v.pinnedTo !== null);
  if (pinned.length > 0)
    reasons.push(
      `${pinned.length} protected VM(s) on host-local storage cannot restart elsewhere (${pinned
        .slice(0, 3)
        .map((v) => v.name)
        .join(', ')}${pinned.length > 3 ? ', …' : ''}): their host's failure is not survivable, as xapi counts it`,
    );
  if (n === 0)
    return {
      lower: 0,
      upper: 0,
      exact: 0,
      candidates: 0,
      planExistsNow: m.deadItems.length === 0,
      witness: null,
      reasons: [...reasons, 'no live host'],
    };
  const now = scenario(m, new Set());
  const nowCheck = exactFeasible(now.items, now.bins, o.maxNodesPerSet);
  const planExistsNow = nowCheck.result === 'feasible';
  if (!planExistsNow) {
    reasons.push(
      `the protected VMs of hosts already down do not fit on the survivors${nowCheck.result === 'unknown' ? ' (search budget exhausted)' : ''}`,
    );
  }
  const lower = Math.max(0, lowerBound(m));
  let upper = n - 1;
  let witness: Capacity['witness'] = null;
  if (!planExistsNow && nowCheck.result === 'infeasible') {
    upper = 0;
    witness = { hosts: [], reason: provablyInfeasible(now.items, now.bins) ?? 'no placement exists now' };
  } else {
    search: for (let k = lower + 1; k <= n - 1; k++) {
      for (const f of witnessCandidates(m, k)) {
        const { items, bins } = scenario(m, new Set(f));
        // Necessary conditions first; near the lower bound, a bounded exact search too.
        const why =
          provablyInfeasible(items, bins) ??
          ((items.length <= 40 || k <= lower + 2) && exactFeasible(items, bins, 20_000).result === 'infeasible'
            ? 'no placement exists (exhaustive search)'
            : null);
        if (why) {
          upper = k - 1;
          witness = { hosts: f, reason: why };
          break search;
        }
      }
    }
  }
  // The bounds meet: that is the exact figure. Else search every failure set up to upper + 1, if the
  // number of sets stays within budget.
  const ex = lower === upper && planExistsNow ? { k: lower, witness: null } : exact(m, o, upper + 1);
  if (ex) {
    if (ex.witness) witness = ex.witness;
    if (ex.k < 0) reasons.push('no plan even with no further failure');
  }
  const exactK = ex ? Math.max(0, ex.k) : null;
  // Both bounds are proofs on their own; the tests check lower ≤ exact ≤ upper rather than force it here.
  return { lower, upper, exact: exactK, candidates: n, planExistsNow, witness, reasons };
}

export interface WhatIf {
  survives: boolean | null;
  failed: string[];
  /** VM UUID → host UUID, when a placement was found. */
  placement: Record<string, string>;
  reason: string;
}

/** Can the pool survive losing these hosts now, and with which placement of their protected VMs? */
export function whatIf(s: PlannerSnapshot, failed: readonly string[], o: CapacityOptions = DEFAULT_CAPACITY_OPTIONS): WhatIf {
  const m = model(s);
  const unknown = failed.filter((f) => !s.hosts.some((h) => h.uuid === f));
  if (unknown.length > 0) throw new Error(`no host with UUID ${unknown.join(', ')}`);
  const { items, bins } = scenario(m, new Set(failed));
  if (bins.length === 0 && items.length > 0) return { survives: false, failed: [...failed], placement: {}, reason: 'no survivor left' };
  const r = exactFeasible(items, bins, o.maxNodesPerSet * 10);
  const placement: Placement = r.placement ?? new Map<string, string>();
  return {
    survives: r.result === 'feasible' ? true : r.result === 'infeasible' ? false : null,
    failed: [...failed],
    placement: Object.fromEntries(placement),
    reason:
      r.result === 'feasible'
        ? `${items.length} protected VM(s) placed on ${bins.length} survivor(s)`
        : r.result === 'infeasible'
          ? (provablyInfeasible(items, bins) ?? 'no placement exists (exhaustive search)')
          : 'search budget exhausted: cannot tell',
  };
}
