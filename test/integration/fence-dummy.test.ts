/** Power control through Debian's real fence_dummy agent, on the simulator's power-status files. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { run } from '../helpers/run.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { PASSWORD, requireFile, slotOf, startTestSim, tcpProbe } from '../helpers/sim.ts';
import { jsonRpc } from '../helpers/rpc.ts';
import { waitFor } from '../helpers/wait.ts';

const FENCE_DUMMY = '/usr/sbin/fence_dummy';

/** Runs fence_dummy with CLI arguments; resolves with its exit code and output. */
function fenceCli(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(FENCE_DUMMY, args, { timeout: 30_000 }, (err, stdout) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout });
    });
  });
}

/** Runs fence_dummy speaking the fence-agents stdin protocol (name=value lines). */
const fenceStdin = (lines: string[]) => run(FENCE_DUMMY, [], { input: `${lines.join('\n')}\n` });

let sim: Simulator;
beforeAll(async () => {
  requireFile(FENCE_DUMMY, 'apt-get install fence-agents');
  sim = await startTestSim();
});
afterAll(async () => {
  await sim?.stop();
});

describe('fence_dummy --type=file on a simulated host', () => {
  it('reports on, powers the host off (VMs halt, both paths stop), reports off, powers it on again', async () => {
    const info = sim.info().hosts.find((h) => h.name === 'host-02')!;
    const h = sim.pool.host('host-02');
    const db = sim.pool.built.db;
    const vms = db.all('VM').filter(([, v]) => v.resident_on === h.built.ref && !v.is_control_domain).map(([ref]) => ref);
    expect(vms.length).toBeGreaterThan(0);
    const file = `--status-file=${info.powerFile}`;

    expect(await fenceCli(['--type=file', file, '--action=status'])).toEqual({ code: 0, stdout: expect.stringContaining('Status: ON') });

    const off = await fenceCli(['--type=file', file, '--action=off']);
    expect(off.code).toBe(0);
    await waitFor('host-02 powered off', () => h.power === 'off');
    await sim.settle();
    for (const ref of vms) expect(db.peek('VM', ref)).toMatchObject({ power_state: 'Halted', resident_on: 'OpaqueRef:NULL' });
    expect(await Promise.all(info.addresses.map((a) => tcpProbe(a, sim.port)))).toEqual(['refused', 'refused']);
    const seq = slotOf(sim, 'host-02').sequence;
    await new Promise((r) => setTimeout(r, sim.pool.timing.statefileIntervalMs * 4));
    expect(slotOf(sim, 'host-02').sequence).toBe(seq);
    expect(sim.pool.eventLog().find((e) => e.kind === 'power')).toMatchObject({ host: 'host-02', detail: { state: 'off', by: 'power-file', vmsHalted: vms.length } });

    // fence-agents protocol: status of a powered-off plug exits 2.
    expect((await fenceStdin(['# xenha test', 'action=status', 'type=file', `status_file=${info.powerFile}`])).code).toBe(2);

    expect((await fenceStdin(['action=on', 'type=file', `status_file=${info.powerFile}`])).code).toBe(0);
    await waitFor('host-02 back on both homes', async () =>
      (await Promise.all(info.addresses.map((a) => tcpProbe(a, sim.port)))).every((x) => x === 'open'));
    await waitFor('host-02 live', () => db.peek('host_metrics', h.built.metricsRef).live === true);
    const after = slotOf(sim, 'host-02').sequence;
    await waitFor('host-02 writing its slot again', () => slotOf(sim, 'host-02').sequence !== after);
  });

  it('host.power_on through XAPI writes the power file as a BMC would', async () => {
    const h = sim.pool.host('host-03');
    const info = sim.info().hosts.find((x) => x.name === 'host-03')!;
    expect((await fenceCli(['--type=file', `--status-file=${info.powerFile}`, '--action=off'])).code).toBe(0);
    await waitFor('host-03 off', () => h.power === 'off');
    const session = (await jsonRpc(sim.info().masterUrl, 'session.login_with_password', ['root', PASSWORD])).result;
    expect((await jsonRpc(sim.info().masterUrl, 'host.power_on', [session, h.built.ref])).error).toBeUndefined();
    expect(h.power).toBe('on');
    expect((await fenceCli(['--type=file', `--status-file=${info.powerFile}`, '--action=status'])).code).toBe(0);
    const again = await jsonRpc(sim.info().masterUrl, 'host.power_on', [session, h.built.ref]);
    expect(again.error).toEqual({ code: 1, message: 'HOST_IS_LIVE', data: [h.built.ref] });
  });
});
