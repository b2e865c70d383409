/** `xenha exporter`: the two-path liveness exporter; with --simulate, on an embedded simulated pool. */
import { Command, Option } from '@commander-js/extra-typings';
import { resolve } from 'node:path';
import type { ExporterConfig } from '../exporter/config.ts';
import type { Simulator } from '../simulator/simulator.ts';
import { intArg, listenArg } from './args.ts';

export const SIM_PASSWORD_ENV = 'XENHA_SIM_PASSWORD';

/** The config that watches a running simulator with every probe, the statefile read from its file. */
export async function simulatorExporterConfig(sim: Simulator, listen: string): Promise<ExporterConfig> {
  const { exporterConfig } = await import('../exporter/config.ts');
  const info = sim.info();
  return exporterConfig.parse({
    listen,
    pools: [
      {
        name: 'sim',
        urls: info.hosts.flatMap((h) => h.urls),
        passwordEnv: SIM_PASSWORD_ENV,
        probes: {
          'network-tcp': {},
          'network-xapi': {},
          'storage-xapi': {},
          'storage-statefile': { devices: [{ home: '0', path: info.statefile }], readMode: 'buffered' },
        },
      },
    ],
  });
}

export function registerExporter(program: Command): void {
  program
    .command('exporter')
    .description('sample both heartbeat paths of every host and export liveness, classification and preflight checks to Prometheus')
    .addOption(new Option('-c, --config <path>', 'config file (YAML, see docs/exporter.md)').env('XENHA_CONFIG'))
    .option('--listen <host:port>', "override the config's listen address (host:port or [ipv6]:port)", listenArg)
    .option('--simulate', 'start an embedded simulated pool and watch it (no config needed)')
    .option('--hosts <n>', 'with --simulate: hosts', intArg(1, 64), 4)
    .option('--vms <n>', 'with --simulate: VMs', intArg(0, 10_000), 16)
    .option('--seed <n>', 'with --simulate: seed', intArg(0, 2 ** 31 - 1), 1)
    .option('--sim-port <n>', 'with --simulate: XAPI port', intArg(0, 65535), 8480)
    .option('--sim-control-port <n>', 'with --simulate: control API port', intArg(0, 65535), 8481)
    .option('--state-dir <dir>', 'with --simulate: simulator state directory', '.xenha-sim')
    .addOption(
      new Option('--log-level <level>', 'log level (logs go to stderr)')
        .choices(['trace', 'debug', 'info', 'warn', 'error', 'silent'])
        .default('info'),
    )
    .action(async (o) => {
      // Everything this run needs is loaded before anything starts: a module that fails to load must
      // not leave a simulator running.
      const [{ pino }, { checkConfigPaths, loadExporterConfig }, { startExporter }, { routeLibraryLogs }, sims] = await Promise.all([
        import('pino'),
        import('../exporter/config.ts'),
        import('../exporter/exporter.ts'),
        import('../io/library-logs.ts'),
        o.simulate ? Promise.all([import('../simulator/pool-spec.ts'), import('../simulator/simulator.ts')]) : undefined,
      ]);
      const log = pino({ level: o.logLevel, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
      routeLibraryLogs(log);
      let sim: Simulator | undefined;
      let config: ExporterConfig;
      if (sims) {
        const [{ generatePoolSpec }, { startSimulator }] = sims;
        process.env[SIM_PASSWORD_ENV] ??= 'xenha';
        sim = await startSimulator({
          spec: generatePoolSpec({ hosts: o.hosts, vms: o.vms, seed: o.seed }),
          port: o.simPort,
          controlPort: o.simControlPort,
          password: process.env[SIM_PASSWORD_ENV],
          stateDir: resolve(o.stateDir),
          log: log.child({ part: 'simulator' }),
        });
        config = await simulatorExporterConfig(sim, o.listen ?? '127.0.0.1:9945');
      } else {
        if (!o.config)
          throw new Error('no config: pass --config <path> (or XENHA_CONFIG), or --simulate to watch an embedded simulated pool');
        config = loadExporterConfig(o.config);
        if (o.listen) config = { ...config, listen: o.listen };
      }
      let exporter: Awaited<ReturnType<typeof startExporter>>;
      try {
        // What the config names on this machine (statefile devices, password files), before anything starts.
        checkConfigPaths(config);
        // Kept running through an uncaught exception or unhandled rejection: counted and logged.
        exporter = await startExporter(config, log, { guardProcess: true });
      } catch (e) {
        // A failed start (a port in use, a path missing) leaves nothing running behind it.
        await sim?.stop();
        throw e;
      }
      const lines = [`xenha exporter: ${exporter.url}/metrics  (also /-/healthy, /-/ready, /api/v1/state)`];
      if (sim) {
        const info = sim.info();
        lines.push(
          `  watching the simulated pool "sim": ${info.hosts.length} hosts, master ${info.masterUrl}, control ${info.controlUrl}`,
          `  try:  npx xenha fault network-down host-02 --control ${info.controlUrl}`,
          `        npx xenha explain --pool sim --host host-02 --exporter ${exporter.url}`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\nCtrl-C stops.\n`);
      await new Promise<void>((done) => {
        const stop = () => {
          // Bounded: whatever hangs, the process is gone within 5 s of the signal, as systemd expects.
          setTimeout(() => {
            log.error('shutdown took longer than 4.5 s; exiting anyway');
            process.exit(1);
          }, 4500).unref();
          void exporter
            .stop()
            .then(() => sim?.stop())
            .then(done);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
