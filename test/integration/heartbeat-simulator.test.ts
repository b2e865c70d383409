/**
 * The simulator runs the real xenha-heartbeat daemon for its hosts (HA off), its paths cut by the pool's
 * faults, and each fault shows in xenha's heartbeat file as it shows in xhad's statefile: the same pool
 * (same spec, same UUIDs, same slots) runs twice side by side, once with HA on (the simulator's xhad
 * writes the statefile) and once with HA off and the daemons, the same fault is applied to both, and the
 * two files' domains are compared with each other and with what the fault implies (worked out here from
 * the fault, not read from either side). Real time (the daemons run on the wall clock); bounded waits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAYOUT_BYTES, decodeStatefile, type StatefileHostSlot, type XenhaHostSlot } from '../../core/statefile/layout.ts';
import { applyFault, type FaultRequest } from '../../simulator/faults.ts';
import { HEARTBEAT_DAEMON } from '../../simulator/heartbeat-daemons.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { startTestSim } from '../helpers/sim.ts';
import { waitFor } from '../helpers/wait.ts';

const INTERVAL_MS = 100;
/** The daemons' peer window: xhad's timeout in the test timing (FAST_TIMING.xhadTimeoutMs), so both files drop a silent peer alike. */
const WINDOW_MS = 400;
const HOSTS = 4;
const spec = generatePoolSpec({ hosts: HOSTS, vms: 8, seed: 31 });

let haOn: Simulator;
let haOff: Simulator;

beforeAll(async () => {
  [haOn, haOff] = await Promise.all([
    startTestSim({ spec: { ...spec, haEnabled: true }, addressBase: '127.0.40.1' }),
    startTestSim({
      spec: { ...spec, haEnabled: false },
      addressBase: '127.0.44.1',
      heartbeat: { intervalMs: INTERVAL_MS, peerWindowMs: WINDOW_MS },
    }),
  ]);
}, 30_000);

afterAll(async () => {
  await Promise.all([haOn?.stop(), haOff?.stop()]);
});

interface SlotView {
  sequence: number;
  hb: string[];
  sf: string[];
  /** Per home, who the slot says it heard there (xenha's file only). */
  homes?: string[][];
}

/** Host names by slot index, from the simulator's own slot assignment. */
function namesBySlot(sim: Simulator): Map<number, string> {
  return new Map(sim.pool.hosts.map((h) => [h.slot, h.built.name]));
}

/** The file's slots by host name (slots that do not decode are left out). */
function readFile(sim: Simulator, which: 'statefile' | 'heartbeat'): Map<string, SlotView> {
  const path = which === 'statefile' ? sim.pool.statefilePath : sim.info().heartbeat!.file;
  const d = decodeStatefile(readFileSync(path), which === 'statefile' ? 'xhad' : 'xenha');
  const names = namesBySlot(sim);
  const name = (i: number) => names.get(i) ?? `slot-${i}`;
  const out = new Map<string, SlotView>();
  d.slots.forEach((s, i) => {
    if (!s.ok) return;
    const v: StatefileHostSlot = s.value;
    const uuid = sim.pool.host(name(i)).built.uuid.replace(/-/g, '');
    if ((v.hostUuid ?? '').replace(/-/g, '') !== uuid) return; // never written yet
    const x = (v as Partial<XenhaHostSlot>).xenha;
    out.set(name(i), {
      sequence: v.sequence,
      hb: v.hbdomain.map(name).sort(),
      sf: v.sfdomain.map(name).sort(),
      ...(x && { homes: x.homes.map((m) => m.map(name).sort()) }),
    });
  });
  return out;
}

const all = () => spec.hosts.map((h) => h.name).sort();
const without = (list: string[], name: string) => list.filter((n) => n !== name);

/** What every writing slot should say: its hbdomain and sfdomain by host. */
type Expectation = Map<string, { hb: string[]; sf: string[] }>;

function healthyExpectation(): Expectation {
  return new Map(all().map((n) => [n, { hb: all(), sf: all() }]));
}

/** The domains both files settle on after a fault on `victim` (worked out from the fault itself). */
function expectationFor(fault: FaultRequest['kind'], victim: string, allHomes: boolean): Expectation {
  const e = healthyExpectation();
  if (fault === 'network-down' && allHomes) {
    for (const [n, v] of e) v.hb = n === victim ? [victim] : without(all(), victim);
  } else if (fault === 'storage-down') {
    e.delete(victim); // its slot is frozen
    for (const v of e.values()) v.sf = without(all(), victim);
  } else if (fault === 'host-crash') {
    e.delete(victim);
    for (const v of e.values()) {
      v.hb = without(all(), victim);
      v.sf = without(all(), victim);
    }
  }
  return e;
}

