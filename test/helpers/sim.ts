/** Starting simulators for tests: fast timing, random ports, stopped by the test even on failure. */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { generatePoolSpec, type PoolSpec } from '../../simulator/pool-spec.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../simulator/simulator.ts';
import { decodeStatefile, type StatefileHostSlot } from '../../core/statefile/layout.ts';

export const FAST_TIMING = { tickMs: 40, statefileIntervalMs: 80, bootMs: 120, autoElectMasterMs: null };
export const PASSWORD = 'test-password';

export async function startTestSim(opts: Partial<SimulatorOptions> & { spec?: PoolSpec } = {}): Promise<Simulator> {
  return startSimulator({
    spec: opts.spec ?? generatePoolSpec({ hosts: 3, vms: 9, seed: 7 }),
    port: 0, controlPort: 0, password: PASSWORD, ...opts,
    timing: { ...FAST_TIMING, ...opts.timing },
  });
}

/** Opens a TCP connection: 'open', or the reason it failed. */
export function tcpProbe(host: string, port: number, timeoutMs = 1000): Promise<'open' | 'refused' | 'timeout' | string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const t = setTimeout(() => { s.destroy(); resolve('timeout'); }, timeoutMs);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve('open'); });
    s.once('error', (e: NodeJS.ErrnoException) => { clearTimeout(t); resolve(e.code === 'ECONNREFUSED' ? 'refused' : String(e.code)); });
  });
}

/** Every configured slot of the statefile, decoded with the shared core's decoder. */
export function readSlots(path: string): StatefileHostSlot[] {
  const d = decodeStatefile(readFileSync(path));
  if (!d.global.ok) throw new Error(`statefile global section: ${d.global.error.detail}`);
  return d.slots.map((s, i) => {
    if (!s.ok) throw new Error(`slot ${i}: ${s.error.detail}`);
    return s.value;
  });
}

export function slotOf(sim: Simulator, hostName: string): StatefileHostSlot {
  const h = sim.pool.host(hostName);
  return readSlots(sim.pool.statefilePath)[h.slot]!;
}

/** Fails (never skips) when a system binary is missing, naming what to install. */
export function requireFile(path: string, install: string): void {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: install it with \`${install}\` (or run scripts/install-test-deps.sh)`);
  }
}
