/**
 * The whole loop on one machine, as `npm start` (`xenha start`) runs it and end-to-end tests and
 * benchmarks reuse it:
 *
 *   simulator (HA off, xenha-heartbeat on every host, fence_dummy power files)
 *     → exporter (in-process) ──/metrics──▶ Prometheus (xenha's rules) ──▶ Alertmanager
 *                                                                            │ webhook, bearer token
 *     remediation service (in-process, enforce, fence_dummy on each host) ◀─┘
 *
 * Started in that order (Alertmanager before Prometheus, which needs its address), stopped in reverse;
 * a start that fails stops whatever had started before the error propagates. Prometheus and
 * Alertmanager run only when both binaries are found (see `missing`) and `prometheus` is not false.
 * Everything listens on loopback; the state (simulator files, journal, tokens, Prometheus' and
 * Alertmanager's data and logs) lives in one directory.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { exporterConfig, type ExporterConfig } from '../exporter/config.ts';
import { startExporter, type RunningExporter } from '../exporter/exporter.ts';
import { remediationConfig, type RemediationConfig } from '../remediation/config.ts';
import type { Mode } from '../remediation/records.ts';
import { startRemediation, type RunningRemediation } from '../remediation/service.ts';
import type { HeartbeatDaemonOptions } from '../simulator/heartbeat-daemons.ts';
import type { SimTiming } from '../simulator/pool.ts';
import { generatePoolSpec, type PoolSpec } from '../simulator/pool-spec.ts';
import { startSimulator, type Simulator } from '../simulator/simulator.ts';
import { startAlertmanager, type RunningAlertmanager } from './alertmanager.ts';
import { FENCE_DUMMY, findLoopBinaries, MISSING } from './binaries.ts';
import { startPrometheus, type RunningPrometheus } from './prometheus.ts';
import { alertRuleFiles, dashboardsDir } from './repo.ts';

export interface LoopPorts {
  /** XAPI, shared by every simulated host (each on its own addresses). */
  xapi: number;
  /** The simulator's fault-injection control API (127.0.0.1). */
  control: number;
  exporter: number;
  remediation: number;
  prometheus: number;
  alertmanager: number;
}

/** What `npm start` listens on. */
export const DEFAULT_LOOP_PORTS: Readonly<LoopPorts> = {
  xapi: 8480,
  control: 8481,
  exporter: 9945,
  remediation: 9946,
  prometheus: 9090,
  alertmanager: 9093,
};

/** Any free port for everything (tests, benchmarks). */
export const FREE_LOOP_PORTS: Readonly<LoopPorts> = { xapi: 0, control: 0, exporter: 0, remediation: 0, prometheus: 0, alertmanager: 0 };

/** The pool's name in every config, label and alert. */
export const LOOP_POOL = 'sim';

export { FENCE_DUMMY } from './binaries.ts';

export interface LoopOptions {
  /** Default DEFAULT_LOOP_PORTS; 0 = any free port. */
  ports?: Partial<LoopPorts>;
  /** First simulated host's first address (default 127.0.0.1); give each concurrent loop its own. */
  addressBase?: string;
  /** The generated pool (default 8 hosts, 100 VMs, seed 1), or `spec` instead. HA is off either way. */
  hosts?: number;
  vms?: number;
  seed?: number;
  spec?: PoolSpec;
  /** The simulated root password (default `xenha`). */
  password?: string;
  /** Simulator timing (default: its own, from the pool's HA timeout). */
  simTiming?: Partial<SimTiming>;
  /** xenha-heartbeat on every host (default {}: its documented defaults, a 2 s interval). */
  heartbeat?: HeartbeatDaemonOptions;
  /** The pool's `timing` as a config file says it (`{ deadAfter: '3s' }`); default: the exporter's defaults. */
  exporterTiming?: Record<string, string | number>;
  /** Remediation mode (default enforce). */
  mode?: Mode;
  /** The service's quiet period after its start (default 10s). */
  quietPeriod?: string;
  /** More keys of the service's `remediation:` section (fencePolicy, powerTimeout…), applied last. */
  remediation?: Record<string, unknown>;
  /** The fence agent run on each host's power file (default /usr/sbin/fence_dummy; missing: a manual level). */
  fenceAgent?: string;
  /** Start Prometheus and Alertmanager when both are found (default true). */
  prometheus?: boolean;
  /** Their binaries (default: found in PATH). */
  binaries?: { prometheus?: string; alertmanager?: string };
  /** Prometheus' scrape and evaluation intervals (default 1s each). */
  scrapeInterval?: string;
  evaluationInterval?: string;
  /** The xenha route's Alertmanager timing (default deploy/alertmanager.yml's). */
  alertmanagerRoute?: { groupWait?: string; groupInterval?: string; repeatInterval?: string };
  prometheusArgs?: string[];
  alertmanagerArgs?: string[];
  /** The alert rule files Prometheus loads, absolute paths (default: the checkout's alerts/*.rules.yml). */
  ruleFiles?: string[];
  /** How long Prometheus and Alertmanager may each take to be ready (default 30 s). */
  startTimeoutMs?: number;
  /** The exporter keeps running through an uncaught exception (the CLI's process; default false). */
  guardProcess?: boolean;
  log?: Logger;
  /** Where the state lives (kept); default a new temporary directory, removed at stop unless keepDir. */
  dir?: string;
  keepDir?: boolean;
}

