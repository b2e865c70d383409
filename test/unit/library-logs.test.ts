/** xen-api's own diagnostics land in pino as one JSON line each, never as raw multi-line text. */
import { Writable } from 'node:stream';
import { createLogger } from '@xen-orchestra/log';
import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { routeLibraryLogs } from '../../io/library-logs.ts';

let restore: (() => void) | undefined;
afterEach(() => restore?.());

it('routes @xen-orchestra/log entries and console.warn into pino, one line per event', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  restore = routeLibraryLogs(log);
  createLogger('xen-api').debug('xs1: connected', { callId: 7 });
  const boom = new Error('read ECONNRESET');
  console.warn('_watchEvents', boom);
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(parsed).toHaveLength(2);
  expect(parsed[0]).toMatchObject({ level: 20, lib: 'xen-api', namespace: 'xen-api', callId: 7, msg: 'xs1: connected' });
  expect(parsed[1]).toMatchObject({ level: 40, lib: 'console', msg: '_watchEvents', err: { message: 'read ECONNRESET' } });
  expect((parsed[1]!.err as { stack: string }).stack).toContain('read ECONNRESET');
  // Put back: neither the console nor the library writes to this logger any more.
  restore();
  restore = undefined;
  createLogger('xen-api').debug('after restore');
  expect(lines).toHaveLength(2);
});
