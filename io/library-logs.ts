/**
 * Routes what libraries print on their own into pino, one JSON line per event: xen-api logs through
 * @xen-orchestra/log (its debug lines) and writes some errors straight to `console.warn` (multi-line
 * stack traces that would land between pino's lines on stderr). Called once by a long-running
 * command (exporter, simulator), at the process's edge.
 */
import { format } from 'node:util';
import { configure } from '@xen-orchestra/log/configure';
import type { Logger } from 'pino';

/** @xen-orchestra/log's levels (bunyan's) as pino's. */
function levelName(level: number): 'debug' | 'info' | 'warn' | 'error' | 'fatal' {
  if (level >= 60) return 'fatal';
  if (level >= 50) return 'error';
  if (level >= 40) return 'warn';
  if (level >= 30) return 'info';
  return 'debug';
}

/** Returns a function that puts the console and the library's transport back as they were. */
export function routeLibraryLogs(log: Logger): () => void {
  const lib = log.child({ lib: 'xen-api' });
  // @xen-orchestra/log keeps its transport under this global symbol (every copy of it shares it).
  const previous: unknown = (globalThis as Record<symbol, unknown>)[Symbol.for('@xen-orchestra/log')];
  configure((entry: { level: number; namespace: string; message: string; data?: unknown }) => {
    const data = entry.data && typeof entry.data === 'object' ? (entry.data as Record<string, unknown>) : { data: entry.data };
    // The client's debug lines carry each call's result (a login's is the session): never logged.
    const { error, result: _result, ...rest } = data;
    lib[levelName(entry.level)]({ namespace: entry.namespace, ...rest, ...(error !== undefined && { err: error }) }, entry.message);
  });
  const console = log.child({ lib: 'console' });
  const route =
    (level: 'info' | 'warn' | 'error') =>
    (...args: unknown[]) => {
      const err = args.find((a) => a instanceof Error);
      console[level]({ ...(err !== undefined && { err }) }, format(...args.filter((a) => a !== err)));
    };
  const warn = globalThis.console.warn.bind(globalThis.console);
  const error = globalThis.console.error.bind(globalThis.console);
  globalThis.console.warn = route('warn');
  globalThis.console.error = route('error');
  return () => {
    if (typeof previous === 'function') configure(previous as Parameters<typeof configure>[0]);
    globalThis.console.warn = warn;
    globalThis.console.error = error;
  };
}