export interface LoopUrls {
  /** The master's XAPI. */
  xapi: string;
  /** The simulator's control API (`xenha fault --control`). */
  control: string;
  exporter: string;
  metrics: string;
  remediation: string;
  plans: string;
  webhook: string;
  prometheus?: string;
  alertmanager?: string;
  /** The directory of the Grafana dashboards' JSON. */
  dashboards: string;
}

export interface RunningLoop {
  sim: Simulator;
  exporter: RunningExporter;
  remediation: RunningRemediation;
  prometheus?: RunningPrometheus;
  alertmanager?: RunningAlertmanager;
  urls: LoopUrls;
  dir: string;
  /** The webhook's bearer token (the service's file; Alertmanager has its own copy). */
  tokenFile: string;
  /** The configs the exporter and the service run with. */
  exporterConfig: ExporterConfig;
  remediationConfig: RemediationConfig;
  /** What was not found, each with how to install it (Prometheus and Alertmanager then do not run). */
  missing: string[];
  /** The pids of the processes the loop started and runs now: Prometheus, Alertmanager, the heartbeat daemons. */
  childPids(): number[];
  /** Stops everything, in reverse order; idempotent. */
  stop(): Promise<void>;
}

/** The pool as a config file says it: every probe, the heartbeat file the daemons write, the loop's password file. */
function poolInput(sim: Simulator, passwordFile: string, timing: Record<string, string | number> | undefined): Record<string, unknown> {
  const info = sim.info();
  return {
    name: LOOP_POOL,
    urls: info.hosts.flatMap((h) => h.urls),
    passwordFile,
    probes: {
      'network-tcp': {},
      'network-xapi': {},
      'storage-xapi': {},
      // HA off: xenha-heartbeat's file is the storage heartbeat (xhad's statefile is never written).
      'storage-statefile': { devices: [{ home: '0', path: info.heartbeat?.file ?? info.statefile }], readMode: 'buffered' },
    },
    ...(timing && { timing }),
  };
}

const hostPort = (url: string) => new URL(url).host;

function writeSecret(path: string, value: string): void {
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
}

