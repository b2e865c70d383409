/**
 * SIGTERM stops the exporter within 5 s with exit code 0, while its event.from long poll (up to 60 s)
 * is in flight to a pool that stays up: the poll is aborted, the session closed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { Simulator } from '../../simulator/simulator.ts';
import { XENHA_BIN } from '../helpers/run.ts';
import { PASSWORD, startTestSim } from '../helpers/sim.ts';
import { waitFor } from '../helpers/wait.ts';

let sim: Simulator | undefined;
let child: ChildProcess | undefined;
afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await sim?.stop();
});

it('SIGTERM during the event.from long poll: exit 0 within 5 s, the session logged out', async () => {
  sim = await startTestSim();
  const dir = mkdtempSync(join(tmpdir(), 'xenha-term-'));
  const file = join(dir, 'xenha.yaml');
  writeFileSync(file, `listen: 127.0.0.1:0\npools:\n  - name: p\n    urls: ["${sim.info().masterUrl}"]\n    passwordEnv: XENHA_TERM_PW\n`);
  child = spawn(process.execPath, [XENHA_BIN, 'exporter', '--config', file, '--log-level', 'warn'], {
    env: { ...process.env, XENHA_TERM_PW: PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const base = await waitFor('the exporter URL', () => /(http:\/\/\S+)\/metrics/.exec(stdout)?.[1], { timeoutMs: 20_000 });
  await waitFor('ready', async () => (await fetch(`${base}/-/ready`)).status === 200, { timeoutMs: 20_000 });
  const sessions = () => sim!.shared.sessions.size;
  // The long poll is in flight once event.from was called and nothing changes in the pool.
  const polls = () => sim!.shared.callCounts.get('event.from') ?? 0;
  await waitFor('an event.from long poll in flight', () => polls() >= 1, { timeoutMs: 10_000 });
  expect(sessions()).toBeGreaterThanOrEqual(1);
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child!.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const t = performance.now();
  child.kill('SIGTERM');
  const { code, signal } = await exited;
  const seconds = (performance.now() - t) / 1000;
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  expect(seconds).toBeLessThan(5);
  await waitFor('the session logged out', () => sessions() === 0, { timeoutMs: 2000 });
});
