/** The remediation service in tests: its config on a simulated pool, fence_dummy levels per host. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeStatefile } from '../../core/statefile/layout.ts';
import { remediationConfig, type RemediationConfig } from '../../remediation/config.ts';
import type { SimulatorInfo, Simulator } from '../../simulator/simulator.ts';
import { FENCE_DUMMY } from '../../loop/binaries.ts';
import { fastPoolInput } from './exporter.ts';

export { FENCE_DUMMY };

/**
 * One fence-agent level per host: `agent` (fence_dummy by default) with, by default, fence_dummy's
 * file type on the host's power file; `args` and `options` replace those.
 */
export function fenceAgentHosts(
  sim: Simulator,
  agent = FENCE_DUMMY,
  args: (h: SimulatorInfo['hosts'][number]) => Record<string, unknown> = (h) => ({ type: 'file', status_file: h.powerFile }),
  options: Record<string, unknown> = {},
): Record<string, unknown> {
  return Object.fromEntries(
    sim.info().hosts.map((h) => [h.name, { levels: [{ plugin: 'fence-agent', options: { agent, args: args(h), ...options } }] }]),
  );
}

/** The service's config as a file says it: the fast test pool, enforce, no quiet period, short fence timeouts; `remediation` adds or replaces keys. */
export function serviceConfigInput(
  sim: Simulator,
  dir: string,
  name: string,
  remediation: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    pools: [fastPoolInput(sim)],
    remediation: {
      listen: '127.0.0.1:0',
      mode: 'enforce',
      tokenFile: join(dir, 'token'),
      journal: join(dir, `${name}.journal`),
      quietPeriod: '0s',
      powerTimeout: '5s',
      powerPoll: '100ms',
      ...remediation,
    },
  };
}

export function serviceConfig(sim: Simulator, dir: string, name: string, remediation: Record<string, unknown> = {}): RemediationConfig {
  return remediationConfig.parse(serviceConfigInput(sim, dir, name, remediation));
}

/**
 * The host's xenha-heartbeat slot is in the simulator's heartbeat file (its daemon has written since it
 * started): a host that never wrote one cannot be called dead on the storage path.
 */
export function slotWritten(sim: Simulator, hostUuid: string): boolean {
  return decodeStatefile(readFileSync(sim.info().heartbeat!.file), 'xenha').slots.some((x) => x.ok && x.value.hostUuid === hostUuid);
}
