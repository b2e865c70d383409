/**
 * The edges xenha's real code talks through, answered by the simulated pool in-process on the
 * campaign's clock: the probes' TCP connects and statefile reads, the exporter's and the service's
 * XAPI connection (the snapshot), the actions' JSON-RPC transport (the simulator's own XAPI methods,
 * with its errors and its slow-XAPI latency), and the hosts' fence devices. Everything behind these
 * edges is the code that runs in production: probes, classification, sampler, webhook intake, journal,
 * re-check, gates, planner, executor, fence levels.
 */
import { openSync, readSync, closeSync } from 'node:fs';
import type { Logger } from 'pino';
import { buildSnapshot, type PoolSnapshot } from '../core/model/snapshot.ts';
import { decodeStatefile, detectFlavour, LAYOUT_BYTES, LENGTH_GLOBAL, LENGTH_HOST_SPECIFIC } from '../core/statefile/layout.ts';
import type { PoolConfig } from '../exporter/config.ts';
import { connectionOptions } from '../exporter/sampler.ts';
import { PoolConnection, WATCHED_CLASSES } from '../io/xapi/connection.ts';
import { XapiCallError } from '../io/xapi/actions.ts';
import type { StatefileRead } from '../io/statefile-reader.ts';
import type { ActionAnswer, FenceDevice, StatusAnswer } from '../plugins/fence/contract.ts';
import type { ProbeIo } from '../plugins/probes/index.ts';
import type { HostRuntime, SimulatedPool } from '../simulator/pool.ts';
import { dispatch } from '../simulator/xapi/methods.ts';
import { XapiFailure } from '../simulator/xapi/errors.ts';
import type { SessionTable } from '../simulator/xapi/sessions.ts';
import type { VirtualClock } from './clock.ts';

export interface Home {
  h: HostRuntime;
  home: number;
}

export function addressBook(pool: SimulatedPool): Map<string, Home> {
  return new Map(pool.hosts.flatMap((h) => h.built.addresses.map((a, home) => [a, { h, home }] as const)));
}

/** The probes' I/O: a connect succeeds when the monitor reaches that home; a statefile read reads the file the pool writes. */
export function simProbeIo(pool: SimulatedPool, book: Map<string, Home>): ProbeIo {
  // The global section and the pool's slots: what the decoder reads of the layout.
  const bytes = Math.min(LAYOUT_BYTES, LENGTH_GLOBAL + pool.hosts.length * LENGTH_HOST_SPECIFIC);
  return {
    tcpConnect: (host, port) => {
      const t = book.get(host);
      const up = t !== undefined && pool.reachable(t.h, t.home);
      return Promise.resolve({
        up,
        seconds: up ? 0.0005 : 0,
        detail: up ? `connected to ${host}:${port}` : `ECONNREFUSED ${host}:${port}`,
      });
    },
    readStatefile: (path): Promise<StatefileRead> => {
      const copy = Buffer.allocUnsafe(bytes);
      const fd = openSync(path, 'r');
      try {
        readSync(fd, copy, 0, bytes, 0);
      } finally {
        closeSync(fd);
      }
      return Promise.resolve(
        detectFlavour(copy) === 'xenha'
          ? { flavour: 'xenha', decoded: decodeStatefile(copy, 'xenha'), attempts: 1 }
          : { flavour: 'xhad', decoded: decodeStatefile(copy, 'xhad'), attempts: 1 },
      );
    },
  };
}

/** The monitoring host reaches the live master's XAPI on some home (what the real connection needs). */
export function monitorReachesMaster(pool: SimulatedPool): boolean {
  const m = pool.master;
  return pool.masterAlive() && m.built.addresses.some((_, home) => pool.reachable(m, home));
}

/**
 * The XAPI connection as xenha's sampler reads it: the master's database while the monitor reaches the
 * master (with a slow XAPI, as of the latency ago: its events arrive late), the last snapshot otherwise
 * ('disconnected'). VM and VBD records are fetched every capacityInterval and on refreshVms, as the
 * real connection does.
 */
