/**
 * network-xapi: what the pool itself says of each host's network path. `host_metrics.live` is the
 * master's word (it hears the host on the management network); `host.ha_network_peers` is who hears
 * whom on the HA network heartbeat. While XAPI is unreachable (or HA is off, for the peers) it cannot
 * tell, and says so (null) rather than down.
 */
import { z } from 'zod';
import type { PoolSnapshot } from '../../core/model/snapshot.ts';
import { defineProbe } from './contract.ts';

export interface NetworkXapiSample {
  host: string;
  home: 'master' | 'ha-peers';
  up: boolean | null;
  detail: string;
}

/** The verdicts, from the snapshot alone (pure). */
export function networkXapiVerdicts(s: PoolSnapshot, xapiConnected: boolean): NetworkXapiSample[] {
  const out: NetworkXapiSample[] = [];
  for (const h of s.hosts) {
    const isMaster = h.ref === s.masterRef;
    const live = !xapiConnected || h.live === null ? null : h.live;
    out.push({
      host: h.uuid,
      home: 'master',
      up: live,
      detail: !xapiConnected
        ? 'XAPI unreachable: cannot tell'
        : `host_metrics.live = ${String(h.live)}${isMaster ? ' (this host is the master)' : ''}`,
    });
    const listeners = s.hosts.filter((p) => p.ref !== h.ref && p.live === true);
    const heardBy = listeners.filter((p) => p.haNetworkPeers.includes(h.uuid));
    const peersKnown = xapiConnected && s.haEnabled && listeners.length > 0;
    out.push({
      host: h.uuid,
      home: 'ha-peers',
      up: peersKnown ? heardBy.length > 0 : null,
      detail: peersKnown
        ? `heard by ${heardBy.length}/${listeners.length} live peers (ha_network_peers)`
        : 'no live peer reporting, HA off or XAPI unreachable',
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
        for (const v of networkXapiVerdicts(round.snapshot, round.xapiConnected)) round.report(v.host, v.home, v.up, v.detail);
      },
    };
  },
});
