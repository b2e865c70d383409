/** An in-process exporter watching an in-process simulator, with fast timing, stopped by the test. */
import { pino } from 'pino';
import { exporterConfig, type ExporterConfig } from '../../exporter/config.ts';
import { startExporter, type RunningExporter } from '../../exporter/exporter.ts';
import type { HostState } from '../../core/classify/state-machine.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { PASSWORD, startTestSim } from './sim.ts';
import type { SimulatorOptions } from '../../simulator/simulator.ts';
import type { PoolSpec } from '../../simulator/pool-spec.ts';

export const EXPORTER_PASSWORD_ENV = 'XENHA_TEST_POOL_PASSWORD';

export interface Loop {
  sim: Simulator;
  exporter: RunningExporter;
  /** The host's current state. */
  state(host: string): HostState | undefined;
  /** Every state the host has been in since the loop started (or since the last reset), in order. */
  history(host: string): HostState[];
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

export function fastPoolConfig(sim: Simulator, overrides: Record<string, unknown> = {}): ExporterConfig['pools'][number] {
  const info = sim.info();
  return exporterConfig.parse({
    pools: [{
      name: 'sim', urls: info.hosts.flatMap((h) => h.urls), passwordEnv: EXPORTER_PASSWORD_ENV,
      probes: {
        'network-tcp': {}, 'network-xapi': {}, 'storage-xapi': {},
        'storage-statefile': { devices: [{ home: '0', path: info.statefile }], readMode: 'buffered', statefileTimeoutMs: 600, peerHeartbeatTimeoutMs: 400 },
      },
      timing: { sampleInterval: '100ms', probeTimeout: '80ms', xapiTimeout: '2s', deadAfter: '1s', flapWindow: '3s', flapThreshold: 6, confirmSamples: 2, capacityInterval: '500ms' },
      ...overrides,
    }],
  }).pools[0]!;
}

export async function startLoop(opts: Partial<SimulatorOptions> & { spec?: PoolSpec; pool?: Record<string, unknown> } = {}): Promise<Loop> {
  process.env[EXPORTER_PASSWORD_ENV] = PASSWORD;
  const sim = await startTestSim(opts);
  let exporter: RunningExporter;
  try {
    exporter = await startExporter({ listen: '127.0.0.1:0', pools: [fastPoolConfig(sim, opts.pool)] }, pino({ level: 'silent' }));
  } catch (e) {
    await sim.stop();
    throw e;
  }
  const sampler = exporter.samplers[0]!;
  const uuidOf = (name: string) => sim.pool.host(name).built.uuid;
  return {
    sim, exporter,
    state: (host) => sampler.state.memory?.hosts[uuidOf(host)]?.state,
    history: (host) => {
      const uuid = uuidOf(host);
      const out: HostState[] = ['healthy'];
      for (const c of sampler.changes) if (c.host === uuid) out.push(c.to);
      return out;
    },
    metrics: async () => (await fetch(`${exporter.url}/metrics`)).text(),
    stop: async () => {
      await exporter.stop();
      await sim.stop();
    },
  };
}

/** The value of one series in a scrape, or undefined. Labels must match exactly the ones given. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const got = Object.fromEntries([...body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}
