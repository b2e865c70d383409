/**
 * `xenha start` (what `npm start` runs): the whole loop on one machine — a simulated HA-off pool running
 * xenha-heartbeat, the exporter, the remediation service in enforce mode with fence_dummy on each host's
 * power file, and a real Prometheus and Alertmanager when they are installed (loop/loop.ts,
 * docs/loop.md). Prints every URL, runs until SIGINT / SIGTERM, then stops everything it started.
 */
import { Command, InvalidArgumentError, Option } from '@commander-js/extra-typings';
import type { RunningLoop } from '../loop/loop.ts';
import { intArg, loopbackArg } from './args.ts';

const SCENARIOS = ['tour'] as const;
type Scenario = (typeof SCENARIOS)[number];

function scenarioArg(value: string): Scenario {
  if (!(SCENARIOS as readonly string[]).includes(value))
    throw new InvalidArgumentError(`unknown scenario ${JSON.stringify(value)} (known: ${SCENARIOS.join(', ')})`);
  return value as Scenario;
}

/** A duration as Prometheus and xenha's configs both write it. */
function durationArg(value: string): string {
  if (!/^\d+(ms|s|m|h)$/.test(value))
    throw new InvalidArgumentError(`expected a duration such as 500ms, 1s, 2m, got ${JSON.stringify(value)}`);
  return value;
}

type TourRunner = (loop: RunningLoop, out: (line: string) => void, signal: AbortSignal) => Promise<void>;

/** The guided tour (loop/tour.ts), loaded only when --scenario tour is given. */
async function loadTour(): Promise<TourRunner> {
  return (await import('../loop/tour.ts')).runTour;
}

export function registerStart(program: Command): void {
  program
    .command('start')
    .description(
      'run the whole loop on this machine: a simulated pool, the exporter, the remediation service (enforce, fence_dummy), Prometheus and Alertmanager',
    )
    .option('--hosts <n>', 'hosts of the simulated pool', intArg(1, 64), 8)
    .option('--vms <n>', 'VMs of the simulated pool', intArg(0, 10_000), 100)
    .option('--seed <n>', 'seed of the simulated pool', intArg(0, 2 ** 31 - 1), 1)
    .option('--address-base <ip>', "first host's first address (host i on A.B.C.(D+i) and A.B.(C+1).(D+i))", loopbackArg, '127.0.0.1')
    .option('--xapi-port <n>', 'XAPI port of every simulated host (0 = any free port)', intArg(0, 65535), 8480)
    .option('--control-port <n>', "the simulator's fault-injection API on 127.0.0.1 (0 = any free port)", intArg(0, 65535), 8481)
    .option('--exporter-port <n>', 'the exporter on 127.0.0.1 (0 = any free port)', intArg(0, 65535), 9945)
    .option('--remediation-port <n>', 'the remediation service on 127.0.0.1 (0 = any free port)', intArg(0, 65535), 9946)
    .option('--prometheus-port <n>', 'Prometheus on 127.0.0.1 (0 = any free port)', intArg(0, 65535), 9090)
    .option('--alertmanager-port <n>', 'Alertmanager on 127.0.0.1 (0 = any free port)', intArg(0, 65535), 9093)
    .addOption(new Option('--mode <mode>', 'remediation mode').choices(['dry-run', 'manual', 'enforce'] as const).default('enforce'))
    .option('--quiet-period <duration>', "the remediation service's quiet period after its start", durationArg, '10s')
    .option('--dead-after <duration>', "the exporter's dead-after (default: 30s, the HA-off default)", durationArg)
    .option('--heartbeat-interval-ms <ms>', "xenha-heartbeat's interval on the simulated hosts", intArg(10, 600_000), 2000)
    .option('--scrape-interval <duration>', "Prometheus' scrape interval", durationArg, '1s')
    .option('--evaluation-interval <duration>', "Prometheus' rule evaluation interval", durationArg, '1s')
    .option('--no-prometheus', 'do not start Prometheus and Alertmanager')
    .option(
      '--dir <dir>',
      'keep the state (simulator files, journal, Prometheus and Alertmanager data, logs) here instead of a temporary directory',
    )
    .option('--keep-dir', 'keep the temporary state directory at exit')
    .addOption(new Option('--scenario <name>', `run a scenario once the loop is up (${SCENARIOS.join(', ')})`).argParser(scenarioArg))
    .option('--json', 'print the URLs, the state directory and what is missing as one JSON line')
    .addOption(
      new Option('--log-level <level>', 'log level (logs go to stderr)')
        .choices(['trace', 'debug', 'info', 'warn', 'error', 'silent'])
        .default('info'),
    )
    .action(async (o) => {
      // Everything this run needs is loaded before anything starts: a module that fails to load must
      // not leave a process running.
      const [{ pino }, { startLoop }, { routeLibraryLogs }, { guardProcess }, tour] = await Promise.all([
        import('pino'),
        import('../loop/loop.ts'),
        import('../io/library-logs.ts'),
        import('../exporter/process-guard.ts'),
        o.scenario === 'tour' ? loadTour() : undefined,
      ]);
      const log = pino({ level: o.logLevel, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
      routeLibraryLogs(log);
      // Ctrl-C while the loop starts: it is stopped as soon as its start settles (a start cannot be cut
      // half-way without leaving a process behind); a second Ctrl-C exits at once (the children are
      // killed at exit by loop/process.ts).
      let early: string | undefined;
      const onEarly = (signal: NodeJS.Signals) => {
        if (early !== undefined) process.exit(1);
        early = signal;
        log.info(`${signal} while starting: the loop stops once its start settles`);
      };
      process.on('SIGINT', onEarly);
      process.on('SIGTERM', onEarly);
      let loop: RunningLoop;
      try {
        loop = await startLoop({
          ports: {
            xapi: o.xapiPort,
            control: o.controlPort,
            exporter: o.exporterPort,
            remediation: o.remediationPort,
            prometheus: o.prometheusPort,
            alertmanager: o.alertmanagerPort,
          },
          addressBase: o.addressBase,
          hosts: o.hosts,
          vms: o.vms,
          seed: o.seed,
          heartbeat: { intervalMs: o.heartbeatIntervalMs },
          ...(o.deadAfter !== undefined && { exporterTiming: { deadAfter: o.deadAfter } }),
          mode: o.mode,
          quietPeriod: o.quietPeriod,
          prometheus: o.prometheus,
          scrapeInterval: o.scrapeInterval,
          evaluationInterval: o.evaluationInterval,
          log,
          ...(o.dir !== undefined && { dir: o.dir }),
          keepDir: o.keepDir === true,
        });
      } catch (e) {
        const m = (e as Error).message;
        if (/EADDRINUSE|address already in use/i.test(m))
          throw new Error(
            `${m}\na port is in use (another xenha start, Prometheus or Alertmanager?): choose others with --*-port (0 = any free port)`,
            { cause: e },
          );
        throw e;
      } finally {
        process.off('SIGINT', onEarly);
        process.off('SIGTERM', onEarly);
      }
      if (early !== undefined) {
        await loop.stop();
        return;
      }
      // Kept running through an uncaught exception or unhandled rejection: logged.
      const guard = guardProcess(log);
      process.stdout.write(o.json ? `${JSON.stringify({ urls: loop.urls, dir: loop.dir, missing: loop.missing })}\n` : describe(loop, o));

      const abort = new AbortController();
      await new Promise<void>((done) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) {
            // A second Ctrl-C: at once (the children are killed at exit).
            log.warn(`${signal} again: exiting now`);
            process.exit(1);
          }
          stopping = true;
          abort.abort();
          log.info(`${signal}: stopping the loop`);
          // Bounded: a fence step in progress finishes first (10 s power timeout in the loop).
          setTimeout(() => {
            log.error('stopping took longer than 30 s; exiting anyway');
            process.exit(1);
          }, 30_000).unref();
          void loop
            .stop()
            .catch((e: unknown) => {
              log.error({ err: e }, 'stopping the loop failed');
              process.exitCode = 1;
            })
            .then(() => guard.dispose())
            .then(done);
        };
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGTERM', () => stop('SIGTERM'));
        if (tour)
          void tour(loop, (line) => process.stdout.write(`${line}\n`), abort.signal).then(
            () => process.stdout.write('The tour is over; the loop keeps running. Ctrl-C stops it.\n'),
            (e: unknown) => {
              if (!abort.signal.aborted) log.error({ err: e }, 'the tour failed; the loop keeps running');
            },
          );
      });
    });
}