function matches(file: Map<string, SlotView>, want: Expectation): boolean {
  for (const [n, w] of want) {
    const got = file.get(n);
    if (!got || JSON.stringify(got.hb) !== JSON.stringify(w.hb) || JSON.stringify(got.sf) !== JSON.stringify(w.sf)) return false;
  }
  return true;
}

/** Both files show `want`, and keep showing it over `intervals` daemon intervals (every read checked). */
async function bothSettleOn(want: Expectation, what: string, intervals = 4): Promise<void> {
  await waitFor(
    `${what}: both files settled`,
    () => matches(readFile(haOn, 'statefile'), want) && matches(readFile(haOff, 'heartbeat'), want),
    {
      timeoutMs: 8000,
      intervalMs: 25,
    },
  );
  const until = Date.now() + intervals * INTERVAL_MS;
  let reads = 0;
  await waitFor(
    `${what}: held`,
    () => {
      const on = readFile(haOn, 'statefile');
      const off = readFile(haOff, 'heartbeat');
      for (const [n, w] of want) {
        expect(off.get(n), `${what}: heartbeat file, ${n}`).toMatchObject(w);
        expect(on.get(n), `${what}: statefile, ${n}`).toMatchObject(w);
      }
      reads++;
      return Date.now() >= until;
    },
    { timeoutMs: 5000, intervalMs: 20 },
  );
  expect(reads).toBeGreaterThan(2);
}

/** The slot of `name` does not advance for `intervals` daemon intervals. */
async function frozen(sim: Simulator, which: 'statefile' | 'heartbeat', name: string, intervals = 5): Promise<void> {
  const before = readFile(sim, which).get(name)?.sequence;
  const until = Date.now() + intervals * INTERVAL_MS;
  await waitFor(`${name}'s ${which} slot held still`, () => Date.now() >= until, { timeoutMs: 5000, intervalMs: 20 });
  expect(readFile(sim, which).get(name)?.sequence).toBe(before);
}

/** The slot of `name` advances. */
async function advancing(sim: Simulator, which: 'statefile' | 'heartbeat', name: string): Promise<void> {
  const before = readFile(sim, which).get(name)?.sequence;
  await waitFor(`${name}'s ${which} slot advancing`, () => readFile(sim, which).get(name)?.sequence !== before, {
    timeoutMs: 5000,
    intervalMs: 20,
  });
}

const everyHomeHearsAll = () => {
  const f = readFile(haOff, 'heartbeat');
  return all().every((n) => {
    const homes = f.get(n)?.homes;
    return homes?.length === 2 && homes.every((h) => JSON.stringify(h) === JSON.stringify(all()));
  });
};

async function healBoth(): Promise<void> {
  applyFault(haOn.pool, { kind: 'heal' });
  applyFault(haOff.pool, { kind: 'heal' });
  await waitFor('every home hears every host again', everyHomeHearsAll, { timeoutMs: 10_000, intervalMs: 25 });
  await bothSettleOn(healthyExpectation(), 'healed');
}

