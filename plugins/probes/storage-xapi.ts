/**
 * storage-xapi: what the pool says of each host's storage path to the heartbeat SR:
 * `host.ha_statefiles` (xhad on that host has statefile access) and the heartbeat PBD, attached, with
 * its multipath legs from `other_config["mpath-<SCSIid>"] = "[active, total]"` (one home per leg).
 */
import { z } from 'zod';
import type { PoolSnapshot } from '../../core/model/snapshot.ts';
import { defineProbe } from './contract.ts';

export interface StorageXapiSample {
  host: string;
  home: string;
  up: boolean | null;
  detail: string;
}

/** The verdicts, from the snapshot alone (pure). */
export function storageXapiVerdicts(s: PoolSnapshot, xapiConnected: boolean): StorageXapiSample[] {
  const out: StorageXapiSample[] = [];
  for (const h of s.hosts) {
    const push = (home: string, up: boolean | null, detail: string) => out.push({ host: h.uuid, home, up, detail });
    if (!xapiConnected) {
      push('statefile', null, 'XAPI unreachable: cannot tell');
      continue;
    }
    if (s.haEnabled) {
      push(
        'statefile',
        h.haStatefiles.length > 0,
        h.haStatefiles.length > 0 ? 'host.ha_statefiles lists the statefile' : 'host.ha_statefiles is empty: xhad lost statefile access',
      );
    }
    const pbd = h.heartbeatPbd;
    if (pbd && pbd.totalLegs !== null && pbd.activeLegs !== null) {
      for (let i = 0; i < pbd.totalLegs; i++) {
        push(
          `leg-${i}`,
          pbd.attached && i < pbd.activeLegs,
          `heartbeat PBD ${pbd.attached ? 'attached' : 'detached'}, ${pbd.activeLegs}/${pbd.totalLegs} multipath legs active`,
        );
      }
    } else if (pbd) {
      push('pbd', pbd.attached, `heartbeat PBD ${pbd.attached ? 'attached' : 'detached'} (not multipathed)`);
    }
  }
  return out;
}

export const storageXapi = defineProbe({
  name: 'storage-xapi',
  path: 'storage',
  observerSide: false,
  enabledByDefault: true,
  description: 'host.ha_statefiles and the heartbeat SR PBD (attached, multipath legs) per host',
  options: z.strictObject({}),
  series: {},
  create() {
    return {
      async sample(round) {
        for (const v of storageXapiVerdicts(round.snapshot, round.xapiConnected)) round.report(v.host, v.home, v.up, v.detail);
      },
    };
  },
});
