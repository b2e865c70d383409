/**
 * Each fault is visible on the path it cuts and only there. The network path is checked as the
 * monitor sees it (TCP to each management address, XAPI answers); the storage path through the real
 * statefile, decoded with the shared core, and through XAPI (host.ha_statefiles, multipath PBD legs).
 *
 * Every simulator here runs on a manual clock (startSteppedSim): time moves tick by tick, and a claim
 * that something happens, or never does, is checked at every tick or statefile interval it covers.
 */
import { describe, expect, it } from 'vitest';
import { createClient } from 'xen-api';
import type { Simulator } from '../../simulator/simulator.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import { applyFault } from '../../simulator/faults.ts';
import {
  PASSWORD,
  bothPathsDropMs,
  expectBootsAfterBootMs,
  monitorPassAtOrAfter,
  onePathDropMs,
  overStatefileIntervals,
  readSlots,
  slotOf,
  steppedSimPerTest,
  tcpProbe,
} from '../helpers/sim.ts';
import { jsonRpc } from '../helpers/rpc.ts';
import { decodeStatefile } from '../../core/statefile/layout.ts';
import { readFileSync } from 'node:fs';

/** Starts this test's stepped simulator; it is stopped after the test, pass or fail. */
const start = steppedSimPerTest();

async function probeHomes(s: Simulator, host: string): Promise<string[]> {
  const h = s.info().hosts.find((x) => x.name === host)!;
  return Promise.all(h.addresses.map((a) => tcpProbe(a, s.port)));
}

function db(s: Simulator) {
  return s.pool.built.db;
}

function hostRec(s: Simulator, name: string) {
  const h = s.pool.host(name);
  return {
    host: db(s).peek('host', h.built.ref),
    metrics: db(s).peek('host_metrics', h.built.metricsRef),
    pbd: db(s).peek('PBD', h.built.heartbeatPbdRef),
  };
}

function mpath(s: Simulator, name: string): string {
  const oc = hostRec(s, name).pbd.other_config as Record<string, string>;
  return oc[`mpath-${s.pool.built.heartbeatScsiId}`]!;
}

const others = (s: Simulator, name: string) => s.pool.hosts.filter((h) => h.built.name !== name).map((h) => h.built.name);