export class SimConnection extends PoolConnection {
  private cache: PoolSnapshot | null = null;
  private cacheGen = -1;
  private vms: { VM: Record<string, unknown>; VBD: Record<string, unknown> } | null = null;
  private nextVmsAt = -Infinity;
  private lastRefreshAt = -Infinity;

  constructor(
    private readonly pool: SimulatedPool,
    private readonly clock: VirtualClock,
    config: PoolConfig,
    log: Logger,
  ) {
    super(connectionOptions(config, '', log));
    this.vmRefreshMs = config.timing.capacityInterval;
  }

  private readonly vmRefreshMs: number;

  override start(): void {}

  override async stop(): Promise<void> {}

  override async checkOrFailover(): Promise<void> {}

  private readVms(): void {
    const db = this.pool.built.db;
    this.vms = { VM: structuredClone(Object.fromEntries(db.all('VM'))), VBD: structuredClone(Object.fromEntries(db.all('VBD'))) };
    this.vmsFetchedAt = this.clock.now();
    this.nextVmsAt = this.clock.now() + this.vmRefreshMs;
    this.cacheGen = -1;
  }

  override snapshot(): PoolSnapshot | null {
    if (!monitorReachesMaster(this.pool)) {
      this.status = 'disconnected';
      return this.cache;
    }
    this.status = 'connected';
    const now = this.clock.now();
    // A slow XAPI: what the monitor holds is as old as the latency.
    if (now - this.lastRefreshAt < this.pool.latencyFor(this.pool.master)) return this.cache;
    this.lastRefreshAt = now;
    if (now >= this.nextVmsAt) this.readVms();
    const db = this.pool.built.db;
    if (db.currentGeneration !== this.cacheGen) {
      const records: Record<string, Record<string, unknown>> = {};
      for (const cls of WATCHED_CLASSES) records[cls] = Object.fromEntries(db.all(cls));
      const sr = this.pool.built.heartbeatSrRef;
      records.VDI = Object.fromEntries(db.all('VDI').filter(([, v]) => v.type === 'ha_statefile' || v.SR === sr));
      if (this.vms) Object.assign(records, this.vms);
      this.cache = buildSnapshot(records);
      this.cacheGen = db.currentGeneration;
    }
    return this.cache;
  }

  override async refreshVms(): Promise<boolean> {
    if (!monitorReachesMaster(this.pool)) return false;
    this.readVms();
    this.lastRefreshAt = -Infinity;
    this.snapshot();
    return true;
  }
}

export interface CallHooks {
  /** Before an acting call runs in the pool (the campaign's checks read the pool as it is then). */
  before(method: string, params: unknown[], host: HostRuntime): void;
  /** After it succeeded. */
  after(method: string, params: unknown[], host: HostRuntime): void;
}

/**
 * The actions' JSON-RPC transport: the call reaches the host at that address when the monitor reaches
 * it there, waits the pool's slow-XAPI latency, and runs the simulator's own method (xapi's errors as
 * XapiCallError). `owner` is the service incarnation: its waits die with it.
 */
export function simTransport(
  pool: SimulatedPool,
  book: Map<string, Home>,
  clock: VirtualClock,
  sessions: SessionTable,
  password: string,
  owner: string,
  hooks: CallHooks,
): (url: string, method: string, params: unknown[]) => Promise<unknown> {
  return async (url, method, params) => {
    const t = book.get(new URL(url).hostname);
    if (!t || !pool.reachable(t.h, t.home)) throw new XapiCallError(method, 'ECONNREFUSED');
    const latency = pool.latencyFor(t.h);
    if (latency > 0) await clock.sleep(latency, undefined, owner);
    if (!pool.reachable(t.h, t.home)) throw new XapiCallError(method, 'ECONNRESET');
    const ctx = { pool, host: t.h, password, sessions, signal: new AbortController().signal };
    const acting = method === 'VM.power_state_reset' || method === 'VM.start_on';
    try {
      if (acting) hooks.before(method, params, t.h);
      const value = await dispatch(ctx, method, params);
      if (acting) hooks.after(method, params, t.h);
      return value;
    } catch (e) {
      if (e instanceof XapiFailure) throw new XapiCallError(method, e.code, e.params);
      throw e;
    }
  };
}

