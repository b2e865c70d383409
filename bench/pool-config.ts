/** A simulated pool as a user's exporter config names it: all four probes, the storage heartbeat the simulator writes, the default timing. */
import type { Simulator } from '../simulator/simulator.ts';

export function benchPoolInput(sim: Simulator, name: string, passwordEnv: string): Record<string, unknown> {
  const info = sim.info();
  return {
    name,
    urls: info.hosts.flatMap((h) => h.urls),
    passwordEnv,
    probes: {
      'network-tcp': {},
      'network-xapi': {},
      'storage-xapi': {},
      // xenha-heartbeat's file when the simulator runs the daemons (HA off), else xhad's statefile.
      'storage-statefile': { devices: [{ home: '0', path: info.heartbeat?.file ?? info.statefile }] },
    },
  };
}
