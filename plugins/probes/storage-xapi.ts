/**
 * storage-xapi: what the pool says of each host's storage path to the heartbeat SR:
 * `host.ha_statefiles` (xhad on that host has statefile access) and the heartbeat PBD, attached, with
 * its multipath legs from `other_config["mpath-<SCSIid>"] = "[active, total]"` (one home per leg).
 */
import { z } from 'zod';
import { registerProbe, sample, type ProbeResult } from './contract.ts';

registerProbe({
  name: 'storage-xapi',
  path: 'storage',
  description: 'host.ha_statefiles and the heartbeat SR PBD (attached, multipath legs) per host',
  options: z.strictObject({}),
  create() {
    return {
      name: 'storage-xapi',
      path: 'storage',
      async sample(ctx): Promise<ProbeResult> {
        const out: ProbeResult = new Map();
        const s = ctx.snapshot;
        if (!s) return out;
        for (const h of s.hosts) {
          if (!ctx.xapiConnected) {
            out.set(h.uuid, [sample('storage-xapi', 'storage', 'statefile', null, 'XAPI unreachable: cannot tell')]);
            continue;
          }
          const samples = [];
          if (s.haEnabled) {
            samples.push(sample('storage-xapi', 'storage', 'statefile', h.haStatefiles.length > 0,
              h.haStatefiles.length > 0 ? 'host.ha_statefiles lists the statefile' : 'host.ha_statefiles is empty: xhad lost statefile access'));
          }
          const pbd = h.heartbeatPbd;
          if (pbd && pbd.totalLegs !== null && pbd.activeLegs !== null) {
            for (let i = 0; i < pbd.totalLegs; i++) {
              const up = pbd.attached && i < pbd.activeLegs;
              samples.push(sample('storage-xapi', 'storage', `leg-${i}`, up, `heartbeat PBD ${pbd.attached ? 'attached' : 'detached'}, ${pbd.activeLegs}/${pbd.totalLegs} multipath legs active`));
            }
          } else if (pbd) {
            samples.push(sample('storage-xapi', 'storage', 'pbd', pbd.attached, `heartbeat PBD ${pbd.attached ? 'attached' : 'detached'} (not multipathed)`));
          }
          out.set(h.uuid, samples);
        }
        return out;
      },
    };
  },
});
