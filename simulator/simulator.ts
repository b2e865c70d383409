/**
 * A running simulator: the pool, one XAPI listener per host and network home on its loopback address
 * (opened and closed as paths come and go), the heartbeat loop, the power-file watch and the control
 * API. `startSimulator` runs it in-process (tests); `xenha simulate` runs it as its own process.
 */
import { createServer, type Server } from 'node:http';
import { watch, type FSWatcher } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { SimulatedPool, defaultTiming, type HostRuntime, type SimEvent, type SimTiming } from './pool.ts';
import { NETWORK_HOMES, STORAGE_HOMES } from './build.ts';
import type { PoolSpec } from './pool-spec.ts';
import { xapiRequestHandler, type XapiHttpShared } from './xapi/http.ts';
import { SessionTable, XAPI_SESSION_POLICY } from './xapi/sessions.ts';
import { controlApp } from './control-api.ts';
import { HeartbeatDaemons, type HeartbeatDaemonOptions, type HeartbeatDaemonsInfo } from './heartbeat-daemons.ts';

export interface SimulatorOptions {
  spec: PoolSpec;
  /** XAPI port shared by every host (each on its own addresses); 0 picks a free one. */
  port?: number;
  /** First host's first address; see hostAddresses. */
  addressBase?: string;
  /** Control API port on 127.0.0.1; 0 picks a free one. */
  controlPort?: number;
  password?: string;
  /** Where the statefile and power files live; a new temporary directory when absent. */
  stateDir?: string;
  timing?: Partial<SimTiming>;
  /** Run the heartbeat loop on a timer (default) or leave ticks to the caller. */
  autoTick?: boolean;
  now?: () => number;
  log?: Logger;
  /**
   * A session whose last_active is this old is destroyed at the next session GC pass (xapi's
   * inactive_session_timeout: 24 h). Sessions live on the pool's clock (`now`).
   */
  sessionIdleTimeoutMs?: number;
  /** Sessions kept per originator (root logins naming one) at each GC pass; the least recently active go (xapi: 500). */
  maxSessionsPerOriginator?: number;
  /** The same cap for root logins that name no originator (xapi's max_sessions: 400). */
  maxSessionsWithoutOriginator?: number;
  /** Time between session GC passes, run at simulator ticks (xapi's db_gc: 30 s). */
  sessionGcIntervalMs?: number;
  /** A call refreshes its session's last_active only when it is older than this (xapi: 600 s). */
  sessionRefreshThresholdMs?: number;
  /**
   * Run xenha's own host heartbeat (the real heartbeat/xenha-heartbeat.py, one process per host, its
   * paths cut by the faults): the storage heartbeat of a pool without HA. Off when absent.
   */
  heartbeat?: HeartbeatDaemonOptions;
}

export interface SimulatorInfo {
  pool: { name: string; uuid: string; ref: string };
  port: number;
  masterUrl: string;
  controlUrl: string;
  stateDir: string;
  statefile: string;
  user: string;
  hosts: { name: string; uuid: string; ref: string; addresses: string[]; urls: string[]; powerFile: string; master: boolean }[];
  /** xenha-heartbeat's file and settings, when the simulator runs the daemons. */
  heartbeat?: HeartbeatDaemonsInfo;
}

type Listener = { server: Server; open: boolean };

export class Simulator {
  readonly pool: SimulatedPool;
  readonly shared: XapiHttpShared;
  port = 0;
  controlPort = 0;
  private readonly listeners = new Map<string, Listener>();
  private control: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private reconciling: Promise<void> = Promise.resolve();
  private stopped = false;
  readonly log: Logger;
  /** The hosts' xenha-heartbeat daemons, when asked for. */
  readonly heartbeat: HeartbeatDaemons | undefined;

