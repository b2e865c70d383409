/**
 * The fence-agent plugin and fenceHost on Debian's real fence agents (fence_dummy, fence_redfish) and
 * on small shell-script agents, in real time: the stdin protocol, exit codes, levels, an agent that
 * hangs (its whole process group killed), and the password from its file reaching the agent's stdin
 * and nothing else: not argv, not the environment, not a log line, not a result.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createFenceLevels, fenceConfig, fenceHost, type FenceResult } from '../../plugins/fence/index.ts';
import { waitFor } from '../helpers/wait.ts';
import { FENCE_DUMMY } from '../../loop/binaries.ts';

const FENCE_REDFISH = '/usr/sbin/fence_redfish';
const target = { pool: 'pool-a', hostUuid: 'uuid-2', hostName: 'host-02' };

let dir = '';
beforeAll(() => {
  for (const agent of [FENCE_DUMMY, FENCE_REDFISH]) {
    if (!existsSync(agent))
      throw new Error(`${agent} is missing: install it with \`apt-get install fence-agents\` (or run scripts/install-test-deps.sh)`);
  }
  dir = mkdtempSync(join(tmpdir(), 'xenha-fence-'));
});
afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

/** A pino logger whose every line is kept. */
function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, log: pino({ level: 'debug' }, stream) };
}

