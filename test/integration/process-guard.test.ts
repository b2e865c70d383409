/** An uncaught exception and an unhandled rejection are logged and counted; the process goes on (a real process). */
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { run } from '../helpers/run.ts';

it('keeps the process running through an uncaught exception and an unhandled rejection, and counts them', async () => {
  const guard = join(import.meta.dirname, '../../dist/exporter/process-guard.js');
  const script = `
    const { pino } = await import('pino');
    const { guardProcess } = await import(${JSON.stringify(guard)});
    const g = guardProcess(pino({ level: 'error' }, process.stderr));
    Promise.reject(new Error('rejected on purpose'));
    setTimeout(() => { throw new Error('thrown on purpose'); }, 10);
    setTimeout(() => { process.stdout.write(JSON.stringify(g.counts)); g.dispose(); }, 100);
  `;
  const r = await run(process.execPath, ['--input-type=module', '-e', script], { timeoutMs: 10_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ uncaughtException: 1, unhandledRejection: 1 });
  const lines = r.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { level: number; err: { message: string } });
  expect(lines.map((l) => [l.level, l.err.message]).sort()).toEqual([
    [50, 'rejected on purpose'],
    [50, 'thrown on purpose'],
  ]);
});
