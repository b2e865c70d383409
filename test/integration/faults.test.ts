/**
 * Each fault is visible on the path it cuts and only there. The network path is checked as the
 * monitor sees it (TCP to each management address, XAPI answers); the storage path through the real
 * statefile, decoded with the shared core, and through XAPI (host.ha_statefiles, multipath PBD legs).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from 'xen-api';
import type { Simulator } from '../../simulator/simulator.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import { applyFault } from '../../simulator/faults.ts';
import { PASSWORD, readSlots, slotOf, startTestSim, tcpProbe } from '../helpers/sim.ts';
import { jsonRpc } from '../helpers/rpc.ts';
import { waitFor } from '../helpers/wait.ts';
import { decodeStatefile } from '../../core/statefile/layout.ts';
import { readFileSync } from 'node:fs';

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

async function probeHomes(s: Simulator, host: string): Promise<string[]> {
  const h = s.info().hosts.find((x) => x.name === host)!;
  return Promise.all(h.addresses.map((a) => tcpProbe(a, s.port)));
}

/** The slot's sequence advances (storage alive) or stays (storage dead) over several write intervals. */
async function sequenceAdvances(s: Simulator, host: string): Promise<boolean> {
  const before = slotOf(s, host).sequence;
  const interval = s.pool.timing.statefileIntervalMs;
  await new Promise((r) => setTimeout(r, interval * 5));
  return slotOf(s, host).sequence !== before;
}

function db(s: Simulator) {
  return s.pool.built.db;
}

function hostRec(s: Simulator, name: string) {
  const h = s.pool.host(name);
  return { host: db(s).peek('host', h.built.ref), metrics: db(s).peek('host_metrics', h.built.metricsRef), pbd: db(s).peek('PBD', h.built.heartbeatPbdRef) };
}

function mpath(s: Simulator, name: string): string {
  const oc = hostRec(s, name).pbd.other_config as Record<string, string>;
  return oc[`mpath-${s.pool.built.heartbeatScsiId}`]!;
}

