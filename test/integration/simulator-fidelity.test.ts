/**
 * The simulator writes what xapi writes, when xapi writes it, and nothing else:
 *
 * - a host's heartbeat PBD (`currently_attached`, multipath legs `mpath-<SCSIid>`) is written by the host
 *   itself (its plug and multipath scripts, through the master's database): only while it runs and
 *   reaches the live master on the management network. Dead, fenced, cut off, or with the master down,
 *   the PBD stays exactly as it last wrote it;
 * - statefile slots, `host.ha_statefiles` and `host.ha_network_peers` come from xhad, which runs only
 *   with `pool.ha_enabled`; so does the master election (xhad's master lock).
 *
 * Every simulator here runs on a manual clock (startSteppedSim): a claim that something never changes is
 * checked at every tick of the statefile intervals it covers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import type { Simulator } from '../../simulator/simulator.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import { applyFault } from '../../simulator/faults.ts';
import { overStatefileIntervals, readSlots, slotOf, startSteppedSim, type SteppedSim } from '../helpers/sim.ts';

let current: SteppedSim | undefined;
afterEach(async () => {
  const c = current;
  current = undefined;
  await c?.sim.stop();
});

/** Starts this test's stepped simulator; afterEach stops it, pass or fail. */
async function start(opts: Parameters<typeof startSteppedSim>[0] = {}): Promise<SteppedSim> {
  current = await startSteppedSim(opts);
  return current;
}

const names = (s: Simulator) => s.pool.hosts.map((h) => h.built.name);
const others = (s: Simulator, name: string) => names(s).filter((n) => n !== name);

/** A copy of the host's heartbeat PBD record as the database holds it now. */
function pbd(s: Simulator, name: string): Record<string, unknown> {
  return structuredClone(s.pool.built.db.peek('PBD', s.pool.host(name).built.heartbeatPbdRef));
}

function legs(s: Simulator, name: string): string {
  return (pbd(s, name).other_config as Record<string, string>)[`mpath-${s.pool.built.heartbeatScsiId}`]!;
}

function hostRec(s: Simulator, name: string): Record<string, unknown> {
  return structuredClone(s.pool.built.db.peek('host', s.pool.host(name).built.ref));
}

function metrics(s: Simulator, name: string): Record<string, unknown> {
  return structuredClone(s.pool.built.db.peek('host_metrics', s.pool.host(name).built.metricsRef));
}

/** Checks after every tick (over `intervals` statefile intervals) that each named host's PBD is the one given. */
async function pbdFrozen(
  c: SteppedSim,
  frozen: Record<string, Record<string, unknown>>,
  opts: Parameters<typeof overStatefileIntervals>[1] = {},
) {
  const start = c.now();
  await overStatefileIntervals(c, {
    ...opts,
    eachTick: async (now) => {
      for (const [name, rec] of Object.entries(frozen)) expect(pbd(c.sim, name), `${name}'s PBD ${now - start} ms on`).toEqual(rec);
      await opts.eachTick?.(now);
    },
  });
}

