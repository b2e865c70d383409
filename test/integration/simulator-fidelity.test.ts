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
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import type { Simulator } from '../../simulator/simulator.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import { applyFault } from '../../simulator/faults.ts';
import {
  PASSWORD,
  SIM_CLOCK_START,
  monitorPassAtOrAfter,
  overStatefileIntervals,
  readSlots,
  slotOf,
  steppedSimPerTest,
  tcpProbe,
  type SteppedSim,
} from '../helpers/sim.ts';
import { jsonRpc } from '../helpers/rpc.ts';

/** Starts this test's stepped simulator; it is stopped after the test, pass or fail. */
const start = steppedSimPerTest();

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
    // host-03 still runs and writes its slot (one leg left), but reaches no master: its PBD stays as it
    // was. It stays live over these intervals: xhad's fault handler drops a host that lost only its
    // network 3 T + the drop delay after it was last heard (pinned below), and it runs on meanwhile (no
    // self-fencing).
    await pbdFrozen(
      c,
      { 'host-03': before },
      {
        intervals: 6,
        advancing: names(sim),
        eachTick: () => {
          expect(sim.pool.isUp(sim.pool.host('host-03'))).toBe(true);
          expect(metrics(sim, 'host-03').live).toBe(true);
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

describe("a host's xapi writes its boot time once it starts and reaches the master", () => {
  it('other_config.boot_time is the boot in seconds as OCaml prints a float; a crash leaves it; a reboot writes the new one at the boot tick', async () => {
    const c = await start();
    const { sim } = c;
    const bootTime = (name: string) => (hostRec(sim, name).other_config as Record<string, string>).boot_time;
    // Every host booted bootMs before the clock started (its boot finished then).
    const initial = `${Math.floor((SIM_CLOCK_START - sim.pool.timing.bootMs) / 1000)}.`;
    for (const n of names(sim)) expect(bootTime(n), n).toBe(initial);
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-02' });
    await sim.settle();
    await c.advance(10 * sim.pool.timing.tickMs, () => expect(bootTime('host-02')).toBe(initial));
    const healedAt = c.now();
    applyFault(sim.pool, { kind: 'heal', host: 'host-02' });
    await sim.settle();
    await c.advance(sim.pool.timing.bootMs + sim.pool.timing.tickMs, (now) => {
      const up = sim.pool.isUp(sim.pool.host('host-02'), now);
      expect(bootTime('host-02'), `${now - healedAt} ms after heal`).toBe(up ? `${Math.floor(healedAt / 1000)}.` : initial);
    });
    expect(bootTime('host-02')).not.toBe(initial);
    for (const n of others(sim, 'host-02')) expect(bootTime(n), n).toBe(initial);
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

/**
 * The liveset tests' timing, several FAST_TIMING ticks (40 ms) apart so that "at the next pass" and "at
 * once" differ: a monitor pass every 5 ticks, xhad's timeout 10 ticks, the fault handler's sleep 2.
 */
const LIVESET_TIMING = {
  haMonitorIntervalMs: 200,
  xhadTimeoutMs: 400,
  livesetDropDelayMs: 80,
  statefileIntervalMs: 80,
  bootMs: 120,
};

/**
 * host_metrics.live (and host.enabled, tied to it) as xapi writes it: with HA on, by the master's HA
 * monitor from xhad's liveset, once per ha_monitor_interval (xapi_ha.ml process_liveset_on_master); with
 * HA off, by the master's DB GC pass from each slave's xapi heartbeats (db_gc.ml check_host_liveness).
 * Timings here are several ticks apart so that "at the next pass" and "at once" differ; every expected
 * moment is counted in ticks from the simulator's start (SIM_CLOCK_START), where the master's xapi
 * process starts.
 */
describe('host_metrics.live lags as xapi makes it lag', () => {
  const tick = 40;
  const live = (s: Simulator, n: string) => metrics(s, n).live;
  const enabled = (s: Simulator, n: string) => hostRec(s, n).enabled;
  const peers = (s: Simulator, n: string) => hostRec(s, n).ha_network_peers as string[];

  it('HA on: a crash stays live until the first monitor pass at or after last heard/written + xhad timeout + drop delay; a reboot is live at the first pass after it rejoins; ha_statefiles and ha_network_peers move only at passes, a crashed host keeping its last report until it is dropped', async () => {
    const { haMonitorIntervalMs: monitor, xhadTimeoutMs: xhad, livesetDropDelayMs: drop } = LIVESET_TIMING; // passes at t0 + 200 k
    const c = await start({ timing: LIVESET_TIMING });
    const { sim } = c;
    const t0 = SIM_CLOCK_START;
    expect(c.now()).toBe(t0);
    const isPass = (now: number) => (now - t0) % monitor === 0;
    const uuid = (n: string) => sim.pool.host(n).built.uuid;
    const all = names(sim).map(uuid);
    const haFields = () =>
      Object.fromEntries(names(sim).map((n) => [n, { s: hostRec(sim, n).ha_statefiles, p: hostRec(sim, n).ha_network_peers }]));
    // Every tick from here on: the HA fields change only at a monitor pass, and enabled follows live.
    let last = haFields();
    let changes = 0;
    const watch = (now: number) => {
      const cur = haFields();
      if (JSON.stringify(cur) !== JSON.stringify(last)) {
        expect(isPass(now), `ha_statefiles / ha_network_peers changed ${now - t0} ms after the start, not a monitor pass`).toBe(true);
        changes++;
      }
      last = cur;
      for (const n of names(sim)) expect(enabled(sim, n), n).toBe(live(sim, n));
    };
    await c.advance(4 * tick, watch); // t0 + 160: off the monitor's phase
    expect(sim.pool.masterPasses.monitor, 'no pass before t0 + 200').toBeNull();

    // host-02 crashes at t0 + 160, right after that tick heard it and it wrote its slot. It leaves the
    // master's xhad's heartbeat and statefile domains xhad's timeout later, at t0 + 560, together: the
    // fault handler finds them stable and consistent at once and decides to drop it; it sleeps the drop
    // delay and drops it from the liveset at t0 + 640. The first pass at or after that is t0 + 800.
    const h2 = sim.pool.host('host-02');
    const crashedAt = c.now();
    expect([crashedAt - t0, h2.lastSlotWrite - t0, sim.pool.master.lastHbReceipt[h2.slot]! - t0]).toEqual([160, 160, 160]);
    const decidedAt = crashedAt + xhad;
    const outAt = decidedAt + drop;
    const droppedAt = monitorPassAtOrAfter(c, outAt);
    expect([outAt - t0, droppedAt - t0]).toEqual([640, 800]);
    const peersAtCrash = hostRec(sim, 'host-02').ha_network_peers;
    expect(peersAtCrash).toEqual(all);
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-02' });
    await sim.settle();
    await c.advance(droppedAt + 2 * monitor - c.now(), (now) => {
      watch(now);
      const at = `${now - t0} ms after the start`;
      expect(sim.pool.inLiveset(h2, now), at).toBe(now < outAt);
      expect(sim.pool.xhadState()!.faultHandler, at).toEqual(
        now >= decidedAt && now < outAt ? { phase: 'sleep', since: decidedAt, until: outAt, dropping: ['host-02'], extended: false } : null,
      );
      expect(live(sim, 'host-02'), at).toBe(now < droppedAt);
      expect(live(sim, 'host-01'), at).toBe(true);
      expect(live(sim, 'host-03'), at).toBe(true);
      // The crashed host keeps its last report (it heard everyone, it had the statefile) while it is in
      // the liveset; xhad answers no peers and no statefile access for a host out of it (xha
      // daemon/sc_func.c), so both empty at the pass that drops it.
      expect(hostRec(sim, 'host-02').ha_network_peers, at).toEqual(now < droppedAt ? peersAtCrash : []);
      expect(hostRec(sim, 'host-02').ha_statefiles, at).toEqual(now < droppedAt ? [sim.pool.built.statefileVdiRef] : []);
      // host-02 leaves the master's heartbeat domain at t0 + 560, and the master's ha_network_peers
      // (its own heartbeat domain) at the pass after: t0 + 600, before it is dropped from the liveset.
      expect(peers(sim, 'host-01').includes(uuid('host-02')), at).toBe(now < t0 + 600);
    });
    expect(changes, 'host-01 and host-03 ha_network_peers at t0 + 600; host-02 both fields at t0 + 800').toBe(2);

    // Reboot at t0 + 1240 (off-phase): up at t0 + 1360, heard and writing its slot there, so it joins
    // the liveset at once (every host heard and seen: xhad's start-up waits are over), and is live only
    // at the next pass, t0 + 1400: its Pool.hello does not set live with HA on (xapi_pool.ml hello), the
    // monitor does.
    await c.advance(tick, watch);
    const healedAt = c.now();
    expect(healedAt - t0).toBe(1240);
    applyFault(sim.pool, { kind: 'heal', host: 'host-02' });
    await sim.settle();
    const upAt = healedAt + sim.pool.timing.bootMs;
    const liveAt = t0 + 1400;
    await c.advance(liveAt + monitor - c.now(), (now) => {
      watch(now);
      const at = `${now - t0} ms after the start (host-02 up at ${upAt - t0})`;
      expect(sim.pool.isUp(h2, now), at).toBe(now >= upAt);
      expect(sim.pool.inLiveset(h2, now), at).toBe(now >= upAt);
      expect(live(sim, 'host-02'), at).toBe(now >= liveAt);
      // The master hears it again from t0 + 1360; its own ha_network_peers, and host-02's report, show at
      // the same pass.
      expect(peers(sim, 'host-01').includes(uuid('host-02')), at).toBe(now >= liveAt);
      expect(peers(sim, 'host-02'), at).toEqual(now >= liveAt ? all : []);
      expect(hostRec(sim, 'host-02').ha_statefiles, at).toEqual(now >= liveAt ? [sim.pool.built.statefileVdiRef] : []);
    });
    expect(changes, 'and host-02 both fields, host-01 and host-03 ha_network_peers at t0 + 1400').toBe(3);
  });

  it('HA off: a crashed slave stays live until a GC pass finds its last heartbeat hostAssumedDeadMs old; the master stays live; a booted slave is live at once', async () => {
    const gc = 3 * tick; // GC passes at t0 + 120 k
    const heartbeat = 5 * tick; // each slave tickles at t0 + 200 k (its first at t0, when it joined)
    const dead = 15 * tick;
    const c = await start({
      spec: { ...generatePoolSpec({ hosts: 3, vms: 6, seed: 11 }), haEnabled: false },
      timing: { dbGcIntervalMs: gc, hostHeartbeatIntervalMs: heartbeat, hostAssumedDeadMs: dead, bootMs: 3 * tick },
    });
    const { sim } = c;
    const t0 = SIM_CLOCK_START;
    const master = sim.pool.master.built.name;
    expect(master).toBe('host-01');
    for (const n of names(sim)) expect(live(sim, n), n).toBe(true);
    await c.advance(11 * tick); // t0 + 440
    // host-02's last heartbeat was at t0 + 400; it is 600 ms old at t0 + 1000, and the first GC pass at
    // or after that is t0 + 1080.
    const crashedAt = c.now();
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-02' });
    await sim.settle();
    const deadAt = t0 + 1080;
    expect(deadAt - crashedAt).toBe(640);
    await c.advance(deadAt + gc - c.now(), (now) => {
      const at = `${now - t0} ms after the start, ${now - crashedAt} ms after the crash`;
      expect(live(sim, 'host-02'), at).toBe(now < deadAt);
      expect(enabled(sim, 'host-02'), at).toBe(now < deadAt);
      expect(live(sim, master), at).toBe(true); // the master never checks itself
      expect(live(sim, 'host-03'), at).toBe(true);
    });
    // Rebooted (at t0 + 1240): during its boot nothing changes; the tick it is up (t0 + 1360) its
    // Pool.hello sets live at once (and tickles its heartbeat), before any GC pass.
    await c.advance(tick);
    const healedAt = c.now();
    applyFault(sim.pool, { kind: 'heal', host: 'host-02' });
    await sim.settle();
    const upAt = healedAt + sim.pool.timing.bootMs;
    expect((upAt - t0) % gc, 'the boot tick is not a GC pass').not.toBe(0);
    await c.advance(upAt + tick - c.now(), (now) => {
      expect(live(sim, 'host-02'), `${now - healedAt} ms after the heal`).toBe(now >= upAt);
    });
    // No heartbeat without HA writes anything else: no slot, no HA field.
    expect(readSlots(sim.pool.statefilePath).map((s) => s.sequence)).toEqual([0, 0, 0]);
  });

  it('HA off: a slave cut from the master stops its heartbeats and goes dead at a GC pass; back, it is live at the GC pass after its next heartbeat', async () => {
    const gc = 3 * tick;
    const heartbeat = 5 * tick;
    const dead = 15 * tick;
    const c = await start({
      spec: { ...generatePoolSpec({ hosts: 3, vms: 6, seed: 11 }), haEnabled: false },
      timing: { dbGcIntervalMs: gc, hostHeartbeatIntervalMs: heartbeat, hostAssumedDeadMs: dead },
    });
    const { sim } = c;
    const t0 = SIM_CLOCK_START;
    await c.advance(11 * tick); // t0 + 440: host-03's last heartbeat was at t0 + 400
    applyFault(sim.pool, { kind: 'network-down', host: 'host-03' });
    await sim.settle();
    const deadAt = t0 + 1080; // 600 ms after t0 + 400, at a GC pass
    await c.advance(t0 + 1120 - c.now(), (now) => expect(live(sim, 'host-03'), `${now - t0} ms after the start`).toBe(now < deadAt));
    // The network comes back at t0 + 1120 (the host keeps running: no new Pool.hello). Its heartbeat
    // thread kept its 200 ms period (t0 + 1200 is the next tickle), and the first GC pass after it is
    // t0 + 1200 itself: live again there.
    applyFault(sim.pool, { kind: 'heal', host: 'host-03' });
    await sim.settle();
    const backAt = t0 + 1200;
    await c.advance(backAt + gc - c.now(), (now) => expect(live(sim, 'host-03'), `${now - t0} ms after the start`).toBe(now >= backAt));
  });

  it('a new master starts with an empty heartbeat table (HA off): a dead slave it never heard from is live again from its first GC pass, for hostAssumedDeadMs', async () => {
    const gc = 3 * tick;
    const dead = 15 * tick;
    const c = await start({
      spec: { ...generatePoolSpec({ hosts: 3, vms: 6, seed: 11 }), haEnabled: false },
      timing: { dbGcIntervalMs: gc, hostHeartbeatIntervalMs: 5 * tick, hostAssumedDeadMs: dead },
    });
    const { sim } = c;
    const t0 = SIM_CLOCK_START;
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-02' }); // last heartbeat at t0
    await sim.settle();
    await c.advance(t0 + 720 - c.now()); // dead at the GC pass at t0 + 600
    expect(live(sim, 'host-02')).toBe(false);
    // designate_new_master to host-03 at t0 + 720: its xapi has never heard from host-02. Its first GC
    // pass, one interval after it takes over, starts host-02's timer afresh (Clock.Timer.start on first sight) and so
    // writes live = true (db_gc.ml check_host_liveness); the pass once that timer has run out, false.
    const x = sim.info().masterUrl;
    const login = await jsonRpc(x, 'session.login_with_password', ['root', PASSWORD]);
    const h3 = sim.pool.host('host-03').built.ref;
    expect((await jsonRpc(x, 'pool.designate_new_master', [login.result, h3])).error).toBeUndefined();
    const changedAt = c.now();
    const firstPass = changedAt + tick + gc; // host-03's xapi takes over at the next tick

    const deadAgain = firstPass + Math.ceil(dead / gc) * gc; // 600 ms after firstPass, at a pass
    await c.advance(deadAgain + gc - c.now(), (now) => {
      const at = `${now - changedAt} ms after the master change`;
      expect(live(sim, 'host-02'), at).toBe(now >= firstPass && now < deadAgain);
      expect(live(sim, 'host-03'), at).toBe(true);
      expect(live(sim, 'host-01'), at).toBe(true); // the old master, now a slave: its Pool.hello to host-03
    });
  });
});

/**
 * xhad's liveset as xha computes it (daemon/sm.c), as the master's HA monitor then writes it: a host
 * stays in the liveset only while it is in both of xhad's domains, heard on the network heartbeat and
 * seen writing its statefile slot. Leaving either starts xhad's fault handler, which drops it later:
 *
 * - both paths gone (a crash): at last heard/written + T + the drop delay (its phase-4 sleep);
 * - one path gone (the host still runs: in real life it fences itself, not simulated): xha's phase 2
 *   waits its whole timeout max(T1, T2) for views that never agree, and its phase-4 sleep is extended
 *   by min(T1, T2) because the host is still in the other domain, so at last heard (or written) + T +
 *   T + the drop delay + T.
 *
 * A host back in both domains rejoins once no fault handler runs, on heartbeats and slot writes since
 * its xhad (re)started. Every expected moment is counted in ticks from the start (t0 = SIM_CLOCK_START),
 * where the master's xapi process starts its monitor: passes at t0 + 200 k.
 */
describe("xhad's liveset: both domains, dropped by the fault handler", () => {
  const tick = 40;
  const { haMonitorIntervalMs: monitor, xhadTimeoutMs: xhad, livesetDropDelayMs: drop } = LIVESET_TIMING;
  const t0 = SIM_CLOCK_START;
  const live = (s: Simulator, n: string) => metrics(s, n).live;
  const uuid = (s: Simulator, n: string) => s.pool.host(n).built.uuid;
  const statefile = (s: Simulator) => [s.pool.built.statefileVdiRef];

  async function startLiveset(): Promise<SteppedSim> {
    const c = await start({ timing: LIVESET_TIMING });
    expect(c.now()).toBe(t0);
    await c.advance(4 * tick); // t0 + 160: every host heard and its slot written at this tick
    return c;
  }

  /** Checks at every tick that live, enabled and the HA fields move only at monitor passes. */
  function onlyAtPasses(s: Simulator): (now: number) => void {
    const fields = () =>
      JSON.stringify(names(s).map((n) => [live(s, n), hostRec(s, n).enabled, hostRec(s, n).ha_statefiles, hostRec(s, n).ha_network_peers]));
    let last = fields();
    return (now) => {
      const cur = fields();
      if (cur !== last) expect((now - t0) % monitor, `the pool's HA fields changed ${now - t0} ms after the start`).toBe(0);
      last = cur;
    };
  }

  it('network cut on every home: the host keeps running and writing its slot, leaves the heartbeat domain at T, and the liveset at T + T + drop delay + T; live false at the first pass after', async () => {
    const c = await startLiveset();
    const { sim } = c;
    const h3 = sim.pool.host('host-03');
    const cutAt = c.now();
    expect(sim.pool.master.lastHbReceipt[h3.slot]).toBe(cutAt); // last heard at t0 + 160
    applyFault(sim.pool, { kind: 'network-down', host: 'host-03' });
    await sim.settle();
    const outOfHb = cutAt + xhad; // t0 + 560: the fault handler starts; its slot is fresh, so stable at once
    const decidedAt = outOfHb + xhad; // phase 2 never agrees (host-03 hears only itself): its timeout runs out
    const outAt = decidedAt + drop + xhad; // phase 4 sleeps the drop delay, extended by T (host-03 still in the statefile domain)
    const droppedAt = monitorPassAtOrAfter(c, outAt);
    expect([outOfHb - t0, decidedAt - t0, outAt - t0, droppedAt - t0]).toEqual([560, 960, 1440, 1600]);
    const seq = slotOf(sim, 'host-03').sequence;
    const watch = onlyAtPasses(sim);
    await c.advance(droppedAt + monitor - c.now(), (now) => {
      watch(now);
      const at = `${now - t0} ms after the start (cut at ${cutAt - t0})`;
      expect(sim.pool.isUp(h3, now), at).toBe(true);
      expect(sim.pool.xhadState()!.faultHandler, at).toEqual(
        now < outOfHb
          ? null
          : now < decidedAt
            ? { phase: 'consistent-view', since: outOfHb }
            : now < outAt
              ? { phase: 'sleep', since: decidedAt, until: outAt, dropping: ['host-03'], extended: true }
              : null,
      );
      expect(sim.pool.inLiveset(h3, now), at).toBe(now < outAt);
      expect(live(sim, 'host-03'), at).toBe(now < droppedAt);
      // In the liveset xhad answers statefile access true (Survival Rule 1), out of it false.
      expect(hostRec(sim, 'host-03').ha_statefiles, at).toEqual(now < droppedAt ? statefile(sim) : []);
      // The master's own peers: its heartbeat domain, without host-03 from the pass after t0 + 560.
      expect((hostRec(sim, 'host-01').ha_network_peers as string[]).includes(uuid(sim, 'host-03')), at).toBe(now < t0 + 600);
      // host-03's own report comes from its slot (more recent than its last heartbeat): every host while
      // it still counted them heard, then only itself; nothing once the fault handler took it out of the
      // statefile domain (t0 + 960), nor out of the liveset.
      const own = hostRec(sim, 'host-03').ha_network_peers;
      expect(own, at).toEqual(now < t0 + 600 ? names(sim).map((n) => uuid(sim, n)) : now < t0 + 1000 ? [uuid(sim, 'host-03')] : []);
    });
    // It wrote its slot every statefile interval throughout.
    expect(slotOf(sim, 'host-03').sequence - seq).toBe(Math.floor((c.now() - cutAt) / (2 * tick)));

    // Back on the network (not rebooted): its xhad counts as restarted when it was dropped, so it
    // rejoins on its first heartbeat heard since (t0 + 1840, the tick after the heal) and is live at the
    // pass after: t0 + 2000.
    applyFault(sim.pool, { kind: 'heal', host: 'host-03' });
    await sim.settle();
    const healedAt = c.now();
    const rejoinAt = healedAt + tick;
    const liveAt = monitorPassAtOrAfter(c, rejoinAt);
    expect([healedAt - t0, liveAt - t0]).toEqual([1800, 2000]);
    await c.advance(liveAt + monitor - c.now(), (now) => {
      const at = `${now - t0} ms after the start (healed at ${healedAt - t0})`;
      expect(sim.pool.inLiveset(h3, now), at).toBe(now >= rejoinAt);
      expect(live(sim, 'host-03'), at).toBe(now >= liveAt);
      expect(hostRec(sim, 'host-03').ha_statefiles, at).toEqual(now >= liveAt ? statefile(sim) : []);
    });
  });

  it('storage cut on both legs: the host keeps running and answering, its slot stops; it leaves the statefile domain at T and the liveset at T + T + drop delay + T; live and ha_statefiles change at the first pass after', async () => {
    const c = await startLiveset();
    const { sim } = c;
    const h2 = sim.pool.host('host-02');
    const cutAt = c.now();
    expect(h2.lastSlotWrite).toBe(cutAt); // last written at t0 + 160
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-02' });
    await sim.settle();
    const outOfSf = cutAt + xhad;
    const decidedAt = outOfSf + xhad; // phase 2: host-02 sees no slot change, we do: never the same view
    const outAt = decidedAt + drop + xhad; // extended: host-02 is still heard
    const droppedAt = monitorPassAtOrAfter(c, outAt);
    expect([outOfSf - t0, decidedAt - t0, outAt - t0, droppedAt - t0]).toEqual([560, 960, 1440, 1600]);
    const slot = slotOf(sim, 'host-02');
    const watch = onlyAtPasses(sim);
    const uuid2 = uuid(sim, 'host-02');
    await c.advance(droppedAt + monitor - c.now(), async (now) => {
      watch(now);
      const at = `${now - t0} ms after the start (cut at ${cutAt - t0})`;
      expect(slotOf(sim, 'host-02'), at).toEqual(slot);
      expect(sim.pool.inLiveset(h2, now), at).toBe(now < outAt);
      expect(live(sim, 'host-02'), at).toBe(now < droppedAt);
      // Survival Rule 1: xhad answers statefile access true for every host in the liveset, host-02
      // included, until it drops it; the simulator does not fence it meanwhile.
      expect(hostRec(sim, 'host-02').ha_statefiles, at).toEqual(now < droppedAt ? statefile(sim) : []);
      // host-02 is heard throughout: in the master's heartbeat domain but while the fault handler has
      // taken it out (from its decision at t0 + 960 to its end at t0 + 1440: passes t0 + 1000 to 1400).
      const inMasterPeers = (hostRec(sim, 'host-01').ha_network_peers as string[]).includes(uuid2);
      expect(inMasterPeers, at).toBe(now < t0 + 1000 || now >= t0 + 1600);
      expect((hostRec(sim, 'host-02').ha_network_peers as string[]).length, at).toBe(now < droppedAt ? 3 : 0);
    });
    expect(await Promise.all(h2.built.addresses.map((a) => tcpProbe(a, sim.port)))).toEqual(['open', 'open']);
  });

  it('a rebooted host joins once xhad has started up: at once when it hears every host, else T after it came up', async () => {
    const c = await startLiveset();
    const { sim } = c;
    const [h2, h3] = [sim.pool.host('host-02'), sim.pool.host('host-03')];
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-02' });
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-03' });
    await sim.settle();
    const outAt = c.now() + xhad + drop; // t0 + 640, both at once
    await c.advance(t0 + 1240 - c.now());
    expect(sim.pool.xhadState()!.liveset).toEqual(['host-01']);
    expect([live(sim, 'host-02'), live(sim, 'host-03')]).toEqual([false, false]);
    expect(outAt - t0).toBe(640);
    // host-02 reboots at t0 + 1240 and is up at t0 + 1360; host-03 stays down, so host-02's xhad waits
    // its start-up timeout for it (wait_all_hosts_up_on_heartbeat / _on_statefile) and joins at
    // t0 + 1760, live at the pass at t0 + 1800.
    applyFault(sim.pool, { kind: 'heal', host: 'host-02' });
    await sim.settle();
    const upAt = c.now() + sim.pool.timing.bootMs;
    const joinAt = upAt + xhad;
    const liveAt = monitorPassAtOrAfter(c, joinAt);
    expect([upAt - t0, joinAt - t0, liveAt - t0]).toEqual([1360, 1760, 1800]);
    await c.advance(liveAt + monitor - c.now(), (now) => {
      const at = `${now - t0} ms after the start (host-02 up at ${upAt - t0})`;
      expect(sim.pool.isUp(h2, now), at).toBe(now >= upAt);
      expect(sim.pool.inLiveset(h2, now), at).toBe(now >= joinAt);
      expect(live(sim, 'host-02'), at).toBe(now >= liveAt);
      expect(live(sim, 'host-03'), at).toBe(false);
    });
    // host-03 reboots now (t0 + 2000): every host up, so it joins the tick it is up (t0 + 2120) and is
    // live at the pass at t0 + 2200.
    applyFault(sim.pool, { kind: 'heal', host: 'host-03' });
    await sim.settle();
    const up3 = c.now() + sim.pool.timing.bootMs;
    const live3 = monitorPassAtOrAfter(c, up3);
    expect([up3 - t0, live3 - t0]).toEqual([2120, 2200]);
    await c.advance(live3 + monitor - c.now(), (now) => {
      const at = `${now - t0} ms after the start (host-03 up at ${up3 - t0})`;
      expect(sim.pool.inLiveset(h3, now), at).toBe(now >= up3);
      expect(live(sim, 'host-03'), at).toBe(now >= live3);
    });
  });

  it('the whole pool loses the statefile: Survival Rule 2, nobody is dropped; ha_statefiles empties for every host at the next pass and comes back with the storage', async () => {
    const c = await startLiveset();
    const { sim } = c;
    for (const n of names(sim)) applyFault(sim.pool, { kind: 'storage-down', host: n });
    await sim.settle();
    const sr2At = c.now() + xhad; // every host out of the statefile domain, every view the same
    const emptyAt = monitorPassAtOrAfter(c, sr2At);
    expect([sr2At - t0, emptyAt - t0]).toEqual([560, 600]);
    await c.advance(t0 + 1800 - c.now(), (now) => {
      const at = `${now - t0} ms after the start`;
      expect(sim.pool.xhadState()!.sr2, at).toBe(now >= sr2At);
      for (const n of names(sim)) {
        expect(live(sim, n), `${n} ${at}`).toBe(true);
        expect(hostRec(sim, n).ha_statefiles, `${n} ${at}`).toEqual(now < emptyAt ? statefile(sim) : []);
      }
    });
    expect(sim.pool.xhadState()!.liveset).toEqual(names(sim));
    applyFault(sim.pool, { kind: 'heal' });
    await sim.settle();
    await c.advance(2 * monitor);
    expect(sim.pool.xhadState()!.sr2).toBe(false);
    for (const n of names(sim)) expect(hostRec(sim, n).ha_statefiles, n).toEqual(statefile(sim));
  });

  it('the master cut from the network: its xhad loses the survival rule (it would fence itself, not simulated) and changes nothing: every host stays live', async () => {
    const c = await startLiveset();
    const { sim } = c;
    applyFault(sim.pool, { kind: 'network-down', host: 'host-01' });
    await sim.settle();
    await c.advance(t0 + 2000 - c.now(), (now) => {
      const at = `${now - t0} ms after the start`;
      expect(sim.pool.xhadState()!.liveset, at).toEqual(names(sim));
      for (const n of names(sim)) expect(live(sim, n), `${n} ${at}`).toBe(true);
    });
    // Its own peers: only itself (its heartbeat domain).
    expect(hostRec(sim, 'host-01').ha_network_peers).toEqual([uuid(sim, 'host-01')]);
  });
});

describe("xhad's network heartbeat", () => {
  it('is sent every heartbeat interval, not every tick: the peers\' "ms since heard" grows between two heartbeats', async () => {
    const tick = 40;
    const heartbeat = 5 * tick;
    // Each slot rewritten every tick, so it shows what its host last heard at every tick.
    const c = await start({ timing: { networkHeartbeatIntervalMs: heartbeat, statefileIntervalMs: tick } });
    const viewer = c.sim.pool.host('host-01');
    const peer = c.sim.pool.host('host-02');
    const seen: number[] = [];
    await c.advance(4 * heartbeat, () => {
      seen.push(slotOf(c.sim, 'host-01').sinceLastHbReceiptMs[peer.slot]!);
    });
    // The slot is written after the heartbeats of its tick: 0 at a heartbeat tick, then one tick more
    // at each tick until the next one (every host sends at the same phase: from the first tick).
    const sends = seen.map((ms, i) => ({ ms, i })).filter((x) => x.ms === 0);
    expect(sends.length).toBeGreaterThanOrEqual(3);
    for (let k = 1; k < sends.length; k++) expect(sends[k]!.i - sends[k - 1]!.i).toBe(heartbeat / tick);
    for (let i = sends[0]!.i; i < seen.length; i++) expect(seen[i], `tick ${i}`).toBe(((i - sends[0]!.i) % (heartbeat / tick)) * tick);
    // The default follows xapi's Timeouts.derive: min((T + 10) / 10, 3) s, 3 s for this pool's T = 30 s.
    expect(viewer.lastHbReceipt[peer.slot]).toBeGreaterThan(0);
    // One simulator at a time: starting the next stops this one.
    const def = await start({ timing: { networkHeartbeatIntervalMs: null } });
    expect(def.sim.pool.networkHeartbeatIntervalMs()).toBe(3000);
  });
});