describe('the simulator runs xenha-heartbeat for its hosts', () => {
  it('starts one daemon per host: every slot advances and hears every host on both homes and on the file', async () => {
    await waitFor('every home hears every host', everyHomeHearsAll, { timeoutMs: 10_000, intervalMs: 25 });
    await bothSettleOn(healthyExpectation(), 'healthy pool');
    for (const n of all()) await advancing(haOff, 'heartbeat', n);
    const runtime = haOff.state().runtime;
    expect(runtime.map((r) => r.heartbeatDaemon?.running)).toEqual(all().map(() => true));
    expect(runtime.every((r) => r.heartbeatDaemon?.starts === 1)).toBe(true);
    expect(haOff.info().heartbeat).toMatchObject({ intervalMs: INTERVAL_MS, peerWindowMs: WINDOW_MS });
    expect(haOn.info().heartbeat).toBeUndefined();
  });

  it('a network cut on one home: the domains do not change; that home no longer hears the host, the other still does', async () => {
    const victim = 'host-03';
    for (const sim of [haOn, haOff]) applyFault(sim.pool, { kind: 'network-down', host: victim, homes: [1] });
    await waitFor(
      'home 1 lost host-03 everywhere',
      () => {
        const f = readFile(haOff, 'heartbeat');
        return all().every((n) => {
          const homes = f.get(n)?.homes;
          const home1 = n === victim ? [victim] : without(all(), victim);
          return JSON.stringify(homes?.[1]) === JSON.stringify(home1) && JSON.stringify(homes?.[0]) === JSON.stringify(all());
        });
      },
      { timeoutMs: 8000, intervalMs: 25 },
    );
    await bothSettleOn(expectationFor('network-down', victim, false), 'network cut on home 1');
    await healBoth();
  });

  it('a network cut on every home: the host hears only itself, nobody hears it; the file still sees it writing', async () => {
    const victim = 'host-03';
    for (const sim of [haOn, haOff]) applyFault(sim.pool, { kind: 'network-down', host: victim });
    await bothSettleOn(expectationFor('network-down', victim, true), 'network cut on every home');
    expect(readFile(haOff, 'heartbeat').get(victim)?.homes).toEqual([[victim], [victim]]);
    expect(haOff.heartbeat!.packets.cut).toBeGreaterThan(0);
    await healBoth();
  });

  it('a storage cut: the slot stops, the others drop it from the file domain and still hear it', async () => {
    const victim = 'host-02';
    for (const sim of [haOn, haOff]) applyFault(sim.pool, { kind: 'storage-down', host: victim });
    await bothSettleOn(expectationFor('storage-down', victim, true), 'storage cut');
    await Promise.all([frozen(haOn, 'statefile', victim), frozen(haOff, 'heartbeat', victim)]);
    expect(haOff.state().runtime.find((r) => r.name === victim)?.heartbeatDaemon).toMatchObject({ running: true, storage: false });
    await healBoth();
  });

  it('a crash: the daemon is gone, its slot stops, the others drop it from both domains; after the reboot a new daemon writes', async () => {
    const victim = 'host-04';
    for (const sim of [haOn, haOff]) applyFault(sim.pool, { kind: 'host-crash', host: victim });
    await bothSettleOn(expectationFor('host-crash', victim, true), 'crash');
    await Promise.all([frozen(haOn, 'statefile', victim), frozen(haOff, 'heartbeat', victim)]);
    const daemon = haOff.state().runtime.find((r) => r.name === victim)!.heartbeatDaemon!;
    expect(daemon).toMatchObject({ running: false, pid: null });
    await healBoth();
    expect(haOff.state().runtime.find((r) => r.name === victim)?.heartbeatDaemon).toMatchObject({ running: true, starts: 2 });
  });

  it('a full SR: the slot stops, the daemon keeps running and is still heard on both homes; writes resume when there is room', async () => {
    const victim = 'host-02';
    const hb = haOff.heartbeat!;
    const link = join(hb.dir, `${victim}.img`);
    // Every write to /dev/full fails with ENOSPC, as on an SR with no room left; reads return zeros.
    symlinkSync('/dev/full', `${link}.full`);
    renameSync(`${link}.full`, link);
    try {
      await waitFor(
        'the others drop host-02 from the file domain',
        () => matches(readFile(haOff, 'heartbeat'), expectationFor('storage-down', victim, true)),
        {
          timeoutMs: 8000,
          intervalMs: 25,
        },
      );
      await frozen(haOff, 'heartbeat', victim);
      const d = haOff.state().runtime.find((r) => r.name === victim)!.heartbeatDaemon!;
      expect(d.running).toBe(true);
      expect(d.lastLines.join('\n')).toMatch(/No space left on device/);
      expect(everyHomeHearsAll()).toBe(true);
    } finally {
      symlinkSync(hb.file, `${link}.back`);
      renameSync(`${link}.back`, link);
    }
    await advancing(haOff, 'heartbeat', victim);
    await bothSettleOn(healthyExpectation(), 'room again');
  });

  it('stops every daemon it started when the simulator stops', async () => {
    const sim = await startTestSim({
      spec: { ...generatePoolSpec({ hosts: 2, vms: 2, seed: 32 }), haEnabled: false },
      addressBase: '127.0.48.1',
      heartbeat: { intervalMs: INTERVAL_MS, peerWindowMs: WINDOW_MS },
    });
    let pids: number[];
    try {
      await waitFor('both daemons running', () => sim.state().runtime.every((r) => r.heartbeatDaemon?.pid != null), { timeoutMs: 5000 });
      pids = sim.state().runtime.map((r) => r.heartbeatDaemon!.pid!);
    } finally {
      await sim.stop();
    }
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(pids).toHaveLength(2);
    expect(pids.filter(alive)).toEqual([]);
  });
});

describe('--exit-on-stdin-eof', () => {
  it('stops the daemon (exit 0) when its standard input closes, as when its parent dies', async () => {
    const file = join(haOff.heartbeat!.dir, 'stdin-test.img');
    writeFileSync(file, Buffer.alloc(LAYOUT_BYTES));
    const cfg = JSON.parse(readFileSync(join(haOff.heartbeat!.dir, 'host-01.json'), 'utf8')) as Record<string, unknown>;
    // host-01's config on another port and file, so it does not disturb the running pool.
    const path = join(haOff.heartbeat!.dir, 'stdin-test.json');
    writeFileSync(path, JSON.stringify({ ...cfg, port: (cfg.port as number) + 1, file }));
    const proc = spawn('python3', [HEARTBEAT_DAEMON, '--config', path, '--exit-on-stdin-eof'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      await waitFor('the daemon started', () => /starting:/.test(err), { timeoutMs: 5000 });
      proc.stdin.end();
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000))]);
      expect(code, err).toBe(0);
      expect(err).toMatch(/standard input closed: stopping/);
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
