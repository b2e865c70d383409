/** The simulated pool's runtime on an injected clock: time only moves when the test says so. */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultTiming, SimulatedPool } from '../../simulator/pool.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import { readSlots } from '../helpers/sim.ts';

let pool: SimulatedPool | undefined;
afterEach(() => pool?.close());

function make(autoElectMasterMs: number | null = null) {
  let t = 1_000_000;
  const clock = { now: () => t, set: (v: number) => (t = v) };
  pool = new SimulatedPool({
    spec: generatePoolSpec({ hosts: 3, vms: 6, seed: 5 }),
    stateDir: mkdtempSync(join(tmpdir(), 'xenha-rt-')),
    addressBase: '127.0.0.1',
    now: clock.now,
    timing: { ...defaultTiming(30, true), tickMs: 100, statefileIntervalMs: 1000, bootMs: 5000, autoElectMasterMs },
  });
  return { pool, clock };
}

describe('simulated pool on an injected clock', () => {
  it('rewrites each slot once per statefile interval, not on every tick', () => {
    const { pool: p, clock } = make();
    const t0 = clock.now();
    for (let dt = 0; dt <= 3000; dt += 100) p.tick(t0 + dt);
    // writes at 0, 1000, 2000, 3000: the sequence stored by the last write is 3
    expect(readSlots(p.statefilePath).map((s) => s.sequence)).toEqual([3, 3, 3]);
  });

  it('a flap is down exactly in the first half of each period', () => {
    const { pool: p, clock } = make();
    const h = p.host('host-02');
    const t0 = clock.now();
    p.flap(h, 'storage', 1000, [0]);
    expect(p.storageUp(h, 0, t0 + 499)).toBe(false);
    expect(p.storageUp(h, 0, t0 + 500)).toBe(true);
    expect(p.storageUp(h, 0, t0 + 1000)).toBe(false);
    expect(p.storageUp(h, 1, t0 + 100)).toBe(true);
    expect(p.anyStorage(h, t0 + 100)).toBe(true);
  });

  it('a powered-on host is up only after its boot time', () => {
    const { pool: p, clock } = make();
    const h = p.host('host-03');
    p.powerOff(h, 'test');
    expect(p.isUp(h)).toBe(false);
    p.powerOn(h, 'test');
    expect(p.isUp(h, clock.now() + 4999)).toBe(false);
    expect(p.isUp(h, clock.now() + 5000)).toBe(true);
    expect(
      p
        .eventLog()
        .filter((e) => e.kind === 'power')
        .map((e) => e.detail.state),
    ).toEqual(['off', 'on']);
  });

  it('with election on, a new master exactly after the election delay; the lowest slot wins', () => {
    const { pool: p, clock } = make(2000);
    const old = p.master;
    p.crashMaster();
    const t0 = clock.now();
    p.tick(t0);
    p.tick(t0 + 1999);
    expect(p.master).toBe(old);
    p.tick(t0 + 2000);
    expect(p.master).not.toBe(old);
    expect(p.master.slot).toBe(Math.min(...p.hosts.filter((h) => h !== old).map((h) => h.slot)));
  });

  it('without a live master the database is not written', () => {
    const { pool: p, clock } = make();
    const h = p.host('host-02');
    p.crashMaster();
    p.crash(h);
    p.tick(clock.now() + 100);
    expect(p.built.db.peek('host_metrics', h.built.metricsRef).live).toBe(true); // stale, as on a real pool
  });
});