describe('a host writes its own heartbeat PBD, only while it reaches the master', () => {
  it('a crashed host keeps its last PBD (attached, its last legs) for ever; rebooted, it writes fresh values', async () => {
    const c = await start();
    const { sim } = c;
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-02', homes: [1] });
    await c.advance(sim.pool.timing.tickMs);
    expect(legs(sim, 'host-02')).toBe('[1, 2]'); // written by host-02 at the first tick after the cut
    const before = pbd(sim, 'host-02');
    expect(before.currently_attached).toBe(true);
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-02' });
    await sim.settle();
    // Dead: both legs are down now, yet nobody writes its PBD (xapi's master writes nothing there).
    await pbdFrozen(c, { 'host-02': before }, { intervals: 6, still: ['host-02'], advancing: others(sim, 'host-02') });
    // heal reboots it with both legs back; during the boot it still writes nothing, at the boot tick it writes.
    const healedAt = c.now();
    applyFault(sim.pool, { kind: 'heal', host: 'host-02' });
    await sim.settle();
    let bootedAt: number | undefined;
    await c.advance(sim.pool.timing.bootMs, (now) => {
      if (sim.pool.isUp(sim.pool.host('host-02'), now)) {
        bootedAt ??= now;
        expect(legs(sim, 'host-02'), `${now - healedAt} ms after heal`).toBe('[2, 2]');
        expect(pbd(sim, 'host-02').currently_attached).toBe(true);
      } else expect(pbd(sim, 'host-02'), `${now - healedAt} ms after heal (booting)`).toEqual(before);
    });
    expect(bootedAt! - healedAt).toBe(sim.pool.timing.bootMs);
  });

  it('management network cut on every home: the running host cannot write, so a storage leg cut later does not show; network back, it does', async () => {
    const c = await start();
    const { sim } = c;
    await c.advance(2 * sim.pool.timing.statefileIntervalMs);
    const before = pbd(sim, 'host-03');
    expect(before).toMatchObject({ currently_attached: true });
    expect(legs(sim, 'host-03')).toBe('[2, 2]');
    applyFault(sim.pool, { kind: 'network-down', host: 'host-03' });
    await c.advance(sim.pool.timing.tickMs);
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-03', homes: [1] });
    // host-03 still runs and writes its slot (one leg left), but reaches no master: its PBD stays as it was.
    await pbdFrozen(
      c,
      { 'host-03': before },
      {
        intervals: 6,
        advancing: names(sim),
        eachTick: () => {
          expect(sim.pool.isUp(sim.pool.host('host-03'))).toBe(true);
          expect(metrics(sim, 'host-03').live).toBe(false);
        },
      },
    );
    // The network comes back with the storage leg still cut (heal, and the same leg cut again at the
    // same instant): at the next tick host-03 writes what it sees.
    applyFault(sim.pool, { kind: 'heal', host: 'host-03' });
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-03', homes: [1] });
    await sim.settle();
    await c.advance(sim.pool.timing.tickMs);
    expect(metrics(sim, 'host-03').live).toBe(true);
    expect(pbd(sim, 'host-03')).toMatchObject({ currently_attached: true });
    expect(legs(sim, 'host-03')).toBe('[1, 2]');
  });

  it('a storage leg cut on hosts that reach the master (a slave, and the master itself) shows at the next tick and stays', async () => {
    const c = await start();
    const { sim } = c;
    const master = sim.pool.master.built.name;
    const slave = others(sim, master)[0]!;
    applyFault(sim.pool, { kind: 'storage-down', host: slave, homes: [0] });
    applyFault(sim.pool, { kind: 'storage-down', host: master, homes: [1] });
    await c.advance(sim.pool.timing.tickMs);
    await overStatefileIntervals(c, {
      advancing: names(sim),
      eachTick: () => {
        for (const h of [slave, master]) {
          expect(legs(sim, h), h).toBe('[1, 2]');
          expect(pbd(sim, h).currently_attached, h).toBe(true);
        }
      },
    });
  });

  it('master crash: nobody writes the database (PBDs, hosts, metrics); after the election the survivors write again, the dead master never', async () => {
    const autoElectMasterMs = 5 * 80;
    const c = await start({ timing: { autoElectMasterMs } });
    const { sim } = c;
    await c.advance(2 * sim.pool.timing.statefileIntervalMs);
    const old = sim.pool.master.built.name;
    const slaves = others(sim, old);
    const snapshot = () =>
      Object.fromEntries(names(sim).map((n) => [n, { pbd: pbd(sim, n), host: hostRec(sim, n), metrics: metrics(sim, n) }]));
    const before = snapshot();
    const crashedAt = c.now();
    applyFault(sim.pool, { kind: 'master-crash' });
    applyFault(sim.pool, { kind: 'storage-down', host: slaves[0]!, homes: [1] }); // a running slave loses a leg
    await sim.settle();
    // Until the election (statefile intervals whole: 400 ms = 5 of 80 ms), nothing in the database moves.
    let elected = false;
    await overStatefileIntervals(c, {
      intervals: 4,
      still: [old],
      advancing: slaves,
      eachTick: (now) => {
        expect(sim.pool.master.built.name).toBe(old);
        expect(snapshot(), `${now - crashedAt} ms after the master crash`).toEqual(before);
      },
    });
    await c.advance(2 * sim.pool.timing.statefileIntervalMs, (now) => {
      if (sim.pool.master.built.name === old) expect(snapshot(), `${now - crashedAt} ms after the master crash`).toEqual(before);
      else if (!elected) elected = true;
    });
    expect(elected).toBe(true);
    // The new master is up: the slave that lost a leg writes it, the dead master's PBD stays as it was.
    await pbdFrozen(
      c,
      { [old]: before[old]!.pbd },
      { intervals: 3, still: [old], eachTick: () => expect(legs(sim, slaves[0]!)).toBe('[1, 2]') },
    );
  });

  it('power-off through the power file (fence): the PBD stays as the host last wrote it; powered on, it writes again', async () => {
    const c = await start();
    const { sim } = c;
    const h = sim.pool.host('host-02');
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-02', homes: [0] });
    await c.advance(sim.pool.timing.tickMs);
    const before = pbd(sim, 'host-02');
    expect(before.currently_attached).toBe(true);
    expect(legs(sim, 'host-02')).toBe('[1, 2]');
    writeFileSync(sim.pool.powerFile(h), 'off'); // as fence_dummy --action=off writes it
    await pbdFrozen(c, { 'host-02': before }, { intervals: 6, still: ['host-02'], advancing: others(sim, 'host-02') });
    expect(h.power).toBe('off');
    expect(metrics(sim, 'host-02').live).toBe(false);
    // The leg comes back while it is off (heal leaves power alone), then the BMC powers it on: it writes
    // nothing while it boots, and its fresh legs once booted.
    applyFault(sim.pool, { kind: 'heal', host: 'host-02' });
    expect(h.power).toBe('off');
    writeFileSync(sim.pool.powerFile(h), 'on');
    await c.advance(sim.pool.timing.tickMs);
    expect(pbd(sim, 'host-02')).toEqual(before); // booting
    await c.advance(sim.pool.timing.bootMs);
    expect(legs(sim, 'host-02')).toBe('[2, 2]');
  });
});

