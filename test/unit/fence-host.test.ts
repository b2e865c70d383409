/**
 * fenceHost on scripted fake devices written against the fence contract, on a fake clock (no real
 * waiting). Every fake device writes each call and its answer to one shared log, a record kept apart
 * from fenceHost's own: the property test checks from it alone that no outcome says "off" without a
 * status answering off after the last off sent to that device.
 */
import { describe, expect, it } from 'vitest';
import { test as fcTest, fc } from '@fast-check/vitest';
import pino from 'pino';
import { Writable } from 'node:stream';
import {
  FENCED_OUTCOMES,
  fenceHost,
  isFenced,
  type ActionAnswer,
  type FenceDevice,
  type FenceLevel,
  type FenceResult,
  type StatusAnswer,
} from '../../plugins/fence/index.ts';
import { manual } from '../../plugins/fence/manual.ts';

interface Call {
  device: number;
  call: 'status' | 'off';
  at: number;
  /** For status: what it answered (undefined when it threw). */
  state?: StatusAnswer['state'];
  ok?: boolean;
}

interface Script {
  /** Answers of successive status calls; the last one repeats. */
  statuses: (StatusAnswer | 'throw')[];
  off: ActionAnswer | 'throw';
  /** Time each call takes on the fake clock. */
  callMs?: number;
  operator?: boolean;
  powerTimeoutMs?: number;
  pollMs?: number;
}

class Clock {
  t = 0;
  now = () => this.t;
  sleep = async (ms: number) => {
    this.t += ms;
  };
}

const on = (detail = 'on'): StatusAnswer => ({ state: 'on', detail });
const off = (detail = 'off'): StatusAnswer => ({ state: 'off', detail });
const unknown = (detail = 'unknown'): StatusAnswer => ({ state: 'unknown', detail });
const ok: ActionAnswer = { ok: true, detail: 'off sent' };
const refused: ActionAnswer = { ok: false, detail: 'refused' };

/** Fake devices sharing one call log and one clock. */
function rig() {
  const clock = new Clock();
  const calls: Call[] = [];
  let n = 0;
  const device = (s: Script): FenceDevice => {
    const id = n++;
    let next = 0;
    return {
      label: `fake-${id}`,
      ...(s.operator === undefined ? {} : { operator: s.operator }),
      ...(s.powerTimeoutMs === undefined ? {} : { powerTimeoutMs: s.powerTimeoutMs }),
      ...(s.pollMs === undefined ? {} : { pollMs: s.pollMs }),
      async status() {
        clock.t += s.callMs ?? 0;
        const a = s.statuses[Math.min(next++, s.statuses.length - 1)] ?? unknown();
        if (a === 'throw') {
          calls.push({ device: id, call: 'status', at: clock.t });
          throw new Error('status exploded');
        }
        calls.push({ device: id, call: 'status', at: clock.t, state: a.state });
        return a;
      },
      async off() {
        clock.t += s.callMs ?? 0;
        if (s.off === 'throw') {
          calls.push({ device: id, call: 'off', at: clock.t, ok: false });
          throw new Error('off exploded');
        }
        calls.push({ device: id, call: 'off', at: clock.t, ok: s.off.ok });
        return s.off;
      },
      async on() {
        return { ok: false, detail: 'not scripted' };
      },
    };
  };
  const levels = (...scripts: Script[]): FenceLevel[] => scripts.map((s) => ({ plugin: 'fake', device: device(s) }));
  return { clock, calls, levels };
}

type Rig = ReturnType<typeof rig>;
const run = (r: Rig, levels: FenceLevel[], opts: { powerTimeoutMs?: number; pollMs?: number; signal?: AbortSignal } = {}) =>
  fenceHost(levels, { powerTimeoutMs: 60_000, pollMs: 1_000, now: r.clock.now, sleep: r.clock.sleep, ...opts });

/**
 * From the call log alone: a fenced outcome has a status answering off on the winning device, the
 * last call made to it, after every off sent to it (already-off: no off sent to it at all).
 */