describe('faults, one path at a time', () => {
  it('network down on both homes: TCP fails on both addresses, the statefile slot keeps advancing', async () => {
    const c = await start();
    const { sim } = c;
    await c.advance(2 * sim.pool.timing.statefileIntervalMs); // every host has written, heard its peers, is live
    const uuid2 = sim.pool.host('host-02').built.uuid;
    const self = sim.pool.host('host-02').slot;
    expect(await probeHomes(sim, 'host-02')).toEqual(['open', 'open']);
    expect(hostRec(sim, 'host-02').metrics.live).toBe(true);
    expect(hostRec(sim, 'host-01').host.ha_network_peers).toContain(uuid2);
    const cut = c.now();
    applyFault(sim.pool, { kind: 'network-down', host: 'host-02' });
    await sim.settle();
    expect(await probeHomes(sim, 'host-02')).toEqual(['refused', 'refused']);
    expect(await probeHomes(sim, 'host-03')).toEqual(['open', 'open']);
    const timeout = sim.pool.xhadTimeoutMs();
    await overStatefileIntervals(c, {
      intervals: 6,
      advancing: ['host-01', 'host-02', 'host-03'],
      // host-02 still runs and writes its slot (no self-fencing); its storage path is untouched. The
      // master (host-01) stops hearing it: at the first monitor pass once xhad's timeout has run since
      // the cut (a pass at every tick here), host-02 leaves host-01's heartbeat domain, so its
      // ha_network_peers. xhad's fault handler drops a host that lost one path from the liveset much
      // later (onePathDropMs after it was last heard; pinned in simulator-fidelity.test.ts): over these
      // intervals it is still in the liveset, live, with statefile access.
      eachTick: (now) => {
        const what = `${now - cut} ms after the cut (xhad's timeout ${timeout} ms)`;
        expect(now - cut).toBeLessThan(onePathDropMs(sim));
        expect(hostRec(sim, 'host-02').metrics.live, what).toBe(true);
        expect(hostRec(sim, 'host-02').host.ha_statefiles, what).toHaveLength(1);
        expect((hostRec(sim, 'host-01').host.ha_network_peers as string[]).includes(uuid2), what).toBe(now - cut < timeout);
      },
      // Every slot written since the cut: host-02 heard no peer since the cut and no peer heard host-02,
      // the others heard each other at the write; everyone is alive on the statefile.
      eachInterval: () => {
        for (const h of sim.pool.hosts) {
          const slot = slotOf(sim, h.built.name);
          const aged = h.lastSlotWrite - cut;
          const want = slot.sinceLastHbReceiptMs.map((_, j) => (h.slot === self ? (j === self ? 0 : aged) : j === self ? aged : 0));
          expect(slot.sinceLastHbReceiptMs, `${h.built.name}'s heartbeat ages`).toEqual(want);
          expect(slot.sfdomain).toEqual([0, 1, 2]);
        }
      },
    });
    const slot = slotOf(sim, 'host-02');
    expect(slot.sinceLastHbReceiptMs.every((ms, j) => (j === self ? ms < 300 : ms >= 300))).toBe(true);
    const ev = sim.pool.eventLog().find((e) => e.kind === 'fault');
    expect(ev).toMatchObject({ host: 'host-02', detail: { fault: 'network-down', homes: [0, 1] } });
    expect(ev!.atMs).toBe(cut);
    expect(Date.parse(ev!.at)).toBe(cut);
  });

  it('network down on one home: that address fails, the other answers, the host stays live', async () => {
    const c = await start();
    const { sim } = c;
    const uuid3 = sim.pool.host('host-03').built.uuid;
    applyFault(sim.pool, { kind: 'network-down', host: 'host-03', homes: [0] });
    await sim.settle();
    expect(await probeHomes(sim, 'host-03')).toEqual(['refused', 'open']);
    await overStatefileIntervals(c, {
      advancing: ['host-03'],
      eachTick: () => {
        expect(hostRec(sim, 'host-03').metrics.live).toBe(true);
        expect(hostRec(sim, 'host-01').host.ha_network_peers).toContain(uuid3);
      },
      eachInterval: async () => expect(await probeHomes(sim, 'host-03')).toEqual(['refused', 'open']),
    });
  });

  it('storage down on both legs: XAPI answers, the slot stops, no leg active; ha_statefiles and live hold until xhad drops the host', async () => {
    const c = await start();
    const { sim } = c;
    expect(hostRec(sim, 'host-02').host.ha_statefiles).toHaveLength(1);
    const lastWrite = sim.pool.host('host-02').lastSlotWrite;
    expect(lastWrite).toBe(c.now());
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-02' });
    await sim.settle();
    expect(await probeHomes(sim, 'host-02')).toEqual(['open', 'open']);
    // xhad answers statefile access true for every host in its liveset (Survival Rule 1), so
    // ha_statefiles keeps the statefile until the fault handler drops host-02, onePathDropMs after its
    // last slot write (a monitor pass at every tick here); then both empty and live false.
    const dropMs = onePathDropMs(sim);
    const intervals = Math.ceil((dropMs + sim.pool.timing.tickMs) / sim.pool.timing.statefileIntervalMs);
    await overStatefileIntervals(c, {
      intervals,
      still: ['host-02'],
      advancing: ['host-03'],
      eachTick: (now) => {
        const what = `${now - lastWrite} ms after host-02's last slot write (dropped at ${dropMs})`;
        expect(hostRec(sim, 'host-02').host.ha_statefiles, what).toHaveLength(now - lastWrite < dropMs ? 1 : 0);
        expect(hostRec(sim, 'host-02').metrics.live, what).toBe(now - lastWrite < dropMs);
        expect(mpath(sim, 'host-02')).toBe('[0, 2]');
      },
    });
    expect(c.now() - lastWrite).toBeGreaterThan(dropMs);
    expect(await probeHomes(sim, 'host-02')).toEqual(['open', 'open']);
  });

  it('storage down on one leg: the slot keeps advancing, one leg of two active', async () => {
    const c = await start();
    const { sim } = c;
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-02', homes: [1] });
    await overStatefileIntervals(c, {
      advancing: ['host-02'],
      eachTick: () => {
        expect(mpath(sim, 'host-02')).toBe('[1, 2]');
        expect(hostRec(sim, 'host-02').host.ha_statefiles).toHaveLength(1);
      },
    });
  });

  it('host crash: both paths stop; its VMs stay "Running" in XAPI until someone resets them', async () => {
    const c = await start();
    const { sim } = c;
    const h = sim.pool.host('host-02');
    const vms = db(sim)
      .all('VM')
      .filter(([, v]) => v.resident_on === h.built.ref && !v.is_control_domain);
    expect(vms.length).toBeGreaterThan(0);
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-02' });
    await sim.settle();
    expect(await probeHomes(sim, 'host-02')).toEqual(['refused', 'refused']);
    // Nobody writes false at the crash: the master's HA monitor writes it at its first pass once xhad has
    // dropped host-02 from its liveset, xhad's timeout and its fault handler's sleep after host-02 was
    // last heard and last wrote its slot (the tick of the crash; a pass at every tick here).
    const crashedAt = c.now();
    const dropMs = bothPathsDropMs(sim);
    await overStatefileIntervals(c, {
      intervals: 7,
      still: ['host-02'],
      advancing: others(sim, 'host-02'),
      eachTick: (now) => {
        expect(hostRec(sim, 'host-02').metrics.live, `${now - crashedAt} ms after the crash`).toBe(now - crashedAt < dropMs);
        for (const [ref] of vms) expect(db(sim).peek('VM', ref).power_state).toBe('Running');
      },
    });
    expect(await probeHomes(sim, 'host-02')).toEqual(['refused', 'refused']);
    // Through XAPI: a dead host's VM cannot be shut down, only reset; then it starts elsewhere.
    const x = createClient({ url: sim.info().masterUrl, auth: { user: 'root', password: PASSWORD }, watchEvents: false });
    try {
      await x.connect();
      const [vm] = vms[0]!;
      await expect(x.call('VM.hard_shutdown', vm)).rejects.toMatchObject({ code: 'HOST_OFFLINE', params: [h.built.ref] });
      await expect(x.call('VM.start_on', vm, h.built.ref, false, false)).rejects.toMatchObject({ code: 'VM_BAD_POWER_STATE' });
      await x.call('VM.power_state_reset', vm);
      expect(db(sim).peek('VM', vm).power_state).toBe('Halted');
      await expect(x.call('VM.start_on', vm, h.built.ref, false, false)).rejects.toMatchObject({ code: 'HOST_NOT_LIVE', params: [] });
    } finally {
      await x.disconnect();
    }
  });

  it('flapping: a path goes down and up at its period, on the homes named only', async () => {
    const c = await start();
    const { sim } = c;
    const periodMs = 300;
    const since = c.now();
    applyFault(sim.pool, { kind: 'flap', host: 'host-02', path: 'network', periodMs, homes: [0] });
    await sim.settle();
    // Down for the first half of each period, up for the second; the other home never moves.
    const upAt = (now: number) => Math.floor((now - since) / (periodMs / 2)) % 2 === 1;
    expect(await probeHomes(sim, 'host-02')).toEqual(['refused', 'open']);
    const seen = new Set<string>();
    const expected: { atMs: number; up: boolean }[] = [];
    let was = true; // before the flap
    await c.advance(2 * periodMs, async (now) => {
      const up = upAt(now);
      const [a, b] = await probeHomes(sim, 'host-02');
      expect(b, `home 1 at +${now - since} ms`).toBe('open');
      expect(a, `home 0 at +${now - since} ms`).toBe(up ? 'open' : 'refused');
      seen.add(a!);
      if (up !== was) expected.push({ atMs: now, up });
      was = up;
    });
    expect(seen).toEqual(new Set(['open', 'refused']));
    const changes = sim.pool.eventLog().filter((e) => e.kind === 'path' && e.host === 'host-02');
    expect(changes.length).toBeGreaterThanOrEqual(2);
    expect(changes.every((e) => e.detail.path === 'network' && e.detail.home === 0)).toBe(true);
    expect(changes.map((e) => ({ atMs: e.atMs, up: e.detail.up }))).toEqual(expected);
    await overStatefileIntervals(c, { advancing: ['host-02'] });
  });

  it('slow XAPI: answers come late, TCP and the statefile are untouched', async () => {
    const c = await start();
    const { sim } = c;
    const url = sim.info().masterUrl;
    // The added latency is on the HTTP answer, in real time (not simulated time): measured with a real clock.
    const t0 = performance.now();
    await jsonRpc(url, 'session.login_with_password', ['root', PASSWORD]);
    const fast = performance.now() - t0;
    applyFault(sim.pool, { kind: 'slow-xapi', host: 'host-01', latencyMs: 400 });
    const t1 = performance.now();
    const r = await jsonRpc(url, 'session.login_with_password', ['root', PASSWORD]);
    expect(r.result).toMatch(/^OpaqueRef:/);
    expect(performance.now() - t1).toBeGreaterThanOrEqual(400);
    expect(fast).toBeLessThan(400);
    expect(await probeHomes(sim, 'host-01')).toEqual(['open', 'open']);
    await overStatefileIntervals(c, { advancing: ['host-01'] });
  });

  it('observer isolation: no XAPI answers anywhere, yet every slot advances and the hosts hear each other', async () => {
    const c = await start();
    const { sim } = c;
    applyFault(sim.pool, { kind: 'observer-isolation' });
    await sim.settle();
    const names = sim.pool.hosts.map((h) => h.built.name);
    for (const h of names) expect(await probeHomes(sim, h)).toEqual(['refused', 'refused']);
    await overStatefileIntervals(c, {
      advancing: names,
      eachInterval: async () => {
        for (const slot of readSlots(sim.pool.statefilePath)) {
          expect(slot.hbdomain).toEqual([0, 1, 2]);
          expect(slot.sinceLastHbReceiptMs).toEqual([0, 0, 0]); // every peer heard at the tick of the write
        }
        for (const h of names) expect(await probeHomes(sim, h)).toEqual(['refused', 'refused']);
      },
    });
    applyFault(sim.pool, { kind: 'heal' });
    await sim.settle();
    for (const h of names) expect(await probeHomes(sim, h)).toEqual(['open', 'open']);
  });

  it('heal: a crashed host reboots and rejoins on both paths', async () => {
    const c = await start();
    const { sim } = c;
    const crashedAt = c.now();
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-03' });
    await sim.settle();
    // Live until the master's HA monitor writes xhad's drop (xhad's timeout and its fault handler's sleep
    // after it was last heard: the crash tick).
    const dropMs = bothPathsDropMs(sim);
    await overStatefileIntervals(c, {
      intervals: 7,
      still: ['host-03'],
      advancing: others(sim, 'host-03'),
      eachTick: (now) => expect(hostRec(sim, 'host-03').metrics.live).toBe(now - crashedAt < dropMs),
    });
    const healedAt = c.now();
    applyFault(sim.pool, { kind: 'heal', host: 'host-03' });
    await sim.settle();
    expect(await probeHomes(sim, 'host-03')).toEqual(['refused', 'refused']); // rebooting
    await expectBootsAfterBootMs(c, 'host-03', healedAt);
    await overStatefileIntervals(c, { advancing: ['host-03'], eachTick: () => expect(hostRec(sim, 'host-03').metrics.live).toBe(true) });
    expect(await probeHomes(sim, 'host-03')).toEqual(['open', 'open']);
    expect(sim.pool.eventLog().map((e) => e.kind)).toEqual(expect.arrayContaining(['fault', 'heal']));
  });
});

