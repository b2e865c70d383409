/** The shapes XAPI answers must have before the client sees them, and the bounded error-code label. */
import { describe, expect, it } from 'vitest';
import { answerProblem } from '../../core/model/xapi-answers.ts';
import { errorCodeLabel } from '../../io/xapi/error-codes.ts';

const LIMITS = { maxHosts: 3, maxRecords: 5 };
const ok = (method: string, answer: unknown) => answerProblem(method, answer, LIMITS)?.detail ?? null;
const code = (method: string, answer: unknown) => answerProblem(method, answer, LIMITS)?.code;
const event = (e: Record<string, unknown>) => ({ events: [e], valid_ref_counts: { host: 1 }, token: '1,0' });

describe('XAPI answer shapes', () => {
  it('accepts what xapi answers', () => {
    expect(ok('session.login_with_password', 'OpaqueRef:s')).toBeNull();
    expect(ok('system.listMethods', ['host.get_all'])).toBeNull();
    expect(ok('event.from', event({ class: 'host', operation: 'mod', ref: 'OpaqueRef:h', snapshot: { uuid: 'u' } }))).toBeNull();
    expect(ok('event.from', event({ class: 'host', operation: 'del', ref: 'OpaqueRef:h' }))).toBeNull();
    expect(ok('pool.get_all_records', { 'OpaqueRef:p': { other_config: {} } })).toBeNull();
    expect(ok('VDI.get_all_records_where', {})).toBeNull();
    expect(ok('pool.get_all', ['OpaqueRef:p'])).toBeNull();
    expect(ok('VM.start', 'anything')).toBeNull(); // not looked into by the client
  });

  it.each([
    ['event.from', { events: null, valid_ref_counts: {}, token: 't' }, /events/],
    ['event.from', { events: [], token: 't' }, /valid_ref_counts/],
    ['event.from', { events: [], valid_ref_counts: {} }, /token/],
    ['event.from', event({ class: 'host', operation: 'mod', ref: 'r', snapshot: 42 }), /without an object snapshot/],
    ['event.from', event({ class: 'host', operation: 'jump', ref: 'r', snapshot: {} }), /operation/],
    ['event.from', event({ class: 'pool', operation: 'add', ref: 'r', snapshot: { uuid: 'p' } }), /other_config/],
    ['event.from', 'garbage', /expected object/],
    ['pool.get_all_records', { 'OpaqueRef:p': { uuid: 'p' } }, /other_config/],
    ['pool.get_all_records', {}, /no pool record/],
    ['host.get_all_records', { r: 'not a record' }, /expected an object/],
    ['host.get_all_records', null, /expected record|expected object/],
    ['session.login_with_password', null, /expected string/],
    ['system.listMethods', 'x', /expected array/],
  ])('%s refuses %j', (method, answer, why) => {
    expect(ok(method, answer)).toMatch(why);
  });

  it('bounds the records one answer may bring: hosts by maxHosts, any class by maxRecords', () => {
    const records = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`OpaqueRef:${i}`, {}]));
    expect(ok('host.get_all_records', records(3))).toBeNull();
    expect(ok('host.get_all_records', records(4))).toMatch(/4 host records, more than the limit \(3\)/);
    expect(code('host.get_all_records', records(4))).toBe('TOO_MANY_RECORDS');
    expect(code('host.get_all_records', { r: 1 })).toBe('INVALID_ANSWER');
    expect(ok('PIF.get_all_records', records(5))).toBeNull();
    expect(ok('PIF.get_all_records', records(6))).toMatch(/6 PIF records/);
    const events = (cls: string, n: number) => ({
      events: Array.from({ length: n }, (_, i) => ({ class: cls, operation: 'add', ref: `r${i}`, snapshot: {} })),
      valid_ref_counts: {},
      token: 't',
    });
    expect(ok('event.from', events('host', 3))).toBeNull();
    expect(ok('event.from', events('host', 4))).toMatch(/4 host events in one answer/);
    expect(ok('event.from', events('PBD', 6))).toMatch(/6 PBD events/);
  });
});

describe('error code label', () => {
  it('keeps known codes and folds the rest into "other"', () => {
    expect(errorCodeLabel('SESSION_INVALID')).toBe('SESSION_INVALID');
    expect(errorCodeLabel('ECONNREFUSED')).toBe('ECONNREFUSED');
    expect(errorCodeLabel('INVALID_ANSWER')).toBe('INVALID_ANSWER');
    expect(errorCodeLabel('HTTP_503')).toBe('HTTP_5XX');
    expect(errorCodeLabel('MADE_UP_BY_A_HOSTILE_POOL_1234')).toBe('other');
    expect(errorCodeLabel('')).toBe('other');
  });
});