function expectProof(result: FenceResult, calls: readonly Call[]) {
  if (!isFenced(result.outcome)) return;
  const device = result.level - 1;
  const own = calls.filter((c) => c.device === device);
  const last = own.at(-1);
  expect(last).toMatchObject({ call: 'status', state: 'off' });
  const offs = own.filter((c) => c.call === 'off');
  if (result.outcome === 'already-off') expect(offs).toEqual([]);
  else expect(offs.length).toBeGreaterThan(0);
}

describe('fenceHost', () => {
  it('already off: the first status answers off, no off is sent', async () => {
    const r = rig();
    const result = await run(r, r.levels({ statuses: [off()], off: ok }));
    expect(result).toMatchObject({ outcome: 'already-off', level: 1, aborted: false });
    expect(result.attempts).toEqual([expect.objectContaining({ level: 1, outcome: 'already-off', offSent: false, statusCalls: 1 })]);
    expect(r.calls.map((c) => c.call)).toEqual(['status']);
    expectProof(result, r.calls);
  });

  it('confirmed off after a few polls: status polled every pollMs after off until it answers off', async () => {
    const r = rig();
    const result = await run(r, r.levels({ statuses: [on(), on(), on(), on(), off()], off: ok }));
    expect(result.outcome).toBe('confirmed-off');
    expect(result.attempts[0]).toMatchObject({ outcome: 'confirmed-off', offSent: true, statusCalls: 5, confirmMs: 3_000 });
    expect(r.calls.map((c) => c.call)).toEqual(['status', 'off', 'status', 'status', 'status', 'status']);
    expect(r.calls.filter((c) => c.call === 'status').map((c) => c.at)).toEqual([0, 0, 1_000, 2_000, 3_000]);
    expectProof(result, r.calls);
  });

  it('off done but status stays on: timeout once powerTimeoutMs has passed, never confirmed', async () => {
    const r = rig();
    const result = await run(r, r.levels({ statuses: [on()], off: ok }), { powerTimeoutMs: 5_000 });
    expect(result.outcome).toBe('timeout');
    expect(result.detail).toContain('did not answer off within 5000 ms');
    // One status before off, then at 0, 1, 2, 3, 4 and 5 s after it.
    expect(result.attempts[0]).toMatchObject({ statusCalls: 7, durationMs: 5_000 });
    expect(r.clock.t).toBe(5_000);
  });

  it('a status that cannot tell is never taken as off', async () => {
    const r = rig();
    const result = await run(r, r.levels({ statuses: [unknown(), unknown('Error')], off: ok }), { powerTimeoutMs: 3_000 });
    expect(result.outcome).toBe('timeout');
  });

  it("a device's own timings override fenceHost's", async () => {
    const r = rig();
    const result = await run(r, r.levels({ statuses: [on()], off: ok, powerTimeoutMs: 10_000, pollMs: 5_000 }), { powerTimeoutMs: 1 });
    expect(result.outcome).toBe('timeout');
    expect(r.calls.filter((c) => c.call === 'status').map((c) => c.at)).toEqual([0, 0, 5_000, 10_000]);
  });

  it('off fails: the next level is used', async () => {
    const r = rig();
    const result = await run(r, r.levels({ statuses: [on()], off: refused }, { statuses: [on(), off()], off: ok }));
    expect(result).toMatchObject({ outcome: 'confirmed-off', level: 2 });
    expect(result.attempts.map((a) => [a.level, a.outcome])).toEqual([
      [1, 'failed'],
      [2, 'confirmed-off'],
    ]);
    expectProof(result, r.calls);
  });

  it('off refused but status then answers off (a BMC refusing to power off a host that is off): confirmed off', async () => {
    const r = rig();
    const result = await run(r, r.levels({ statuses: [unknown('cannot tell'), off()], off: refused }));
    expect(result.outcome).toBe('confirmed-off');
    expect(result.detail).toContain('off failed (refused) but status then answers off');
    expectProof(result, r.calls);
  });

  it('every level fails: the last failure is the outcome, every level tried once', async () => {
    const r = rig();
    const result = await run(
      r,
      r.levels(
        { statuses: [on()], off: { ok: false, detail: 'Unable to connect/login to fencing device', unreachable: true } },
        { statuses: [on()], off: 'throw' },
        { statuses: ['throw'], off: refused },
      ),
    );
    expect(result).toMatchObject({ outcome: 'failed', level: 3, aborted: false });
    expect(result.attempts.map((a) => a.outcome)).toEqual(['unreachable', 'failed', 'failed']);
    expect(result.attempts[1]!.detail).toContain('off threw: off exploded');
    expect(result.detail).toMatch(/^level 3 \(fake: fake-2\): off failed: refused/);
  });

  it('classifies an unreachable device and an off that ran out of time', async () => {
    const r = rig();
    const unreachable = await run(r, r.levels({ statuses: [on()], off: { ok: false, detail: 'Connection timed out', unreachable: true } }));
    expect(unreachable.outcome).toBe('unreachable');
    const timedOut = await run(r, r.levels({ statuses: [on()], off: { ok: false, detail: 'killed', timedOut: true, unreachable: true } }));
    expect(timedOut.outcome).toBe('timeout');
  });

  it('no level: failed', async () => {
    const r = rig();
    expect(await run(r, [])).toMatchObject({ outcome: 'failed', level: 0, attempts: [] });
  });

  it('aborted while polling: failed, aborted, the next levels not tried', async () => {
    const r = rig();
    const ac = new AbortController();
    const levels = r.levels({ statuses: [on()], off: ok }, { statuses: [off()], off: ok });
    const result = await fenceHost(levels, {
      now: r.clock.now,
      sleep: async (ms) => {
        r.clock.t += ms;
        if (r.clock.t >= 3_000) ac.abort();
      },
      signal: ac.signal,
    });
    expect(result).toMatchObject({ outcome: 'failed', aborted: true, level: 1 });
    expect(result.attempts).toHaveLength(1);
    expect(r.calls.some((c) => c.device === 1)).toBe(false);
  });

  it('an already aborted fence sends nothing', async () => {
    const r = rig();
    const ac = new AbortController();
    ac.abort();
    const result = await run(r, r.levels({ statuses: [off()], off: ok }), { signal: ac.signal });
    expect(result).toMatchObject({ outcome: 'failed', aborted: true });
    expect(r.calls).toEqual([]);
  });
});

