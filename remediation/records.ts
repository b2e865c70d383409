/**
 * What the remediation service writes in its journal, one JSON line per record, validated with zod when
 * the journal is replayed (a record that does not parse stops the start: history is never guessed).
 * Every decision and every side effect is a record, written before the 2xx of the notification that
 * caused it and before and after each step, so a restarted service rebuilds its whole state (incidents,
 * plans, fence history for the cooldown and storm gates) from the journal alone.
 */
import { z } from 'zod';
import { FENCE_GATES } from '../core/planner/fence-policy.ts';

export const MODES = ['dry-run', 'enforce', 'manual'] as const;
export type Mode = (typeof MODES)[number];

/** Why the service refused to act on an incident: a fence gate, or its own re-check. */
export const REFUSAL_GATES = [
  ...FENCE_GATES,
  'not-dead',
  'master-dead',
  'unknown-pool',
  'unknown-host',
  'no-view',
  'quiet-period',
] as const;
/** Gates that lift by themselves (a fence finishing, a window passing, the master's incident done): checked again after a while. */
export const TRANSIENT_GATES: readonly RefusalGate[] = [
  'in-flight',
  'storm-concurrent',
  'storm-window',
  'cooldown',
  'master-dead',
  'no-view',
  'quiet-period',
];
export type RefusalGate = (typeof REFUSAL_GATES)[number];

const step = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('fence'), host: z.string(), reason: z.string() }),
  z.object({ kind: z.literal('confirm-fenced'), host: z.string(), reason: z.string() }),
  z.object({ kind: z.literal('await-master-election'), reason: z.string() }),
  z.object({ kind: z.literal('transition-master'), host: z.string(), reason: z.string() }),
  z.object({ kind: z.literal('follow-master'), host: z.string(), master: z.string(), reason: z.string() }),
  z.object({ kind: z.literal('reset-power-state'), vm: z.string(), host: z.string(), reason: z.string() }),
  z.object({ kind: z.literal('start-vm'), vm: z.string(), host: z.string(), reason: z.string() }),
  z.object({ kind: z.literal('wait'), seconds: z.number(), reason: z.string() }),
]);

export const PLAN_STATES = [
  /** Made and shown; nothing is done (dry-run, or a pool whose own HA is on). */
  'dry-run',
  /** Manual mode: waits for `xenha ack <plan>`. */
  'awaiting-ack',
  'running',
  'done',
  /** A step failed in a way a person must look at (a fence failed on every level): the rest waits for `xenha ack`. */
  'needs-operator',
  /** A resolved notification, or an operator (`xenha cancel`), cancelled it before it started. */
  'cancelled',
] as const;
export type PlanState = (typeof PLAN_STATES)[number];

export const STEP_STATES = ['pending', 'running', 'done', 'skipped', 'failed'] as const;
export type StepState = (typeof STEP_STATES)[number];

const incidentRef = { incident: z.string() };

export const journalRecord = z.discriminatedUnion('type', [
  /** A notification accepted by the webhook (its alerts' keys only), before the 2xx. */
  z.object({
    type: z.literal('notification'),
    seq: z.number(),
    at: z.string(),
    groupKey: z.string(),
    status: z.enum(['firing', 'resolved']),
    alerts: z.array(
      z.object({
        fingerprint: z.string(),
        status: z.enum(['firing', 'resolved']),
        startsAt: z.string(),
        pool: z.string().optional(),
        host: z.string().optional(),
        hostUuid: z.string().optional(),
      }),
    ),
  }),
  /** One host's death: (pool, host UUID, boot). */
  z.object({
    type: z.literal('incident'),
    seq: z.number(),
    at: z.string(),
    ...incidentRef,
    pool: z.string(),
    host: z.string(),
    hostName: z.string(),
    boot: z.string(),
    fingerprint: z.string(),
  }),
  /** A notification for an incident that already exists. */
  z.object({ type: z.literal('duplicate'), seq: z.number(), at: z.string(), ...incidentRef, fingerprint: z.string() }),
  /** The service would not act (yet): which gate, why, and what it saw. */
  z.object({
    type: z.literal('refusal'),
    seq: z.number(),
    at: z.string(),
    ...incidentRef,
    gate: z.enum(REFUSAL_GATES),
    reason: z.string(),
    ownState: z.string().nullable(),
  }),
  /** A plan made for an incident. */
  z.object({
    type: z.literal('plan'),
    seq: z.number(),
    at: z.string(),
    ...incidentRef,
    plan: z.string(),
    pool: z.string(),
    host: z.string(),
    hostName: z.string(),
    mode: z.enum(MODES),
    /** Why the plan runs in another mode than configured (the pool's HA on: dry-run). */
    modeReason: z.string().nullable(),
    state: z.enum(PLAN_STATES),
    steps: z.array(step),
    names: z.record(z.string(), z.string()),
    /**
     * The management address of each host the plan names, as the service saw it when planning: a master
     * hand-over resumed after a restart needs them before any master answers. Absent in older journals.
     */
    addresses: z.record(z.string(), z.string()).optional(),
    unplaced: z.array(z.object({ vm: z.string(), name: z.string(), reason: z.string() })),
    refused: z.array(z.object({ host: z.string(), gate: z.string(), reason: z.string() })),
  }),
  z.object({
    type: z.literal('step'),
    seq: z.number(),
    at: z.string(),
    plan: z.string(),
    index: z.number().int().nonnegative(),
    state: z.enum(STEP_STATES),
    /** A fence's outcome (confirmed-off, already-off, failed, …) or a start's (started, already-running, …). */
    outcome: z.string().nullable(),
    detail: z.string(),
  }),
  z.object({
    type: z.literal('plan-state'),
    seq: z.number(),
    at: z.string(),
    plan: z.string(),
    state: z.enum(PLAN_STATES),
    reason: z.string(),
  }),
  /**
   * A person's word on a plan: `approve` runs a plan waiting in manual mode; `host-off` says the host of a
   * plan that needs an operator is powered off (checked by hand), so its VMs may restart.
   */
  z.object({
    type: z.literal('ack'),
    seq: z.number(),
    at: z.string(),
    plan: z.string(),
    by: z.string(),
    kind: z.enum(['approve', 'host-off']),
  }),
  /** A fence attempted (for the cooldown and storm gates, which are only real if they survive restarts). */
  z.object({ type: z.literal('fence'), seq: z.number(), at: z.string(), pool: z.string(), host: z.string(), outcome: z.string() }),
  /** A resolved notification for an incident. */
  z.object({ type: z.literal('resolved'), seq: z.number(), at: z.string(), ...incidentRef, fingerprint: z.string() }),
]);

export type JournalEntry = z.output<typeof journalRecord>;
export type JournalEntryType = JournalEntry['type'];
/** A record as appended (the journal adds seq and at). */
export type NewEntry<T extends JournalEntryType = JournalEntryType> = T extends JournalEntryType
  ? Omit<Extract<JournalEntry, { type: T }>, 'seq' | 'at'>
  : never;
export type PlanStep = z.output<typeof step>;
