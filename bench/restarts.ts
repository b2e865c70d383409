/** What the recovery benchmarks read of a simulated pool: a host's protected VMs, and when each runs again elsewhere. */
import type { Simulator } from '../simulator/simulator.ts';

export interface ProtectedVm {
  ref: string;
  name: string;
  uuid: string;
  startDelay: number;
}

/** The protected (restart priority) VMs the database has running on the host now. */
export function protectedRunning(sim: Simulator, hostName: string): ProtectedVm[] {
  const hostRef = sim.pool.host(hostName).built.ref;
  return sim.pool.built.db
    .all('VM')
    .filter(
      ([, v]) => v.resident_on === hostRef && !v.is_control_domain && v.power_state === 'Running' && v.ha_restart_priority === 'restart',
    )
    .map(([ref, v]) => ({ ref, name: v.name_label as string, uuid: v.uuid as string, startDelay: Number(v.start_delay ?? 0) }));
}

/**
 * Polls the database every `pollMs` (and whenever `check` is called) for the time (performance.now())
 * each VM is first seen Running on a host other than `from`; `also` runs at each poll. `stop` ends it.
 */
export function watchRestarts(
  sim: Simulator,
  from: string,
  vms: readonly ProtectedVm[],
  pollMs: number,
  also: () => void = () => {},
): { seen: Map<string, number>; check: () => void; stop: () => Promise<void> } {
  const db = sim.pool.built.db;
  const fromRef = sim.pool.host(from).built.ref;
  const seen = new Map<string, number>();
  const check = () => {
    const now = performance.now();
    also();
    for (const v of vms) {
      if (seen.has(v.uuid)) continue;
      const rec = db.peek('VM', v.ref);
      if (rec.power_state === 'Running' && rec.resident_on !== fromRef) seen.set(v.uuid, now);
    }
  };
  let polling = true;
  const poller = (async () => {
    while (polling) {
      check();
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();
  return {
    seen,
    check,
    stop: async () => {
      polling = false;
      await poller;
    },
  };
}