describe('fenceHost with the manual plugin', () => {
  const target = { pool: 'pool-a', hostUuid: 'uuid-2', hostName: 'host-02' };
  function capture() {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        cb();
      },
    });
    return { lines, log: pino({ level: 'debug' }, stream) };
  }

  it('waits until an operator acknowledges: status off only after the ack, then confirmed off', async () => {
    const r = rig();
    const { lines, log } = capture();
    let ackedAt = Infinity;
    const acks = { isAcknowledged: (host: string) => host === 'uuid-2' && r.clock.t >= ackedAt };
    const device = manual.create(manual.options.parse({ waitMs: 600_000, pollMs: 5_000 }), target, { log, acks });
    const polls: number[] = [];
    const result = await fenceHost([{ plugin: 'manual', device }], {
      now: r.clock.now,
      sleep: async (ms) => {
        r.clock.t += ms;
        polls.push(r.clock.t);
        if (polls.length === 10) ackedAt = r.clock.t + 2_000; // the operator acks between two looks
      },
    });
    expect(result.outcome).toBe('confirmed-off');
    expect(result.attempts[0]).toMatchObject({ offSent: true, confirmMs: 55_000 });
    expect(result.detail).toContain('an operator acknowledged that host-02 (uuid-2) of pool pool-a is powered off');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.some((l) => l.level === 40 && String(l.msg).includes('an operator must power off host-02'))).toBe(true);
  });

  it('no ack within waitMs: awaiting-operator; fenced again after the ack: already off', async () => {
    const r = rig();
    let acked = false;
    const device = manual.create(manual.options.parse({}), target, {
      log: pino({ level: 'silent' }),
      acks: { isAcknowledged: () => acked },
    });
    const first = await run(r, [{ plugin: 'manual', device }]);
    expect(first).toMatchObject({ outcome: 'awaiting-operator', level: 1 });
    expect(first.attempts[0]).toMatchObject({ statusCalls: 2, durationMs: 0 });
    acked = true;
    expect((await run(r, [{ plugin: 'manual', device }])).outcome).toBe('already-off');
  });

  it('without an acknowledgement source a manual level is never confirmed', async () => {
    const r = rig();
    const device = manual.create(manual.options.parse({ waitMs: 10_000 }), target, { log: pino({ level: 'silent' }) });
    const result = await run(r, [{ plugin: 'manual', device }]);
    expect(result.outcome).toBe('awaiting-operator');
    expect(result.attempts[0]!.detail).toContain('no acknowledgement source');
  });

  it('awaiting-operator is the outcome over a later level that failed', async () => {
    const r = rig();
    const device = manual.create(manual.options.parse({}), target, {
      log: pino({ level: 'silent' }),
      acks: { isAcknowledged: () => false },
    });
    const result = await run(r, [{ plugin: 'manual', device }, ...r.levels({ statuses: [on()], off: refused })]);
    expect(result).toMatchObject({ outcome: 'awaiting-operator', level: 1 });
    expect(result.attempts.map((a) => a.outcome)).toEqual(['awaiting-operator', 'failed']);
  });
});

