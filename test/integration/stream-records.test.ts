/** Records parsed as the answer streams: against the simulator's JSON-RPC, and a server answering badly on purpose. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotJsonRpcError, streamAllRecords, type StreamRecordsOptions } from '../../io/xapi/stream-records.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { jsonRpc } from '../helpers/rpc.ts';
import { PASSWORD, startTestSim } from '../helpers/sim.ts';

let sim: Simulator;
let bad: Server;
let badUrl = '';
let answer: (res: import('node:http').ServerResponse) => void = (res) => res.end();
const dispatcher = new Agent();

beforeAll(async () => {
  sim = await startTestSim();
  bad = createServer((req, res) => {
    req.resume();
    req.on('end', () => answer(res));
  });
  await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
  badUrl = `http://127.0.0.1:${(bad.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await sim?.stop();
  await new Promise<void>((r) => bad.close(() => r()));
  await dispatcher.close();
});

const base = (o: Partial<StreamRecordsOptions>): StreamRecordsOptions => ({
  url: badUrl,
  sessionId: 'OpaqueRef:s',
  method: 'VM.get_all_records',
  dispatcher,
  fields: ['name_label'],
  keep: () => true,
  maxRecords: 100,
  maxRecordBytes: 4096,
  timeoutMs: 5000,
  ...o,
});

describe('streamAllRecords', () => {
  it('gives every kept record of the simulator, picked to the fields asked for', async () => {
    const session = (await jsonRpc(sim.info().masterUrl, 'session.login_with_password', ['root', PASSWORD])).result as string;
    const got = await streamAllRecords(
      base({ url: sim.info().masterUrl, sessionId: session, fields: ['name_label', 'power_state'], keep: (r) => r.is_a_template !== true }),
    );
    const expected = Object.fromEntries(
      sim.pool.built.db
        .all('VM')
        .filter(([, r]) => r.is_a_template !== true)
        .map(([ref, r]) => [ref, { name_label: r.name_label, power_state: r.power_state }]),
    );
    expect(Object.keys(expected).length).toBeGreaterThan(3);
    expect(got).toEqual(expected);
  });

  it('refuses more records than allowed, a record too large, and says what XAPI answered', async () => {
    const records = (n: number, size = 10) =>
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        result: Object.fromEntries(Array.from({ length: n }, (_, i) => [`OpaqueRef:${i}`, { name_label: 'x'.repeat(size) }])),
      });
    answer = (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(records(101));
    await expect(streamAllRecords(base({}))).rejects.toMatchObject({ code: 'TOO_MANY_RECORDS' });
    answer = (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(records(100));
    expect(Object.keys(await streamAllRecords(base({})))).toHaveLength(100);
    answer = (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(records(2, 100_000));
    await expect(streamAllRecords(base({}))).rejects.toMatchObject({ code: 'ANSWER_TOO_LARGE' });
    answer = (res) =>
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: 1, message: 'SESSION_INVALID', data: ['OpaqueRef:s'] } }));
    await expect(streamAllRecords(base({}))).rejects.toMatchObject({ code: 'SESSION_INVALID', params: ['OpaqueRef:s'] });
    answer = (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{"OpaqueRef:1":7}}');
    await expect(streamAllRecords(base({}))).rejects.toMatchObject({ code: 'INVALID_ANSWER' });
    answer = (res) => res.writeHead(200, { 'content-type': 'text/xml' }).end('<methodResponse/>');
    await expect(streamAllRecords(base({}))).rejects.toBeInstanceOf(NotJsonRpcError);
    answer = (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{"OpaqueRef:1":{');
    await expect(streamAllRecords(base({}))).rejects.toThrow();
  });

  it('gives up at its timeout on an answer that never ends', async () => {
    answer = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"jsonrpc":"2.0","id":1,"result":{');
    };
    const t = performance.now();
    await expect(streamAllRecords(base({ timeoutMs: 300 }))).rejects.toThrow();
    expect(performance.now() - t).toBeLessThan(3000);
  });
});
