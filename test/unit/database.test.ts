import { describe, expect, it } from 'vitest';
import { formatToken, parseToken, XapiDatabase } from '../../simulator/xapi/database.ts';

function db() {
  const d = new XapiDatabase(['pool', 'VM', 'host']);
  const vm = d.create('VM', { uuid: 'u1', name_label: 'a', power_state: 'Halted' });
  return { d, vm };
}

describe('XAPI database events (event.from semantics)', () => {
  it('sends every object as "add" from the empty token, then only changes', () => {
    const { d, vm } = db();
    const first = d.eventsSince(['vm'], parseToken(''));
    expect(first.events.map((e) => [e.class, e.operation, e.ref])).toEqual([['vm', 'add', vm]]);
    expect(first.valid_ref_counts).toEqual({ pool: 0, vm: 1, host: 0 });
    const since = parseToken(first.token);
    expect(d.eventsSince(['VM'], since).events).toEqual([]);
    d.update('VM', vm, { power_state: 'Running' });
    d.update('VM', vm, { name_label: 'b' });
    const next = d.eventsSince(['*'], since);
    expect(next.events).toHaveLength(1); // coalesced: one event per object, with the latest snapshot
    expect(next.events[0]).toMatchObject({ operation: 'mod', snapshot: { power_state: 'Running', name_label: 'b' } });
    d.remove('VM', vm);
    const del = d.eventsSince(['vm'], parseToken(next.token));
    expect(del.events).toEqual([{ id: expect.any(String), timestamp: '0.0', class: 'vm', operation: 'del', ref: vm }]);
  });

  it('sends no event for a write that changes nothing', () => {
    const { d, vm } = db();
    const g = d.currentGeneration;
    expect(d.update('VM', vm, { power_state: 'Halted' })).toBe(false);
    expect(d.currentGeneration).toBe(g);
  });

  it('wakes a waiting long poll on change, and times out empty otherwise', async () => {
    const { d, vm } = db();
    const since = d.currentGeneration;
    const empty = await d.waitForEvents(['vm'], since, 30);
    expect(empty.events).toEqual([]);
    const waiting = d.waitForEvents(['vm'], since, 10_000);
    d.update('host', d.create('host', { uuid: 'h' }), { name_label: 'x' }); // another class: keeps waiting
    d.update('VM', vm, { power_state: 'Running' });
    const got = await waiting;
    expect(got.events.map((e) => e.ref)).toEqual([vm]);
  });

  it('stops waiting when the client goes away', async () => {
    const { d } = db();
    const ac = new AbortController();
    const p = d.waitForEvents(['vm'], d.currentGeneration, 60_000, ac.signal);
    ac.abort();
    expect((await p).events).toEqual([]);
  });

  it('parses tokens like xapi and rejects others', () => {
    expect(formatToken(42)).toBe('00000000000000000042,00000000000000000000');
    expect(parseToken(formatToken(42))).toBe(42);
    expect(() => parseToken('nope')).toThrow(/EVENT_FROM_TOKEN_PARSE_FAILURE/);
  });

  it('answers HANDLE_INVALID and UUID_INVALID with the class', () => {
    const { d } = db();
    expect(() => d.get('VM', 'OpaqueRef:nope')).toThrow(/HANDLE_INVALID\(VM, OpaqueRef:nope\)/);
    expect(() => d.byUuid('VM', 'nope')).toThrow(/UUID_INVALID\(VM, nope\)/);
  });
});
