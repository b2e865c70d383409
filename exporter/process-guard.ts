/**
 * The last line of defence of a long-running exporter: an uncaught exception or an unhandled
 * rejection (a library's background promise, a handler that slipped through) is logged and counted
 * instead of ending the process — with it the monitoring of every pool. Each XAPI answer is
 * validated at the boundary (io/xapi/guarded-client.ts), so this should count nothing; a count above
 * zero is a bug to report (the metric xenha_exporter_unhandled_errors_total says so).
 */
import type { Logger } from 'pino';

export interface ProcessGuard {
  /** Errors caught here since start, by kind. */
  readonly counts: { uncaughtException: number; unhandledRejection: number };
  dispose(): void;
}

export function guardProcess(log: Logger): ProcessGuard {
  const counts = { uncaughtException: 0, unhandledRejection: 0 };
  const onException = (err: unknown) => {
    counts.uncaughtException++;
    log.error({ err }, 'uncaught exception (kept running; please report it)');
  };
  const onRejection = (err: unknown) => {
    counts.unhandledRejection++;
    log.error({ err }, 'unhandled promise rejection (kept running; please report it)');
  };
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return {
    counts,
    dispose() {
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
    },
  };
}