  constructor(private readonly opts: SimulatorOptions) {
    this.log = opts.log ?? pino({ level: 'silent' });
    const timing = { ...defaultTiming(opts.spec.haTimeout, opts.spec.haEnabled), ...opts.timing };
    const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'xenha-sim-'));
    this.pool = new SimulatedPool({ spec: opts.spec, stateDir, addressBase: opts.addressBase ?? '127.0.0.1', timing, now: opts.now });
    const sessions = new SessionTable(this.pool.now, {
      idleTimeoutMs: opts.sessionIdleTimeoutMs ?? XAPI_SESSION_POLICY.idleTimeoutMs,
      maxPerOriginator: opts.maxSessionsPerOriginator ?? XAPI_SESSION_POLICY.maxPerOriginator,
      maxWithoutOriginator: opts.maxSessionsWithoutOriginator ?? XAPI_SESSION_POLICY.maxWithoutOriginator,
      gcIntervalMs: opts.sessionGcIntervalMs ?? XAPI_SESSION_POLICY.gcIntervalMs,
      lastActiveRefreshMs: opts.sessionRefreshThresholdMs ?? XAPI_SESSION_POLICY.lastActiveRefreshMs,
    });
    this.shared = { pool: this.pool, password: opts.password ?? 'xenha', sessions, log: this.log, callCounts: new Map() };
    // xapi's DB GC thread, on the pool's clock: each tick runs a pass when one is due.
    this.pool.on('tick', (now: number) => {
      const gone = sessions.maybeGc(now);
      if (gone.length > 0) this.log.debug({ sessions: gone.length }, 'session GC destroyed idle or surplus sessions');
    });
    this.pool.on('changed', () => void this.reconcile());
    if (opts.heartbeat) {
      const hb = new HeartbeatDaemons(this.pool, stateDir, opts.heartbeat, this.log);
      this.heartbeat = hb;
      this.pool.on('changed', () => hb.reconcile());
      this.pool.on('tick', (now: number) => hb.reconcile(now));
    }
    this.pool.on('event', (ev: SimEvent) => this.log.info({ event: ev }, `simulator ${ev.kind}`));
  }

  private key(h: HostRuntime, home: number): string {
    return `${h.slot}/${home}`;
  }

  private listen(server: Server, address: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      server.once('error', onError);
      server.listen(port, address, () => {
        server.off('error', onError);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  private newServer(h: HostRuntime): Server {
    const handle = xapiRequestHandler(this.shared, h);
    const server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
      handle(req, res).catch((e: unknown) => {
        this.log.error({ err: e, host: h.built.name }, 'XAPI request handler failed');
        res.destroy();
      });
    });
    server.on('clientError', (_e, socket) => socket.destroy());
    return server;
  }

  async start(): Promise<SimulatorInfo> {
    const wanted = this.opts.port ?? 0;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.openAll(wanted);
        break;
      } catch (e) {
        await this.closeAll();
        if (wanted !== 0 || attempt >= 5 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
    }
    const app = controlApp(this);
    this.control = createServer(app);
    this.controlPort = await this.listen(this.control, '127.0.0.1', this.opts.controlPort ?? 0);
    this.watcher = watch(this.pool.powerDir, () => this.pool.pollPowerFiles());
    this.watcher.on('error', (e) => this.log.warn({ err: e }, 'power directory watch failed; polling each tick'));
    await this.heartbeat?.start();
    this.pool.tick();
    if (this.opts.autoTick !== false) {
      this.timer = setInterval(() => this.tick(), this.pool.timing.tickMs);
    }
    await this.settle();
    return this.info();
  }

  private tick(): void {
    try {
      this.pool.tick();
    } catch (e) {
      this.log.error({ err: e }, 'simulator tick failed');
    }
  }

  /** Opens every listener at once (the first one picks the port when `port` is 0). */
  private async openAll(port: number): Promise<void> {
    let p = port;
    for (const h of this.pool.hosts) {
      for (let home = 0; home < NETWORK_HOMES; home++) {
        const server = this.newServer(h);
        p = await this.listen(server, h.built.addresses[home]!, p);
        this.listeners.set(this.key(h, home), { server, open: true });
      }
    }
    this.port = p;
  }

  private async closeServer(server: Server): Promise<void> {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async closeAll(): Promise<void> {
    const all = [...this.listeners.values()].filter((l) => l.open);
    this.listeners.clear();
    await Promise.all(all.map((l) => this.closeServer(l.server)));
  }

  /** Opens and closes listeners to match which network homes are reachable now. */
  reconcile(): Promise<void> {
    this.reconciling = this.reconciling.then(async () => {
      if (this.stopped || this.port === 0) return;
      for (const h of this.pool.hosts) {
        for (let home = 0; home < NETWORK_HOMES; home++) {
          const k = this.key(h, home);
          const want = this.pool.reachable(h, home);
          const cur = this.listeners.get(k);
          if (cur?.open === want) continue;
          if (!want && cur) {
            cur.open = false;
            await this.closeServer(cur.server);
          } else if (want) {
            const server = this.newServer(h);
            try {
              await this.listen(server, h.built.addresses[home]!, this.port);
              this.listeners.set(k, { server, open: true });
            } catch (e) {
              this.log.error({ err: e, host: h.built.name, home }, 'cannot reopen XAPI listener; retrying next tick');
            }
          }
        }
      }
    });
    return this.reconciling;
  }

  /** Resolves when the listeners match the pool's state (after a fault or a power change). */
  settle(): Promise<void> {
    return this.reconcile();
  }

  /** Advances by hand (autoTick false) and settles the listeners. */
  async step(now?: number): Promise<void> {
    this.pool.tick(now);
    await this.settle();
  }

  info(): SimulatorInfo {
    const p = this.pool;
    const poolRec = p.built.db.peek('pool', p.built.poolRef);
    return {
      pool: { name: poolRec.name_label as string, uuid: p.built.poolUuid, ref: p.built.poolRef },
      port: this.port,
      masterUrl: `http://${p.master.built.addresses[0]}:${this.port}`,
      controlUrl: `http://127.0.0.1:${this.controlPort}`,
      stateDir: p.stateDir,
      statefile: p.statefilePath,
      user: 'root',
      hosts: p.hosts.map((h) => ({
        name: h.built.name,
        uuid: h.built.uuid,
        ref: h.built.ref,
        addresses: [...h.built.addresses],
        urls: h.built.addresses.map((a) => `http://${a}:${this.port}`),
        powerFile: p.powerFile(h),
        master: h === p.master,
      })),
      ...(this.heartbeat && { heartbeat: this.heartbeat.info() }),
    };
  }

  /** Runtime state per host, for the control API and tests. */
  state() {
    const p = this.pool;
    const now = p.now();
    const db = p.built.db;
    const daemons = this.heartbeat?.state();
    return {
      ...this.info(),
      observerIsolated: p.observerIsolated,
      poolLatencyMs: p.poolLatencyMs,
      runtime: p.hosts.map((h) => ({
        name: h.built.name,
        slot: h.slot,
        power: h.power,
        crashed: h.crashed,
        up: p.isUp(h, now),
        live: db.peek('host_metrics', h.built.metricsRef).live,
        network: Array.from({ length: NETWORK_HOMES }, (_, i) => p.networkUp(h, i, now)),
        storage: Array.from({ length: STORAGE_HOMES }, (_, i) => p.storageUp(h, i, now)),
        listening: Array.from({ length: NETWORK_HOMES }, (_, i) => this.listeners.get(this.key(h, i))?.open === true),
        flaps: h.flaps,
        latencyMs: h.latencyMs,
        statefileSequence: h.sequence,
        heartbeatDaemon: daemons?.[h.built.name] ?? null,
      })),
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.watcher?.close();
    await this.heartbeat?.stop();
    await this.reconciling;
    await this.closeAll();
    if (this.control) await this.closeServer(this.control);
    this.pool.close();
  }
}

export async function startSimulator(opts: SimulatorOptions): Promise<Simulator> {
  const sim = new Simulator(opts);
  try {
    await sim.start();
  } catch (e) {
    await sim.stop();
    throw e;
  }
  return sim;
}
