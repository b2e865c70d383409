/**
 * An independent brute force of "how many host failures can this pool absorb with every protected VM
 * restarted", read straight from a pool's raw XAPI records (the simulator's database), without
 * core/model or core/planner: the tests compare the planner's figures with it.
 *
 * The semantics follow xapi's planner as docs/planner.md describes it:
 * - a VM needs memory_static_max + memory_overhead;
 * - a host offers host_metrics.memory_total − host.memory_overhead − Σ need of every VM whose
 *   resident_on is that host and that is not Halted (its control domain included);
 * - protected: ha_restart_priority "restart", resident somewhere and not Halted, not a template, a
 *   snapshot or a control domain;
 * - a VM with a disk (VBD → VDI) on a non-shared SR can only run on the host of that SR's PBD;
 * - a live host is one whose host_metrics.live is true; the hosts that can fail are the live ones
 *   (disabled ones included); the survivors of a failure set F are the live hosts not in F that are
 *   enabled (a disabled host takes no VM);
 * - F is survivable when every protected VM resident on F or on a host that is not live fits, by
 *   exhaustive search over assignments, on the survivors' free memory;
 * - the figure is the largest k ≤ (live hosts − 1) such that every set of k live hosts is survivable,
 *   and 0 when not even the empty set is (the planner reports that case as 0 too, with
 *   planExistsNow false).
 *
 * The relations are read from the side the product does not use where there is a choice (VBD.VM
 * rather than VM.VBDs, VDI.SR rather than SR.VDIs, PBD.SR rather than SR.PBDs, VM.resident_on rather
 * than host.resident_VMs), so that a mistake in one of them shows up as a difference.
 */

/** Raw records by class, as XapiDatabase.all answers: [ref, record] pairs. */
export interface RawRecords {
  all(cls: string): [string, Record<string, unknown>][];
}

export interface BfHost {
  ref: string;
  uuid: string;
  name: string;
  live: boolean;
  enabled: boolean;
  /** memory_total − memory_overhead − Σ need of the VMs running on it (may be negative). */
  free: number;
}

export interface BfVm {
  ref: string;
  uuid: string;
  name: string;
  /** Host ref it is resident on (running, paused or suspended), or null. */
  host: string | null;
  need: number;
  /** Host ref a disk on a host-local SR ties it to, or null. */
  pinnedTo: string | null;
  priority: string;
  protected: boolean;
}

export interface BfPool {
  hosts: BfHost[];
  vms: BfVm[];
}

const NULL_REF = 'OpaqueRef:NULL';

/** XAPI ints come as numbers (JSON-RPC) or strings (XML-RPC). */
function int(v: unknown): number {
  const n = typeof v === 'string' ? Number(v) : (v as number);
  if (!Number.isFinite(n)) throw new Error(`not an integer: ${JSON.stringify(v)}`);
  return n;
}

export function readPool(db: RawRecords): BfPool {
  const byRef = (cls: string) => new Map(db.all(cls));
  const metrics = byRef('host_metrics');
  const srs = byRef('SR');
  const vdis = byRef('VDI');
  const pbds = db.all('PBD');
  const vbds = db.all('VBD');
  const allVms = db.all('VM').filter(([, v]) => v.is_a_template !== true && v.is_a_snapshot !== true);

  const need = (v: Record<string, unknown>) => int(v.memory_static_max) + int(v.memory_overhead);
  const running = (v: Record<string, unknown>) => v.resident_on !== NULL_REF && v.power_state !== 'Halted';

  const hosts: BfHost[] = db.all('host').map(([ref, h]) => {
    const m = metrics.get(h.metrics as string);
    let free = (m ? int(m.memory_total) : 0) - int(h.memory_overhead);
    for (const [, v] of allVms) if (running(v) && v.resident_on === ref) free -= need(v);
    return { ref, uuid: h.uuid as string, name: h.name_label as string, live: m?.live === true, enabled: h.enabled === true, free };
  });

  // The host of a host-local SR: the host of a PBD plugging it.
  const localSrHost = (srRef: string): string | null => {
    const sr = srs.get(srRef);
    if (!sr || sr.shared === true) return null;
    return (pbds.find(([, p]) => p.SR === srRef)?.[1].host as string | undefined) ?? null;
  };

  const vms: BfVm[] = allVms.map(([ref, v]) => {
    let pinnedTo: string | null = null;
    for (const [, b] of vbds) {
      if (b.VM !== ref || b.VDI === NULL_REF) continue;
      const vdi = vdis.get(b.VDI as string);
      const host = vdi ? localSrHost(vdi.SR as string) : null;
      if (host !== null) {
        pinnedTo = host;
        break;
      }
    }
    const host = running(v) ? (v.resident_on as string) : null;
    const priority = v.ha_restart_priority as string;
    return {
      ref,
      uuid: v.uuid as string,
      name: v.name_label as string,
      host,
      need: need(v),
      pinnedTo,
      priority,
      protected: priority === 'restart' && host !== null && v.is_control_domain !== true,
    };
  });
  return { hosts, vms };
}

