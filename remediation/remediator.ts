/**
 * The remediation service's core: takes notifications (the webhook's intake), keys them into incidents
 * (one per host death: pool, host UUID, boot), re-checks each with the service's own view, makes the
 * plan, and runs it in the mode in force — everything journaled before it is acknowledged or done.
 *
 * - A notification is journaled before the webhook answers 2xx; its alerts then land on incidents:
 *   a new one is opened, a known one counts a duplicate (Alertmanager re-sends, each of its replicas
 *   sends its own copy), a resolved alert cancels only a plan that has not started.
 * - An incident is evaluated in the background, one at a time per pool: during the quiet period after
 *   start (and until the service has its own view of the pool) it waits; then `decide` (pure) refuses
 *   with a gate or makes a plan. A refused incident is evaluated again at its next notification.
 * - Modes: dry-run (plans shown, nothing done), manual (a plan waits for `xenha ack`), enforce; a pool
 *   whose own HA is on stays in dry-run whatever the mode (xhad fences and xapi restarts there).
 * - Plans that were running when the service stopped resume when it starts again, step by step from
 *   the journal, each step checking the pool before it acts.
 */
import { createHash } from 'node:crypto';
import { context, trace, SpanStatusCode } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { PoolConfig } from '../exporter/config.ts';
import type { PoolSampler } from '../exporter/sampler.ts';
import { createFenceLevels } from '../plugins/fence/index.ts';
import type { FenceLevel } from '../plugins/fence/fence.ts';
import type { FencePolicy } from '../core/planner/fence-policy.ts';
import { alertTargets, type AlertTarget } from './alertmanager.ts';
import type { PoolRemediation, RemediationSection } from './config.ts';
import { decide } from './decide.ts';
import { PlanExecutor } from './executor.ts';
import type { Journal } from './journal.ts';
import type { PoolActions } from './pool-actions.ts';
import { journalRecord, TRANSIENT_GATES, type JournalEntry, type NewEntry, type PlanState, type RefusalGate } from './records.ts';
import {
  apply,
  confirmedFenced,
  fenceHistory,
  incidentId,
  unfinishedPlans,
  type Incident,
  type Plan,
  type RemediationState,
} from './state.ts';
import type { Intake, IntakeResult } from './webhook.ts';

export interface PoolRuntime {
  config: PoolConfig;
  remediation: PoolRemediation;
  sampler: PoolSampler;
  actions: PoolActions;
}

export interface RemediatorEvents {
  onRefusal?: (pool: string, gate: RefusalGate) => void;
  onDuplicate?: (pool: string) => void;
  onAction?: (kind: string, result: string, seconds: number) => void;
  onPlanFinished?: (state: PlanState, seconds: number) => void;
}

export interface RemediatorOptions {
  pools: PoolRuntime[];
  section: RemediationSection;
  journal: Journal;
  state: RemediationState;
  log: Logger;
  events?: RemediatorEvents;
  /** Monotonic ms (the quiet period). */
  monotonic?: () => number;
  /** Wall-clock ms (fence history, cooldowns: they survive restarts). */
  wallClock?: () => number;
  /**
   * Fault injection for the crash-safety test only (XENHA_REMEDIATION_CRASH_AT): the process kills
   * itself with SIGKILL just before journal record `seq` is appended, or just after it is on disk.
   */
  crashAt?: { seq: number; when: 'before' | 'after' };
}

