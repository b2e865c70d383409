/**
 * The executor on a plan found running after a crash that came between a failed stopping step's record
 * and the plan's: it stops the plan again (needs-operator) and never resets or starts a VM — checked
 * against a pool double that records every call (any call to it fails the test).
 */
import { expect, it } from 'vitest';
import { pino } from 'pino';
import { PlanExecutor } from '../../remediation/executor.ts';
import type { PoolActions } from '../../remediation/pool-actions.ts';
import { journalRecord, type JournalEntry, type NewEntry, type PlanStep } from '../../remediation/records.ts';
import { apply, emptyState } from '../../remediation/state.ts';

const HOST = 'h-dead';
const steps: PlanStep[] = [
  { kind: 'fence', host: HOST, reason: 'dead' },
  { kind: 'confirm-fenced', host: HOST, reason: 'must be off' },
  { kind: 'reset-power-state', vm: 'vm-1', host: HOST, reason: 'reset' },
  { kind: 'start-vm', vm: 'vm-1', host: 'h-ok', reason: 'start' },
];

/** The plan as the remediator journals it, in the given state. */
const planRecord = (state: 'running' | 'needs-operator'): NewEntry => ({
  type: 'plan',
  incident: 'i',
  plan: 'p',
  pool: 'sim',
  host: HOST,
  hostName: 'dead',
  mode: 'enforce',
  modeReason: null,
  state,
  steps,
  names: {},
  unplaced: [],
  refused: [],
});

function setup(failedKind: 'confirm-fenced' | 'fence') {
  const state = emptyState();
  let seq = 0;
  const record = (e: NewEntry): Promise<JournalEntry> => {
    const r = journalRecord.parse({ ...e, seq: ++seq, at: new Date(1_800_000_000_000 + seq).toISOString() });
    apply(state, r);
    return Promise.resolve(r);
  };
  const calls: string[] = [];
  const actions = new Proxy({} as PoolActions, {
    get: (_t, prop) =>
      prop === 'then' ? undefined : () => (calls.push(String(prop)), Promise.reject(new Error(`unexpected ${String(prop)}`))),
  });
  return { state, record, calls, actions, failedKind };
}

for (const failedKind of ['fence', 'confirm-fenced'] as const) {
  it(`a ${failedKind} step journaled failed, the plan still running (a crash in between): stopped again, nothing reset or started`, async () => {
    const { state, record, calls, actions } = setup(failedKind);
    await record(planRecord('running'));
    if (failedKind === 'confirm-fenced')
      await record({ type: 'step', plan: 'p', index: 0, state: 'done', outcome: 'confirmed-off', detail: '' });
    const idx = failedKind === 'fence' ? 0 : 1;
    await record({ type: 'step', plan: 'p', index: idx, state: 'failed', outcome: 'not-off', detail: 'no device says off' });
    const fenceLevels = () => {
      calls.push('fenceLevels');
      return [];
    };
    const ex = new PlanExecutor({
      record,
      state,
      actions: () => actions,
      fenceLevels,
      address: () => null,
      log: pino({ level: 'silent' }),
    });
    const end = await ex.run(state.plans.get('p')!, new AbortController().signal);
    expect(end).toBe('needs-operator');
    expect(state.plans.get('p')!.state).toBe('needs-operator');
    expect(
      state.plans
        .get('p')!
        .steps.slice(2)
        .map((s) => s.state),
    ).toEqual(['pending', 'pending']);
    expect(calls).toEqual([]);
  });
}

it('a plan that is not running is not run (a second execution queued behind the first does nothing)', async () => {
  const { state, record, calls, actions } = setup('fence');
  await record(planRecord('needs-operator'));
  const ex = new PlanExecutor({
    record,
    state,
    actions: () => actions,
    fenceLevels: () => [],
    address: () => null,
    log: pino({ level: 'silent' }),
  });
  expect(await ex.run(state.plans.get('p')!, new AbortController().signal)).toBe('needs-operator');
  expect(calls).toEqual([]);
  expect(state.plans.get('p')!.steps.map((s) => s.state)).toEqual(['pending', 'pending', 'pending', 'pending']);
});