describe('fenceHost: no fenced outcome without a status off after the action (property)', () => {
  const statusAnswer = fc.oneof(
    fc.constant<StatusAnswer | 'throw'>('throw'),
    fc.record({
      state: fc.constantFrom('on' as const, 'off' as const, 'unknown' as const),
      detail: fc.constant('scripted'),
      unreachable: fc.boolean(),
      timedOut: fc.boolean(),
    }),
  );
  const offAnswer = fc.oneof(
    fc.constant<ActionAnswer | 'throw'>('throw'),
    fc.record({ ok: fc.boolean(), detail: fc.constant('scripted'), unreachable: fc.boolean(), timedOut: fc.boolean() }),
  );
  const script = fc.record({
    statuses: fc.array(statusAnswer, { minLength: 1, maxLength: 12 }),
    off: offAnswer,
    callMs: fc.integer({ min: 0, max: 3_000 }),
    operator: fc.boolean(),
    powerTimeoutMs: fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: undefined }),
    pollMs: fc.option(fc.integer({ min: 1, max: 5_000 }), { nil: undefined }),
  });

  fcTest.prop([fc.array(script, { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 30_000 }), fc.integer({ min: 1, max: 5_000 })], {
    numRuns: 500,
  })('random scripted devices', async (scripts, powerTimeoutMs, pollMs) => {
    const r = rig();
    const result = await run(r, r.levels(...scripts), { powerTimeoutMs, pollMs });
    expectProof(result, r.calls);
    // A fenced outcome only from its own level's proof; a status answering off is never ignored.
    const statusOff = r.calls.some((c) => c.call === 'status' && c.state === 'off');
    expect(isFenced(result.outcome)).toBe(statusOff);
    // Levels tried in order, from 1, stopping at the first fenced one, all of them otherwise.
    expect(result.attempts.map((a) => a.level)).toEqual(result.attempts.map((_, i) => i + 1));
    expect(result.attempts.filter((a) => (FENCED_OUTCOMES as readonly string[]).includes(a.outcome)).length).toBe(
      isFenced(result.outcome) ? 1 : 0,
    );
    if (!isFenced(result.outcome)) expect(result.attempts).toHaveLength(scripts.length);
    // Every device call is in the log of the level that made it, and no level ran after the fenced one.
    expect(new Set(r.calls.map((c) => c.device)).size).toBe(result.attempts.length);
    for (const a of result.attempts) {
      expect(a.statusCalls).toBe(r.calls.filter((c) => c.device === a.level - 1 && c.call === 'status').length);
      expect(a.offSent).toBe(r.calls.some((c) => c.device === a.level - 1 && c.call === 'off'));
    }
  });
});
