/** Starting simulators for tests: fast timing, random ports, stopped by the test even on failure. */
import { existsSync } from 'node:fs';
import { expect } from 'vitest';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { generatePoolSpec, type PoolSpec } from '../../simulator/pool-spec.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../simulator/simulator.ts';
import { decodeStatefile, type StatefileHostSlot } from '../../core/statefile/layout.ts';

export const FAST_TIMING = { tickMs: 40, statefileIntervalMs: 80, bootMs: 120, autoElectMasterMs: null };
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
 * reaches it answers on both homes, is live and has written its slot once.
 */
export async function expectBootsAfterBootMs(c: SteppedSim, hostName: string, since: number): Promise<void> {
  const { sim } = c;
  const h = sim.pool.host(hostName);
  const db = sim.pool.built.db;
  const addresses = [...h.built.addresses];
  const seq = slotOf(sim, hostName).sequence;
  const bootMs = sim.pool.timing.bootMs;
  if (c.now() !== since) throw new Error(`expectBootsAfterBootMs: the clock moved since power-on (${c.now() - since} ms)`);
  let booted = false;
  await c.advance(bootMs, async (now) => {
    booted = now - since >= bootMs;
    const what = `${hostName} ${now - since} ms after power-on (boot takes ${bootMs} ms)`;
    expect(await Promise.all(addresses.map((a) => tcpProbe(a, sim.port))), what).toEqual(
      booted ? ['open', 'open'] : ['refused', 'refused'],
    );
    expect(db.peek('host_metrics', h.built.metricsRef).live, what).toBe(booted);
    expect(slotOf(sim, hostName).sequence, what).toBe(booted ? seq + 1 : seq);
  });
  expect(booted, `${hostName} reached ${bootMs} ms after power-on`).toBe(true);
}
