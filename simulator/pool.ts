/**
 * The running simulated pool: hosts that boot, crash and lose paths; the two liveness paths per host
 * (network heartbeat over two homes, statefile writes over two multipath legs, with HA on only); the
 * master's view and each reachable host's own heartbeat PBD written to the XAPI database, by whom and
 * when xapi writes them (host_metrics.live from xapi's HA monitor passes with HA on, from its DB GC
 * passes over the hosts' xapi heartbeats with HA off); power through fence_dummy status files; faults
 * and the event log.
 *
 * Time comes in through `tick(now)` and `now()`: tests drive it by hand, the simulator's loop with
 * the wall clock. xhad's own actions (self-fencing, VM restarts) are not simulated: xenha is the actor,
 * and a fault stays as injected until healed. See docs/simulator.md.
 */
import { mkdirSync, openSync, closeSync, writeSync, readFileSync, writeFileSync, existsSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { NULL_REF } from '../core/model/xapi-records.ts';
import {
  encodeGlobal,
  encodeHostSlot,
  hostIndexOrder,
  hostSlotOffset,
  initialVolume,
  type StatefileGlobal,
} from '../core/statefile/layout.ts';
import { buildPool, NETWORK_HOMES, STORAGE_HOMES, type BuiltHost, type BuiltPool } from './build.ts';
import type { PoolSpec } from './pool-spec.ts';
import { faultHandlerSleepMs, heartbeatIntervalMs, statefileIntervalMs } from '../core/model/ha-timeouts.ts';
import { XhadLiveset, type FaultHandlerState, type XhadView } from './xhad-liveset.ts';

export type PathName = 'network' | 'storage';

export interface SimTiming {
  /** How often the simulator's state advances (network heartbeats, the master's view). */
  tickMs: number;
  /** How often each live host rewrites its statefile slot (xhad's t2 = max(2, T/20) s). */
  statefileIntervalMs: number;
  /** From power-on to live and enabled. */
  bootMs: number;
  /**
   * When set, a live host takes the master role this long after the master is lost, as xhad's master
   * lock does; null = never (the master stays lost until a call hands the role over).
   */
  autoElectMasterMs: number | null;
  /**
   * With HA on, the master's HA monitor (xapi_ha.ml Monitor) queries xhad's liveset this often and
   * writes host_metrics.live, host.ha_statefiles and host.ha_network_peers from it
   * (process_liveset_on_master). xapi: ha_monitor_interval = 20 s.
   */
  haMonitorIntervalMs: number;
  /**
   * xhad's heartbeat and statefile timeout (T1 = T2): a host leaves xhad's heartbeat domain once it
   * has not been heard for this long, its statefile domain once its slot has not changed for this long
   * (and a peer leaves a slot's hbdomain / sfdomain the same way); leaving either starts xhad's fault
   * handler, which drops the host from the liveset later (see livesetDropDelayMs). It is also the
   * fault handler's consistent-view timeout (max(T1, T2)) and its sleep extension (min(T1, T2)).
   * null = the pool's HA timeout T from the database (ha_configuration.timeout), as xapi's
   * Timeouts.derive sets both.
   */
  xhadTimeoutMs: number | null;
  /**
   * xhad's fault handler's sleep before it updates the liveset (xha daemon/sm.c fault_handler, phase
   * 4): a host out of a domain leaves the liveset this long after the handler decided to drop it
   * (plus xhadTimeoutMs when the host was still in the other domain). null = derived from the pool's
   * T as xha does: max((max(Wh, Ws) − min(T1, T2) + max(t1, t2)) s, 10 s) with xapi's
   * Timeouts.derive, 18 s at T = 30 (faultHandlerSleepMs).
   */
  livesetDropDelayMs: number | null;
  /**
   * With HA on, each running host's xhad sends its UDP network heartbeat this often, and its peers note
   * the time they heard it (the "ms since heard" its peers write in their slots). null = xapi's
   * Timeouts.derive from the pool's T: min((T + 10) / 10, 3) s, integer seconds (3 s for T = 30 s).
   */
  networkHeartbeatIntervalMs: number | null;
  /** Each running slave's xapi tickles its heartbeat on the master this often (host_heartbeat_interval = 30 s). */
  hostHeartbeatIntervalMs: number;
  /**
   * With HA off, a DB GC pass sets a slave's live to false once its last heartbeat is this old, true
   * while it is younger (host_assumed_dead_interval = 600 s).
   */
  hostAssumedDeadMs: number;
  /** The master's DB GC pass (Db_gc.single_pass, which checks host liveness with HA off) runs this often (db_GC_TIMER = 30 s). */
  dbGcIntervalMs: number;
}

/** Timers as xapi derives them from the HA timeout T; with HA on, xhad elects a new master after T. */
export function defaultTiming(haTimeoutSeconds: number, haEnabled: boolean): SimTiming {
  return {
    tickMs: 250,
    statefileIntervalMs: statefileIntervalMs(haTimeoutSeconds),
    bootMs: 3000,
    autoElectMasterMs: haEnabled ? haTimeoutSeconds * 1000 : null,
    haMonitorIntervalMs: 20_000,
    xhadTimeoutMs: null,
    livesetDropDelayMs: null,
    networkHeartbeatIntervalMs: null,
    hostHeartbeatIntervalMs: 30_000,
    hostAssumedDeadMs: 600_000,
    dbGcIntervalMs: 30_000,
  };
}

interface Flap {
  path: PathName;
  homes: number[];
  periodMs: number;
  since: number;
}

export interface HostRuntime {
  readonly built: BuiltHost;
  /** Slot index in the statefile: rank of the UUID, lowest first. */
  readonly slot: number;
  power: 'on' | 'off';
  crashed: boolean;
  bootedAt: number;
  networkDown: boolean[];
  storageDown: boolean[];
  flaps: Flap[];
  latencyMs: number;
  sequence: number;
  lastSlotWrite: number;
  /** When its xhad last sent its network heartbeat (-Infinity: never). */
  lastHbSent: number;
  /** Last time this host heard peer j's network heartbeat (by slot), -1 = never. */
  lastHbReceipt: number[];
  /**
   * What this host's xhad last learnt from each peer j (by slot): the raw data the master's HA monitor
   * reads (`host_raw_data`). From j's last network heartbeat heard (at lastHbReceipt[j]): its heartbeat
   * active list and its statefile access; from j's slot as last read here (at slotReadAt[j], -Infinity
   * = never): the heartbeat active list written there.
   */
  hbActiveRead: number[][];
  hbSfAccessRead: boolean[];
  slotReadAt: number[];
  slotActiveRead: number[][];
  /** From j's slot as last read here: the statefile domain written there. */
  slotSfdomainRead: number[][];
  /** The heartbeat active list (hbdomain) and the sfdomain this host wrote in its slot at its last write. */
  slotHbdomain: number[];
  slotSfdomain: number[];
  /**
   * The boot and the master process this host's xapi last joined (Pool.hello, or its database
   * reconnection on_master_restart): null, or a stale boot or process, means it has yet to join.
   */
  joined: { bootedAt: number; process: number } | null;
  /** When this host's xapi heartbeat thread next tickles the master (host.tickle_heartbeat). */
  nextHeartbeatAt: number;
}

/**
 * The master's xapi process: its in-memory state starts empty whenever a host becomes master or the
 * master restarts (Db_gc.host_heartbeat_table, the HA monitor's and the DB GC thread's timers).
 */
interface MasterProcess {
  id: number;
  ref: string;
  bootedAt: number;
  /** The master rebooted (same host): the slaves' database connections reopen (on_master_restart). */
  restart: boolean;
  /** Db_gc.host_heartbeat_table: last heartbeat per host ref, a host absent until its first heartbeat or first GC check. */
  heartbeats: Map<string, number>;
  nextGcAt: number;
  /** null while HA is off (the monitor thread is stopped). */
  nextMonitorAt: number | null;
}

export interface SimEvent {
  seq: number;
  at: string;
  atMs: number;
  kind: 'fault' | 'heal' | 'power' | 'path' | 'master' | 'vm';
  host?: string;
  detail: Record<string, string | number | boolean | number[]>;
}

const MAX_EVENTS = 20_000;

export interface SimulatedPoolOptions {
  spec: PoolSpec;
  stateDir: string;
  addressBase: string;
  timing: SimTiming;
  now?: () => number;
  /**
   * Read every host's power file each tick (default true: fence_dummy, or a person, may write it at any
   * time). The safety campaign powers hosts through writePowerFile only, which applies at once.
   */
  pollPowerFiles?: boolean;
}

export class SimulatedPool extends EventEmitter {
  readonly built: BuiltPool;
  readonly hosts: HostRuntime[];
  readonly timing: SimTiming;
  readonly stateDir: string;
  readonly statefilePath: string;
  readonly powerDir: string;
  readonly now: () => number;
  observerIsolated = false;
  poolLatencyMs = 0;
  private events: SimEvent[] = [];
  private eventSeq = 0;
  private statefileFd: number | null;
  private masterLostAt: number | null = null;
  private lastGlobal = '';
  private lastPathState = new Map<string, boolean>();
  private process: MasterProcess | null = null;
  private processCount = 0;
  private lastMonitorPass: number | null = null;
  private lastGcPass: number | null = null;
  private xhad: XhadLiveset | null = null;

  private readonly pollsPowerFiles: boolean;

  constructor(opts: SimulatedPoolOptions) {
    super();
    this.pollsPowerFiles = opts.pollPowerFiles ?? true;
    this.now = opts.now ?? Date.now;
    this.timing = opts.timing;
    this.stateDir = opts.stateDir;
    this.built = buildPool(opts.spec, opts.addressBase);
    const order = hostIndexOrder(this.built.hosts.map((h) => h.uuid));
    const t = this.now();
    this.hosts = this.built.hosts.map((b) => ({
      built: b,
      slot: order.indexOf(b.uuid),
      power: 'on',
      crashed: false,
      bootedAt: t - opts.timing.bootMs,
      networkDown: Array(NETWORK_HOMES).fill(false),
      storageDown: Array(STORAGE_HOMES).fill(false),
      flaps: [],
      latencyMs: 0,
      sequence: 0,
      lastSlotWrite: -Infinity,
      lastHbSent: -Infinity,
      lastHbReceipt: Array(this.built.hosts.length).fill(-1),
      hbActiveRead: this.built.hosts.map(() => []),
      hbSfAccessRead: Array(this.built.hosts.length).fill(false),
      slotReadAt: Array(this.built.hosts.length).fill(-Infinity),
      slotActiveRead: this.built.hosts.map(() => []),
      slotSfdomainRead: this.built.hosts.map(() => []),
      slotHbdomain: [],
      slotSfdomain: [],
      joined: null,
      nextHeartbeatAt: t,
    }));
    mkdirSync(this.stateDir, { recursive: true });
    this.powerDir = join(this.stateDir, 'power');
    mkdirSync(this.powerDir, { recursive: true });
    for (const h of this.hosts) writeFileSync(this.powerFile(h), 'on');
    this.statefilePath = join(this.stateDir, 'statefile.img');
    this.statefileFd = openSync(this.statefilePath, existsSync(this.statefilePath) ? 'r+' : 'w+');
    ftruncateSync(this.statefileFd, 0);
    writeSync(
      this.statefileFd,
      initialVolume(this.built.haGenerationUuid, this.hosts.length, opts.spec.heartbeatSr.statefileSize),
      0,
      undefined,
      0,
    );
    this.writeGlobal();
  }

  close(): void {
    if (this.statefileFd !== null) closeSync(this.statefileFd);
    this.statefileFd = null;
  }

  // ------------------------------------------------------------ lookups

  powerFile(h: HostRuntime): string {
    return join(this.powerDir, `${h.built.name}.status`);
  }

  host(nameOrUuid: string): HostRuntime {
    const h = this.hosts.find((x) => x.built.name === nameOrUuid || x.built.uuid === nameOrUuid || x.built.ref === nameOrUuid);
    if (!h) throw new Error(`no host ${JSON.stringify(nameOrUuid)} (hosts: ${this.hosts.map((x) => x.built.name).join(', ')})`);
    return h;
  }

  hostByRef(ref: string): HostRuntime | undefined {
    return this.hosts.find((h) => h.built.ref === ref);
  }

  get masterRef(): string {
    return this.built.db.peek('pool', this.built.poolRef).master as string;
  }

  get master(): HostRuntime {
    return this.hostByRef(this.masterRef)!;
  }

  /** Powered on, not crashed, finished booting. */
  isUp(h: HostRuntime, now = this.now()): boolean {
    return h.power === 'on' && !h.crashed && now - h.bootedAt >= this.timing.bootMs;
  }

  private flapDown(h: HostRuntime, path: PathName, home: number, now: number): boolean {
    return h.flaps.some((f) => f.path === path && f.homes.includes(home) && Math.floor((now - f.since) / (f.periodMs / 2)) % 2 === 0);
  }

  /** The host's network path on one home: its management interface there works. */
  networkUp(h: HostRuntime, home: number, now = this.now()): boolean {
    return this.isUp(h, now) && !h.networkDown[home] && !this.flapDown(h, 'network', home, now);
  }

  /** The host's storage path on one multipath leg to the heartbeat SR. */
  storageUp(h: HostRuntime, home: number, now = this.now()): boolean {
    return this.isUp(h, now) && !h.storageDown[home] && !this.flapDown(h, 'storage', home, now);
  }

  anyNetwork(h: HostRuntime, now = this.now()): boolean {
    return Array.from({ length: NETWORK_HOMES }, (_, i) => i).some((i) => this.networkUp(h, i, now));
  }

  anyStorage(h: HostRuntime, now = this.now()): boolean {
    return Array.from({ length: STORAGE_HOMES }, (_, i) => i).some((i) => this.storageUp(h, i, now));
  }

  /** Whether the monitor reaches this host's XAPI on this home (the listener is open). */
  reachable(h: HostRuntime, home: number, now = this.now()): boolean {
    return !this.observerIsolated && this.networkUp(h, home, now);
  }

  /** Host a hears host b's network heartbeat: both have a working interface on a common home. */
  hears(a: HostRuntime, b: HostRuntime, now = this.now()): boolean {
    if (a === b) return this.isUp(a, now);
    return Array.from({ length: NETWORK_HOMES }, (_, i) => i).some((i) => this.networkUp(a, i, now) && this.networkUp(b, i, now));
  }

  /** The master is running and can act (XAPI's database has a writer). */
  masterAlive(now = this.now()): boolean {
    return this.isUp(this.master, now);
  }

  /**
   * `pool.ha_enabled` as the database holds it now (read every tick, so a test that flips it sees the
   * effect): xhad runs, writes the statefile, sends its heartbeats and holds the master lock only then.
   */
  haEnabled(): boolean {
    return this.built.db.peek('pool', this.built.poolRef).ha_enabled === true;
  }

  /**
   * Host h can write to the pool database about itself: it runs and reaches the live master over the
   * management network (it is the master, or the master hears it). Its plug scripts and multipath
   * daemon write its own PBD fields that way; otherwise they stay as last written.
   */
  reachesMaster(h: HostRuntime, now = this.now()): boolean {
    const m = this.master;
    if (!this.isUp(m, now)) return false;
    return h === m || this.hears(m, h, now);
  }

  // ------------------------------------------------------------ event log

  record(kind: SimEvent['kind'], host: HostRuntime | undefined, detail: SimEvent['detail']): SimEvent {
    const atMs = this.now();
    const ev: SimEvent = {
      seq: ++this.eventSeq,
      at: new Date(atMs).toISOString(),
      atMs,
      kind,
      ...(host ? { host: host.built.name } : {}),
      detail,
    };
    this.events.push(ev);
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
    this.emit('event', ev);
    return ev;
  }

  eventLog(sinceSeq = 0): SimEvent[] {
    return this.events.filter((e) => e.seq > sinceSeq);
  }

  // ------------------------------------------------------------ faults

  /** The homes a fault takes: every one when left out; an empty list is an error, never "every home". */
  private homesArg(homes: readonly number[] | undefined, count: number): number[] {
    const all = Array.from({ length: count }, (_, i) => i);
    if (homes === undefined) return all;
    if (homes.length === 0) throw new Error(`an empty home list: name at least one home (0..${count - 1}), or none to take every home`);
    for (const h of homes) if (!all.includes(h)) throw new Error(`home ${h} out of range 0..${count - 1}`);
    return [...new Set(homes)].sort((a, b) => a - b);
  }

  crash(h: HostRuntime): SimEvent {
    h.crashed = true;
    const ev = this.record('fault', h, { fault: 'host-crash' });
    this.changed();
    return ev;
  }

  crashMaster(): SimEvent {
    const m = this.master;
    m.crashed = true;
    const ev = this.record('fault', m, { fault: 'master-crash' });
    this.changed();
    return ev;
  }

  pathDown(h: HostRuntime, path: PathName, homes?: readonly number[]): SimEvent {
    const list = this.homesArg(homes, path === 'network' ? NETWORK_HOMES : STORAGE_HOMES);
    const flags = path === 'network' ? h.networkDown : h.storageDown;
    for (const i of list) flags[i] = true;
    const ev = this.record('fault', h, { fault: `${path}-down`, homes: list });
    this.changed();
    return ev;
  }

  flap(h: HostRuntime, path: PathName, periodMs: number, homes?: readonly number[]): SimEvent {
    if (!(periodMs >= 2 * this.timing.tickMs)) throw new Error(`flap period must be at least two ticks (${2 * this.timing.tickMs} ms)`);
    const list = this.homesArg(homes, path === 'network' ? NETWORK_HOMES : STORAGE_HOMES);
    h.flaps = h.flaps.filter((f) => f.path !== path).concat({ path, homes: list, periodMs, since: this.now() });
    const ev = this.record('fault', h, { fault: 'flap', path, homes: list, periodMs });
    this.changed();
    return ev;
  }

  slowXapi(h: HostRuntime | undefined, latencyMs: number): SimEvent {
    if (!(latencyMs >= 0 && latencyMs <= 600_000)) throw new Error('latency must be 0..600000 ms');
    if (h) h.latencyMs = latencyMs;
    else this.poolLatencyMs = latencyMs;
    return this.record('fault', h, { fault: 'slow-xapi', latencyMs });
  }

  isolateObserver(): SimEvent {
    this.observerIsolated = true;
    const ev = this.record('fault', undefined, { fault: 'observer-isolation' });
    this.changed();
    return ev;
  }

  /** Clears faults (of one host, or all and observer isolation). A crashed host reboots. Power is not touched. */
  heal(h?: HostRuntime): SimEvent {
    const targets = h ? [h] : this.hosts;
    const now = this.now();
    for (const x of targets) {
      if (x.crashed) {
        x.crashed = false;
        x.bootedAt = now;
      }
      x.networkDown.fill(false);
      x.storageDown.fill(false);
      x.flaps = [];
      x.latencyMs = 0;
    }
    if (!h) {
      this.observerIsolated = false;
      this.poolLatencyMs = 0;
    }
    const ev = this.record('heal', h, {});
    this.changed();
    return ev;
  }

  latencyFor(h: HostRuntime): number {
    return this.poolLatencyMs + h.latencyMs;
  }

  // ------------------------------------------------------------ power

  /**
   * Powers a host off (a fence agent wrote "off" to its BMC): both paths stop, its domains die with it.
   * Nobody tells xapi: the database keeps its VMs Running and resident on it (a dead host updates
   * nothing about itself) until VM.power_state_reset, or until the host boots again and its xapi
   * resynchronises (writeBootTime).
   */
  powerOff(h: HostRuntime, by: string): void {
    if (h.power === 'off') return;
    h.power = 'off';
    h.crashed = false;
    this.record('power', h, { state: 'off', by });
    this.changed();
  }

  powerOn(h: HostRuntime, by: string): void {
    if (h.power === 'on') return;
    h.power = 'on';
    h.crashed = false;
    h.bootedAt = this.now();
    this.record('power', h, { state: 'on', by });
    this.changed();
  }

  /** Writes the power file as a BMC would (host.power_on); the next poll applies it. */
  writePowerFile(h: HostRuntime, state: 'on' | 'off'): void {
    writeFileSync(this.powerFile(h), state);
    this.pollPowerFiles();
  }

  /** Reads each host's fence_dummy status file and applies changes. */
  pollPowerFiles(): void {
    for (const h of this.hosts) {
      let content: string;
      try {
        content = readFileSync(this.powerFile(h), 'utf8').trim().toLowerCase();
      } catch {
        continue; // a missing file reads as "off" to fence_dummy; the simulator waits for a real write
      }
      if (content === 'off') this.powerOff(h, 'power-file');
      else if (content === 'on') this.powerOn(h, 'power-file');
    }
  }

  // ------------------------------------------------------------ master

  /**
   * Makes `h` the master (designate_new_master, emergency transition, or election). The statefile's
   * global section names the new master only with HA on: without xhad nothing writes the statefile.
   */
  setMaster(h: HostRuntime, how: string): void {
    if (this.masterRef === h.built.ref) return;
    const old = this.master;
    this.built.db.update('pool', this.built.poolRef, { master: h.built.ref });
    this.masterLostAt = null;
    this.record('master', h, { how, previous: old.built.name });
    if (this.haEnabled()) this.writeGlobal();
    this.changed();
  }

  // ------------------------------------------------------------ the heartbeat loop

  private changed(): void {
    this.emit('changed');
  }

  /**
   * Advances the simulation to `now`: power files, then (with HA on: xhad runs) network heartbeats
   * heard, xhad's state manager (domains, fault handler, liveset), the heartbeats' content, statefile
   * slots written and read, joins, and the master lock; then what each running host writes about
   * itself, then what the live master's xapi writes (see masterXapi).
   */
  tick(now = this.now()): void {
    if (this.pollsPowerFiles) this.pollPowerFiles();
    this.logPathChanges(now);
    const ha = this.haEnabled();
    if (ha) {
      this.writeGlobal();
      const heard = this.receiveHeartbeats(now);
      const observer = this.xhadObserver(now);
      const view = observer && this.xhadView(now, observer);
      if (view && this.xhad) this.xhad.step(view);
      this.heartbeatContent(heard, now);
      for (const h of this.hosts) {
        if (this.isUp(h, now) && this.anyStorage(h, now) && now - h.lastSlotWrite >= this.timing.statefileIntervalMs) {
          this.writeSlot(h, now);
        }
      }
      this.readSlots(now);
      // The first tick with HA on forms the liveset; later ones let the slots written now count.
      if (view) {
        if (this.xhad) this.xhad.afterSlotReads(view);
        else this.xhad = new XhadLiveset(view);
      }
    } else this.xhad = null; // xhad stops; a later enable forms a new liveset
    this.electIfNeeded(now, ha);
    if (this.masterAlive(now)) {
      for (const h of this.hosts)
        if (this.reachesMaster(h, now)) {
          this.writeOwnPbd(h, now);
          this.writeBootTime(h);
        }
      this.masterXapi(now, ha);
    }
    this.emit('tick', now);
  }

  /** xhad's heartbeat and statefile timeout in ms (timing.xhadTimeoutMs, else the pool's T). */
  xhadTimeoutMs(): number {
    return this.timing.xhadTimeoutMs ?? this.haTimeoutMs();
  }

  /** xhad's network heartbeat interval, in ms (timing.networkHeartbeatIntervalMs, else xapi's min((T + 10) / 10, 3) s). */
  networkHeartbeatIntervalMs(): number {
    return this.timing.networkHeartbeatIntervalMs ?? heartbeatIntervalMs(this.haTimeoutMs() / 1000);
  }

  /** xhad's fault handler's sleep before a liveset update, in ms (timing.livesetDropDelayMs, else derived from the pool's T). */
  livesetDropDelayMs(): number {
    return this.timing.livesetDropDelayMs ?? faultHandlerSleepMs(this.haTimeoutMs() / 1000);
  }

  /**
   * The host whose xhad the liveset model follows: the master while it runs (xapi's HA monitor queries
   * its xhad), else the running host with the lowest slot (the survivors carry on the fault handling);
   * null when no host runs.
   */
  private xhadObserver(now: number): HostRuntime | null {
    if (this.isUp(this.master, now)) return this.master;
    return [...this.hosts].sort((a, b) => a.slot - b.slot).find((h) => this.isUp(h, now)) ?? null;
  }

  private xhadView(now: number, observer: HostRuntime): XhadView {
    return {
      now,
      hosts: this.hosts,
      observer,
      timeoutMs: this.xhadTimeoutMs(),
      dropDelayMs: this.livesetDropDelayMs(),
      bootMs: this.timing.bootMs,
      isUp: (h) => this.isUp(h, now),
    };
  }

  /**
   * The modelled xhad state, for tests and diagnostics: the liveset, the observed xhad's heartbeat
   * and statefile domains (host names), its fault handler, Survival Rule 2. null while HA is off.
   */
  xhadState(): {
    liveset: string[];
    hbdomain: string[];
    sfdomain: string[];
    faultHandler: (Omit<FaultHandlerState, 'dropping'> & { dropping?: string[] }) | null;
    sr2: boolean;
  } | null {
    const x = this.xhad;
    const observer = this.xhadObserver(this.now());
    if (!x || !observer) return null;
    const names = (set: Iterable<HostRuntime>) => [...set].map((h) => h.built.name).sort();
    const fh = x.faultHandler;
    return {
      liveset: names(x.liveset),
      hbdomain: names(x.hbdomain({ observer })),
      sfdomain: names(x.sfdomain({ observer })),
      faultHandler: fh === null ? null : fh.phase === 'sleep' ? { ...fh, dropping: names(fh.dropping) } : { ...fh },
      sr2: x.sr2,
    };
  }

  /**
   * Host h's heartbeat active list (its xhad's heartbeat domain, by slot), as it sends it in its
   * heartbeats, writes it in its slot and answers it for itself: the model's (xhad-liveset.ts), or,
   * before the model is formed, the peers it heard within xhad's timeout.
   */
  private hbActive(h: HostRuntime, now: number): number[] {
    const d = this.xhad?.domains(h);
    if (d) return this.bySlot(d.hb);
    const timeout = this.xhadTimeoutMs();
    const out: number[] = [];
    for (let j = 0; j < h.lastHbReceipt.length; j++) {
      const at = h.lastHbReceipt[j]!;
      if (at >= 0 && now - at < timeout) out.push(j);
    }
    return out;
  }

  /** Host h's xhad's statefile domain, by slot (the model's; before it is formed, the slots written within xhad's timeout). */
  private sfActive(h: HostRuntime, now: number): number[] {
    const d = this.xhad?.domains(h);
    if (d) return this.bySlot(d.sf);
    const timeout = this.xhadTimeoutMs();
    return this.hosts.filter((p) => p.lastSlotWrite > -Infinity && now - p.lastSlotWrite < timeout).map((p) => p.slot);
  }

  private bySlot(hosts: Iterable<HostRuntime>): number[] {
    return [...hosts].map((h) => h.slot).sort((a, b) => a - b);
  }

  /**
   * The network heartbeats sent at this tick: each running host's xhad sends one every heartbeat
   * interval, and every running host that shares a working home with it hears it then (not at every
   * tick: between two heartbeats a peer's "ms since heard" grows, as on a real pool).
   */
  private receiveHeartbeats(now: number): [HostRuntime, HostRuntime][] {
    const up = this.hosts.filter((h) => this.isUp(h, now));
    const interval = this.networkHeartbeatIntervalMs();
    const senders = up.filter((b) => now - b.lastHbSent >= interval);
    for (const b of senders) b.lastHbSent = now;
    const heard: [HostRuntime, HostRuntime][] = [];
    for (const a of up) {
      for (const b of senders) {
        if (this.hears(a, b, now)) {
          a.lastHbReceipt[b.slot] = now;
          heard.push([a, b]);
        }
      }
    }
    return heard;
  }

  /**
   * What the heartbeats heard this round carried: the sender's heartbeat active list and its statefile
   * access (its own statefile domain holds it), which the receiver's xhad keeps as that peer's latest
   * network-heartbeat view.
   */
  private heartbeatContent(heard: [HostRuntime, HostRuntime][], now: number): void {
    const packets = new Map<HostRuntime, { active: number[]; sfAccess: boolean }>();
    for (const [a, b] of heard) {
      let p = packets.get(b);
      if (!p) packets.set(b, (p = { active: this.hbActive(b, now), sfAccess: this.sfActive(b, now).includes(b.slot) }));
      a.hbActiveRead[b.slot] = p.active;
      a.hbSfAccessRead[b.slot] = p.sfAccess;
    }
  }

  /** Every running host with a working storage leg reads the statefile: each slot changed since its last read. */
  private readSlots(now: number): void {
    for (const a of this.hosts) {
      if (!this.isUp(a, now) || !this.anyStorage(a, now)) continue;
      for (const b of this.hosts) {
        if (b.lastSlotWrite > a.slotReadAt[b.slot]!) {
          a.slotReadAt[b.slot] = b.lastSlotWrite;
          a.slotActiveRead[b.slot] = b.slotHbdomain;
          a.slotSfdomainRead[b.slot] = b.slotSfdomain;
        }
      }
    }
  }

  private logPathChanges(now: number): void {
    for (const h of this.hosts) {
      for (const [path, count] of [
        ['network', NETWORK_HOMES],
        ['storage', STORAGE_HOMES],
      ] as const) {
        for (let home = 0; home < count; home++) {
          const up = path === 'network' ? this.networkUp(h, home, now) : this.storageUp(h, home, now);
          const key = `${h.slot}/${path}/${home}`;
          if (this.lastPathState.get(key) !== up) {
            if (this.lastPathState.has(key)) this.record('path', h, { path, home, up });
            this.lastPathState.set(key, up);
            this.changed();
          }
        }
      }
    }
  }

  /** xhad's master lock: only with HA on (no xhad runs otherwise, and the lost master stays lost). */
  private electIfNeeded(now: number, ha: boolean): void {
    if (!ha || this.masterAlive(now)) {
      this.masterLostAt = null;
      return;
    }
    this.masterLostAt ??= now;
    const wait = this.timing.autoElectMasterMs;
    if (wait === null || now - this.masterLostAt < wait) return;
    // xhad's master lock goes to the live host with the lowest index (lowest UUID) that sees the statefile.
    const candidate = [...this.hosts].sort((a, b) => a.slot - b.slot).find((h) => this.isUp(h, now) && this.anyStorage(h, now));
    if (candidate) this.setMaster(candidate, 'ha-election');
  }

  private writeGlobal(): void {
    const g: StatefileGlobal = {
      genUuid: this.built.haGenerationUuid,
      poolState: 'active',
      master: this.master.built.uuid,
      configHosts: this.hosts.length,
    };
    const key = JSON.stringify(g);
    if (key === this.lastGlobal || this.statefileFd === null) return;
    this.lastGlobal = key;
    writeSync(this.statefileFd, encodeGlobal(g), 0, undefined, 0);
  }

  /** Rewrites host h's slot as xhad does each statefile cycle: sequence + 1 and its view of its peers. */
  private writeSlot(h: HostRuntime, now: number): void {
    if (this.statefileFd === null) return;
    const bySlot = [...this.hosts].sort((a, b) => a.slot - b.slot);
    const hbdomain = this.hbActive(h, now);
    const sfdomain = this.sfActive(h, now);
    if (!sfdomain.includes(h.slot)) sfdomain.push(h.slot); // it is writing it now
    sfdomain.sort((a, b) => a - b);
    const live = hbdomain.filter((s) => sfdomain.includes(s));
    const slot = encodeHostSlot({
      sequence: h.sequence,
      hostIndex: h.slot,
      hostUuid: h.built.uuid,
      excluded: false,
      starting: now - h.bootedAt < this.timing.bootMs,
      sinceLastHbReceiptMs: bySlot.map((p) => (h.lastHbReceipt[p.slot]! < 0 ? -1 : Math.min(now - h.lastHbReceipt[p.slot]!, 2 ** 31 - 1))),
      sinceLastSfUpdateMs: bySlot.map((p) => (p.lastSlotWrite === -Infinity ? -1 : Math.min(now - p.lastSlotWrite, 2 ** 31 - 1))),
      sinceXapiRestartFirstAttemptedMs: -1,
      currentLiveset: live,
      proposedLiveset: live,
      hbdomain,
      sfdomain,
      lockRequest: false,
      lockGrant: [],
      smPhase: 1,
      weight: 1,
    });
    writeSync(this.statefileFd, slot, 0, slot.length, hostSlotOffset(h.slot));
    h.sequence = (h.sequence + 1) >>> 0;
    h.lastSlotWrite = now;
    h.slotHbdomain = hbdomain;
    h.slotSfdomain = sfdomain;
  }

  haTimeoutMs(): number {
    const cfg = this.built.db.peek('pool', this.built.poolRef).ha_configuration as Record<string, string>;
    return Number(cfg.timeout ?? 30) * 1000;
  }

  /**
   * What a running host that reaches the master writes about itself: its heartbeat PBD plugged
   * (`currently_attached`, by its own plug and startup resynchronisation, Storage_access.resynchronise_pbds)
   * and its multipath legs (`other_config["mpath-<SCSIid>"]`, by its multipath scripts). Nobody else
   * writes them: xapi's master writes nothing on a host's PBDs when it dies or is powered off, so a dead,
   * fenced or unreachable host's PBD stays as it last wrote it.
   */
  private writeOwnPbd(h: HostRuntime, now: number): void {
    const db = this.built.db;
    const activeLegs = Array.from({ length: STORAGE_HOMES }, (_, i) => i).filter((i) => this.storageUp(h, i, now)).length;
    const pbd = db.peek('PBD', h.built.heartbeatPbdRef);
    db.update('PBD', h.built.heartbeatPbdRef, {
      currently_attached: true,
      other_config: {
        ...(pbd.other_config as Record<string, string>),
        [`mpath-${this.built.heartbeatScsiId}`]: `[${activeLegs}, ${STORAGE_HOMES}]`,
      },
    });
  }

  /**
   * `host.other_config["boot_time"]`: the host's xapi writes its system's boot time (btime of
   * /proc/stat, seconds, OCaml's `string_of_float`: "1732771200.") once it starts and reaches the
   * master (dbsync_slave.ml), so it stays as last written while the host is down; a reboot writes a new one.
   */
  private writeBootTime(h: HostRuntime): void {
    const value = `${Math.floor(h.bootedAt / 1000)}.`;
    const db = this.built.db;
    const oc = db.peek('host', h.built.ref).other_config as Record<string, string>;
    if (oc.boot_time === value) return;
    db.update('host', h.built.ref, { other_config: { ...oc, boot_time: value } });
    if (oc.boot_time === undefined) return; // the simulator's start: its VMs run
    // A reboot: no domain survived it. Its xapi resynchronises with xenopsd at start-up and marks the VMs
    // the database still has resident here Halted (Xapi_xenops.resync_resident_on: a VM xenopsd does not know is off).
    const halted: string[] = [];
    for (const [ref, vm] of db.all('VM')) {
      if (vm.resident_on !== h.built.ref || vm.is_control_domain) continue;
      db.update('VM', ref, { power_state: 'Halted', resident_on: NULL_REF, memory_target: 0, domid: -1 });
      for (const vbd of vm.VBDs as string[]) if (db.has('VBD', vbd)) db.update('VBD', vbd, { currently_attached: false });
      halted.push(vm.name_label as string);
    }
    db.update('host', h.built.ref, { resident_VMs: [h.built.dom0Ref] });
    if (halted.length > 0) this.record('vm', h, { resync: 'halted after reboot', vms: halted.length });
  }

  /** When the live master's HA monitor and DB GC last ran a pass (null: not since the simulator started). */
  get masterPasses(): { monitor: number | null; gc: number | null } {
    return { monitor: this.lastMonitorPass, gc: this.lastGcPass };
  }

  /** host_metrics.live, and host.enabled, which the simulator ties to it. */
  private setLive(h: HostRuntime, live: boolean): void {
    this.built.db.update('host_metrics', h.built.metricsRef, { live });
    this.built.db.update('host', h.built.ref, { enabled: live });
  }

  /**
   * What the live master's xapi writes, and when (see docs/simulator.md, "Who writes what"):
   *
   * - a new master process (a host became master, or the master rebooted) starts with empty memory
   *   and writes its own live = true (dbsync_master.set_master_live);
   * - each running slave that reaches it joins once per boot and master process: Pool.hello, which
   *   with HA off sets its live = true (xapi_pool.ml hello), or, when only the master restarted under
   *   a running slave, the slave's database reconnection, which sets it in either mode
   *   (xapi.ml on_master_restart); both tickle its heartbeat, and its heartbeat thread then tickles
   *   every hostHeartbeatIntervalMs while it reaches the master (Db_gc.start_heartbeat_thread);
   * - with HA off, a DB GC pass every dbGcIntervalMs sets each slave's live from its last heartbeat
   *   (Db_gc.check_host_liveness): true while it is younger than hostAssumedDeadMs, false once older;
   *   a host the process has never heard of gets a fresh timer at its first check;
   * - with HA on, an HA monitor pass every haMonitorIntervalMs writes live from xhad's liveset, and
   *   ha_statefiles and ha_network_peers from each host's latest report (process_liveset_on_master);
   * - memory_free, every tick.
   */
  private masterXapi(now: number, ha: boolean): void {
    const db = this.built.db;
    const m = this.master;
    let proc = this.process;
    if (proc?.ref !== m.built.ref || proc.bootedAt !== m.bootedAt) {
      proc = this.process = {
        id: ++this.processCount,
        ref: m.built.ref,
        bootedAt: m.bootedAt,
        restart: proc?.ref === m.built.ref,
        heartbeats: new Map(),
        nextGcAt: now + this.timing.dbGcIntervalMs,
        nextMonitorAt: null,
      };
      this.lastMonitorPass = null;
      this.lastGcPass = null;
      this.setLive(m, true);
    }
    m.joined = { bootedAt: m.bootedAt, process: proc.id };
    for (const h of this.hosts) {
      if (h === m || !this.isUp(h, now)) continue;
      const reaches = this.reachesMaster(h, now);
      const joined = h.joined;
      if (joined?.bootedAt !== h.bootedAt || joined.process !== proc.id) {
        if (!reaches) continue; // its xapi keeps trying to reach the master
        const reconnect = proc.restart && joined?.bootedAt === h.bootedAt;
        if (reconnect || !ha) this.setLive(h, true);
        h.joined = { bootedAt: h.bootedAt, process: proc.id };
        proc.heartbeats.set(h.built.ref, now);
        h.nextHeartbeatAt = now + this.timing.hostHeartbeatIntervalMs;
      } else if (now >= h.nextHeartbeatAt) {
        if (reaches) proc.heartbeats.set(h.built.ref, now);
        h.nextHeartbeatAt = now + this.timing.hostHeartbeatIntervalMs;
      }
    }
    if (now >= proc.nextGcAt) {
      proc.nextGcAt = now + this.timing.dbGcIntervalMs;
      this.lastGcPass = now;
      if (!ha) this.checkHostLiveness(proc, m, now);
    }
    if (!ha) proc.nextMonitorAt = null;
    else {
      proc.nextMonitorAt ??= now + this.timing.haMonitorIntervalMs;
      if (now >= proc.nextMonitorAt) {
        proc.nextMonitorAt = now + this.timing.haMonitorIntervalMs;
        this.lastMonitorPass = now;
        this.processLiveset(m, now);
      }
    }
    for (const h of this.hosts) db.update('host_metrics', h.built.metricsRef, { memory_free: this.memoryFree(h) });
  }

  /** Db_gc.check_host_liveness, with HA off: every host but the master, from its last heartbeat. */
  private checkHostLiveness(proc: MasterProcess, m: HostRuntime, now: number): void {
    for (const h of this.hosts) {
      if (h === m) continue;
      let last = proc.heartbeats.get(h.built.ref);
      if (last === undefined) proc.heartbeats.set(h.built.ref, (last = now)); // Clock.Timer.start on first sight
      const fresh = now - last < this.timing.hostAssumedDeadMs;
      const live = this.built.db.peek('host_metrics', h.built.metricsRef).live === true;
      if (fresh !== live) this.setLive(h, fresh);
    }
  }

  /**
   * Whether xhad's liveset holds h (see xhad-liveset.ts: both domains, dropped by the fault handler,
   * rejoined once back in both): the running master always (its own xhad answers the query, and it
   * never fences itself here). With HA off no xhad runs: false but for the running master.
   */
  inLiveset(h: HostRuntime, now = this.now()): boolean {
    if (h === this.master && this.isUp(h, now)) return true;
    return this.xhad?.has(h) ?? false;
  }

  /**
   * process_liveset_on_master (xapi_ha.ml) on the answer the master's xhad gives to the liveset query
   * (xha daemon/sc_func.c): live from the liveset; ha_statefiles from each host's statefile_access and
   * ha_network_peers from its heartbeat active list. For a host out of the liveset xhad answers no
   * statefile access and empty lists, so both empty at the pass that drops it. For one in it, the
   * statefile access is true (Survival Rule 1: xhad drops a host that lost the statefile before it
   * answers otherwise), or under Survival Rule 2 what the host reported; the peers come from its
   * latest report (its last network heartbeat heard, or its slot last read while the slot is in the
   * master's statefile domain, whichever is more recent: xapi compares
   * time_since_last_update_on_statefile with time_since_last_heartbeat). The master's own peers are its
   * own hbdomain. Each field is written only when it differs (the peers compared as sets), as xapi does.
   */
  private processLiveset(m: HostRuntime, now: number): void {
    const db = this.built.db;
    const live = new Map(this.hosts.map((h) => [h, this.inLiveset(h, now)]));
    for (const h of this.hosts) {
      if ((db.peek('host_metrics', h.built.metricsRef).live === true) !== live.get(h)) this.setLive(h, live.get(h)!);
    }
    const statefiles = db.peek('pool', this.built.poolRef).ha_statefiles as string[];
    const uuidOf = new Map(this.hosts.map((h) => [h.slot, h.built.uuid]));
    const slotsInHostOrder = this.hosts.map((h) => h.slot);
    const view = this.xhadView(now, m);
    for (const h of this.hosts) {
      const sfAccess = live.get(h)! && (this.xhad ? this.xhad.statefileAccess(view, h) : this.anyStorage(h, now));
      const active = live.get(h) ? this.latestPeers(m, h, now) : [];
      const rec = db.peek('host', h.built.ref);
      if ((rec.ha_statefiles as string[]).length > 0 !== sfAccess) {
        db.update('host', h.built.ref, { ha_statefiles: sfAccess ? [...statefiles] : [] });
      }
      const peers = slotsInHostOrder.filter((s) => active.includes(s)).map((s) => uuidOf.get(s)!);
      const existing = new Set(rec.ha_network_peers as string[]);
      if (existing.size !== peers.length || peers.some((p) => !existing.has(p)))
        db.update('host', h.built.ref, { ha_network_peers: peers });
    }
  }

  /** A live host h's heartbeat active list, from its latest report the master's xhad holds. */
  private latestPeers(m: HostRuntime, h: HostRuntime, now: number): number[] {
    if (h === m) return this.hbActive(m, now);
    const hbAt = m.lastHbReceipt[h.slot]!;
    const sfAt = m.slotReadAt[h.slot]!;
    if (sfAt > -Infinity && (hbAt < 0 || sfAt > hbAt)) {
      // A slot out of the master's statefile domain gives an empty list (xhad clears it).
      const inSfdomain = this.xhad ? this.xhad.sfdomain({ observer: m }).has(h) : now - sfAt < this.xhadTimeoutMs();
      return inSfdomain ? m.slotActiveRead[h.slot]! : [];
    }
    return hbAt >= 0 ? m.hbActiveRead[h.slot]! : [];
  }

  /**
   * Free memory: total − host overhead − (static_max + overhead) of every VM resident on it, dom0
   * included. Walks the host's resident_VMs (kept by every start, halt and power-off), not every VM:
   * this runs for every host on every tick.
   */
  memoryFree(h: HostRuntime): number {
    const db = this.built.db;
    const host = db.peek('host', h.built.ref);
    const total = db.peek('host_metrics', h.built.metricsRef).memory_total as number;
    let used = host.memory_overhead as number;
    for (const ref of host.resident_VMs as string[]) {
      const vm = db.has('VM', ref) ? db.peek('VM', ref) : undefined;
      if (vm && vm.resident_on === h.built.ref && vm.power_state !== 'Halted')
        used += (vm.memory_static_max as number) + (vm.memory_overhead as number);
    }
    return Math.max(0, total - used);
  }
}