export async function startLoop(opts: LoopOptions = {}): Promise<RunningLoop> {
  const ports = { ...DEFAULT_LOOP_PORTS, ...opts.ports };
  const log = opts.log ?? pino({ level: 'silent' });
  const created = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'xenha-loop-'));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const removeDir = () => {
    if (created && !opts.keepDir) rmSync(dir, { recursive: true, force: true });
  };

  // What is stopped, newest first, whether the start completes or fails.
  const stack: { what: string; stop: () => Promise<void> }[] = [];
  const stopAll = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const s of stack.splice(0).reverse()) {
      try {
        await s.stop();
      } catch (e) {
        log.error({ err: e, part: s.what }, `stopping ${s.what} failed`);
        errors.push(e);
      }
    }
    removeDir();
    if (errors.length > 0) throw errors[0];
  };

  try {
    const missing: string[] = [];
    const password = opts.password ?? 'xenha';
    const base = opts.spec ?? generatePoolSpec({ hosts: opts.hosts ?? 8, vms: opts.vms ?? 100, seed: opts.seed ?? 1 });
    const sim = await startSimulator({
      spec: { ...base, haEnabled: false },
      heartbeat: opts.heartbeat ?? {},
      port: ports.xapi,
      controlPort: ports.control,
      addressBase: opts.addressBase ?? '127.0.0.1',
      password,
      stateDir: join(dir, 'sim'),
      log: log.child({ part: 'simulator' }),
      ...(opts.simTiming && { timing: opts.simTiming }),
    });
    stack.push({ what: 'simulator', stop: () => sim.stop() });

    const passwordFile = join(dir, 'sim.password');
    writeSecret(passwordFile, password);
    const pool = poolInput(sim, passwordFile, opts.exporterTiming);
    const exporterCfg = exporterConfig.parse({ listen: `127.0.0.1:${ports.exporter}`, pools: [pool] });
    const exporter = await startExporter(exporterCfg, log.child({ part: 'exporter' }), { guardProcess: opts.guardProcess ?? false });
    stack.push({ what: 'exporter', stop: () => exporter.stop() });

    const fenceAgent = opts.fenceAgent ?? FENCE_DUMMY;
    const hasAgent = existsSync(fenceAgent);
    if (!hasAgent) missing.push(`${fenceAgent}: not found, hosts are fenced by hand (xenha ack) (Debian: apt-get install fence-agents)`);
    const token = randomBytes(32).toString('hex');
    const tokenFile = join(dir, 'remediation.token');
    writeSecret(tokenFile, token);
    const remediationCfg = remediationConfig.parse({
      pools: [pool],
      remediation: {
        listen: `127.0.0.1:${ports.remediation}`,
        mode: opts.mode ?? 'enforce',
        tokenFile,
        journal: join(dir, 'remediation', 'remediation.journal'),
        quietPeriod: opts.quietPeriod ?? '10s',
        // fence_dummy answers at once: no need to wait a BMC's minute.
        powerTimeout: '10s',
        powerPoll: '200ms',
        pools: {
          [LOOP_POOL]: {
            fence: {
              hosts: Object.fromEntries(
                sim.info().hosts.map((h) => [
                  h.name,
                  hasAgent
                    ? {
                        levels: [
                          { plugin: 'fence-agent', options: { agent: fenceAgent, args: { type: 'file', status_file: h.powerFile } } },
                        ],
                      }
                    : { levels: [{ plugin: 'manual' }] },
                ]),
              ),
            },
          },
        },
        ...opts.remediation,
      },
    });
    const remediation = await startRemediation(remediationCfg, log.child({ part: 'remediation' }));
    stack.push({ what: 'remediation service', stop: () => remediation.stop() });

    let prometheus: RunningPrometheus | undefined;
    let alertmanager: RunningAlertmanager | undefined;
    if (opts.prometheus !== false) {
      const found = opts.binaries?.prometheus && opts.binaries.alertmanager ? undefined : findLoopBinaries();
      const promBin = opts.binaries?.prometheus ?? found?.prometheus;
      const amBin = opts.binaries?.alertmanager ?? found?.alertmanager;
      if (!promBin) missing.push(MISSING.prometheus);
      if (!amBin) missing.push(MISSING.alertmanager);
      if (promBin && amBin) {
        const amToken = join(dir, 'alertmanager.token');
        writeSecret(amToken, token);
        alertmanager = await startAlertmanager({
          dir: join(dir, 'alertmanager'),
          bin: amBin,
          port: ports.alertmanager,
          webhookUrl: `${remediation.url}/webhook/alertmanager`,
          tokenFile: amToken,
          ...(opts.alertmanagerRoute && { route: opts.alertmanagerRoute }),
          ...(opts.alertmanagerArgs && { extraArgs: opts.alertmanagerArgs }),
          ...(opts.startTimeoutMs !== undefined && { startTimeoutMs: opts.startTimeoutMs }),
        });
        const am = alertmanager;
        stack.push({ what: 'alertmanager', stop: () => am.stop() });
        const rules = opts.ruleFiles ?? alertRuleFiles();
        if (rules.length === 0) log.warn('no alerts/*.rules.yml in the checkout: Prometheus runs without alert rules');
        prometheus = await startPrometheus({
          dir: join(dir, 'prometheus'),
          bin: promBin,
          port: ports.prometheus,
          exporter: hostPort(exporter.url),
          remediation: hostPort(remediation.url),
          alertmanager: hostPort(alertmanager.url),
          ruleFiles: rules,
          scrapeInterval: opts.scrapeInterval ?? '1s',
          evaluationInterval: opts.evaluationInterval ?? '1s',
          ...(opts.prometheusArgs && { extraArgs: opts.prometheusArgs }),
          ...(opts.startTimeoutMs !== undefined && { startTimeoutMs: opts.startTimeoutMs }),
        });
        const prom = prometheus;
        stack.push({ what: 'prometheus', stop: () => prom.stop() });
      }
    }

    const info = sim.info();
    let stopping: Promise<void> | undefined;
    return {
      sim,
      exporter,
      remediation,
      ...(prometheus && { prometheus }),
      ...(alertmanager && { alertmanager }),
      urls: {
        xapi: info.masterUrl,
        control: info.controlUrl,
        exporter: exporter.url,
        metrics: `${exporter.url}/metrics`,
        remediation: remediation.url,
        plans: `${remediation.url}/api/v1/plans`,
        webhook: `${remediation.url}/webhook/alertmanager`,
        ...(prometheus && { prometheus: prometheus.url }),
        ...(alertmanager && { alertmanager: alertmanager.url }),
        dashboards: dashboardsDir(),
      },
      dir,
      tokenFile,
      exporterConfig: exporterCfg,
      remediationConfig: remediationCfg,
      missing,
      childPids: () => [
        ...(prometheus ? [prometheus.pid] : []),
        ...(alertmanager ? [alertmanager.pid] : []),
        ...Object.values(sim.heartbeat?.state() ?? {}).flatMap((d) => (d.running && d.pid !== null ? [d.pid] : [])),
      ],
      stop: () => (stopping ??= stopAll()),
    };
  } catch (e) {
    await stopAll().catch((err: unknown) => log.error({ err }, 'stopping after a failed start failed'));
    throw e;
  }
}