/** Fences the target through levels given as the config gives them. */
async function fence(levels: unknown[], opts: { log?: pino.Logger; signal?: AbortSignal } = {}): Promise<FenceResult> {
  const log = opts.log ?? pino({ level: 'silent' });
  const config = fenceConfig.parse({ levels });
  return fenceHost(createFenceLevels(config, target, { log }), {
    pollMs: 100,
    powerTimeoutMs: 5_000,
    log,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

let files = 0;
/** A fresh file in the test's directory. */
function file(name: string, content?: string): string {
  const path = join(dir, `${files++}-${name}`);
  if (content !== undefined) writeFileSync(path, content);
  return path;
}

/** A shell script agent. */
function script(name: string, body: string): string {
  const path = file(name, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** An agent that appends its stdin (and how many arguments it got) to a file, then hands it to fence_dummy. */
function recording(): { agent: string; stdin: string } {
  const stdin = file('stdin.log', '');
  return { agent: script('recording-agent', `echo "# argc=$#" >> ${stdin}\ntee -a ${stdin} | ${FENCE_DUMMY}`), stdin };
}

/** fence_dummy's power file (its content exactly "on" or "off", as fence_dummy reads it). */
const statusFile = (state: 'on' | 'off') => file('power', state);

/** A process that is gone, or a zombie nobody reaped yet (it runs nothing). */
function gone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

describe('fence-agent with fence_dummy', () => {
  it('type=file, host on: off, then status answers off: confirmed-off, the file says off', async () => {
    const power = statusFile('on');
    const { agent, stdin } = recording();
    const result = await fence([{ plugin: 'fence-agent', options: { agent, args: { type: 'file', status_file: power } } }]);
    expect(result).toMatchObject({ outcome: 'confirmed-off', level: 1 });
    expect(result.attempts[0]).toMatchObject({ offSent: true, statusCalls: 2 });
    expect(result.detail).toContain('Status: OFF');
    expect(readFileSync(power, 'utf8')).toBe('off');
    // What the agent was sent, as the agent got it: status, off, status, the options as name=value lines.
    const sent = readFileSync(stdin, 'utf8');
    expect(sent.match(/^action=.*$/gm)).toEqual(['action=status', 'action=off', 'action=status']);
    expect(sent).toContain(`type=file\nstatus_file=${power}\n`);
    expect(sent.match(/^# argc=.*$/gm)).toEqual(['# argc=0', '# argc=0', '# argc=0']);
  });

  it('already off: already-off, no off sent', async () => {
    const power = statusFile('off');
    const { agent, stdin } = recording();
    const result = await fence([{ plugin: 'fence-agent', options: { agent, args: { type: 'file', status_file: power } } }]);
    expect(result).toMatchObject({ outcome: 'already-off', level: 1 });
    expect(readFileSync(stdin, 'utf8').match(/^action=.*$/gm)).toEqual(['action=status']);
  });

  it('type=fail: the power never goes off: failed', async () => {
    const result = await fence([
      { plugin: 'fence-agent', options: { agent: FENCE_DUMMY, args: { type: 'fail', plug: 1, power_timeout: 1 } } },
    ]);
    expect(result).toMatchObject({ outcome: 'failed', level: 1 });
    expect(result.detail).toContain('fence_dummy off: exit 1: ');
    expect(result.detail).toContain('Timed out waiting to power OFF');
  });

  it('an agent slow to answer (random_sleep_range) within its timeout: confirmed-off', async () => {
    const power = statusFile('on');
    const result = await fence([
      {
        plugin: 'fence-agent',
        options: { agent: FENCE_DUMMY, args: { type: 'file', status_file: power, random_sleep_range: 1 }, timeoutMs: 3_000 },
      },
    ]);
    expect(result.outcome).toBe('confirmed-off');
    for (const ms of [result.attempts[0]!.offMs!, result.attempts[0]!.confirmMs!]) expect(ms).toBeGreaterThanOrEqual(1_000);
    expect(readFileSync(power, 'utf8')).toBe('off');
  });

  it('the first level fails (type=fail), the second (type=file) powers the host off', async () => {
    const power = statusFile('on');
    const result = await fence([
      { plugin: 'fence-agent', options: { agent: FENCE_DUMMY, args: { type: 'fail', plug: 1, power_timeout: 1 } } },
      { plugin: 'fence-agent', options: { agent: FENCE_DUMMY, args: { type: 'file', status_file: power } } },
    ]);
    expect(result).toMatchObject({ outcome: 'confirmed-off', level: 2 });
    expect(result.attempts.map((a) => [a.level, a.outcome])).toEqual([
      [1, 'failed'],
      [2, 'confirmed-off'],
    ]);
    expect(readFileSync(power, 'utf8')).toBe('off');
  });

  it('a device that cannot be reached (fence_redfish, connection refused): unreachable', async () => {
    const password = file('redfish-password', 'not-used\n');
    const result = await fence([
      {
        plugin: 'fence-agent',
        options: {
          agent: FENCE_REDFISH,
          args: { ip: '127.0.0.1', ipport: 1, username: 'root', ssl_insecure: true },
          passwordFile: password,
        },
      },
    ]);
    expect(result).toMatchObject({ outcome: 'unreachable', level: 1 });
    expect(result.detail).toMatch(/Connection refused|Failed to establish a new connection/);
  });
});

describe('fence-agent: an agent that hangs', () => {
  /** Ignores SIGTERM (as its child does: it inherits that), records its pid and its child's, waits forever. */
  function hung(): { agent: string; pids: () => number[] } {
    const pids = file('pids', '');
    const agent = script('hung-agent', `trap '' TERM\necho $$ >> ${pids}\nsleep 1000 &\necho $! >> ${pids}\nwait`);
    return { agent, pids: () => readFileSync(pids, 'utf8').split('\n').filter(Boolean).map(Number) };
  }

  it('times out, and its whole process group is killed (SIGTERM ignored, then SIGKILL)', async () => {
    const { agent, pids } = hung();
    const started = performance.now();
    const result = await fence([{ plugin: 'fence-agent', options: { agent, timeoutMs: 500, killGraceMs: 300 } }]);
    expect(result).toMatchObject({ outcome: 'timeout', level: 1 });
    expect(result.detail).toMatch(/off failed: \S*hung-agent off: timed out after 500 ms, process group killed$/);
    // status, off, and status once more after the failed off: each ran out of its time.
    expect(result.attempts[0]).toMatchObject({ statusCalls: 2, offSent: true });
    expect(performance.now() - started).toBeLessThan(6_000);
    expect(pids()).toHaveLength(6);
    // The group's pipes close as its processes exit, a moment before the kernel shows them dead (zombie
    // or gone): a loaded machine needs that moment.
    await waitFor('the timed-out agent groups gone', () => pids().every(gone), { timeoutMs: 5_000 }).catch(() => undefined);
    for (const pid of pids()) expect(gone(pid), `pid ${pid}`).toBe(true);
  });

  it('a fence aborted mid-call kills the group and tries nothing more', async () => {
    const { agent, pids } = hung();
    const power = statusFile('on');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const result = await fence(
      [
        { plugin: 'fence-agent', options: { agent, killGraceMs: 200 } },
        { plugin: 'fence-agent', options: { agent: FENCE_DUMMY, args: { type: 'file', status_file: power } } },
      ],
      { signal: ac.signal },
    );
    expect(result).toMatchObject({ outcome: 'failed', aborted: true, level: 1 });
    expect(result.attempts).toHaveLength(1);
    expect(readFileSync(power, 'utf8')).toBe('on');
    expect(pids()).toHaveLength(2);
    // Killed: gone once the kernel has reaped them (a bounded poll, not at the very instant fence returns).
    await waitFor('the aborted agent group gone', () => pids().every(gone), { timeoutMs: 5_000 }).catch(() => undefined);
    for (const pid of pids()) expect(gone(pid), `pid ${pid}`).toBe(true);
  });
});

describe('fence-agent: the password', () => {
  it('reaches the agent on its stdin only: not argv, not its environment, not a log line, not the result', async () => {
    const secret = 'Xy9-s3cr3t-pa55';
    const passwordFile = file('bmc-password', `${secret}\n`);
    const power = statusFile('on');
    const stdin = file('stdin.log', '');
    const env = file('env.log', '');
    const agent = script('recording-agent', `echo "# argc=$# $*" >> ${stdin}\nenv >> ${env}\ntee -a ${stdin} | ${FENCE_DUMMY}`);
    const { lines, log } = capture();
    const result = await fence([{ plugin: 'fence-agent', options: { agent, args: { type: 'file', status_file: power }, passwordFile } }], {
      log,
    });
    expect(result.outcome).toBe('confirmed-off');

    const sent = readFileSync(stdin, 'utf8');
    expect(sent.match(/^password=.*$/gm)).toEqual([`password=${secret}`, `password=${secret}`, `password=${secret}`]);
    expect(sent.match(/^# argc=.*$/gm)).toEqual(['# argc=0 ', '# argc=0 ', '# argc=0 ']);
    expect(readFileSync(env, 'utf8')).not.toContain(secret);
    // fence_dummy takes no password: it says so on stderr, echoing the line, secret included; the
    // plugin keeps that line with the secret redacted.
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('')).toContain("Ignoring unknown option 'password=[redacted]'");
    for (const line of lines) expect(line).not.toContain(secret);
    expect(JSON.stringify(result)).not.toContain(secret);
  });

  it('an unreadable password file: the agent is not run, the level fails', async () => {
    const { agent, stdin } = recording();
    const result = await fence([
      { plugin: 'fence-agent', options: { agent, args: { type: 'file' }, passwordFile: join(dir, 'no-such-file') } },
    ]);
    expect(result.outcome).toBe('failed');
    expect(result.detail).toContain('ENOENT');
    expect(readFileSync(stdin, 'utf8')).toBe('');
  });
});