export class AckError extends Error {
  constructor(
    readonly status: 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

const tracer = trace.getTracer('xenha-remediation');

/** How soon an incident refused by a transient gate (a fence in flight, a storm window, a dead master) is checked again. */
export const RECHECK_TRANSIENT_MS = 5000;

export function planIdOf(incident: string): string {
  return `p-${createHash('sha256').update(incident).digest('hex').slice(0, 12)}`;
}

export class Remediator {
  private readonly pools: Map<string, PoolRuntime>;
  private readonly executor: PlanExecutor;
  private readonly startedAt: number;
  private readonly monotonic: () => number;
  private readonly wallClock: () => number;
  /** One evaluation or plan at a time per pool. */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly deferred = new Map<string, NodeJS.Timeout>();
  private readonly stopping = new AbortController();
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly o: RemediatorOptions) {
    this.pools = new Map(o.pools.map((p) => [p.config.name, p]));
    this.monotonic = o.monotonic ?? (() => performance.now());
    this.wallClock = o.wallClock ?? (() => Date.now());
    this.startedAt = this.monotonic();
    this.executor = new PlanExecutor({
      record: (e) => this.record(e),
      state: o.state,
      actions: (pool) => this.pools.get(pool)!.actions,
      fenceLevels: (plan) => this.fenceLevels(plan),
      address: (pool, host) => this.pools.get(pool)?.sampler.state.snapshot?.hosts.find((h) => h.uuid === host)?.address ?? null,
      log: o.log,
      powerTimeoutMs: o.section.powerTimeout,
      pollMs: o.section.powerPoll,
      onAction: (kind, result, seconds) => o.events?.onAction?.(kind, result, seconds),
    });
  }

  get state(): RemediationState {
    return this.o.state;
  }

  /** Journals a record and folds it into the state once it is on disk. */
  async record(e: NewEntry): Promise<JournalEntry> {
    const crash = this.o.crashAt;
    if (crash?.when === 'before' && this.o.state.lastSeq + 1 === crash.seq) process.kill(process.pid, 'SIGKILL');
    const written = await this.o.journal.append(e);
    const r = journalRecord.parse(written);
    apply(this.o.state, r);
    if (crash?.when === 'after' && r.seq === crash.seq) process.kill(process.pid, 'SIGKILL');
    return r;
  }

  /** Resumes the plans that were running when the service stopped. */
  start(): void {
    for (const p of unfinishedPlans(this.o.state)) {
      this.o.log.info({ plan: p.id, pool: p.pool, host: p.hostName }, 'resuming a plan left running');
      this.enqueue(p.pool, () => this.execute(p));
    }
    // Incidents without a plan and still firing are evaluated again (after the quiet period).
    for (const inc of this.o.state.incidents.values()) if (inc.plan === null && inc.resolvedAt === null) this.schedule(inc, 0);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    for (const t of this.deferred.values()) clearTimeout(t);
    this.deferred.clear();
    await Promise.allSettled([...this.running]);
  }

  private enqueue(pool: string, work: () => Promise<void>): void {
    const prev = this.queues.get(pool) ?? Promise.resolve();
    const next = prev.then(async () => {
      if (this.stopping.signal.aborted) return;
      try {
        await work();
      } catch (e) {
        this.o.log.error({ err: e, pool }, 'remediation work failed');
      }
    });
    this.queues.set(pool, next);
    this.running.add(next);
    void next.finally(() => this.running.delete(next));
  }

  // ------------------------------------------------------------------ intake

  /** The webhook's intake: journals the notification, then lands each alert on its incident. */
  readonly intake: Intake = async (payload) =>
    tracer.startActiveSpan('remediation.notification', async (span) => {
      try {
        const targets = alertTargets(payload);
        span.setAttributes({ 'xenha.alerts': targets.length, 'xenha.status': payload.status });
        await this.record({
          type: 'notification',
          groupKey: payload.groupKey,
          status: payload.status,
          alerts: targets.map((t) => ({
            fingerprint: t.fingerprint,
            status: t.status,
            startsAt: t.startsAt,
            ...(t.pool !== undefined && { pool: t.pool }),
            ...(t.host !== undefined && { host: t.host }),
            ...(t.hostUuid !== undefined && { hostUuid: t.hostUuid }),
          })),
        });
        const out: IntakeResult = { incidents: [] };
        for (const t of targets) out.incidents.push(await this.land(t));
        span.setAttribute('xenha.outcomes', out.incidents.map((i) => i.outcome).join(','));
        return out;
      } catch (e) {
        span.recordException(e as Error);
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw e;
      } finally {
        span.end();
      }
    });

  private async land(t: AlertTarget): Promise<IntakeResult['incidents'][number]> {
    const refused = (reason: string) => ({ fingerprint: t.fingerprint, outcome: 'refused' as const, reason });
    if (t.pool === undefined) return refused('the alert has no pool label');
    const rt = this.pools.get(t.pool);
    if (!rt) {
      // The label is not the alert's word (unbounded): every unknown pool counts under one value.
      this.o.events?.onRefusal?.('(unknown)', 'unknown-pool');
      return refused(`unknown pool ${t.pool} (this service serves ${[...this.pools.keys()].join(', ')})`);
    }
    const snap = rt.sampler.state.snapshot;
    if (!snap) return refused(`no view of pool ${t.pool} yet (XAPI not reached): cannot tell which host the alert names`);
    const host =
      t.hostUuid !== undefined
        ? snap.hosts.find((h) => h.uuid === t.hostUuid)
        : t.host !== undefined
          ? (snap.hosts.find((h) => h.name === t.host) ?? snap.hosts.find((h) => `${h.name} (${h.uuid.slice(0, 8)})` === t.host))
          : undefined;
    if (!host) {
      this.o.events?.onRefusal?.(t.pool, 'unknown-host');
      const named = t.hostUuid ?? t.host;
      return refused(named === undefined ? 'the alert names no host (label host_uuid or host)' : `pool ${t.pool} has no host ${named}`);
    }
    if (t.hostUuid === undefined && snap.hosts.filter((h) => h.name === t.host).length > 1)
      return refused(`pool ${t.pool} has several hosts named ${t.host}: the alert must name it by host_uuid`);
    // Its boot tells one death from the next; without boot_time (an older xapi), the alert's own start
    // does (Alertmanager keeps startsAt over its re-sends, and a new firing has a new one).
    const boot = host.bootTime ?? `alert-${t.startsAt}`;
    const id = incidentId(t.pool, host.uuid, boot);
    const existing = this.o.state.incidents.get(id);
    if (t.status === 'resolved') {
      if (!existing) return { fingerprint: t.fingerprint, outcome: 'resolved', reason: 'no incident for this host' };
      await this.record({ type: 'resolved', incident: id, fingerprint: t.fingerprint });
      await this.cancelUnstarted(existing);
      return { fingerprint: t.fingerprint, outcome: 'resolved', incident: id };
    }
    if (existing) {
      await this.record({ type: 'duplicate', incident: id, fingerprint: t.fingerprint });
      this.o.events?.onDuplicate?.(t.pool);
      // Nothing was planned yet (refused, or waiting): this notification is evaluated again.
      if (existing.plan === null && !this.deferred.has(id)) this.schedule(existing, 0);
      return { fingerprint: t.fingerprint, outcome: 'duplicate', incident: id };
    }
    await this.record({
      type: 'incident',
      incident: id,
      pool: t.pool,
      host: host.uuid,
      hostName: host.name,
      boot,
      fingerprint: t.fingerprint,
    });
    this.schedule(this.o.state.incidents.get(id)!, 0);
    return { fingerprint: t.fingerprint, outcome: 'new', incident: id };
  }

  /** A resolved alert cancels a plan that waits (manual mode), never one that runs. */
  private async cancelUnstarted(inc: Incident): Promise<void> {
    const t = this.deferred.get(inc.id);
    if (t) {
      clearTimeout(t);
      this.deferred.delete(inc.id);
    }
    const plan = inc.plan ? this.o.state.plans.get(inc.plan) : undefined;
    if (plan?.state === 'awaiting-ack')
      await this.record({
        type: 'plan-state',
        plan: plan.id,
        state: 'cancelled',
        reason: 'the alert resolved before the plan was acknowledged',
      });
  }

  // ------------------------------------------------------------------ evaluation

  private schedule(inc: Incident, delayMs: number): void {
    if (this.stopping.signal.aborted) return;
    const old = this.deferred.get(inc.id);
    if (old) clearTimeout(old);
    const ctx = context.active();
    const t = setTimeout(() => {
      this.deferred.delete(inc.id);
      this.enqueue(inc.pool, () => context.with(ctx, () => this.evaluate(inc.id)));
    }, delayMs);
    this.deferred.set(inc.id, t);
  }

  private quietLeftMs(rt: PoolRuntime): number {
    const left = this.o.section.quietPeriod - (this.monotonic() - this.startedAt);
    if (left > 0) return left;
    // Its own view must exist too: a classification of every host of a snapshot.
    return rt.sampler.state.snapshot && rt.sampler.state.memory ? 0 : rt.config.timing.sampleInterval;
  }

  private async evaluate(id: string): Promise<void> {
    const inc = this.o.state.incidents.get(id);
    if (!inc || inc.plan !== null || inc.resolvedAt !== null) return;
    const rt = this.pools.get(inc.pool)!;
    await tracer.startActiveSpan('remediation.recheck', async (span) => {
      span.setAttributes({ 'xenha.pool': inc.pool, 'xenha.host': inc.host, 'xenha.incident': id });
      try {
        const quiet = this.quietLeftMs(rt);
        if (quiet > 0) {
          if (inc.refusals.at(-1)?.gate !== 'quiet-period') {
            await this.refuse(
              inc,
              'quiet-period',
              `the service started ${((this.monotonic() - this.startedAt) / 1000).toFixed(0)} s ago: it acts on nothing until its own view of the pool is confirmed (quiet period ${this.o.section.quietPeriod / 1000} s)`,
              null,
            );
          }
          span.setAttribute('xenha.result', 'deferred');
          this.schedule(inc, quiet);
          return;
        }
        // Plans are made on fresh VM records, not the last periodic fetch.
        await rt.sampler.connection.refreshVms();
        const snapshot = rt.sampler.state.snapshot!;
        const mem = rt.sampler.state.memory!;
        const d = decide({
          host: inc.host,
          view: { snapshot: rt.sampler.connection.snapshot() ?? snapshot, hosts: mem.hosts, observerIsolated: mem.observerIsolated },
          history: fenceHistory(this.o.state, inc.pool),
          policy: this.policy(),
          alreadyFenced: confirmedFenced(this.o.state, inc.pool, inc.host, inc.boot),
          now: this.wallClock(),
        });
        if (d.kind === 'refused') {
          span.setAttributes({ 'xenha.result': 'refused', 'xenha.gate': d.gate });
          // The same transient refusal is journaled once, not at every re-check.
          const transient = TRANSIENT_GATES.includes(d.gate);
          if (!transient || inc.refusals.at(-1)?.gate !== d.gate) await this.refuse(inc, d.gate, d.reason, d.ownState);
          if (transient) this.schedule(inc, RECHECK_TRANSIENT_MS);
          return;
        }
        const haOn = snapshot.haEnabled;
        const mode = this.o.section.mode;
        const modeReason =
          haOn && mode !== 'dry-run'
            ? `pool ${inc.pool} has its own HA on: xhad fences and xapi restarts there, so the service only shows its plan (dry-run)`
            : null;
        const effective = modeReason !== null ? 'dry-run' : mode;
        const state: PlanState = effective === 'dry-run' ? 'dry-run' : effective === 'manual' ? 'awaiting-ack' : 'running';
        const planId = planIdOf(id);
        await this.record({
          type: 'plan',
          incident: id,
          plan: planId,
          pool: inc.pool,
          host: inc.host,
          hostName: inc.hostName,
          mode,
          modeReason,
          // Enforce: journaled as running before the first step, so a crash right after resumes it.
          state,
          steps: d.plan.steps,
          names: d.names,
          unplaced: d.plan.unplaced,
          refused: d.plan.fences.refused,
        });
        span.setAttributes({ 'xenha.result': 'planned', 'xenha.plan': planId, 'xenha.plan.state': state });
        this.o.log.info(
          { plan: planId, pool: inc.pool, host: inc.hostName, state, steps: d.plan.steps.length },
          `plan made (${effective})`,
        );
        if (state === 'running') await this.execute(this.o.state.plans.get(planId)!);
      } finally {
        span.end();
      }
    });
  }

  private async refuse(inc: Incident, gate: RefusalGate, reason: string, ownState: string | null): Promise<void> {
    await this.record({ type: 'refusal', incident: inc.id, gate, reason, ownState });
    this.o.events?.onRefusal?.(inc.pool, gate);
    this.o.log.info({ incident: inc.id, host: inc.hostName, gate }, `refused: ${reason}`);
  }

  private policy(): FencePolicy {
    const p = this.o.section.fencePolicy;
    return {
      quorumFraction: p.quorumFraction,
      overrideQuorum: p.overrideQuorum,
      maxConcurrentFences: p.maxConcurrentFences,
      maxFencesInWindow: p.maxFencesInWindow,
      fenceWindowMs: p.fenceWindow,
      cooldownMs: p.cooldown,
      allowWithoutPathEvidence: false,
    };
  }

  private fenceLevels(plan: Plan): FenceLevel[] {
    const rt = this.pools.get(plan.pool);
    const f = rt?.remediation.fence;
    const config = f?.hosts[plan.hostName] ?? f?.hosts[plan.host] ?? f?.default;
    if (!config) return [];
    return createFenceLevels(
      config,
      { pool: plan.pool, hostUuid: plan.host, hostName: plan.hostName },
      // A person's word counts for this plan only (this incident): an older acknowledgement never does.
      {
        log: this.o.log,
        // Only "the host is off" counts, never the approval of a manual-mode plan.
        acks: {
          isAcknowledged: (host) =>
            host === plan.host && (this.o.state.plans.get(plan.id)?.acks.some((a) => a.kind === 'host-off') ?? false),
        },
      },
    );
  }

  private async execute(plan: Plan): Promise<void> {
    const started = this.monotonic();
    const end = await this.executor.run(plan, this.stopping.signal);
    if (end !== 'running') this.o.events?.onPlanFinished?.(end, (this.monotonic() - started) / 1000);
  }

  // ------------------------------------------------------------------ operator

  /** `xenha cancel <plan>`: a plan that has not started (awaiting-ack) or waits for an operator is cancelled; one running is not. */
  async cancel(planId: string, by: string): Promise<Plan> {
    const plan = this.o.state.plans.get(planId);
    if (!plan) throw new AckError(404, `no plan ${planId}`);
    if (plan.state !== 'awaiting-ack' && plan.state !== 'needs-operator')
      throw new AckError(
        409,
        `plan ${planId} is ${plan.state}: only a plan awaiting-ack or needs-operator can be cancelled (a running plan never is)`,
      );
    await this.record({ type: 'plan-state', plan: planId, state: 'cancelled', reason: `cancelled by ${by}` });
    return this.o.state.plans.get(planId)!;
  }

  /**
   * `xenha ack <plan>`: runs a plan waiting for acknowledgement (manual mode), or, after a fence no
   * device confirmed, records a person's word that the host is off and resumes the plan.
   */
  async ack(planId: string, by: string): Promise<Plan> {
    const plan = this.o.state.plans.get(planId);
    if (!plan) throw new AckError(404, `no plan ${planId}`);
    if (plan.state !== 'awaiting-ack' && plan.state !== 'needs-operator')
      throw new AckError(409, `plan ${planId} is ${plan.state}: nothing to acknowledge (only awaiting-ack or needs-operator plans are)`);
    const wasNeedsOperator = plan.state === 'needs-operator';
    await this.record({ type: 'ack', plan: planId, by, kind: wasNeedsOperator ? 'host-off' : 'approve' });
    if (wasNeedsOperator) {
      for (const st of plan.steps) {
        if (st.state !== 'failed' && st.state !== 'running') continue;
        if (st.step.kind === 'fence' || st.step.kind === 'confirm-fenced')
          await this.record({
            type: 'step',
            plan: planId,
            index: st.index,
            state: 'done',
            outcome: 'operator-confirmed',
            detail: `${by} confirmed the host is off (xenha ack)`,
          });
        else if (st.step.kind === 'transition-master' || st.step.kind === 'await-master-election')
          await this.record({
            type: 'step',
            plan: planId,
            index: st.index,
            state: 'skipped',
            outcome: 'operator-acknowledged',
            detail: `${by} acknowledged: handled by hand`,
          });
      }
    }
    await this.record({ type: 'plan-state', plan: planId, state: 'running', reason: `acknowledged by ${by}` });
    this.enqueue(plan.pool, () => this.execute(this.o.state.plans.get(planId)!));
    return plan;
  }
}
