/** A pool larger than the configured limits is refused with a clear error, counted, and retried; never mirrored. */
import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { PoolConnection } from '../../io/xapi/connection.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import { PASSWORD, startTestSim } from '../helpers/sim.ts';
import { waitFor } from '../helpers/wait.ts';

let sim: Simulator | undefined;
let conn: PoolConnection | undefined;
afterEach(async () => {
  await conn?.stop();
  await sim?.stop();
  sim = conn = undefined;
});

function connect(s: Simulator, limits: { maxAnswerBytes: number; maxHosts: number; maxRecords: number }): PoolConnection {
  const c = new PoolConnection({
    name: 'p',
    urls: [s.info().masterUrl],
    user: 'root',
    password: PASSWORD,
    allowUnauthorized: false,
    callTimeoutMs: 2000,
    vmRefreshMs: 0,
    retryMinMs: 100,
    retryMaxMs: 200,
    limits,
    log: pino({ level: 'silent' }),
  });
  c.start();
  return c;
}

it('more hosts than limits.maxHosts: the connection is refused, saying how many and the limit', async () => {
  sim = await startTestSim({ spec: generatePoolSpec({ hosts: 3, vms: 3, seed: 2 }) });
  const c = (conn = connect(sim, { maxAnswerBytes: 8 * 2 ** 20, maxHosts: 2, maxRecords: 1000 }));
  await waitFor('the refusal counted', () => (c.errors.get('TOO_MANY_RECORDS') ?? 0) >= 2);
  expect(c.lastError).toMatch(/host(_metrics)?\.get_all_records answered 3 host(_metrics)? records, more than the limit \(2\)/);
  expect(c.status).not.toBe('connected');
  expect(c.snapshot()).toBeNull();
});

it('within the limits (the same pool, maxHosts 3) it connects and mirrors every host', async () => {
  sim = await startTestSim({ spec: generatePoolSpec({ hosts: 3, vms: 3, seed: 2 }) });
  const c = (conn = connect(sim, { maxAnswerBytes: 8 * 2 ** 20, maxHosts: 3, maxRecords: 1000 }));
  await waitFor('connected', () => c.status === 'connected');
  expect(
    c
      .snapshot()
      ?.hosts.map((h) => h.name)
      .sort(),
  ).toEqual(['host-01', 'host-02', 'host-03']);
  expect(c.errors.size).toBe(0);
});
