/**
 * A server binary (Prometheus, Alertmanager) run by the loop: its output to a log file, ready when its
 * `/-/ready` answers 200 (within a deadline), stopped with SIGTERM then SIGKILL (bounded), never left
 * behind by this process:
 *
 * - it runs in its own process group (a terminal's Ctrl-C reaches this process only, which stops the
 *   loop in order: Prometheus before what it scrapes);
 * - started through util-linux's `setpriv --pdeathsig TERM` when present (Debian's util-linux is
 *   essential), so that the kernel stops it when this process dies, even by SIGKILL;
 * - and SIGKILLed at this process's `exit`, for whatever is still running then.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const SETPRIV = '/usr/bin/setpriv';

/** A loopback port free now: bound on `host`:0 and closed again (Prometheus cannot listen on port 0). */
export function freeLoopbackPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => (port > 0 ? resolve(port) : reject(new Error('no port was given'))));
    });
  });
}

/** Whatever is still running when this process exits is killed outright. */
const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const c of live) {
        try {
          c.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** A start that failed; `addressInUse` when the binary said its port was taken (another port may do). */
export class ServerStartError extends Error {
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message);
    this.name = 'ServerStartError';
  }
}

export interface ServerProcessOptions {
  /** What it is, in messages ("prometheus"). */
  name: string;
  bin: string;
  args: string[];
  /** Its stdout and stderr, appended. */
  logFile: string;
  cwd: string;
  /** Answers 200 once the server is ready. */
  readyUrl: string;
  /** How long it may take to be ready. */
  timeoutMs: number;
}

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  running(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** The log's last `bytes` bytes, for an error message. */
export function logTail(file: string, bytes = 3000): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length > bytes ? `…${text.slice(-bytes)}` : text;
  } catch {
    return '';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startServerProcess(o: ServerProcessOptions): Promise<ServerProcess> {
  const fd = openSync(o.logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    const [cmd, args] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'TERM', '--', o.bin, ...o.args]] : [o.bin, o.args];
    child = spawn(cmd, args, { cwd: o.cwd, stdio: ['ignore', fd, fd], detached: true });
  } finally {
    closeSync(fd);
  }
  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    });
    child.once('error', (e) => {
      exitInfo = `error ${e.message}`;
      resolve();
    });
  });
  track(child);
  const running = () => exitInfo === undefined;
  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 10_000): Promise<void> =>
    (stopping ??= (async () => {
      if (!running()) return;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((r) => {
        timer = setTimeout(() => {
          if (running()) child.kill('SIGKILL');
          r();
        }, graceMs);
      });
      await Promise.race([exited, killed]);
      clearTimeout(timer);
      // After SIGKILL the exit comes at once; bounded all the same.
      await Promise.race([exited, sleep(5000)]);
    })());

  const fail = async (why: string): Promise<never> => {
    await stop(2000);
    const log = logTail(o.logFile);
    throw new ServerStartError(`${o.name} ${why}; its log (${o.logFile}):\n${log}`, /address already in use/i.test(log));
  };
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    if (!running()) return fail(`exited (${exitInfo}) before it was ready`);
    try {
      const res = await fetch(o.readyUrl, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) return fail(`was not ready (${o.readyUrl}) within ${o.timeoutMs} ms`);
    await sleep(100);
  }
  return { name: o.name, pid: child.pid!, logFile: o.logFile, running, stop };
}

/**
 * Starts on `port`, or, when `port` is 0, on a free port picked here: a port picked and closed may be
 * taken by someone else before the binary binds it, so that case is tried again (at most `attempts`).
 */
export async function startOnPort<T>(port: number, start: (port: number) => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const p = port !== 0 ? port : await freeLoopbackPort();
    try {
      return await start(p);
    } catch (e) {
      if (port !== 0 || attempt >= attempts || !(e instanceof ServerStartError && e.addressInUse)) throw e;
    }
  }
}
