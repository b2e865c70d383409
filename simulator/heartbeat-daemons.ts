/**
 * xenha's own host heartbeat in the simulated pool: the real `heartbeat/xenha-heartbeat.py` runs as one
 * process per simulated host, on that host's loopback management addresses, writing its slot in one
 * shared heartbeat file, with its two paths cut by the pool's faults as a real host's would be:
 *
 * - network: the simulator is the switch. Each daemon sends its UDP heartbeats to its peers through a
 *   relay socket per (peer, home), which forwards a packet only while the sender's and the receiver's
 *   management interfaces on that home are up (`pool.networkUp`: faults, flaps, crashes);
 * - storage: each daemon reaches the shared file through its own symlink (its "path to the SR"); while
 *   every storage leg of the host is down the symlink points nowhere, so its writes fail as on a lost SR,
 *   while its UDP heartbeats go on;
 * - a crash or a power-off kills the daemon at once (SIGKILL: a dead host says nothing more); when the
 *   host is up again (healed, powered on, booted) a new daemon starts, with a new boot id.
 *
 * The daemons run on the wall clock (their interval is real time), whatever clock the pool runs on.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { LAYOUT_BYTES } from '../core/statefile/layout.ts';
import { NETWORK_HOMES } from './build.ts';
import type { HostRuntime, SimulatedPool } from './pool.ts';

/**
 * The daemon's source, run as is: the file an operator installs in dom0. From simulator/ (sources, tsx)
 * or dist/simulator/ (compiled), it is the repository's heartbeat/xenha-heartbeat.py.
 */
export const HEARTBEAT_DAEMON =
  ['../heartbeat', '../../heartbeat'].map((d) => join(import.meta.dirname, d, 'xenha-heartbeat.py')).find((p) => existsSync(p)) ??
  join(import.meta.dirname, '../heartbeat/xenha-heartbeat.py');

export interface HeartbeatDaemonOptions {
  /** The Python 3 interpreter (default: XENHA_HEARTBEAT_PYTHON, else `python3`). */
  python?: string;
  /** The daemons' write and send interval (default 2000 ms, the documented default). */
  intervalMs?: number;
  /** Their peer window (default 4 intervals). */
  peerWindowMs?: number;
  /** UDP port on every home; 0 (default) picks a free one. */
  port?: number;
}

export interface HeartbeatDaemonsInfo {
  /** The shared heartbeat file, as the monitor reads it. */
  file: string;
  secretFile: string;
  port: number;
  intervalMs: number;
  peerWindowMs: number;
}

export interface HeartbeatDaemonState {
  pid: number | null;
  running: boolean;
  /** Starts so far (1 after the first start; each reboot adds one). */
  starts: number;
  /** Its path to the heartbeat file is up (some storage leg up). */
  storage: boolean;
  /** The daemon refused its configuration (exit 2): not restarted. */
  configError: boolean;
  /** Last lines it logged. */
  lastLines: string[];
}

interface Daemon {
  proc: ChildProcess | null;
  exited: Promise<void> | null;
  starts: number;
  storage: boolean | null;
  configError: boolean;
  /** Do not restart before this wall-clock time (an unexpected exit waits one interval, as systemd's RestartSec). */
  restartAfter: number;
  lines: string[];
}

const KEEP_LINES = 20;

/** The relay (switch port) address of a host's home: the home's address with 2 added to its third octet. */
function relayAddress(address: string): string {
  const p = address.split('.').map(Number);
  if (p.length !== 4 || p[2]! + 2 > 255) throw new Error(`no room for the heartbeat relay beside ${address}`);
  return `${p[0]}.${p[1]}.${p[2]! + 2}.${p[3]}`;
}

