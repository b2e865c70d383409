/**
 * Power control through Debian's real fence_dummy agent, on the simulator's power-status files. The
 * simulator runs on a manual clock (startSteppedSim): once fence_dummy has exited its write is on disk,
 * the test applies it with pool.pollPowerFiles() at the current simulated time, and then steps time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { run } from '../helpers/run.ts';
import {
  PASSWORD,
  bothPathsDropMs,
  expectBootsAfterBootMs,
  overStatefileIntervals,
  requireFile,
  startSteppedSim,
  tcpProbe,
  type SteppedSim,
} from '../helpers/sim.ts';
import { jsonRpc } from '../helpers/rpc.ts';
import { FENCE_DUMMY } from '../../loop/binaries.ts';

/** Runs fence_dummy with CLI arguments; resolves with its exit code and output. */
function fenceCli(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(FENCE_DUMMY, args, { timeout: 30_000 }, (err, stdout) => {
      if (err !== null && typeof err.code !== 'number') return reject(new Error(err.message, { cause: err }));
      resolve({ code: err ? (err.code as number) : 0, stdout });
    });
  });
}

/** Runs fence_dummy speaking the fence-agents stdin protocol (name=value lines). */
const fenceStdin = (lines: string[]) => run(FENCE_DUMMY, [], { input: `${lines.join('\n')}\n` });

let c: SteppedSim | undefined;
beforeAll(async () => {
  requireFile(FENCE_DUMMY, 'apt-get install fence-agents');
  c = await startSteppedSim();
});
afterAll(async () => {
  await c?.sim.stop();
});

describe('fence_dummy --type=file on a simulated host', () => {
  it('reports on, powers the host off (VMs halt, both paths stop), reports off, powers it on again', async () => {
    const { sim } = c!;
    const info = sim.info().hosts.find((h) => h.name === 'host-02')!;
    const h = sim.pool.host('host-02');
    const db = sim.pool.built.db;
    const vms = db
      .all('VM')
      .filter(([, v]) => v.resident_on === h.built.ref && !v.is_control_domain)
      .map(([ref]) => ref);
    expect(vms.length).toBeGreaterThan(0);
    const file = `--status-file=${info.powerFile}`;
    const probe = () => Promise.all(info.addresses.map((a) => tcpProbe(a, sim.port)));

    expect(await fenceCli(['--type=file', file, '--action=status'])).toEqual({ code: 0, stdout: expect.stringContaining('Status: ON') });

    const off = await fenceCli(['--type=file', file, '--action=off']);
    expect(off.code).toBe(0);
    // fence_dummy has exited, so "off" is in the file (the directory watch may have applied it already).
    sim.pool.pollPowerFiles();
    expect(h.power).toBe('off');
    await sim.settle();
    // Nobody tells xapi: its VMs stay Running and resident on it in the database.
    const before = new Map(vms.map((ref) => [ref, structuredClone(db.peek('VM', ref))]));
    for (const ref of vms) expect(db.peek('VM', ref)).toMatchObject({ power_state: 'Running', resident_on: h.built.ref });
    expect(await probe()).toEqual(['refused', 'refused']);
    // Powered off: its slot is never rewritten, checked at every tick over six statefile intervals
    // while the other hosts write theirs once per interval; the master's HA monitor marks it not live at
    // its first pass once xhad has dropped it from its liveset, xhad's timeout and its fault handler's
    // sleep after it was last heard (the tick it went off; a pass at every tick here), and not before.
    const offAt = c!.now();
    const timeout = bothPathsDropMs(sim);
    await overStatefileIntervals(c!, {
      intervals: 7,
      still: ['host-02'],
      advancing: ['host-01', 'host-03'],
      eachTick: (now) => {
        expect(db.peek('host_metrics', h.built.metricsRef).live, `${now - offAt} ms after power-off`).toBe(now - offAt < timeout);
        expect(h.power).toBe('off');
        for (const ref of vms) expect(db.peek('VM', ref), `${now - offAt} ms after power-off`).toEqual(before.get(ref));
      },
    });
    expect(await probe()).toEqual(['refused', 'refused']);
    expect(sim.pool.eventLog().find((e) => e.kind === 'power')).toMatchObject({
      host: 'host-02',
      detail: { state: 'off', by: 'power-file' },
    });

    // fence-agents protocol: status of a powered-off plug exits 2.
    expect((await fenceStdin(['# xenha test', 'action=status', 'type=file', `status_file=${info.powerFile}`])).code).toBe(2);

    expect((await fenceStdin(['action=on', 'type=file', `status_file=${info.powerFile}`])).code).toBe(0);
    sim.pool.pollPowerFiles();
    expect(h.power).toBe('on');
    const onAt = c!.now();
    await sim.settle();
    expect(
      sim.pool
        .eventLog()
        .filter((e) => e.kind === 'power')
        .at(-1),
    ).toMatchObject({ atMs: onAt, host: 'host-02', detail: { state: 'on', by: 'power-file' } });
    // Boots for bootMs (not reachable, not live, slot still), then is back on both homes, live, writing.
    await expectBootsAfterBootMs(c!, 'host-02', onAt);
    await overStatefileIntervals(c!, {
      advancing: ['host-01', 'host-02', 'host-03'],
      eachTick: () => expect(db.peek('host_metrics', h.built.metricsRef).live).toBe(true),
    });
    expect(await probe()).toEqual(['open', 'open']);
    // Booted, its xapi resynchronised: the VMs the database still had on it are Halted now.
    for (const ref of vms) expect(db.peek('VM', ref)).toMatchObject({ power_state: 'Halted', resident_on: 'OpaqueRef:NULL' });
  });

  it('host.power_on through XAPI writes the power file as a BMC would', async () => {
    const { sim } = c!;
    const h = sim.pool.host('host-03');
    const info = sim.info().hosts.find((x) => x.name === 'host-03')!;
    expect((await fenceCli(['--type=file', `--status-file=${info.powerFile}`, '--action=off'])).code).toBe(0);
    sim.pool.pollPowerFiles(); // fence_dummy has exited: "off" is in the file
    expect(h.power).toBe('off');
    await sim.settle();
    const session = (await jsonRpc(sim.info().masterUrl, 'session.login_with_password', ['root', PASSWORD])).result;
    expect((await jsonRpc(sim.info().masterUrl, 'host.power_on', [session, h.built.ref])).error).toBeUndefined();
    expect(h.power).toBe('on');
    expect((await fenceCli(['--type=file', `--status-file=${info.powerFile}`, '--action=status'])).code).toBe(0);
    const again = await jsonRpc(sim.info().masterUrl, 'host.power_on', [session, h.built.ref]);
    expect(again.error).toEqual({ code: 1, message: 'HOST_IS_LIVE', data: [h.built.ref] });
  });
});