export interface Bin {
  ref: string;
  free: number;
}

const MAX_NODES = 5_000_000;

/**
 * Every assignment of the VMs to the bins, depth first (a VM goes to any bin with room that its pin
 * allows): a placement (VM ref → host ref), or null when none exists.
 */
export function placeAll(vms: readonly BfVm[], bins: readonly Bin[]): Map<string, string> | null {
  const free = bins.map((b) => b.free);
  const assign: number[] = [];
  let nodes = 0;
  const go = (k: number): boolean => {
    if (k === vms.length) return true;
    if (++nodes > MAX_NODES) throw new Error(`brute force: more than ${MAX_NODES} nodes; use a smaller pool`);
    const v = vms[k]!;
    for (let i = 0; i < bins.length; i++) {
      if (v.pinnedTo !== null && v.pinnedTo !== bins[i]!.ref) continue;
      if (free[i]! < v.need) continue;
      free[i] = free[i]! - v.need;
      assign[k] = i;
      if (go(k + 1)) return true;
      free[i] = free[i]! + v.need;
    }
    return false;
  };
  if (!go(0)) return null;
  return new Map(vms.map((v, k) => [v.ref, bins[assign[k]!]!.ref]));
}

/** The hosts that can take VMs when the hosts in `failed` are lost: live, enabled, not failed. */
export function survivors(pool: BfPool, failed: ReadonlySet<string>): BfHost[] {
  return pool.hosts.filter((h) => h.live && h.enabled && !failed.has(h.ref));
}

/** The protected VMs that need a new host when `failed` (host refs) are lost: theirs and the dead hosts'. */
export function displaced(pool: BfPool, failed: ReadonlySet<string>): BfVm[] {
  const live = new Set(pool.hosts.filter((h) => h.live).map((h) => h.ref));
  return pool.vms.filter((v) => v.protected && (failed.has(v.host!) || !live.has(v.host!)));
}

export interface WhatIfAnswer {
  survives: boolean;
  /** The protected VMs to restart (on the failed hosts and on hosts already dead). */
  displaced: BfVm[];
  survivors: BfHost[];
  /** VM ref → host ref, when it survives. */
  placement: Map<string, string> | null;
}

/** Can the pool survive losing exactly these hosts (refs) now, every protected VM restarted? */
export function whatIfBruteForce(pool: BfPool, failed: ReadonlySet<string>): WhatIfAnswer {
  const vms = displaced(pool, failed);
  const bins = survivors(pool, failed);
  const placement = placeAll(
    vms,
    bins.map((h) => ({ ref: h.ref, free: Math.max(0, h.free) })),
  );
  return { survives: placement !== null, displaced: vms, survivors: bins, placement };
}

/** Every subset of `items` of size k. */
export function* subsets<T>(items: readonly T[], k: number, from = 0): Generator<T[]> {
  if (k === 0) {
    yield [];
    return;
  }
  for (let i = from; i <= items.length - k; i++) {
    for (const rest of subsets(items, k - 1, i + 1)) yield [items[i]!, ...rest];
  }
}

/** The largest k such that every set of k live hosts is survivable (see the file comment for the edges). */
export function maxFailuresBruteForce(pool: BfPool): number {
  const live = pool.hosts.filter((h) => h.live).map((h) => h.ref);
  let best = 0;
  for (let k = 0; k <= live.length - 1; k++) {
    for (const f of subsets(live, k)) {
      if (!whatIfBruteForce(pool, new Set(f)).survives) return best;
    }
    best = k;
  }
  return best;
}

/**
 * The most of `vms` that can be placed at once (each either on a bin with room or left out), by
 * exhaustive search: its size and every subset of VM refs of that size that can be placed.
 */
export function maxPlaceable(vms: readonly BfVm[], bins: readonly Bin[]): { count: number; sets: Set<string>[] } {
  for (let k = vms.length; k >= 0; k--) {
    const sets = [...subsets(vms, k)].filter((s) => placeAll(s, bins) !== null).map((s) => new Set(s.map((v) => v.ref)));
    if (sets.length > 0) return { count: k, sets };
  }
  return { count: 0, sets: [new Set()] };
}