describe('xhad runs only with HA on', () => {
  it('a pool built with HA off: no slot is ever written, ha_statefiles and ha_network_peers empty on every host, no election', async () => {
    const c = await start({
      spec: { ...generatePoolSpec({ hosts: 3, vms: 6, seed: 11 }), haEnabled: false },
      timing: { autoElectMasterMs: 2 * 80 },
    });
    const { sim } = c;
    expect(readSlots(sim.pool.statefilePath).map((s) => s.sequence)).toEqual([0, 0, 0]);
    const empty = () => {
      for (const n of names(sim)) {
        const h = hostRec(sim, n);
        expect(h.ha_statefiles, n).toEqual([]);
        expect(h.ha_network_peers, n).toEqual([]);
      }
    };
    empty();
    await overStatefileIntervals(c, { intervals: 6, still: names(sim), eachTick: empty });
    // The hosts still write their own PBDs (multipathing is not HA).
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-02', homes: [1] });
    await c.advance(sim.pool.timing.tickMs);
    expect(legs(sim, 'host-02')).toBe('[1, 2]');
    // No xhad, no master lock: a lost master stays lost even with an election delay set.
    const master = sim.pool.master.built.name;
    applyFault(sim.pool, { kind: 'master-crash' });
    await sim.settle();
    await overStatefileIntervals(c, {
      intervals: 6,
      still: names(sim),
      eachTick: () => {
        expect(sim.pool.master.built.name).toBe(master);
        empty();
      },
    });
    expect(sim.pool.eventLog().filter((e) => e.kind === 'master')).toEqual([]);
  });

  it('pool.ha_enabled flipped off on a running HA pool: slots stop, ha_statefiles and ha_network_peers stay as last written, no election', async () => {
    const c = await start({ timing: { autoElectMasterMs: 2 * 80 } });
    const { sim } = c;
    await c.advance(2 * sim.pool.timing.statefileIntervalMs);
    const statefile = sim.pool.built.statefileVdiRef;
    for (const n of names(sim)) {
      expect(hostRec(sim, n).ha_statefiles).toEqual([statefile]);
      expect(hostRec(sim, n).ha_network_peers).toHaveLength(3);
    }
    await overStatefileIntervals(c, { intervals: 1, advancing: names(sim) });
    sim.pool.built.db.update('pool', sim.pool.built.poolRef, { ha_enabled: false });
    const fields = () =>
      Object.fromEntries(names(sim).map((n) => [n, { s: hostRec(sim, n).ha_statefiles, p: hostRec(sim, n).ha_network_peers }]));
    const atFlip = fields();
    // What xhad would report changes (host-02 loses its storage and its network), yet with HA off nobody
    // writes these fields: xapi's disable_ha leaves them as its HA monitor last wrote them.
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-02' });
    applyFault(sim.pool, { kind: 'network-down', host: 'host-03' });
    await sim.settle();
    await overStatefileIntervals(c, { intervals: 6, still: names(sim), eachTick: () => expect(fields()).toEqual(atFlip) });
    expect(metrics(sim, 'host-03').live).toBe(false); // xapi's own heartbeat still runs without HA
    const master = sim.pool.master.built.name;
    applyFault(sim.pool, { kind: 'master-crash' });
    await sim.settle();
    await overStatefileIntervals(c, { intervals: 6, still: names(sim), eachTick: () => expect(sim.pool.master.built.name).toBe(master) });
    expect(sim.pool.eventLog().filter((e) => e.kind === 'master')).toEqual([]);
  });

  it('with HA on the same pool elects and writes slots (the two tests above differ only by pool.ha_enabled)', async () => {
    const c = await start({ timing: { autoElectMasterMs: 2 * 80 } });
    const { sim } = c;
    const master = sim.pool.master.built.name;
    applyFault(sim.pool, { kind: 'master-crash' });
    await sim.settle();
    await overStatefileIntervals(c, { intervals: 3, still: [master], advancing: others(sim, master) });
    expect(sim.pool.master.built.name).not.toBe(master);
    expect(slotOf(sim, others(sim, master)[0]!).sequence).toBeGreaterThan(0);
  });
});
