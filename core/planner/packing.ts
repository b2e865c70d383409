/**
 * Placing VMs (items with a memory need) on hosts (bins with free memory). Pure.
 * - `firstFitDecreasing`: a placement, or the first item that does not fit.
 * - `exactFeasible`: exact feasibility by depth-first search with pruning, bounded by a node budget
 *   (answers `unknown` past it).
 * - `provablyInfeasible`: necessary conditions whose violation proves no placement exists.
 */

export interface Item {
  id: string;
  size: number;
  /** The only bin the item may go to (a disk on a host-local SR), or null. */
  pinnedTo: string | null;
}

export interface Bin {
  id: string;
  free: number;
}

export type Placement = Map<string, string>; // item id → bin id

/** Largest first, each onto the first bin (in the given bin order) with room. */
export function firstFitDecreasing(
  items: readonly Item[],
  bins: readonly Bin[],
): { ok: true; placement: Placement } | { ok: false; failed: Item } {
  const free = bins.map((b) => b.free);
  const placement: Placement = new Map();
  const sorted = [...items].sort((a, b) => b.size - a.size || a.id.localeCompare(b.id));
  for (const it of sorted) {
    let placed = false;
    for (let i = 0; i < bins.length; i++) {
      if ((it.pinnedTo === null || it.pinnedTo === bins[i]!.id) && free[i]! >= it.size) {
        free[i] = free[i]! - it.size;
        placement.set(it.id, bins[i]!.id);
        placed = true;
        break;
      }
    }
    if (!placed) return { ok: false, failed: it };
  }
  return { ok: true, placement };
}

/** Largest first, each onto the bin with the most free memory left (xapi's restart heuristic). */
export function worstFitDecreasing(items: readonly Item[], bins: readonly Bin[]): { placement: Placement; unplaced: Item[] } {
  const free = new Map(bins.map((b) => [b.id, b.free]));
  const placement: Placement = new Map();
  const unplaced: Item[] = [];
  for (const it of [...items].sort((a, b) => b.size - a.size || a.id.localeCompare(b.id))) {
    let best: string | null = null;
    for (const b of bins) {
      if (it.pinnedTo !== null && it.pinnedTo !== b.id) continue;
      if (free.get(b.id)! >= it.size && (best === null || free.get(b.id)! > free.get(best)!)) best = b.id;
    }
    if (best === null) unplaced.push(it);
    else {
      placement.set(it.id, best);
      free.set(best, free.get(best)! - it.size);
    }
  }
  return { placement, unplaced };
}

/** Conditions that hold for every feasible placement; one violated proves infeasibility. */
export function provablyInfeasible(items: readonly Item[], bins: readonly Bin[]): string | null {
  const binIds = new Set(bins.map((b) => b.id));
  for (const it of items) {
    if (it.pinnedTo !== null && !binIds.has(it.pinnedTo)) return `${it.id} is pinned to a failed host`;
  }
  const total = items.reduce((s, i) => s + i.size, 0);
  const cap = bins.reduce((s, b) => s + b.free, 0);
  if (total > cap) return `needs ${total} bytes, survivors have ${cap}`;
  const biggestBin = Math.max(0, ...bins.map((b) => b.free));
  const big = items.find((i) => i.pinnedTo === null && i.size > biggestBin);
  if (big) return `${big.id} (${big.size} bytes) fits on no survivor`;
  // Counting: a bin of free c holds at most floor(c / v) items of size ≥ v.
  const sizes = [...new Set(items.map((i) => i.size))].sort((a, b) => b - a);
  for (const v of sizes) {
    const count = items.filter((i) => i.size >= v).length;
    const slots = bins.reduce((s, b) => s + Math.floor(b.free / v), 0);
    if (count > slots) return `${count} VMs of ≥ ${v} bytes, room for ${slots}`;
  }
  return null;
}

/**
 * Exact feasibility: depth-first over items largest first, skipping bins whose free memory equals a
 * bin already tried for the same item (symmetry), and cutting when the remaining total exceeds the
 * remaining room. `unknown` when the node budget runs out.
 */
export function exactFeasible(
  items: readonly Item[],
  bins: readonly Bin[],
  nodeBudget = 200_000,
): { result: 'feasible' | 'infeasible' | 'unknown'; placement?: Placement; nodes: number } {
  if (provablyInfeasible(items, bins)) return { result: 'infeasible', nodes: 0 };
  const ffd = firstFitDecreasing(items, bins);
  if (ffd.ok) return { result: 'feasible', placement: ffd.placement, nodes: 0 };
  const sorted = [...items].sort((a, b) => b.size - a.size || a.id.localeCompare(b.id));
  const free = bins.map((b) => b.free);
  const binIndex = new Map(bins.map((b, i) => [b.id, i]));
  const assign: number[] = [];
  const suffix: number[] = new Array<number>(sorted.length + 1).fill(0);
  for (let i = sorted.length - 1; i >= 0; i--) suffix[i] = suffix[i + 1]! + sorted[i]!.size;
  let nodes = 0;
  let exhausted = false;
  // Two bins with equal free memory are interchangeable only if no item is pinned to one of them.
  const symmetric = !sorted.some((it) => it.pinnedTo !== null);
  const dfs = (k: number, room: number): boolean => {
    if (k === sorted.length) return true;
    if (++nodes > nodeBudget) {
      exhausted = true;
      return false;
    }
    if (suffix[k]! > room) return false;
    const it = sorted[k]!;
    const tried = new Set<number>();
    const candidates = it.pinnedTo !== null ? [binIndex.get(it.pinnedTo)!].filter((x) => x !== undefined) : free.map((_, i) => i);
    for (const i of candidates) {
      const f = free[i]!;
      if (f < it.size || (symmetric && tried.has(f))) continue;
      tried.add(f);
      free[i] = f - it.size;
      assign[k] = i;
      if (dfs(k + 1, room - it.size)) return true;
      free[i] = f;
      if (exhausted) return false;
    }
    return false;
  };
  const ok = dfs(
    0,
    free.reduce((a, b) => a + b, 0),
  );
  if (ok) {
    const placement: Placement = new Map(sorted.map((it, k) => [it.id, bins[assign[k]!]!.id]));
    return { result: 'feasible', placement, nodes };
  }
  return { result: exhausted ? 'unknown' : 'infeasible', nodes };
}
