/** Starting simulators for tests: fast timing, random ports, stopped by the test even on failure. */
import { existsSync } from 'node:fs';
import { afterEach, expect } from 'vitest';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { generatePoolSpec, type PoolSpec } from '../../simulator/pool-spec.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../simulator/simulator.ts';
import type { SimTiming } from '../../simulator/pool.ts';
import { decodeStatefile, type StatefileHostSlot } from '../../core/statefile/layout.ts';

/**
 * Every timer a whole number of 40 ms ticks: the HA monitor and the DB GC pass at every tick, each slave
 * tickles its heartbeat every tick, xhad's timeout is 10 ticks, its fault handler sleeps 2 ticks before
 * it drops a host from the liveset, and a slave's last heartbeat is assumed dead after 5 (xapi: 20 s,
 * 30 s, 30 s, the pool's T, 18 s at T = 30, 600 s).
 */
export const FAST_TIMING: SimTiming = {
  tickMs: 40,
  statefileIntervalMs: 80,
  bootMs: 120,
  autoElectMasterMs: null,
  haMonitorIntervalMs: 40,
  xhadTimeoutMs: 400,
  livesetDropDelayMs: 80,
  networkHeartbeatIntervalMs: 40,
  hostHeartbeatIntervalMs: 40,
  hostAssumedDeadMs: 200,
  dbGcIntervalMs: 40,
};
export const PASSWORD = 'test-password';

export async function startTestSim(opts: Partial<SimulatorOptions> & { spec?: PoolSpec } = {}): Promise<Simulator> {
  return startSimulator({
    spec: opts.spec ?? generatePoolSpec({ hosts: 3, vms: 9, seed: 7 }),
    port: 0,
    controlPort: 0,
    password: PASSWORD,
    ...opts,
    timing: { ...FAST_TIMING, ...opts.timing },
  });
}

/** Opens a TCP connection: 'open', else 'refused', 'timeout' or the error code. */
export function tcpProbe(host: string, port: number, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve('open');
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      resolve(e.code === 'ECONNREFUSED' ? 'refused' : String(e.code));
    });
  });
}

/** Every configured slot of the statefile, decoded with the shared core's decoder. */
export function readSlots(path: string): StatefileHostSlot[] {
  const d = decodeStatefile(readFileSync(path));
  if (!d.global.ok) throw new Error(`statefile global section: ${d.global.error.detail}`);
  return d.slots.map((s, i) => {
    if (!s.ok) throw new Error(`slot ${i}: ${s.error.detail}`);
    return s.value;
  });
}

export function slotOf(sim: Simulator, hostName: string): StatefileHostSlot {
  const h = sim.pool.host(hostName);
  return readSlots(sim.pool.statefilePath)[h.slot]!;
}

/** Fails (never skips) when a system binary is missing, naming what to install. */
export function requireFile(path: string, install: string): void {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: install it with \`${install}\` (or run scripts/install-test-deps.sh)`);
  }
}

/** Where a stepped simulator's clock starts, in ms (any fixed value: runs must not depend on the wall clock). */
export const SIM_CLOCK_START = 1_000_000;

export interface SteppedSim {
  sim: Simulator;
  /** The simulated time, ms. */
  now(): number;
  /**
   * Moves simulated time forward by `ms`, one tick (timing.tickMs, the last one shorter when `ms` is not a
   * multiple) at a time; after each tick the listeners have settled and `eachTick(now)`, if given, has run.
   */
  advance(ms: number, eachTick?: (now: number) => void | Promise<void>): Promise<void>;
}

/** A test simulator on a manual clock (autoTick off, `now` injected): time moves only through `advance`, tick by tick, listeners settled after each. */
export async function startSteppedSim(opts: Partial<SimulatorOptions> & { spec?: PoolSpec } = {}): Promise<SteppedSim> {
  let t = SIM_CLOCK_START;
  const sim = await startTestSim({ ...opts, autoTick: false, now: () => t });
  return {
    sim,
    now: () => t,
    async advance(ms, eachTick) {
      if (!(Number.isFinite(ms) && ms >= 0)) throw new Error(`advance: not a duration: ${ms}`);
      const end = t + ms;
      while (t < end) {
        t = Math.min(t + sim.pool.timing.tickMs, end);
        await sim.step(t);
        await eachTick?.(t);
      }
    },
  };
}

/**
 * One stepped simulator per test, for a test file's top level: the function returned starts it
 * (stopping the one before, if the test starts another), and the afterEach registered here stops the
 * last one, pass or fail.
 */
export function steppedSimPerTest(): (opts?: Parameters<typeof startSteppedSim>[0]) => Promise<SteppedSim> {
  let current: SteppedSim | undefined;
  afterEach(async () => {
    const c = current;
    current = undefined;
    await c?.sim.stop();
  });
  return async (opts = {}) => {
    const before = current;
    current = undefined;
    await before?.sim.stop();
    current = await startSteppedSim(opts);
    return current;
  };
}

/**
 * Runs `intervals` statefile intervals on a stepped simulator, tick by tick. After every tick each host
 * in `still` has the very slot it had at the start (never rewritten), then `eachTick` runs; after each
 * interval each host in `advancing` has written its slot exactly once (sequence + 1: a live host writes
 * once per interval, and FAST_TIMING's interval is a whole number of ticks), then `eachInterval` runs.
 */
