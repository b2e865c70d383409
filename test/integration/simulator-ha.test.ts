/** The simulator's HA calls answer with xenha's planner, over the real xen-api client. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type Xapi } from 'xen-api';
import type { Simulator } from '../../simulator/simulator.ts';
import { parsePoolSpecYaml } from '../../simulator/pool-spec.ts';
import { PASSWORD, startTestSim } from '../helpers/sim.ts';

let sim: Simulator;
let x: Xapi;

// Three 128 GiB hosts with two 24 GiB VMs each (75 GiB left free each): one host's two protected VMs
// (48.5 GiB with overheads) fit on a survivor; two hosts' four (97 GiB) do not fit on the last one.
const POOL = `
hostFailuresToTolerate: 1
hosts: [{name: a, memory: 128GiB}, {name: b, memory: 128GiB}, {name: c, memory: 128GiB}]
vms:
  - {name: a1, memory: 24GiB, host: a, haRestartPriority: restart}
  - {name: a2, memory: 24GiB, host: a, haRestartPriority: restart}
  - {name: b1, memory: 24GiB, host: b, haRestartPriority: restart}
  - {name: b2, memory: 24GiB, host: b, haRestartPriority: restart}
  - {name: c1, memory: 24GiB, host: c, haRestartPriority: restart}
  - {name: c2, memory: 24GiB, host: c, haRestartPriority: best-effort}
`;

beforeAll(async () => {
  sim = await startTestSim({ spec: parsePoolSpecYaml(POOL) });
  x = createClient({ url: sim.info().masterUrl, auth: { user: 'root', password: PASSWORD }, watchEvents: false });
  await x.connect();
});
afterAll(async () => {
  await x?.disconnect();
  await sim?.stop();
});

describe('simulated HA calls', () => {
  it('ha_compute_max_host_failures_to_tolerate answers with the planner', async () => {
    expect(Number(await x.call('pool.ha_compute_max_host_failures_to_tolerate'))).toBe(1);
    expect(await x.call('pool.ha_failover_plan_exists', 1)).toBe(true);
    expect(await x.call('pool.ha_failover_plan_exists', 2)).toBe(false);
  });

  it('the hypothetical variant takes other priorities', async () => {
    const none = Object.fromEntries(
      sim.pool.built.db
        .all('VM')
        .filter(([, v]) => !v.is_control_domain)
        .map(([ref]) => [ref, '']),
    );
    expect(Number(await x.call('pool.ha_compute_hypothetical_max_host_failures_to_tolerate', none))).toBe(2);
  });

  it('set_ha_host_failures_to_tolerate refuses to break the plan', async () => {
    const pool = sim.pool.built.poolRef;
    await expect(x.call('pool.set_ha_host_failures_to_tolerate', pool, 2)).rejects.toMatchObject({
      code: 'HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN',
    });
    await x.call('pool.set_ha_host_failures_to_tolerate', pool, 1);
    expect(sim.pool.built.db.peek('pool', pool)).toMatchObject({
      ha_host_failures_to_tolerate: 1,
      ha_plan_exists_for: 1,
      ha_overcommitted: false,
    });
  });
});
