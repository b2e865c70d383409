/**
 * network-xapi: what the pool itself says of each host's network path. `host_metrics.live` is the
 * master's word (it hears the host on the management network); `host.ha_network_peers` is who hears
 * whom on the HA network heartbeat. While XAPI is unreachable (or HA is off, for the peers) it cannot
 * tell, and says so (null) rather than down.
 */
import { z } from 'zod';
import { registerProbe, sample, type ProbeResult } from './contract.ts';

registerProbe({
  name: 'network-xapi',
  path: 'network',
  description: 'host_metrics.live (the master hears the host) and host.ha_network_peers (the peers hear it)',
  options: z.strictObject({}),
  create() {
    return {
      name: 'network-xapi',
      path: 'network',
      async sample(ctx): Promise<ProbeResult> {
        const out: ProbeResult = new Map();
        const s = ctx.snapshot;
        if (!s) return out;
        const fresh = ctx.xapiConnected;
        for (const h of s.hosts) {
          const isMaster = h.ref === s.masterRef;
          const live = !fresh || h.live === null ? null : h.live;
          const samples = [sample('network-xapi', 'network', 'master', isMaster && live === true ? true : live,
            !fresh ? 'XAPI unreachable: cannot tell' : `host_metrics.live = ${String(h.live)}${isMaster ? ' (this host is the master)' : ''}`)];
          const listeners = s.hosts.filter((p) => p.ref !== h.ref && p.live === true);
          const heardBy = listeners.filter((p) => p.haNetworkPeers.includes(h.uuid));
          const peersKnown = fresh && s.haEnabled && listeners.length > 0;
          samples.push(sample('network-xapi', 'network', 'ha-peers', peersKnown ? heardBy.length > 0 : null,
            peersKnown ? `heard by ${heardBy.length}/${listeners.length} live peers (ha_network_peers)` : 'no live peer reporting, HA off or XAPI unreachable'));
          out.set(h.uuid, samples);
        }
        return out;
      },
    };
  },
});
