/**
 * `xenha remediate`: the remediation service (Alertmanager's webhook → sceptical re-check → fence →
 * restart); `xenha plans`: its plans, each step's state, timing and reason; `xenha ack <plan>`: a
 * person's go for a plan waiting for one (manual mode, or a fence no device confirmed).
 */
import { Command, Option } from '@commander-js/extra-typings';

const DEFAULT_URL = 'http://127.0.0.1:9946';

export function registerRemediate(program: Command): void {
  program
    .command('remediate')
    .description(
      'run the remediation service: Alertmanager webhook, its own re-check, fence, restart (dry-run unless the config says otherwise)',
    )
    .addOption(
      new Option('--config <path>', 'config file: the exporter\'s, with a "remediation:" section (docs/remediation.md)').env(
        'XENHA_CONFIG',
      ),
    )
    .addOption(
      new Option('--log-level <level>', 'log level (logs go to stderr)')
        .choices(['trace', 'debug', 'info', 'warn', 'error', 'silent'])
        .default('info'),
    )
    .action(async (o) => {
      const [
        { pino },
        { loadRemediationConfig },
        { checkConfigPaths },
        { startRemediation },
        { routeLibraryLogs },
        { guardProcess },
        { startTelemetry },
      ] = await Promise.all([
        import('pino'),
        import('../remediation/config.ts'),
        import('../exporter/config.ts'),
        import('../remediation/service.ts'),
        import('../io/library-logs.ts'),
        import('../exporter/process-guard.ts'),
        import('../remediation/telemetry.ts'),
      ]);
      if (!o.config) throw new Error('no config: pass --config <path> (or XENHA_CONFIG)');
      const log = pino({ level: o.logLevel, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
      routeLibraryLogs(log);
      const config = loadRemediationConfig(o.config);
      checkConfigPaths(config);
      const guard = guardProcess(log);
      // Traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; no-op otherwise.
      const telemetry = await startTelemetry(log);
      // Fault injection for the crash-safety test only: "before:N" or "after:N" (journal record N).
      const crash = /^(before|after):([1-9]\d*)$/.exec(process.env.XENHA_REMEDIATION_CRASH_AT ?? '');
      const service = await startRemediation(
        config,
        log,
        crash ? { crashAt: { when: crash[1] as 'before' | 'after', seq: Number(crash[2]) } } : {},
      );
      const mode = config.remediation.mode;
      process.stdout.write(
        [
          `xenha remediate: ${service.url}/webhook/alertmanager  (mode ${mode}${mode === 'dry-run' ? ': plans are shown, nothing is done' : ''})`,
          `  plans: ${service.url}/api/v1/plans   metrics: ${service.url}/metrics   journal: ${config.remediation.journal}`,
          'Ctrl-C stops (a step in progress finishes first).',
          '',
        ].join('\n'),
      );
      await new Promise<void>((done) => {
        const stop = () => {
          // A fence in progress is let finish (its own timeouts bound it); a second signal exits at once.
          process.once('SIGINT', () => process.exit(1));
          process.once('SIGTERM', () => process.exit(1));
          void service
            .stop()
            .then(() => telemetry.shutdown())
            .then(() => guard.dispose())
            .then(done);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });

  program
    .command('plans')
    .description("the remediation service's plans: each step's state, timing and reason")
    .option('--url <url>', 'the remediation service', DEFAULT_URL)
    .argument('[plan]', 'one plan by id')
    .option('--json', 'print JSON')
    .action(async (planId, o) => {
      const [{ fetchPlans }] = await Promise.all([import('../remediation/plans-client.ts')]);
      process.stdout.write(await fetchPlans(o.url, planId, o.json === true));
    });

  for (const [action, what] of [
    ['ack', 'acknowledge a plan: run one waiting in manual mode, or confirm by hand that a host whose fence failed is off'],
    ['cancel', 'cancel a plan that has not started (manual mode) or waits for an operator; a running plan is never cancelled'],
  ] as const)
    program
      .command(action)
      .description(what)
      .argument('<plan>', 'plan id (xenha plans)')
      .option('--url <url>', 'the remediation service', DEFAULT_URL)
      .addOption(new Option('--token-file <path>', "file holding the service's bearer token").conflicts('tokenEnv'))
      .addOption(new Option('--token-env <name>', "environment variable holding the service's bearer token"))
      .option('--by <name>', 'who it is (recorded in the journal)', process.env.USER ?? 'operator')
      .action(async (planId, o) => {
        const [{ operatorCall }] = await Promise.all([import('../remediation/plans-client.ts')]);
        if (o.tokenFile === undefined && o.tokenEnv === undefined) throw new Error('pass --token-file <path> or --token-env <name>');
        const source = o.tokenFile !== undefined ? { tokenFile: o.tokenFile } : { tokenEnv: o.tokenEnv! };
        process.stdout.write(await operatorCall(action, o.url, planId, source, o.by));
      });
}
