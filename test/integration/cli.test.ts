/** `xenha simulate` and `xenha fault` as a user runs them: separate processes, real ports. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SimulatorInfo } from '../../simulator/simulator.ts';
import { tcpProbe } from '../helpers/sim.ts';
import { xenha, XENHA_BIN as BIN } from '../helpers/run.ts';

let child: ChildProcess | undefined;
let info: SimulatorInfo;
const dir = mkdtempSync(join(tmpdir(), 'xenha-cli-'));

beforeAll(async () => {
  child = spawn(
    process.execPath,
    [
      BIN,
      'simulate',
      '--json',
      '--hosts',
      '3',
      '--vms',
      '5',
      '--seed',
      '9',
      '--port',
      '0',
      '--control-port',
      '0',
      '--state-dir',
      join(dir, 'state'),
      '--tick-ms',
      '40',
      '--statefile-interval-ms',
      '80',
      '--boot-ms',
      '100',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  info = await new Promise<SimulatorInfo>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no startup line within 20 s; stderr: ${err}`)), 20_000);
    child!.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(out.slice(0, nl)) as SimulatorInfo);
      }
    });
    child!.once('exit', (code) => reject(new Error(`simulate exited with ${code}: ${err}`)));
  });
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
});

describe('xenha CLI', () => {
  it('simulate prints where everything is and serves XAPI there', async () => {
    expect(info.hosts.map((h) => h.name)).toEqual(['host-01', 'host-02', 'host-03']);
    expect(info.masterUrl).toBe(`http://127.0.0.1:${info.port}`);
    expect(info.hosts[1]!.addresses).toEqual(['127.0.0.2', '127.0.1.2']);
    expect(await tcpProbe('127.0.1.3', info.port)).toBe('open');
  });

  it('fault cuts one home of a host, state and events show it, heal restores it', async () => {
    const control = ['--control', info.controlUrl];
    const r = await xenha(['fault', 'network-down', 'host-02', '--homes', '0', ...control]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: true,
      event: { kind: 'fault', host: 'host-02', detail: { fault: 'network-down', homes: [0] } },
    });
    expect(await tcpProbe('127.0.0.2', info.port)).toBe('refused');
    expect(await tcpProbe('127.0.1.2', info.port)).toBe('open');
    const state = JSON.parse((await xenha(['fault', 'state', ...control])).stdout) as { runtime: { name: string; listening: boolean[] }[] };
    expect(state.runtime.find((h) => h.name === 'host-02')!.listening).toEqual([false, true]);
    const events = (await xenha(['fault', 'events', ...control])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string });
    expect(events.some((e) => e.kind === 'fault')).toBe(true);
    expect((await xenha(['fault', 'heal', ...control], {})).code).toBe(0);
    expect(await tcpProbe('127.0.0.2', info.port)).toBe('open');
  });

  it('takes the control URL from XENHA_SIM_CONTROL', async () => {
    const r = await xenha(['fault', 'slow-xapi', '--latency-ms', '0'], { XENHA_SIM_CONTROL: info.controlUrl });
    expect(r.code, r.stderr).toBe(0);
  });

  it('the compiled CLI prints the version of package.json and lists every subcommand', async () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    const version = await xenha(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
    const help = await xenha(['--help']);
    expect(help.code).toBe(0);
    for (const cmd of ['simulate', 'fault', 'exporter', 'explain', 'plan', 'what-if'])
      expect(help.stdout).toMatch(new RegExp(`^  ${cmd} `, 'm'));
  });

  it('gives clear errors for bad input', async () => {
    const control = ['--control', info.controlUrl];
    const unknownHost = await xenha(['fault', 'host-crash', 'host-99', ...control]);
    expect(unknownHost.code).not.toBe(0);
    expect(unknownHost.stderr).toMatch(/refused \(404\): no host "host-99"/);
    const badPath = await xenha(['fault', 'flap', 'host-02', '--path', 'cpu', '--period-ms', '100', ...control]);
    expect(badPath.code).not.toBe(0);
    expect(badPath.stderr).toMatch(/Allowed choices are network, storage/);
    const badHome = await xenha(['fault', 'storage-down', 'host-02', '--homes', '5', ...control]);
    expect(badHome.stderr).toMatch(/home 5 out of range 0..1/);
    const badHosts = await xenha(['simulate', '--hosts', '0']);
    expect(badHosts.code).not.toBe(0);
    expect(badHosts.stderr).toMatch(/--hosts <n>' argument '0' is invalid. expected 1..64/);
    const file = join(dir, 'bad-pool.yaml');
    writeFileSync(file, 'hosts:\n  - name: a\n    memory: plenty\n');
    const badFile = await xenha(['simulate', '--pool-file', file, '--port', '0', '--control-port', '0']);
    expect(badFile.code).toBe(1);
    expect(badFile.stderr).toContain(`${file} is invalid:\n  hosts.0.memory (line 3): expected a size`);
    const noSim = await xenha(['fault', 'heal', '--control', 'http://127.0.0.1:1']);
    expect(noSim.stderr).toMatch(/cannot reach the simulator's control API at http:\/\/127\.0\.0\.1:1\/faults/);
  });

  it('control API refuses bad bodies with the reason', async () => {
    const post = (body: string) =>
      fetch(`${info.controlUrl}/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const unknownKind = await post('{"kind":"meteor-strike"}');
    expect(unknownKind.status).toBe(400);
    expect(((await unknownKind.json()) as { error: string }).error).toMatch(/kind/);
    const extraKey = await post('{"kind":"host-crash","host":"host-02","force":true}');
    expect(extraKey.status).toBe(400);
    expect(((await extraKey.json()) as { error: string }).error).toMatch(/force/);
    const notJson = await post('{');
    expect(notJson.status).toBe(400);
    const events = await fetch(`${info.controlUrl}/events?since=-1`);
    expect(events.status).toBe(400);
  });

  it('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await tcpProbe('127.0.0.1', info.port)).toBe('refused');
  });
});
