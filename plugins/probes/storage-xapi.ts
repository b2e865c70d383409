/**
 * storage-xapi: what the pool says of each host's storage path to the heartbeat SR:
 * `host.ha_statefiles` (the master's word, from xhad's liveset: that host's xhad has statefile access)
 * and the heartbeat PBD, attached, with its multipath legs from `other_config["mpath-<SCSIid>"] =
 * "[active, total]"` (one home per leg). The PBD and its legs are written by the host itself: when it
 * dies or the master no longer hears it they stay as they were, so they are evidence only while the
 * master hears the host (host_metrics.live); otherwise this probe cannot tell.
 */
import { z } from 'zod';
import type { EvidenceSource } from '../../core/classify/state-machine.ts';
import type { PoolSnapshot } from '../../core/model/snapshot.ts';
import { defineProbe } from './contract.ts';
import { masterWordLagMs } from './xapi-lag.ts';

export interface StorageXapiSample {
  host: string;
  home: string;
  up: boolean | null;
  detail: string;
  source: EvidenceSource;
  /** For an up sample: how old the life it shows may be (the master's lag: the host's report counts only while it is live). */
  ageMs: number | null;
}

/** The verdicts, from the snapshot alone (pure). */
export function storageXapiVerdicts(s: PoolSnapshot, xapiConnected: boolean): StorageXapiSample[] {
  const out: StorageXapiSample[] = [];
  for (const h of s.hosts) {
    const lag = masterWordLagMs(s);
    const push = (home: string, up: boolean | null, detail: string, source: EvidenceSource) =>
      out.push({ host: h.uuid, home, up, detail, source, ageMs: up === true ? lag : null });
    if (!xapiConnected) {
      push('statefile', null, 'XAPI unreachable: cannot tell', 'master');
      continue;
    }
    if (s.haEnabled) {
      push(
        'statefile',
        h.haStatefiles.length > 0,
        h.haStatefiles.length > 0 ? 'host.ha_statefiles lists the statefile' : 'host.ha_statefiles is empty: xhad lost statefile access',
        'master',
      );
    }
    // The host's own report counts only while the master hears it: a dead host's stays "attached".
    const heard = h.live === true;
    const frozen = `: the host's own report, frozen while the master does not hear it (host_metrics.live = ${String(h.live)}): cannot tell`;
    const pbd = h.heartbeatPbd;
    if (pbd && pbd.totalLegs !== null && pbd.activeLegs !== null) {
      const said = `heartbeat PBD ${pbd.attached ? 'attached' : 'detached'}, ${pbd.activeLegs}/${pbd.totalLegs} multipath legs active`;
      for (let i = 0; i < pbd.totalLegs; i++)
        push(`leg-${i}`, heard ? pbd.attached && i < pbd.activeLegs : null, heard ? said : said + frozen, 'host');
    } else if (pbd) {
      const said = `heartbeat PBD ${pbd.attached ? 'attached' : 'detached'} (not multipathed)`;
      push('pbd', heard ? pbd.attached : null, heard ? said : said + frozen, 'host');
    }
  }
  return out;
}

export const storageXapi = defineProbe({
  name: 'storage-xapi',
  path: 'storage',
  observerSide: false,
  source: 'master',
  enabledByDefault: true,
  description: 'host.ha_statefiles and the heartbeat SR PBD (attached, multipath legs) per host',
  options: z.strictObject({}),
  series: {},
  create() {
    return {
      async sample(round) {
        for (const v of storageXapiVerdicts(round.snapshot, round.xapiConnected))
          round.report(v.host, v.home, v.up, v.detail, { source: v.source, ageMs: v.ageMs });
      },
    };
  },
});
