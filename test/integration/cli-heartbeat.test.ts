/**
 * `xenha simulate --ha-off` as a user runs it (the compiled CLI, its own process): the hosts run the real
 * xenha-heartbeat daemon, the startup line says where the heartbeat file is, and the daemons never
 * outlive the simulator, even when it is killed outright (SIGKILL: no handler runs; each daemon sees its
 * standard input close and stops).
 */
import { afterAll, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeStatefile } from '../../core/statefile/layout.ts';
import type { SimulatorInfo } from '../../simulator/simulator.ts';
import { xenha, XENHA_BIN } from '../helpers/run.ts';
import { waitFor } from '../helpers/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'xenha-cli-hb-'));
let child: ChildProcess | undefined;

afterAll(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Running (a zombie waiting for whoever adopted it to reap it has stopped: it counts as gone). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

it('simulate --ha-off runs xenha-heartbeat on every host, and a SIGKILLed simulator leaves no daemon behind', async () => {
  const args = ['simulate', '--json', '--ha-off', '--hosts', '3', '--vms', '3', '--port', '0', '--control-port', '0'];
  args.push('--address-base', '127.0.60.1', '--state-dir', join(dir, 'state'), '--heartbeat-interval-ms', '100', '--log-level', 'warn');
  const proc = spawn(process.execPath, [XENHA_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child = proc;
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const info = await waitFor(
    'the startup line',
    () => (out.includes('\n') ? (JSON.parse(out.slice(0, out.indexOf('\n'))) as SimulatorInfo) : false),
    {
      timeoutMs: 20_000,
    },
  ).catch((e: Error) => {
    throw new Error(`${e.message}; stderr: ${err}`);
  });
  expect(info.heartbeat).toMatchObject({
    intervalMs: 100,
    peerWindowMs: 400,
    file: join(dir, 'state', 'heartbeat', 'xenha-heartbeat.img'),
  });

  const control = ['--control', info.controlUrl];
  type Runtime = { name: string; heartbeatDaemon: { pid: number | null; running: boolean } | null };
  const runtime = async () => (JSON.parse((await xenha(['fault', 'state', ...control])).stdout) as { runtime: Runtime[] }).runtime;
  await waitFor('a daemon running on every host', async () => (await runtime()).every((r) => r.heartbeatDaemon?.running === true), {
    timeoutMs: 10_000,
  });
  const pids = (await runtime()).map((r) => r.heartbeatDaemon!.pid!);
  expect(pids).toHaveLength(3);
  // Every host writes its slot in the file the startup line names.
  await waitFor(
    'three slots written',
    () => decodeStatefile(readFileSync(info.heartbeat!.file), 'xenha').slots.filter((s) => s.ok && s.value.hostUuid !== null).length === 3,
    { timeoutMs: 10_000 },
  );

  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGKILL');
  await exited;
  await waitFor('every daemon gone', () => pids.every((p) => !alive(p)), { timeoutMs: 5000, intervalMs: 20 });
});
