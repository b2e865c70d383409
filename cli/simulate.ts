/** `xenha simulate`: runs the XAPI pool simulator as its own process until SIGINT / SIGTERM. */
import { Command, Option } from '@commander-js/extra-typings';
import { resolve } from 'node:path';
import type { SimulatorInfo } from '../simulator/simulator.ts';
import { intArg, loopbackArg } from './args.ts';

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('run a simulated XenServer pool: XAPI on loopback, a real HA statefile, fence_dummy power files, fault injection')
    .option('--hosts <n>', 'hosts in a generated pool', intArg(1, 64), 4)
    .option('--vms <n>', 'VMs in a generated pool', intArg(0, 10_000), 16)
    .option('--seed <n>', 'seed of the generated pool', intArg(0, 2 ** 31 - 1), 1)
    .option('--pool-file <path>', 'load the pool from a YAML file instead of generating it (see docs/simulator.md)')
    .option(
      '--port <n>',
      'XAPI port of every host (the master starts on the address base, 127.0.0.1 by default); 0 = any free port',
      intArg(0, 65535),
      8480,
    )
    .option(
      '--address-base <ip>',
      "first host's first address; host i listens on A.B.C.(D+i) and A.B.(C+1).(D+i)",
      loopbackArg,
      '127.0.0.1',
    )
    .option('--control-port <n>', 'control API port on 127.0.0.1 (fault injection); 0 = any free port', intArg(0, 65535), 8481)
    .addOption(new Option('--password <pw>', 'root password of the simulated pool').env('XENHA_SIM_PASSWORD').default('xenha'))
    .option('--state-dir <dir>', 'where the statefile and the power files live', '.xenha-sim')
    .option('--tick-ms <ms>', 'simulation step', intArg(10, 60_000))
    .option('--statefile-interval-ms <ms>', 'statefile slot rewrite interval (default from the HA timeout, as xhad)', intArg(10, 600_000))
    .option('--boot-ms <ms>', 'time from power-on to live', intArg(0, 600_000))
    .option(
      '--auto-elect-master-ms <ms>',
      'elect a new master this long after the master is lost, as xhad does (default: never; xenha hands over)',
      intArg(0, 600_000),
    )
    .option('--ha-off', "the pool's HA off (xhad writes nothing), whatever a pool file says")
    .option('--no-heartbeat', 'with HA off: do not run xenha-heartbeat on the hosts (no storage heartbeat)')
    .option('--heartbeat-interval-ms <ms>', "xenha-heartbeat's interval (its peer window is 4 intervals)", intArg(10, 600_000), 2000)
    .option('--json', 'print the startup information as one JSON line')
    .addOption(
      new Option('--log-level <level>', 'log level (logs go to stderr)')
        .choices(['trace', 'debug', 'info', 'warn', 'error', 'silent'])
        .default('info'),
    )
    .action(async (o) => {
      const [{ pino }, { generatePoolSpec, loadPoolSpecFile }, { startSimulator }] = await Promise.all([
        import('pino'),
        import('../simulator/pool-spec.ts'),
        import('../simulator/simulator.ts'),
      ]);
      const log = pino({ level: o.logLevel, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
      const loaded = o.poolFile ? loadPoolSpecFile(o.poolFile) : generatePoolSpec({ hosts: o.hosts, vms: o.vms, seed: o.seed });
      const spec = o.haOff ? { ...loaded, haEnabled: false } : loaded;
      // With HA off the hosts run xenha's own heartbeat (the real daemon), as a pool watched by xenha would.
      const heartbeat = !spec.haEnabled && o.heartbeat ? { intervalMs: o.heartbeatIntervalMs } : undefined;
      const sim = await startSimulator({
        spec,
        port: o.port,
        addressBase: o.addressBase,
        controlPort: o.controlPort,
        password: o.password,
        stateDir: resolve(o.stateDir),
        log,
        ...(heartbeat && { heartbeat }),
        timing: {
          ...(o.tickMs !== undefined && { tickMs: o.tickMs }),
          ...(o.statefileIntervalMs !== undefined && { statefileIntervalMs: o.statefileIntervalMs }),
          ...(o.bootMs !== undefined && { bootMs: o.bootMs }),
          ...(o.autoElectMasterMs !== undefined && { autoElectMasterMs: o.autoElectMasterMs }),
        },
      });
      const info = sim.info();
      process.stdout.write(o.json ? `${JSON.stringify(info)}\n` : describe(info, spec.vms.length));
      await new Promise<void>((done) => {
        const stop = () => {
          log.info('stopping simulator');
          void sim.stop().then(done);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}

function describe(info: SimulatorInfo, vms: number): string {
  const lines = [
    `xenha simulator: pool "${info.pool.name}" (${info.pool.uuid}), ${info.hosts.length} hosts, ${vms} VMs`,
    `  XAPI (master)   ${info.masterUrl}   user ${info.user}, password from --password / XENHA_SIM_PASSWORD`,
    `  JSON-RPC        ${info.masterUrl}/jsonrpc    XML-RPC ${info.masterUrl}/ (any path)`,
    `  control API     ${info.controlUrl}   (xenha fault --help)`,
    `  statefile       ${info.statefile}`,
    info.heartbeat
      ? `  heartbeat file  ${info.heartbeat.file}   (xenha-heartbeat on every host, every ${info.heartbeat.intervalMs} ms, UDP port ${info.heartbeat.port})`
      : `  heartbeat file  none (HA on, or --no-heartbeat)`,
    `  hosts:`,
    ...info.hosts.map(
      (h) => `    ${h.name}${h.master ? ' (master)' : '         '}  ${h.addresses.join(', ')}  uuid ${h.uuid}  power ${h.powerFile}`,
    ),
    `  fence a host:   fence_dummy --type=file --status-file=${info.hosts[0]?.powerFile ?? '<power file>'} --action=off`,
    `Ctrl-C stops.`,
    '',
  ];
  return lines.join('\n');
}
