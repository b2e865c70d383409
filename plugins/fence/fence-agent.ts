/**
 * fence-agent: runs a ClusterLabs fence agent (fence_ipmilan, fence_redfish, fence_idrac, fence_ilo,
 * fence_apc_snmp…) speaking the fence-agents stdin protocol (doc/FenceAgentAPI.md, lib/fencing.py):
 * one `name=value` line per option on stdin (`action=status|off|on`, then the configured `args`, then
 * the secrets read from their files), nothing on argv. Exit codes: status 0 = on, 2 = off, anything
 * else = cannot tell; off/on 0 = done, anything else = failed.
 *
 * The agent runs without a shell, in its own process group, with a minimal environment (nothing of
 * xenha's own: it may hold XAPI credentials), its output captured up to a cap. A call that outlives its
 * time, or whose signal fires, has its whole group killed (SIGTERM, then SIGKILL after a grace): an
 * agent's children (ipmitool, snmpget…) go with it. Secrets never reach argv, the environment or a
 * log line; the agent's own output is scrubbed of them before it is kept (fencing.py echoes an option
 * it does not know, value included).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { basename, isAbsolute } from 'node:path';
import { z } from 'zod';
import { defineFencePlugin, type ActionAnswer, type StatusAnswer } from './contract.ts';

/**
 * What fencing.py and the agents print when the device cannot be reached or logged into (EC_LOGIN_DENIED,
 * EC_CONNECTION_LOST, EC_TIMED_OUT; requests/urllib3 for the Redfish agents; ipmitool; net-snmp).
 */
const UNREACHABLE =
  /Unable to connect\/login to fencing device|Connection lost|Connection timed out|Connection refused|Failed to establish a new connection|No route to host|Network is unreachable|Name or service not known|Temporary failure in name resolution|Could not resolve host|Max retries exceeded|Unable to establish IPMI|Timeout: No Response from/i;

/** Whether an agent's output says the device could not be reached or logged into. */
export function saysUnreachable(output: string): boolean {
  return UNREACHABLE.test(output);
}

/** Options that are secrets (fencing.py's names, `-` and `_` alike): only from a file, never inline. */
const SECRET_NAMES = new Set([
  'password',
  'passwd',
  'password_script',
  'passwd_script',
  'snmp_priv_passwd',
  'snmp_priv_passwd_script',
  'community',
]);
const normalName = (name: string) => name.toLowerCase().replaceAll('-', '_');

const argName = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'an option name (letters, digits, - and _)');
const absolutePath = z.string().refine(isAbsolute, 'an absolute path');
/** One line of the protocol: no line break may end it early and start an option of its own. */
const oneLine = z.string().regex(/^[^\r\n\0]*$/, 'a single line');

const options = z
  .strictObject({
    /** The agent binary, e.g. /usr/sbin/fence_ipmilan. */
    agent: absolutePath,
    /** The agent's options, sent as name=value lines (ip, username, lanplus, plug, ipport, ssl_insecure…). */
    args: z.record(argName, z.union([oneLine, z.number(), z.boolean()])).default({}),
    /** A file holding the device's password (one line), sent as `password=` on stdin. */
    passwordFile: absolutePath.optional(),
    /** Other secret options, each from a file (e.g. community, snmp_priv_passwd). */
    secretFiles: z.record(argName, absolutePath).default({}),
    /** How long one call of the agent may take (Pacemaker's stonith-timeout: 60 s). */
    timeoutMs: z.number().int().positive().default(60_000),
    /** Between SIGTERM and SIGKILL of the agent's process group. */
    killGraceMs: z.number().int().min(0).default(2_000),
    /** How long after off its status may take to answer off (default: the fence's, 60 s). */
    powerTimeoutMs: z.number().int().positive().optional(),
    /** How often to ask its status meanwhile (default: the fence's, 1 s). */
    pollMs: z.number().int().positive().optional(),
    /**
     * Exit 2 of status counts as off only when the agent also prints "Status: OFF", as every agent
     * built on fencing.py does (a shell or an interpreter exits 2 on its own errors too).
     */
    strictStatus: z.boolean().default(true),
    /** Of each of stdout and stderr, kept at most this many bytes. */
    maxOutputBytes: z.number().int().min(1024).default(65_536),
  })
  .superRefine((o, ctx) => {
    for (const name of Object.keys(o.args)) {
      const n = normalName(name);
      if (n === 'action') ctx.addIssue({ code: 'custom', path: ['args', name], message: 'the action is set by xenha' });
      if (SECRET_NAMES.has(n)) {
        ctx.addIssue({
          code: 'custom',
          path: ['args', name],
          message: `"${name}" is a secret: give it in passwordFile or secretFiles, never inline`,
        });
      }
    }
    for (const name of Object.keys(o.secretFiles)) {
      const n = normalName(name);
      if (n === 'action') ctx.addIssue({ code: 'custom', path: ['secretFiles', name], message: 'the action is set by xenha' });
      if (Object.keys(o.args).some((a) => normalName(a) === n)) {
        ctx.addIssue({ code: 'custom', path: ['secretFiles', name], message: `"${name}" is given in args too` });
      }
      if ((n === 'password' || n === 'passwd') && o.passwordFile !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['secretFiles', name], message: 'the password is given in passwordFile already' });
      }
    }
  });