describe('master crash', () => {
  it('without HA: slaves still name the dead master until one is made master by an emergency transition', async () => {
    const c = await start({ spec: { ...generatePoolSpec({ hosts: 3, vms: 6, seed: 11 }), haEnabled: false } });
    const { sim } = c;
    const info = sim.info();
    const [m, s2] = [info.hosts[0]!, info.hosts[1]!];
    expect(m.master).toBe(true);
    applyFault(sim.pool, { kind: 'master-crash' });
    await sim.settle();
    expect(await probeHomes(sim, m.name)).toEqual(['refused', 'refused']);
    // Nobody takes over on their own: checked at every tick over five statefile intervals. Without HA no
    // xhad runs, so no host writes the statefile (no slot moves) and there is no master lock to take.
    await overStatefileIntervals(c, {
      still: info.hosts.map((h) => h.name),
      eachTick: () => expect(sim.pool.master.built.name).toBe(m.name),
    });
    expect(sim.pool.eventLog().filter((e) => e.kind === 'master')).toEqual([]);
    const asSlave = await jsonRpc(s2.urls[0]!, 'session.login_with_password', ['root', PASSWORD]);
    expect(asSlave.error).toEqual({ code: 1, message: 'HOST_IS_SLAVE', data: [m.addresses[0]] });
    const local = await jsonRpc(s2.urls[1]!, 'session.slave_local_login_with_password', ['root', PASSWORD]);
    expect(local.result).toMatch(/^OpaqueRef:/);
    const t = await jsonRpc(s2.urls[1]!, 'pool.emergency_transition_to_master', [local.result]);
    expect(t.error).toBeUndefined();
    expect(sim.pool.master.built.name).toBe(s2.name);
    expect(sim.pool.eventLog().find((e) => e.kind === 'master')).toMatchObject({
      host: s2.name,
      detail: { how: 'emergency_transition_to_master' },
    });
    // A client pointed at the other slave now lands on the new master.
    const x = createClient({ url: info.hosts[2]!.urls[0]!, auth: { user: 'root', password: PASSWORD }, watchEvents: false });
    try {
      await x.connect();
      expect(await x.call('pool.get_master', sim.pool.built.poolRef)).toBe(sim.pool.host(s2.name).built.ref);
    } finally {
      await x.disconnect();
    }
    // Without HA nothing writes the statefile: its global section still names the master it was built with.
    const global = decodeStatefile(readFileSync(sim.pool.statefilePath)).global;
    expect(global).toMatchObject({ ok: true, value: { master: sim.pool.host(m.name).built.uuid, poolState: 'active' } });
  });

  it('with HA: the emergency call is refused and xhad elects the lowest-UUID live host after its timeout', async () => {
    // A whole number of ticks: the clock stays on the ticks' phase, so the new master's monitor passes
    // fall every haMonitorIntervalMs from the election (monitorPassAtOrAfter).
    const autoElectMasterMs = 320;
    const c = await start({ timing: { autoElectMasterMs } });
    const { sim } = c;
    const tickMs = sim.pool.timing.tickMs;
    const old = sim.pool.master;
    const slave = sim.info().hosts.find((h) => !h.master)!;
    const local = await jsonRpc(slave.urls[0]!, 'session.slave_local_login_with_password', ['root', PASSWORD]);
    expect((await jsonRpc(slave.urls[0]!, 'pool.emergency_transition_to_master', [local.result])).error?.message).toBe('HA_IS_ENABLED');
    const crashedAt = c.now();
    applyFault(sim.pool, { kind: 'master-crash' });
    await sim.settle();
    // Tick by tick: the first tick with a new master is not before the timeout has run since the crash
    // (so at every earlier tick the dead master kept the role), and within two ticks of it (the loss is
    // noticed at the first tick after the crash, the election happens at a tick).
    let electedAt: number | undefined;
    await c.advance(autoElectMasterMs + 2 * tickMs, (now) => {
      if (electedAt === undefined && sim.pool.master !== old) electedAt = now;
      expect(hostRec(sim, old.built.name).metrics.live, 'the dead master, before any pass of the new one').toBe(true);
    });
    expect(electedAt, `a new master by ${autoElectMasterMs + 2 * tickMs} ms after the crash`).toBeDefined();
    expect(electedAt! - crashedAt, 'ms from the crash to the election').toBeGreaterThanOrEqual(autoElectMasterMs);
    const elected = sim.pool.master;
    const lowest = sim.pool.hosts.filter((h) => h !== old).sort((a, b) => a.slot - b.slot)[0]!;
    expect(elected).toBe(lowest);
    expect(sim.pool.eventLog().find((e) => e.kind === 'master')).toMatchObject({
      atMs: electedAt,
      host: elected.built.name,
      detail: { how: 'ha-election' },
    });
    // The dead master's live stays as it was when it crashed (true) until the new master's HA monitor
    // writes xhad's drop: its first pass (one monitor interval after the election) at or after xhad's
    // timeout and its fault handler's sleep since the old master was last heard, at the crash tick.
    const droppedAt = monitorPassAtOrAfter(c, crashedAt + bothPathsDropMs(sim), electedAt);
    await c.advance(droppedAt - c.now(), (now) =>
      expect(hostRec(sim, old.built.name).metrics.live, `${now - crashedAt} ms after the crash`).toBe(now < droppedAt),
    );
    expect(hostRec(sim, old.built.name).metrics.live).toBe(false); // the new master's view
    const r = await jsonRpc(slave.urls[0]!, 'session.login_with_password', ['root', PASSWORD]);
    if (slave.name === elected.built.name) expect(r.result).toMatch(/^OpaqueRef:/);
    else expect(r.error?.data).toEqual([elected.built.addresses[0]]);
  });
});