function bindUdp(address: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: 'udp4' });
    s.once('error', reject);
    s.bind(port, address, () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

function closeUdp(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

export class HeartbeatDaemons {
  readonly dir: string;
  readonly file: string;
  readonly secretFile: string;
  readonly intervalMs: number;
  readonly peerWindowMs: number;
  readonly python: string;
  port = 0;
  /** Packets the switch forwarded and dropped (a path down), for tests and the control API. */
  readonly packets = { forwarded: 0, cut: 0, unknown: 0 };
  private readonly daemons = new Map<HostRuntime, Daemon>();
  private relays: Socket[] = [];
  /** "address:port" of each daemon's home socket → its host and home. */
  private readonly senders = new Map<string, { host: HostRuntime; home: number }>();
  private stopped = false;

  constructor(
    private readonly pool: SimulatedPool,
    stateDir: string,
    private readonly opts: HeartbeatDaemonOptions,
    private readonly log: Logger,
  ) {
    this.dir = join(stateDir, 'heartbeat');
    this.file = join(this.dir, 'xenha-heartbeat.img');
    this.secretFile = join(this.dir, 'heartbeat.secret');
    this.intervalMs = opts.intervalMs ?? 2000;
    this.peerWindowMs = opts.peerWindowMs ?? 4 * this.intervalMs;
    this.python = opts.python ?? process.env.XENHA_HEARTBEAT_PYTHON ?? 'python3';
    if (!(this.intervalMs >= 10 && this.peerWindowMs > this.intervalMs))
      throw new Error(`heartbeat daemons: interval ${this.intervalMs} ms must be ≥ 10 and below the peer window ${this.peerWindowMs} ms`);
  }

  info(): HeartbeatDaemonsInfo {
    return { file: this.file, secretFile: this.secretFile, port: this.port, intervalMs: this.intervalMs, peerWindowMs: this.peerWindowMs };
  }

  private linkOf(h: HostRuntime): string {
    return join(this.dir, `${h.built.name}.img`);
  }

  private configOf(h: HostRuntime): string {
    return join(this.dir, `${h.built.name}.json`);
  }

  async start(): Promise<void> {
    if (!existsSync(HEARTBEAT_DAEMON)) throw new Error(`the xenha-heartbeat daemon is missing: ${HEARTBEAT_DAEMON}`);
    const probe = spawnSync(this.python, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    if (probe.error || probe.status !== 0)
      throw new Error(
        `the simulated pool's xenha-heartbeat daemons need Python 3 (${this.python}: ${probe.error?.message ?? probe.stderr.trim()}); ` +
          'on Debian: apt install python3, or set XENHA_HEARTBEAT_PYTHON',
      );
    mkdirSync(this.dir, { recursive: true });
    // The file an operator creates once with dd (the daemon never creates it); kept across restarts.
    if (!existsSync(this.file) || statSync(this.file).size < LAYOUT_BYTES) writeFileSync(this.file, Buffer.alloc(LAYOUT_BYTES));
    if (!existsSync(this.secretFile)) writeFileSync(this.secretFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    chmodSync(this.secretFile, 0o600);
    await this.openSwitch();
    for (const h of this.pool.hosts) {
      this.writeConfig(h);
      this.daemons.set(h, { proc: null, exited: null, starts: 0, storage: null, configError: false, restartAfter: 0, lines: [] });
    }
    this.reconcile();
  }

  /** Binds every relay on one free port, checking the daemons' own addresses are free on it too. */
  private async openSwitch(): Promise<void> {
    const wanted = this.opts.port ?? 0;
    for (let attempt = 0; ; attempt++) {
      const opened: Socket[] = [];
      try {
        let port = wanted;
        for (const h of this.pool.hosts)
          for (let k = 0; k < NETWORK_HOMES; k++) {
            const s = await bindUdp(relayAddress(h.built.addresses[k]!), port);
            port = s.address().port;
            opened.push(s);
            this.attachRelay(s, h, k);
          }
        // The daemons bind their homes on the same port: make sure nothing holds it there now.
        for (const h of this.pool.hosts) for (let k = 0; k < NETWORK_HOMES; k++) await closeUdp(await bindUdp(h.built.addresses[k]!, port));
        this.relays = opened;
        this.port = port;
        for (const h of this.pool.hosts)
          for (let k = 0; k < NETWORK_HOMES; k++) this.senders.set(`${h.built.addresses[k]}:${port}`, { host: h, home: k });
        return;
      } catch (e) {
        await Promise.all(opened.map(closeUdp));
        if (wanted !== 0 || attempt >= 5 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
    }
  }

  /** The switch port in front of host `to`'s home `home`: forwards while both ends of the link are up. */
  private attachRelay(s: Socket, to: HostRuntime, home: number): void {
    s.on('message', (msg, rinfo) => {
      const from = this.senders.get(`${rinfo.address}:${rinfo.port}`);
      if (!from || from.home !== home) {
        this.packets.unknown++;
        return;
      }
      const now = this.pool.now();
      if (!this.pool.networkUp(from.host, home, now) || !this.pool.networkUp(to, home, now)) {
        this.packets.cut++;
        return;
      }
      this.packets.forwarded++;
      s.send(msg, this.port, to.built.addresses[home]);
    });
    s.on('error', (e) => this.log.warn({ err: e, host: to.built.name, home }, 'heartbeat relay socket error'));
  }

  /** Its own homes as they are; each peer's homes are the relays in front of them. */
  private writeConfig(h: HostRuntime): void {
    const config = {
      pool: this.pool.built.poolUuid,
      host: h.built.uuid,
      hosts: this.pool.hosts.map((x) => ({
        uuid: x.built.uuid,
        homes: x === h ? [...x.built.addresses] : x.built.addresses.map(relayAddress),
      })),
      file: this.linkOf(h),
      port: this.port,
      intervalMs: this.intervalMs,
      peerWindowMs: this.peerWindowMs,
      secretFile: this.secretFile,
    };
    writeFileSync(this.configOf(h), `${JSON.stringify(config, null, 2)}\n`);
  }

  /** Points the host's path to the file at the file, or nowhere (atomically: a rename over the old link). */
  private setStorage(h: HostRuntime, d: Daemon, up: boolean): void {
    if (d.storage === up) return;
    const link = this.linkOf(h);
    const tmp = `${link}.new`;
    rmSync(tmp, { force: true });
    symlinkSync(up ? this.file : join(this.dir, `${h.built.name}.unreachable`), tmp);
    renameSync(tmp, link);
    d.storage = up;
  }

  /** Matches the daemons to the pool: run on every up host, killed on a down one; storage links per legs. */
  reconcile(now = this.pool.now()): void {
    if (this.stopped) return;
    for (const [h, d] of this.daemons) {
      const up = this.pool.isUp(h, now);
      if (up) this.setStorage(h, d, this.pool.anyStorage(h, now));
      const running = d.proc !== null && d.proc.exitCode === null && d.proc.signalCode === null;
      if (!up && running) {
        d.proc!.kill('SIGKILL'); // a crash or power-off: no goodbye
      } else if (up && d.proc === null && !d.configError && Date.now() >= d.restartAfter) {
        this.spawnDaemon(h, d);
      }
    }
  }

  private spawnDaemon(h: HostRuntime, d: Daemon): void {
    const proc = spawn(this.python, [HEARTBEAT_DAEMON, '--config', this.configOf(h), '--exit-on-stdin-eof'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    d.proc = proc;
    d.starts++;
    const name = h.built.name;
    createInterface({ input: proc.stderr }).on('line', (line) => {
      d.lines.push(line);
      if (d.lines.length > KEEP_LINES) d.lines.shift();
      this.log.debug({ host: name }, line);
    });
    proc.stdin.on('error', () => {}); // EPIPE when it has already exited
    d.exited = new Promise((resolve) => {
      proc.once('error', (e) => {
        this.log.error({ err: e, host: name }, `cannot run xenha-heartbeat (${this.python})`);
        d.proc = null;
        d.restartAfter = Date.now() + this.intervalMs;
        resolve();
      });
      proc.once('exit', (code, signal) => {
        d.proc = null;
        if (code === 2) {
          d.configError = true;
          this.log.error({ host: name, lines: d.lines.slice(-3) }, 'xenha-heartbeat refused its configuration (exit 2): not restarted');
        } else if (!this.stopped && signal !== 'SIGKILL') {
          this.log.warn({ host: name, code, signal, lines: d.lines.slice(-3) }, 'xenha-heartbeat exited; restarting after one interval');
          d.restartAfter = Date.now() + this.intervalMs;
        }
        resolve();
      });
    });
  }

  state(): Record<string, HeartbeatDaemonState> {
    const out: Record<string, HeartbeatDaemonState> = {};
    for (const [h, d] of this.daemons)
      out[h.built.name] = {
        pid: d.proc?.pid ?? null,
        running: d.proc !== null && d.proc.exitCode === null && d.proc.signalCode === null,
        starts: d.starts,
        storage: d.storage === true,
        configError: d.configError,
        lastLines: [...d.lines],
      };
    return out;
  }

  /** Stops every daemon (SIGTERM, SIGKILL after 2 s) and closes the switch. */
  async stop(): Promise<void> {
    this.stopped = true;
    const waits: Promise<void>[] = [];
    for (const d of this.daemons.values()) {
      const p = d.proc;
      if (!p || !d.exited) continue;
      p.kill('SIGTERM');
      const kill = setTimeout(() => p.kill('SIGKILL'), 2000);
      waits.push(d.exited.then(() => clearTimeout(kill)));
    }
    await Promise.all(waits);
    await Promise.all(this.relays.map(closeUdp));
    this.relays = [];
  }
}