export type FenceAgentOptions = z.output<typeof options>;

/** How one run of an agent ended. */
export interface AgentRun {
  /** Its exit code; null when it did not exit by itself (killed, or never started). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Killed because it outlived timeoutMs. */
  timedOut: boolean;
  /** Killed because the signal fired. */
  aborted: boolean;
  /** It could not be started (spawn's error), or its input could not be written. */
  error?: string;
  /** Its process id (and process group id), when it started. */
  pid?: number;
  durationMs: number;
}

export interface RunAgentOptions {
  timeoutMs: number;
  killGraceMs: number;
  maxOutputBytes: number;
  signal: AbortSignal;
  env?: Record<string, string>;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/**
 * Runs an agent with `input` on its stdin and nothing on argv, in its own process group, with no shell;
 * never rejects. When it outlives timeoutMs or the signal fires, its group gets SIGTERM, then SIGKILL
 * after killGraceMs unless everything holding its output has gone.
 */
export function runAgent(agent: string, input: string, o: RunAgentOptions): Promise<AgentRun> {
  const started = performance.now();
  return new Promise((resolve) => {
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[], bytes: { stdout: 0, stderr: 0 } };
    let timedOut = false;
    let aborted = false;
    let error: string | undefined;
    let exitCode: number | null = null;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];

    const child = spawn(agent, [], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      shell: false,
      cwd: '/',
      env: o.env ?? { PATH: process.env.PATH ?? DEFAULT_PATH, LANG: 'C', LC_ALL: 'C' },
    });
    const pid = child.pid;

    const finish = () => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      o.signal.removeEventListener('abort', onAbort);
      resolve({
        code: timedOut || aborted ? null : exitCode,
        stdout: Buffer.concat(out.stdout).toString('utf8'),
        stderr: Buffer.concat(out.stderr).toString('utf8'),
        timedOut,
        aborted,
        ...(error === undefined ? {} : { error }),
        ...(pid === undefined ? {} : { pid }),
        durationMs: performance.now() - started,
      });
    };
    const stop = () => {
      if (pid === undefined) return;
      killGroup(pid, 'SIGTERM');
      timers.push(
        setTimeout(() => {
          killGroup(pid, 'SIGKILL');
          // Whatever still holds the pipes was in the group: it is gone now, or never will be.
          timers.push(setTimeout(finish, 1_000));
        }, o.killGraceMs),
      );
    };
    const onAbort = () => {
      if (settled || timedOut || aborted) return;
      aborted = true;
      stop();
    };

    const keep = (stream: 'stdout' | 'stderr') => (d: Buffer) => {
      const room = o.maxOutputBytes - out.bytes[stream];
      if (room <= 0) return;
      const part = d.length > room ? d.subarray(0, room) : d;
      out[stream].push(part);
      out.bytes[stream] += part.length;
    };
    child.stdout.on('data', keep('stdout'));
    child.stderr.on('data', keep('stderr'));
    child.on('error', (e) => {
      error ??= `cannot run ${agent}: ${e.message}`;
      if (pid === undefined) finish();
    });
    child.on('exit', (code) => {
      exitCode = code;
      // An agent that exits leaving a child holding its output: the group is killed shortly after.
      if (!timedOut && !aborted && pid !== undefined) {
        timers.push(
          setTimeout(() => {
            killGroup(pid, 'SIGKILL');
            timers.push(setTimeout(finish, 1_000));
          }, 1_000),
        );
      }
    });
    child.on('close', finish);
    child.stdin.on('error', (e: NodeJS.ErrnoException) => {
      // EPIPE: it exited without reading all of its input; its exit code says why.
      if (e.code !== 'EPIPE') error ??= `cannot write the agent's input: ${e.message}`;
    });

    if (pid === undefined) return; // 'error' follows
    timers.push(
      setTimeout(() => {
        if (settled || aborted) return;
        timedOut = true;
        stop();
      }, o.timeoutMs),
    );
    if (o.signal.aborted) onAbort();
    else o.signal.addEventListener('abort', onAbort, { once: true });
    child.stdin.end(input);
  });
}

/** Replaces every secret in a text. */
function redact(text: string, secrets: readonly string[]): string {
  let t = text;
  for (const s of secrets) if (s.length > 0) t = t.replaceAll(s, '[redacted]');
  return t;
}

/**
 * The gist of an agent's output, one line: fencing.py logs each error twice (to the root logger and to
 * stderr with a timestamp) and adds "Please use '-h' for usage"; both are dropped. Secrets redacted.
 */
export function summarize(stdout: string, stderr: string, secrets: readonly string[] = [], max = 400): string {
  const lines: string[] = [];
  for (const raw of redact(`${stderr}\n${stdout}`, secrets).split('\n')) {
    const line = raw
      .trim()
      .replace(/^\d{4}-\d\d-\d\d [\d:,.]+ /, '')
      .replace(/^(ERROR|WARNING|INFO|DEBUG):root:/, '$1: ');
    if (line === '' || /Please use '-h' for usage|from pipes import|DeprecationWarning/.test(line)) continue;
    if (!lines.includes(line)) lines.push(line);
  }
  const text = lines.join(' | ');
  return text.length > max ? `…${text.slice(text.length - max + 1)}` : text;
}