describe('faults, one path at a time', () => {
  it('network down on both homes: TCP fails on both addresses, the statefile slot keeps advancing', async () => {
    sim = await startTestSim();
    expect(await probeHomes(sim, 'host-02')).toEqual(['open', 'open']);
    applyFault(sim.pool, { kind: 'network-down', host: 'host-02' });
    await sim.settle();
    expect(await probeHomes(sim, 'host-02')).toEqual(['refused', 'refused']);
    expect(await probeHomes(sim, 'host-03')).toEqual(['open', 'open']);
    expect(await sequenceAdvances(sim, 'host-02')).toBe(true);
    const s = sim;
    await waitFor('the master to mark host-02 not live', () => hostRec(s, 'host-02').metrics.live === false);
    expect(hostRec(sim, 'host-02').host.ha_statefiles).toHaveLength(1); // storage path untouched
    const uuid2 = sim.pool.host('host-02').built.uuid;
    expect(hostRec(sim, 'host-01').host.ha_network_peers).not.toContain(uuid2);
    // host-02's own slot: no network heartbeat from its peers since the cut, all of them alive on the statefile.
    const self = sim.pool.host('host-02').slot;
    const slot = await waitFor('peers\' heartbeats to age in host-02\'s slot', () => {
      const x = slotOf(s, 'host-02');
      return x.sinceLastHbReceiptMs.every((ms, j) => (j === self ? ms < 300 : ms >= 300)) ? x : undefined;
    });
    expect(slot.sfdomain).toEqual([0, 1, 2]);
    const ev = sim.pool.eventLog().find((e) => e.kind === 'fault');
    expect(ev).toMatchObject({ host: 'host-02', detail: { fault: 'network-down', homes: [0, 1] } });
    expect(Date.parse(ev!.at)).toBeGreaterThan(0);
  });

  it('network down on one home: that address fails, the other answers, the host stays live', async () => {
    sim = await startTestSim();
    applyFault(sim.pool, { kind: 'network-down', host: 'host-03', homes: [0] });
    await sim.settle();
    expect(await probeHomes(sim, 'host-03')).toEqual(['refused', 'open']);
    await sim.step();
    expect(hostRec(sim, 'host-03').metrics.live).toBe(true);
    expect(await sequenceAdvances(sim, 'host-03')).toBe(true);
  });

  it('storage down on both legs: XAPI answers, the slot stops, ha_statefiles empties, no leg active', async () => {
    sim = await startTestSim();
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-02' });
    await sim.settle();
    expect(await probeHomes(sim, 'host-02')).toEqual(['open', 'open']);
    expect(await sequenceAdvances(sim, 'host-02')).toBe(false);
    expect(await sequenceAdvances(sim, 'host-03')).toBe(true);
    const s = sim;
    await waitFor('ha_statefiles to empty', () => (hostRec(s, 'host-02').host.ha_statefiles as string[]).length === 0);
    expect(mpath(sim, 'host-02')).toBe('[0, 2]');
    expect(hostRec(sim, 'host-02').metrics.live).toBe(true);
  });

  it('storage down on one leg: the slot keeps advancing, one leg of two active', async () => {
    sim = await startTestSim();
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-02', homes: [1] });
    await sim.step();
    expect(await sequenceAdvances(sim, 'host-02')).toBe(true);
    expect(mpath(sim, 'host-02')).toBe('[1, 2]');
    expect(hostRec(sim, 'host-02').host.ha_statefiles).toHaveLength(1);
  });

  it('host crash: both paths stop; its VMs stay "Running" in XAPI until someone resets them', async () => {
    sim = await startTestSim();
    const h = sim.pool.host('host-02');
    const vms = db(sim).all('VM').filter(([, v]) => v.resident_on === h.built.ref && !v.is_control_domain);
    expect(vms.length).toBeGreaterThan(0);
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-02' });
    await sim.settle();
    expect(await probeHomes(sim, 'host-02')).toEqual(['refused', 'refused']);
    expect(await sequenceAdvances(sim, 'host-02')).toBe(false);
    const s = sim;
    await waitFor('host-02 not live', () => hostRec(s, 'host-02').metrics.live === false);
    for (const [ref] of vms) expect(db(sim).peek('VM', ref).power_state).toBe('Running');
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
    sim = await startTestSim();
    applyFault(sim.pool, { kind: 'flap', host: 'host-02', path: 'network', periodMs: 300, homes: [0] });
    const s = sim;
    const seen = new Set<string>();
    await waitFor('home 0 both refused and open', async () => {
      const [a, b] = await probeHomes(s, 'host-02');
      expect(b).toBe('open');
      seen.add(a!);
      return seen.has('open') && seen.has('refused');
    });
    const changes = sim.pool.eventLog().filter((e) => e.kind === 'path' && e.host === 'host-02');
    expect(changes.length).toBeGreaterThanOrEqual(2);
    expect(changes.every((e) => e.detail.path === 'network' && e.detail.home === 0)).toBe(true);
    expect(await sequenceAdvances(sim, 'host-02')).toBe(true);
  });

  it('slow XAPI: answers come late, TCP and the statefile are untouched', async () => {
    sim = await startTestSim();
    const url = sim.info().masterUrl;
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
    expect(await sequenceAdvances(sim, 'host-01')).toBe(true);
  });

  it('observer isolation: no XAPI answers anywhere, yet every slot advances and the hosts hear each other', async () => {
    sim = await startTestSim();
    applyFault(sim.pool, { kind: 'observer-isolation' });
    await sim.settle();
    for (const h of sim.info().hosts) expect(await probeHomes(sim, h.name)).toEqual(['refused', 'refused']);
    const before = readSlots(sim.pool.statefilePath).map((s) => s.sequence);
    const s = sim;
    await waitFor('every slot to advance', () => readSlots(s.pool.statefilePath).every((x, i) => x.sequence !== before[i]));
    for (const slot of readSlots(sim.pool.statefilePath)) expect(slot.hbdomain).toEqual([0, 1, 2]);
    applyFault(sim.pool, { kind: 'heal' });
    await sim.settle();
    expect(await probeHomes(sim, 'host-01')).toEqual(['open', 'open']);
  });

  it('heal: a crashed host reboots and rejoins on both paths', async () => {
    sim = await startTestSim();
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-03' });
    await sim.settle();
    applyFault(sim.pool, { kind: 'heal', host: 'host-03' });
    const s = sim;
    await waitFor('host-03 back on both homes', async () => (await probeHomes(s, 'host-03')).every((x) => x === 'open'));
    await waitFor('host-03 live again', () => hostRec(s, 'host-03').metrics.live === true);
    expect(await sequenceAdvances(sim, 'host-03')).toBe(true);
    expect(sim.pool.eventLog().map((e) => e.kind)).toEqual(expect.arrayContaining(['fault', 'heal']));
  });
});