function describe(loop: RunningLoop, o: { mode: string; quietPeriod: string; keepDir?: boolean; dir?: string }): string {
  const u = loop.urls;
  const info = loop.sim.info();
  const vms = loop.sim.pool.built.db.all('VM').filter(([, v]) => v.is_control_domain !== true).length;
  const lines = [
    `xenha start: the whole loop on this machine (pool "sim": ${info.hosts.length} hosts, ${vms} VMs, HA off, xenha-heartbeat on every host)`,
    `  XAPI (master)       ${u.xapi}   user ${info.user}, password xenha`,
    `  fault control       ${u.control}   npx xenha fault host-crash host-03 --control ${u.control}`,
    `  exporter            ${u.metrics}   npx xenha explain --pool sim --host host-03 --exporter ${u.exporter}`,
    `  remediation         ${u.plans}   (mode ${o.mode}, quiet period ${o.quietPeriod}, fence_dummy on each host's power file)`,
    `                      npx xenha plans --url ${u.remediation}   webhook ${u.webhook}, metrics ${u.remediation}/metrics`,
    u.prometheus
      ? `  Prometheus          ${u.prometheus}   (${u.prometheus}/targets, ${u.prometheus}/alerts)`
      : '  Prometheus          not running',
    u.alertmanager ? `  Alertmanager        ${u.alertmanager}` : '  Alertmanager        not running',
    `  Grafana dashboards  ${u.dashboards}   (JSON to import; Prometheus as the data source)`,
    `  state               ${loop.dir}${o.dir !== undefined || o.keepDir ? '' : '   (removed at exit; --keep-dir keeps it)'}`,
  ];
  if (loop.missing.length > 0) {
    lines.push('missing:', ...loop.missing.map((m) => `  ${m}`));
    if (!u.prometheus)
      lines.push('  Prometheus and Alertmanager run only when both are installed; the rest of the loop runs without them.');
  }
  lines.push('Ctrl-C stops everything.', '');
  return lines.join('\n');
}
