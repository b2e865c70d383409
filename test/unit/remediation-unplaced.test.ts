/**
 * xenha_remediation_protected_vms_unplaced: the protected VMs a finished plan left unplaced that are
 * still down, from a state folded from journal records (validated by the journal's own schema) and
 * VM records; and the gauge as /metrics shows it, per pool, absent before a view.
 */
import { describe, expect, it } from 'vitest';
import { createRemediationMetrics } from '../../remediation/metrics.ts';
import { journalRecord, type PlanState } from '../../remediation/records.ts';
import { apply, emptyState, protectedVmsStillUnplaced, type RemediationState } from '../../remediation/state.ts';

const AT = '2030-01-01T00:00:00.000Z';

/** A state with one plan per entry: its pool, the state it ended in, the VMs it listed unplaced. */
function stateWith(plans: { pool: string; state: PlanState; unplaced: string[] }[]): RemediationState {
  const s = emptyState();
  let seq = 0;
  const fold = (r: Record<string, unknown>) => apply(s, journalRecord.parse({ seq: ++seq, at: AT, ...r }));
  plans.forEach((p, i) => {
    const incident = `${p.pool}/h${i}/boot`;
    fold({ type: 'incident', incident, pool: p.pool, host: `h${i}`, hostName: `host-${i}`, boot: 'boot', fingerprint: '0123456789abcdef' });
    fold({
      type: 'plan',
      incident,
      plan: `p${i}`,
      pool: p.pool,
      host: `h${i}`,
      hostName: `host-${i}`,
      mode: 'enforce',
      modeReason: null,
      state: 'running',
      steps: [],
      names: {},
      unplaced: p.unplaced.map((vm) => ({ vm, name: vm, reason: 'needs 8.0 GiB, no survivor has that much free' })),
      refused: [],
    });
    fold({ type: 'plan-state', plan: `p${i}`, state: p.state, reason: 'test' });
  });
  return s;
}

const vm = (uuid: string, powerState: string, haRestartPriority = 'restart') => ({ uuid, powerState, haRestartPriority });

describe('protected VMs a finished plan left unplaced', () => {
  it('counts the done plans’ unplaced VMs that are protected and not running, per pool', () => {
    const s = stateWith([
      { pool: 'a', state: 'done', unplaced: ['v1', 'v2', 'v3', 'v4', 'v5'] },
      { pool: 'a', state: 'needs-operator', unplaced: ['v6'] },
      { pool: 'b', state: 'done', unplaced: ['w1'] },
    ]);
    const vms = [
      vm('v1', 'Halted'), // still down: counted
      vm('v2', 'Running'), // a person started it
      vm('v3', 'Halted', 'best-effort'), // not protected
      vm('v4', 'Suspended'), // down: counted
      // v5: gone from the pool
      vm('v6', 'Halted'), // its plan waits for a person: another alert's
      vm('w1', 'Halted'), // another pool's plan
      vm('x1', 'Halted'), // never listed
    ];
    expect(protectedVmsStillUnplaced(s, 'a', vms).sort()).toEqual(['v1', 'v4']);
    expect(protectedVmsStillUnplaced(s, 'b', vms)).toEqual(['w1']);
    expect(protectedVmsStillUnplaced(s, 'c', vms)).toEqual([]);
  });

  it('on /metrics: one series per pool with a view, none for a pool without one', async () => {
    const s = stateWith([{ pool: 'a', state: 'done', unplaced: ['v1', 'v2'] }]);
    let vmsOfA: ReturnType<typeof vm>[] | null = [vm('v1', 'Halted'), vm('v2', 'Halted')];
    const metrics = createRemediationMetrics(s, [
      { pool: 'a', mode: 'enforce', haOn: () => false, vms: () => vmsOfA },
      { pool: 'b', mode: 'enforce', haOn: () => false, vms: () => null },
    ]);
    const series = async () =>
      (await metrics.registry.metrics()).split('\n').filter((l) => l.startsWith('xenha_remediation_protected_vms_unplaced{'));
    expect(await series()).toEqual(['xenha_remediation_protected_vms_unplaced{pool="a"} 2']);
    vmsOfA = [vm('v1', 'Running'), vm('v2', 'Halted')];
    expect(await series()).toEqual(['xenha_remediation_protected_vms_unplaced{pool="a"} 1']);
    vmsOfA = null;
    expect(await series()).toEqual([]);
  });
});