export async function overStatefileIntervals(
  c: SteppedSim,
  {
    intervals = 5,
    advancing = [],
    still = [],
    eachTick,
    eachInterval,
  }: {
    intervals?: number;
    advancing?: string[];
    still?: string[];
    eachTick?: (now: number) => void | Promise<void>;
    eachInterval?: (i: number, now: number) => void | Promise<void>;
  },
): Promise<void> {
  const { sim } = c;
  const interval = sim.pool.timing.statefileIntervalMs;
  if (interval % sim.pool.timing.tickMs !== 0) throw new Error('statefile interval is not a whole number of ticks');
  const frozen = still.map((h) => [h, slotOf(sim, h)] as const);
  const seq = new Map(advancing.map((h) => [h, slotOf(sim, h).sequence]));
  const start = c.now();
  for (let i = 1; i <= intervals; i++) {
    await c.advance(interval, async (now) => {
      for (const [h, slot] of frozen) expect(slotOf(sim, h), `${h}'s slot ${now - start} ms on`).toEqual(slot);
      await eachTick?.(now);
    });
    for (const h of advancing) {
      const s = slotOf(sim, h).sequence;
      expect(s, `${h}'s slot sequence after statefile interval ${i}`).toBe(seq.get(h)! + 1);
      seq.set(h, s);
    }
    await eachInterval?.(i, c.now());
  }
}

/**
 * A host powered on (or rebooted) at `since` boots for timing.bootMs: stepped tick by tick to that
 * moment, it is refused on both homes, not live and not writing its slot before it, and at the tick that
 * reaches it answers on both homes and has written its slot once (with HA on). It is live from that tick
 * with HA off (its Pool.hello sets live), and with HA on from the master's first HA monitor pass at or
 * after it (xapi's monitor writes live from xhad's liveset; its hello does not), not before. The host
 * must not be live at `since`: the master has to have marked it dead first.
 */
export async function expectBootsAfterBootMs(c: SteppedSim, hostName: string, since: number): Promise<void> {
  const { sim } = c;
  const h = sim.pool.host(hostName);
  const db = sim.pool.built.db;
  const live = () => db.peek('host_metrics', h.built.metricsRef).live;
  const addresses = [...h.built.addresses];
  const seq = slotOf(sim, hostName).sequence;
  const bootMs = sim.pool.timing.bootMs;
  const ha = sim.pool.haEnabled();
  if (c.now() !== since) throw new Error(`expectBootsAfterBootMs: the clock moved since power-on (${c.now() - since} ms)`);
  if (live() !== false)
    throw new Error(`expectBootsAfterBootMs: ${hostName} is still live at power-on (the master has not marked it dead yet)`);
  let booted = false;
  let liveAt: number | undefined;
  await c.advance(bootMs, async (now) => {
    booted = now - since >= bootMs;
    const what = `${hostName} ${now - since} ms after power-on (boot takes ${bootMs} ms)`;
    expect(await Promise.all(addresses.map((a) => tcpProbe(a, sim.port))), what).toEqual(
      booted ? ['open', 'open'] : ['refused', 'refused'],
    );
    expect(slotOf(sim, hostName).sequence, what).toBe(booted && ha ? seq + 1 : seq);
    const pass = !ha || sim.pool.masterPasses.monitor === now;
    expect(live(), what).toBe(booted && pass);
    if (booted && pass) liveAt = now;
  });
  expect(booted, `${hostName} reached ${bootMs} ms after power-on`).toBe(true);
  if (liveAt !== undefined) return;
  // HA on: live at the master's next monitor pass, not before.
  const limit = sim.pool.timing.haMonitorIntervalMs;
  const bootedAt = c.now();
  await c.advance(limit, (now) => {
    if (liveAt !== undefined) return;
    const pass = sim.pool.masterPasses.monitor === now;
    expect(live(), `${hostName} ${now - bootedAt} ms after it booted (${pass ? 'a monitor pass' : 'no monitor pass yet'})`).toBe(pass);
    if (pass) liveAt = now;
  });
  expect(liveAt, `${hostName} live at the first monitor pass after it booted`).toBeDefined();
}

/**
 * How long after it was last heard and last wrote its slot a host that lost both paths (crash, power-off)
 * leaves xhad's liveset: xhad's timeout, then the fault handler's sleep (xha daemon/sm.c).
 */
export function bothPathsDropMs(sim: Simulator): number {
  return sim.pool.xhadTimeoutMs() + sim.pool.livesetDropDelayMs();
}

/**
 * How long after it was last heard (network cut) or last wrote its slot (storage cut) a running host that
 * lost one path leaves xhad's liveset: xhad's timeout, the fault handler's consistent-view timeout (the
 * views never agree), its sleep, extended by xhad's timeout (the host is still in the other domain).
 */
export function onePathDropMs(sim: Simulator): number {
  return 3 * sim.pool.xhadTimeoutMs() + sim.pool.livesetDropDelayMs();
}

/**
 * When the master's HA monitor passes run: every haMonitorIntervalMs since its process started (the stepped
 * clock's start, unless the master changed). A pass runs at the first tick at or after it is due, so this
 * holds while the clock advances by whole ticks and the interval is a whole number of ticks.
 */
export function monitorPassAtOrAfter(c: SteppedSim, at: number, processStart = SIM_CLOCK_START): number {
  const every = c.sim.pool.timing.haMonitorIntervalMs;
  return processStart + Math.max(1, Math.ceil((at - processStart) / every)) * every;
}
