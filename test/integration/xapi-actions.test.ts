/**
 * The actions client against the simulator's real JSON-RPC endpoints: xapi's error shape (the code in
 * `message`, its parameters in `data`) read as xapi sends it; HOST_IS_SLAVE followed to the master at
 * login; a session xapi dropped (SESSION_INVALID) logged in again once; a call that acts is not
 * retried after it may have run; a host answering as master told from a slave.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { XapiActions, XapiCallError } from '../../io/xapi/actions.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { PASSWORD, startTestSim } from '../helpers/sim.ts';

let sim: Simulator;
beforeAll(async () => {
  sim = await startTestSim({ spec: generatePoolSpec({ hosts: 3, vms: 3, seed: 44 }), addressBase: '127.0.74.1' });
});
afterAll(async () => {
  await sim?.stop();
});

const slaveUrls = () =>
  sim
    .info()
    .hosts.filter((h) => !h.master)
    .map((h) => h.urls[0]!);

it("reads xapi's error code and parameters from a JSON-RPC error", async () => {
  const x = new XapiActions({ urls: [sim.info().masterUrl], user: 'root', password: PASSWORD, timeoutMs: 2000 });
  try {
    const e = await x.call('VM.get_by_uuid', '00000000-0000-0000-0000-000000000000').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(XapiCallError);
    expect(e).toMatchObject({ code: 'UUID_INVALID', params: ['VM', '00000000-0000-0000-0000-000000000000'] });
  } finally {
    await x.close();
  }
});

it('logs in on the master through a slave (HOST_IS_SLAVE names it), and refuses a wrong password at once', async () => {
  const x = new XapiActions({ urls: slaveUrls(), user: 'root', password: PASSWORD, timeoutMs: 2000 });
  try {
    const pools = (await x.call('pool.get_all')) as string[];
    expect(pools).toHaveLength(1);
  } finally {
    await x.close();
  }
  const bad = new XapiActions({ urls: slaveUrls(), user: 'root', password: 'wrong', timeoutMs: 2000 });
  await expect(bad.call('pool.get_all')).rejects.toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED' });
  await bad.close();
});

it('logs in again once when xapi dropped the session; a host answering as master is told from a slave', async () => {
  const x = new XapiActions({ urls: [sim.info().masterUrl], user: 'root', password: PASSWORD, timeoutMs: 2000 });
  try {
    await x.call('pool.get_all');
    // xapi drops the session (as when it restarts: the Session table is not persisted).
    sim.shared.sessions.clear();
    expect(((await x.call('pool.get_all')) as string[]).length).toBe(1);
    const master = sim.info().hosts.find((h) => h.master)!;
    const slave = sim.info().hosts.find((h) => !h.master)!;
    expect(await x.answersAsMaster(master.addresses[0]!)).toBe(true);
    expect(await x.answersAsMaster(slave.addresses[0]!)).toBe(false);
  } finally {
    await x.close();
  }
});
