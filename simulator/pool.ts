/**
 * The running simulated pool: hosts that boot, crash and lose paths; the two liveness paths per host
 * (network heartbeat over two homes, statefile writes over two multipath legs, with HA on only); the
 * master's view and each reachable host's own heartbeat PBD written to the XAPI database, by whom and
 * when xapi writes them; power through fence_dummy status files; faults and the event log.
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
}

/** Timers as xapi derives them from the HA timeout T; with HA on, xhad elects a new master after T. */
export function defaultTiming(haTimeoutSeconds: number, haEnabled: boolean): SimTiming {
  return {
    tickMs: 250,
    statefileIntervalMs: Math.max(2, haTimeoutSeconds / 20) * 1000,
    bootMs: 3000,
    autoElectMasterMs: haEnabled ? haTimeoutSeconds * 1000 : null,
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
  /** Last time this host heard peer j's network heartbeat (by slot), -1 = never. */
  lastHbReceipt: number[];
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

  constructor(opts: SimulatedPoolOptions) {
    super();
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
      lastHbReceipt: Array(this.built.hosts.length).fill(-1),
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

  /** Powers a host off (fence agent wrote "off"): its VMs halt, both paths stop. */
  powerOff(h: HostRuntime, by: string): void {
    if (h.power === 'off') return;
    h.power = 'off';
    h.crashed = false;
    const db = this.built.db;
    const halted: string[] = [];
    for (const [ref, vm] of db.all('VM')) {
      if (vm.resident_on === h.built.ref && !vm.is_control_domain) {
        db.update('VM', ref, { power_state: 'Halted', resident_on: NULL_REF, memory_target: 0, domid: -1 });
        halted.push(vm.name_label as string);
      }
    }
    db.update('host', h.built.ref, { resident_VMs: [h.built.dom0Ref] });
    this.record('power', h, { state: 'off', by, vmsHalted: halted.length });
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
   * Advances the simulation to `now`: power files, then (with HA on: xhad runs) network heartbeats,
   * statefile slots and the master lock, then what each running host writes about itself, then the
   * master's view.
   */
  tick(now = this.now()): void {
    this.pollPowerFiles();
    this.logPathChanges(now);
    const ha = this.haEnabled();
    if (ha) {
      this.writeGlobal();
      for (const a of this.hosts) {
        if (!this.isUp(a, now)) continue;
        for (const b of this.hosts) if (this.hears(a, b, now)) a.lastHbReceipt[b.slot] = now;
      }
      for (const h of this.hosts) {
        if (this.isUp(h, now) && this.anyStorage(h, now) && now - h.lastSlotWrite >= this.timing.statefileIntervalMs) {
          this.writeSlot(h, now);
        }
      }
    }
    this.electIfNeeded(now, ha);
    if (this.masterAlive(now)) {
      for (const h of this.hosts) if (this.reachesMaster(h, now)) this.writeOwnPbd(h, now);
      this.updateMasterView(now, ha);
    }
    this.emit('tick', now);
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
    const hbdomain = bySlot
      .filter((p) => h.lastHbReceipt[p.slot]! >= 0 && now - h.lastHbReceipt[p.slot]! < this.haTimeoutMs())
      .map((p) => p.slot);
    const sfdomain = bySlot.filter((p) => p.lastSlotWrite > -Infinity && now - p.lastSlotWrite < this.haTimeoutMs()).map((p) => p.slot);
    if (!sfdomain.includes(h.slot)) sfdomain.push(h.slot);
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
   * What the live master writes to the database from what it sees: host_metrics.live and host.enabled
   * (xapi's own heartbeat: the master hears the host), and, with HA on only, host.ha_statefiles and
   * host.ha_network_peers from xhad's liveset. With HA off no xhad runs and xapi's HA monitor is
   * stopped: those two fields are left as they were (xapi's disable does not clear them).
   */
  private updateMasterView(now: number, ha: boolean): void {
    const db = this.built.db;
    const m = this.master;
    for (const h of this.hosts) {
      const up = this.isUp(h, now);
      // XAPI's own host heartbeat runs over the management network: the master hears the host.
      const live = h === m ? up : up && this.hears(m, h, now);
      db.update('host_metrics', h.built.metricsRef, { live, memory_free: this.memoryFree(h) });
      db.update('host', h.built.ref, {
        enabled: live,
        ...(ha
          ? {
              ha_statefiles: up && this.anyStorage(h, now) ? [this.built.statefileVdiRef] : [],
              ha_network_peers: live ? this.hosts.filter((p) => this.hears(h, p, now)).map((p) => p.built.uuid) : [],
            }
          : {}),
      });
    }
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