export type DeviceBehaviour = 'ok' | 'fail' | 'hang';

/** What the world noted when an off was sent, handed back to it with that off's power cut. */
export interface OffSent {
  /** The clock's time of the send. */
  at: number;
  /** ms since the host last showed life on any path, at the send. */
  lifeAgoMs: number;
}

export interface DeviceHooks {
  /** A working device was sent `off` (the instant the fencer decided, after its last look). */
  offSent(host: HostRuntime): OffSent;
  /** The device powered the host off (the `off` sent as `sent` was carried out). */
  off(host: HostRuntime, sent: OffSent): void;
  /** The device answered `status` off. */
  statusOff(host: HostRuntime): void;
}

/**
 * A host's BMC (or PDU) as fence_dummy drives the simulator's power: `status` says the host's power,
 * `off` powers it off `offMs` after it is sent (the cut happens then on the world's clock, whatever
 * becomes of the caller: a BMC that got the command carries it out) and answers then. A failing device
 * answers unreachable; a hung one answers nothing until its own bound (`hangMs`) and then says it timed
 * out, as a fence agent killed by its timeout does.
 */
export class SimFenceDevice implements FenceDevice {
  constructor(
    readonly label: string,
    private readonly pool: SimulatedPool,
    private readonly host: HostRuntime,
    private readonly behaviour: DeviceBehaviour,
    private readonly hangMs: number,
    private readonly clock: VirtualClock,
    private readonly owner: string,
    private readonly hooks: DeviceHooks,
    private readonly offMs = 0,
  ) {}

  private async broken(signal: AbortSignal): Promise<{ detail: string; unreachable?: true; timedOut?: true } | null> {
    if (this.behaviour === 'fail') return { detail: `${this.label}: connection refused`, unreachable: true };
    if (this.behaviour === 'hang') {
      await this.clock.sleep(this.hangMs, signal, this.owner);
      return { detail: `${this.label}: no answer within ${this.hangMs} ms`, timedOut: true };
    }
    return null;
  }

  async status(signal: AbortSignal): Promise<StatusAnswer> {
    const b = await this.broken(signal);
    if (b) return { state: 'unknown', ...b };
    const state = this.host.power;
    if (state === 'off') this.hooks.statusOff(this.host);
    return { state, detail: `${this.label}: power ${state}` };
  }

  async off(signal: AbortSignal): Promise<ActionAnswer> {
    const b = await this.broken(signal);
    if (b) return { ok: false, ...b };
    if (this.host.power === 'off') return { ok: true, detail: `${this.label}: off` };
    const sent = this.hooks.offSent(this.host);
    const cut = () => {
      if (this.host.power === 'off') return;
      this.hooks.off(this.host, sent);
      // As fence_dummy: the power file the simulator reads (a direct power-off would be undone by it).
      this.pool.writePowerFile(this.host, 'off');
    };
    if (this.offMs === 0) cut();
    else {
      this.clock.setTimeout(cut, this.offMs, 'world');
      await this.clock.sleep(this.offMs, signal, this.owner);
    }
    return { ok: true, detail: `${this.label}: off` };
  }

  async on(signal: AbortSignal): Promise<ActionAnswer> {
    const b = await this.broken(signal);
    if (b) return { ok: false, ...b };
    this.pool.writePowerFile(this.host, 'on');
    return { ok: true, detail: `${this.label}: on` };
  }
}
