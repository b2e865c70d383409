/**
 * The remediation service's own metrics on /metrics (Prometheus conventions: `xenha_remediation_`
 * prefix, base units, `_total` counters, bounded labels — XAPI error codes go through the same bounded
 * label set as the exporter's).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { errorCodeLabel } from '../io/xapi/error-codes.ts';
import { PLAN_STATES, type Mode, type PlanState } from './records.ts';
import { protectedVmsStillUnplaced, type RemediationState } from './state.ts';

/** Outcomes a step or fence reports, kept as they are; anything else (an XAPI code) through errorCodeLabel. */
const KNOWN_RESULTS = new Set([
  'done',
  'skipped',
  'failed',
  'confirmed-off',
  'already-off',
  'unreachable',
  'timeout',
  'awaiting-operator',
  'cancelled',
  'operator-confirmed',
  'off',
  'not-off',
  'started',
  'started-elsewhere',
  'already-running',
  'not-halted',
  'disks-in-use',
  'reset',
  'already-reset',
  'gone',
  'transitioned',
  'already-master',
  'following',
  'no-address',
  'no-host',
]);

export function resultLabel(r: string): string {
  return KNOWN_RESULTS.has(r) ? r : errorCodeLabel(r);
}

export interface RemediationMetrics {
  registry: Registry;
  requests: Counter<'code'>;
  notifications: Counter;
  duplicates: Counter<'pool'>;
  refusals: Counter<'pool' | 'gate'>;
  actions: Counter<'kind' | 'result'>;
  stepSeconds: Histogram<'kind'>;
  planSeconds: Histogram<'state'>;
  fsyncSeconds: Histogram;
}

export function createRemediationMetrics(
  state: RemediationState,
  modes: {
    pool: string;
    mode: Mode;
    haOn: () => boolean | null;
    /** The pool's VM records as the service's sampler holds them; null before its first view. */
    vms?: () => readonly { uuid: string; powerState: string; haRestartPriority: string }[] | null;
  }[],
): RemediationMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(name);
  const registers = [registry];
  const m: RemediationMetrics = {
    registry,
    requests: new Counter({
      name: 'xenha_remediation_webhook_requests_total',
      help: 'Webhook requests answered, by HTTP status code.',
      labelNames: ['code'],
      registers,
    }),
    notifications: new Counter({ name: 'xenha_remediation_notifications_total', help: 'Alertmanager notifications journaled.', registers }),
    duplicates: new Counter({
      name: 'xenha_remediation_duplicate_alerts_total',
      help: 'Alerts that landed on an incident already open (re-sent, or from another Alertmanager), dropped.',
      labelNames: ['pool'],
      registers,
    }),
    refusals: new Counter({
      name: 'xenha_remediation_refusals_total',
      help: 'Times the service would not act on an incident, by gate (not-dead: its own verdict is not dead — a false positive averted).',
      labelNames: ['pool', 'gate'],
      registers,
    }),
    actions: new Counter({
      name: 'xenha_remediation_actions_total',
      help: 'Plan steps run, by kind and result.',
      labelNames: ['kind', 'result'],
      registers,
    }),
    stepSeconds: new Histogram({
      name: 'xenha_remediation_step_duration_seconds',
      help: 'Time a plan step took, by kind.',
      labelNames: ['kind'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    planSeconds: new Histogram({
      name: 'xenha_remediation_plan_duration_seconds',
      help: 'Time from a plan starting to its end, by the state it ended in.',
      labelNames: ['state'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
      registers,
    }),
    fsyncSeconds: new Histogram({
      name: 'xenha_remediation_journal_fsync_seconds',
      help: "Time one journal batch's synced write took (O_DSYNC; a write and an fdatasync where the platform lacks it).",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
  };
  new Gauge({
    name: 'xenha_remediation_plans',
    help: 'Plans known to the service (from its journal), by state.',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      const count = new Map<PlanState, number>(PLAN_STATES.map((s) => [s, 0]));
      for (const p of state.plans.values()) count.set(p.state, (count.get(p.state) ?? 0) + 1);
      for (const [s, n] of count) this.set({ state: s }, n);
    },
  });
  new Gauge({
    name: 'xenha_remediation_mode',
    help: "The mode configured (1) per pool; dry_run_forced 1 when the pool's own HA is on (the service then only shows plans).",
    labelNames: ['pool', 'mode', 'dry_run_forced'],
    registers,
    collect() {
      this.reset();
      for (const p of modes)
        this.set({ pool: p.pool, mode: p.mode, dry_run_forced: p.mode !== 'dry-run' && p.haOn() === true ? '1' : '0' }, 1);
    },
  });
  new Gauge({
    name: 'xenha_remediation_protected_vms_unplaced',
    help: 'Protected VMs a finished plan left unplaced (no room, or a disk on the fenced host) that are still not running, per pool.',
    labelNames: ['pool'],
    registers,
    collect() {
      this.reset();
      for (const p of modes) {
        const vms = p.vms?.();
        // No view of the pool yet: no value rather than a 0 that would claim the VMs run.
        if (vms) this.set({ pool: p.pool }, protectedVmsStillUnplaced(state, p.pool, vms).length);
      }
    },
  });
  new Gauge({
    name: 'xenha_remediation_plans_waiting_for_operator',
    help: 'Plans waiting for a person (awaiting-ack in manual mode, or needs-operator after a failed fence).',
    registers,
    collect() {
      this.set([...state.plans.values()].filter((p) => p.state === 'awaiting-ack' || p.state === 'needs-operator').length);
    },
  });
  return m;
}