async function readSecret(path: string): Promise<string> {
  const value = (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
  if (value === '') throw new Error(`secret file ${path} is empty`);
  if (/[\r\n\0]/.test(value)) throw new Error(`secret file ${path} holds more than one line`);
  return value;
}

const argValue = (v: string | number | boolean) => (typeof v === 'boolean' ? (v ? '1' : '0') : String(v));

type Action = 'status' | 'off' | 'on';

export const fenceAgent = defineFencePlugin({
  name: 'fence-agent',
  description: 'a ClusterLabs fence agent (fence_ipmilan, fence_redfish, fence_idrac, fence_ilo, fence_apc_snmp…) over its stdin protocol',
  options,
  create(o, target, deps) {
    const agentName = basename(o.agent);
    const where = [o.args.ip ?? o.args.ipaddr, o.args.plug ?? o.args.port].filter((v) => v !== undefined).map(argValue);
    const label = [agentName, ...where].join(' ');
    const log = deps.log.child({
      pool: target.pool,
      host: target.hostUuid,
      hostName: target.hostName,
      plugin: 'fence-agent',
      agent: agentName,
    });

    /** Runs one action: the agent's run, and its output summarized without secrets. */
    const call = async (action: Action, signal: AbortSignal) => {
      const secrets: string[] = [];
      const lines = [`action=${action}`, ...Object.entries(o.args).map(([k, v]) => `${k}=${argValue(v)}`)];
      try {
        const files: [string, string][] = [
          ...(o.passwordFile === undefined ? [] : [['password', o.passwordFile] as [string, string]]),
          ...Object.entries(o.secretFiles),
        ];
        for (const [name, path] of files) {
          const value = await readSecret(path);
          secrets.push(value);
          lines.push(`${name}=${value}`);
        }
      } catch (e) {
        const detail = redact(e instanceof Error ? e.message : String(e), secrets);
        log.error({ action, detail }, 'fence agent not run: a secret could not be read');
        return { run: undefined, detail };
      }
      const run = await runAgent(o.agent, `${lines.join('\n')}\n`, {
        timeoutMs: o.timeoutMs,
        killGraceMs: o.killGraceMs,
        maxOutputBytes: o.maxOutputBytes,
        signal,
      });
      const said = summarize(run.stdout, run.stderr, secrets);
      const how = run.timedOut
        ? `timed out after ${o.timeoutMs} ms, process group killed`
        : run.aborted
          ? 'aborted, process group killed'
          : run.error !== undefined && run.code === null
            ? redact(run.error, secrets)
            : `exit ${run.code ?? 'by signal'}`;
      const detail = `${agentName} ${action}: ${how}${said === '' ? '' : `: ${said}`}`;
      const unreachable = saysUnreachable(said);
      const fields = { action, exitCode: run.code, durationMs: Math.round(run.durationMs), timedOut: run.timedOut, aborted: run.aborted };
      if (run.code === 0 || (action === 'status' && run.code === 2)) log.debug({ ...fields, detail }, 'fence agent ran');
      else log.warn({ ...fields, unreachable, detail }, 'fence agent failed');
      return { run, detail, unreachable };
    };

    const act = async (action: 'off' | 'on', signal: AbortSignal): Promise<ActionAnswer> => {
      const { run, detail, unreachable } = await call(action, signal);
      if (run === undefined) return { ok: false, detail };
      if (run.code === 0) return { ok: true, detail };
      return { ok: false, detail, ...(unreachable === true ? { unreachable } : {}), ...(run.timedOut ? { timedOut: true } : {}) };
    };

    return {
      label,
      ...(o.powerTimeoutMs === undefined ? {} : { powerTimeoutMs: o.powerTimeoutMs }),
      ...(o.pollMs === undefined ? {} : { pollMs: o.pollMs }),
      async status(signal): Promise<StatusAnswer> {
        const { run, detail, unreachable } = await call('status', signal);
        if (run === undefined) return { state: 'unknown', detail };
        const says = /Status:\s*(ON|OFF)\b/i.exec(run.stdout)?.[1]?.toUpperCase();
        if (run.code === 0) {
          if (!o.strictStatus || says !== 'OFF') return { state: 'on', detail };
          return { state: 'unknown', detail: `${detail} (exit 0 but "Status: OFF": cannot tell)` };
        }
        if (run.code === 2) {
          if (!o.strictStatus || says === 'OFF') return { state: 'off', detail };
          return { state: 'unknown', detail: `${detail} (exit 2 without "Status: OFF": not taken as off)` };
        }
        return { state: 'unknown', detail, ...(unreachable === true ? { unreachable } : {}), ...(run.timedOut ? { timedOut: true } : {}) };
      },
      off: (signal) => act('off', signal),
      on: (signal) => act('on', signal),
    };
  },
});