describe('master crash', () => {
  it('without HA: slaves still name the dead master until one is made master by an emergency transition', async () => {
    sim = await startTestSim({ spec: { ...generatePoolSpec({ hosts: 3, vms: 6, seed: 11 }), haEnabled: false } });
    const info = sim.info();
    const [m, s2] = [info.hosts[0]!, info.hosts[1]!];
    applyFault(sim.pool, { kind: 'master-crash' });
    await sim.settle();
    expect(await probeHomes(sim, m.name)).toEqual(['refused', 'refused']);
    const asSlave = await jsonRpc(s2.urls[0]!, 'session.login_with_password', ['root', PASSWORD]);
    expect(asSlave.error).toEqual({ code: 1, message: 'HOST_IS_SLAVE', data: [m.addresses[0]] });
    const local = await jsonRpc(s2.urls[1]!, 'session.slave_local_login_with_password', ['root', PASSWORD]);
    expect(local.result).toMatch(/^OpaqueRef:/);
    const t = await jsonRpc(s2.urls[1]!, 'pool.emergency_transition_to_master', [local.result]);
    expect(t.error).toBeUndefined();
    expect(sim.pool.master.built.name).toBe(s2.name);
    expect(sim.pool.eventLog().find((e) => e.kind === 'master')).toMatchObject({ host: s2.name, detail: { how: 'emergency_transition_to_master' } });
    // A client pointed at the other slave now lands on the new master.
    const x = createClient({ url: info.hosts[2]!.urls[0]!, auth: { user: 'root', password: PASSWORD }, watchEvents: false });
    try {
      await x.connect();
      expect(await x.call('pool.get_master', sim.pool.built.poolRef)).toBe(sim.pool.host(s2.name).built.ref);
    } finally {
      await x.disconnect();
    }
    // The statefile's global section names the new master too.
    const global = decodeStatefile(readFileSync(sim.pool.statefilePath)).global;
    expect(global).toMatchObject({ ok: true, value: { master: sim.pool.host(s2.name).built.uuid, poolState: 'active' } });
  });

  it('with HA: the emergency call is refused and xhad elects the lowest-UUID live host after its timeout', async () => {
    sim = await startTestSim({ timing: { autoElectMasterMs: 300 } });
    const old = sim.pool.master;
    const slave = sim.info().hosts.find((h) => !h.master)!;
    const local = await jsonRpc(slave.urls[0]!, 'session.slave_local_login_with_password', ['root', PASSWORD]);
    expect((await jsonRpc(slave.urls[0]!, 'pool.emergency_transition_to_master', [local.result])).error?.message).toBe('HA_IS_ENABLED');
    applyFault(sim.pool, { kind: 'master-crash' });
    const s = sim;
    const elected = await waitFor('a new master', () => (s.pool.master !== old ? s.pool.master : undefined));
    const lowest = sim.pool.hosts.filter((h) => h !== old).sort((a, b) => a.slot - b.slot)[0]!;
    expect(elected).toBe(lowest);
    const r = await jsonRpc(slave.urls[0]!, 'session.login_with_password', ['root', PASSWORD]);
    if (slave.name === elected.built.name) expect(r.result).toMatch(/^OpaqueRef:/);
    else expect(r.error?.data).toEqual([elected.built.addresses[0]]);
  });
});
