/**
 * network-xapi: what the pool itself says of each host's network path. `host_metrics.live` is the
 * master's word (with HA on, from xhad's liveset; without, from xapi's own heartbeat);
 * `host.ha_network_peers` is who hears whom on the HA network heartbeat. Both lag (xapi-lag.ts): a
 * `true` shows life as old as that lag; a `false` is the pool's verdict. While XAPI is unreachable
 * (or HA is off, for the peers) it cannot tell, and says so (null) rather than down.
 */
import { z } from 'zod';
import type { PoolSnapshot } from '../../core/model/snapshot.ts';
import { defineProbe } from './contract.ts';
import { masterWordLagMs } from './xapi-lag.ts';

export interface NetworkXapiSample {
  host: string;
  home: 'master' | 'ha-peers';
  up: boolean | null;
  detail: string;
  /** For an up sample: how old the life it shows may be (the master's lag). */
  ageMs: number | null;
}

/** The verdicts, from the snapshot alone (pure). */
export function networkXapiVerdicts(s: PoolSnapshot, xapiConnected: boolean): NetworkXapiSample[] {
  const out: NetworkXapiSample[] = [];
  const lag = masterWordLagMs(s);
  const lagged = `the master's word, up to ${lag / 1000} s late`;
  for (const h of s.hosts) {
    const isMaster = h.ref === s.masterRef;
    const live = !xapiConnected || h.live === null ? null : h.live;
    out.push({
      host: h.uuid,
      home: 'master',
      up: live,
      detail: !xapiConnected
        ? 'XAPI unreachable: cannot tell'
        : `host_metrics.live = ${String(h.live)}${isMaster ? ' (this host is the master)' : ''}${live === true ? `: ${lagged}` : ''}`,
      ageMs: live === true ? lag : null,
    });
    const listeners = s.hosts.filter((p) => p.ref !== h.ref && p.live === true);
    const heardBy = listeners.filter((p) => p.haNetworkPeers.includes(h.uuid));
    const peersKnown = xapiConnected && s.haEnabled && listeners.length > 0;
    const heard = peersKnown ? heardBy.length > 0 : null;
    out.push({
      host: h.uuid,
      home: 'ha-peers',
      up: heard,
      detail: peersKnown
        ? `heard by ${heardBy.length}/${listeners.length} live peers (ha_network_peers${heard ? `: ${lagged}` : ''})`
        : 'no live peer reporting, HA off or XAPI unreachable',
      ageMs: heard === true ? lag : null,
    });
  }
  return out;
}

export const networkXapi = defineProbe({
  name: 'network-xapi',
  path: 'network',
  observerSide: false,
  source: 'master',
  enabledByDefault: true,
  description: 'host_metrics.live (the master hears the host) and host.ha_network_peers (the peers hear it)',
  options: z.strictObject({}),
  series: {},
  create() {
    return {
      async sample(round) {
        for (const v of networkXapiVerdicts(round.snapshot, round.xapiConnected))
          round.report(v.host, v.home, v.up, v.detail, { ageMs: v.ageMs });
      },
    };
  },
});
