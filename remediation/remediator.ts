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
import { context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { PoolConfig } from '../exporter/config.ts';
import type { PoolSampler } from '../exporter/sampler.ts';
import { createFenceLevels, sleepFor } from '../plugins/fence/index.ts';
import type { FenceLevel } from '../plugins/fence/fence.ts';
import type { FencePolicy } from '../core/planner/fence-policy.ts';
import type { PoolSnapshot } from '../core/model/snapshot.ts';
import { alertTargets, type AlertTarget } from './alertmanager.ts';
import type { PoolRemediation, RemediationSection } from './config.ts';
import { decide } from './decide.ts';
import { PlanExecutor } from './executor.ts';
import type { Journal } from './journal.ts';
import type { PoolActions } from './pool-actions.ts';
import { withSpan } from './telemetry.ts';
import { TRANSIENT_GATES, type JournalEntry, type NewEntry, type PlanState, type RefusalGate } from './records.ts';
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
  /** Where every record goes before it counts (only `append` is used). */
  journal: Pick<Journal, 'append'>;
  state: RemediationState;
  log: Logger;
  events?: RemediatorEvents;
  /** Monotonic ms (the quiet period). */
  monotonic?: () => number;
  /** Wall-clock ms (fence history, cooldowns: they survive restarts). */
  wallClock?: () => number;
  /**
   * The timers the service waits with (default Node's): the safety campaign runs the service on its
   * injected clock with its own.
   */
  timers?: RemediatorTimers;
  /**
   * A host's fence levels, in place of the ones the pool's config makes (the safety campaign's
   * simulated devices). Default: the config's.
   */
  fenceLevelsFor?: (plan: Plan) => FenceLevel[];
  /**
   * Fault injection for the crash-safety test only (XENHA_REMEDIATION_CRASH_AT): the process kills
   * itself with SIGKILL just before journal record `seq` is appended, or just after it is on disk.
   */
  crashAt?: { seq: number; when: 'before' | 'after' };
}

export interface RemediatorTimers {
  setTimeout: (fn: () => void, ms: number) => unknown;
  clearTimeout: (handle: unknown) => void;
  /** Waits ms, or less when the signal fires; never rejects. */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

const NODE_TIMERS: RemediatorTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  sleep: sleepFor,
};

export class AckError extends Error {
  constructor(
    readonly status: 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

/** How soon an incident refused by a transient gate (a fence in flight, a storm window, a dead master) is checked again. */
export const RECHECK_TRANSIENT_MS = 5000;

/**
 * An alert that finds the service's own verdict `suspect` (no sign of life on any path yet, but not
 * for dead-after) is checked again this often while that verdict settles: the exporter and the service
 * sample on their own, so the alert may come a sampling round before the service's own view says dead.
 * It settles for at most SETTLE_DEAD_AFTERS × the pool's dead-after from the incident's latest firing
 * notification; after that the refusal stands (as for any other own verdict) until Alertmanager sends
 * the alert again.
 */
export const RECHECK_SETTLING_MS = 250;
export const SETTLE_DEAD_AFTERS = 2;

/** A path status that shows life. */
const alive = (p: string) => p === 'up' || p === 'degraded';

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
  private readonly deferred = new Map<string, unknown>();
  private readonly timers: RemediatorTimers;
  private readonly stopping = new AbortController();
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly o: RemediatorOptions) {
    this.pools = new Map(o.pools.map((p) => [p.config.name, p]));
    this.monotonic = o.monotonic ?? (() => performance.now());
    this.wallClock = o.wallClock ?? (() => Date.now());
    this.startedAt = this.monotonic();
    this.timers = o.timers ?? NODE_TIMERS;
    this.executor = new PlanExecutor({
      record: (e) => this.record(e),
      state: o.state,
      actions: (pool) => this.pools.get(pool)!.actions,
      fenceLevels: (plan) => this.fenceLevels(plan),
      // As the service sees the pool now, else as the plan journaled it (a service restarted while the
      // master is dead has no view of the pool until a master answers: the plan's own addresses make one).
      address: (plan, host) =>
        this.pools.get(plan.pool)?.sampler.state.snapshot?.hosts.find((h) => h.uuid === host)?.address ?? plan.addresses[host] ?? null,
      log: o.log,
      powerTimeoutMs: o.section.powerTimeout,
      pollMs: o.section.powerPoll,
      onAction: (kind, result, seconds) => o.events?.onAction?.(kind, result, seconds),
      beforeFence: (plan) => this.beforeFence(plan),
      // Right before each off: a fresh look at the host (a round of its own sampler), then the re-check
      // (which, as before the fence step, waits a while for a verdict still forming after a restart).
      beforeOff: async (plan) => {
        await this.pools.get(plan.pool)?.sampler.roundNow();
        return this.beforeFence(plan);
      },
      ...(o.timers && { sleep: o.timers.sleep, now: this.monotonic }),
    });
  }

  get state(): RemediationState {
    return this.o.state;
  }

  /** Journals a record and folds it into the state once it is on disk. */
  async record(e: NewEntry): Promise<JournalEntry> {
    const crash = this.o.crashAt;
    // Appends are numbered as the journal numbers them (records of one tick are appended before any is applied).
    this.appended = Math.max(this.appended, this.o.state.lastSeq) + 1;
    if (crash?.when === 'before' && this.appended === crash.seq) process.kill(process.pid, 'SIGKILL');
    const written = await this.o.journal.append(e);
    // What was written is what `e` says (typed as a journal record), with the journal's seq and time:
    // no second validation of our own record (replay validates every line).
    const r: JournalEntry = { ...e, seq: written.seq, at: written.at };
    apply(this.o.state, r);
    if (crash?.when === 'after' && r.seq === crash.seq) process.kill(process.pid, 'SIGKILL');
    return r;
  }

  /** Resumes the plans that were running when the service stopped. */
  start(): void {
    for (const p of unfinishedPlans(this.o.state)) {
      if (this.o.section.mode === 'dry-run') {
        // An operator's kill switch: a service restarted in dry-run resumes nothing; a person decides.
        this.enqueue(p.pool, async () => {
          await this.record({
            type: 'plan-state',
            plan: p.id,
            state: 'needs-operator',
            reason:
              'the service restarted in dry-run mode: this plan, left running, is not resumed (xenha ack once the mode allows, or xenha cancel)',
          });
        });
        continue;
      }
      this.o.log.info({ plan: p.id, pool: p.pool, host: p.hostName }, 'resuming a plan left running');
      this.enqueue(p.pool, () => this.execute(p));
    }
    // Incidents still firing whose plan is missing or cancelled are evaluated again (after the quiet period).
    for (const inc of this.o.state.incidents.values()) if (this.replannable(inc) && inc.resolvedAt === null) this.schedule(inc, 0);
  }

  /** No plan yet, or only a cancelled one: a (new) plan may be made. */
  private replannable(inc: Incident): boolean {
    return inc.plan === null || this.o.state.plans.get(inc.plan)?.state === 'cancelled';
  }

  /** The seq of the last record appended (for the crash hook). */
  private appended = 0;
  /** Plans an operator call is changing now: a second concurrent call is refused (409). */
  private readonly claims = new Set<string>();

  async stop(): Promise<void> {
    this.stopping.abort();
    for (const t of this.deferred.values()) this.timers.clearTimeout(t);
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
  /**
   * The webhook's intake: the notification and what each of its alerts makes (a new incident, a
   * duplicate, a resolution) are decided and appended at once, in one tick, so they reach the disk in
   * one group-commit batch; the answer comes once all are durable, and what follows (an evaluation, a
   * cancellation) only then. Deciding and appending in one tick is also what makes two copies of one
   * new alert arriving together one incident: the second sees the first as pending.
   */
  readonly intake: Intake = async (payload) =>
    withSpan('remediation.notification', { 'xenha.alerts': payload.alerts.length, 'xenha.status': payload.status }, async (span) => {
      const targets = alertTargets(payload);
      const appends: Promise<JournalEntry>[] = [
        this.record({
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
        }),
      ];
      const after: (() => Promise<void> | void)[] = [];
      const out: IntakeResult = { incidents: targets.map((t) => this.land(t, appends, after)) };
      await Promise.all(appends);
      for (const f of after) await f();
      span.setAttribute('xenha.outcomes', out.incidents.map((i) => i.outcome).join(','));
      return out;
    });

  /** Incidents whose record is appended but not yet on disk (so not yet in the state). */
  private readonly pendingIncidents = new Set<string>();
  /** When each incident's latest firing notification came (wall clock ms): a suspect own verdict settles from then. */
  private readonly firedAt = new Map<string, number>();
  /** When the service's own view of each pool formed (wall clock ms): nothing could be checked before. */
  private readonly viewSince = new Map<string, number>();

  /** One alert: decided now, its records appended to `appends`, what follows their durability pushed to `after`. */
  private land(t: AlertTarget, appends: Promise<JournalEntry>[], after: (() => Promise<void> | void)[]): IntakeResult['incidents'][number] {
    const refused = (gate: RefusalGate, reason: string) => ({ fingerprint: t.fingerprint, outcome: 'refused' as const, gate, reason });
    if (t.pool === undefined) {
      this.o.events?.onRefusal?.('(unknown)', 'unknown-pool');
      return refused('unknown-pool', 'the alert has no pool label');
    }
    const pool = t.pool;
    const rt = this.pools.get(pool);
    if (!rt) {
      // The label is not the alert's word (unbounded): every unknown pool counts under one value.
      this.o.events?.onRefusal?.('(unknown)', 'unknown-pool');
      return refused('unknown-pool', `unknown pool ${pool} (this service serves ${[...this.pools.keys()].join(', ')})`);
    }
    const snap = rt.sampler.state.snapshot;
    if (!snap) {
      this.o.events?.onRefusal?.(pool, 'no-view');
      return refused('no-view', `no view of pool ${pool} yet (XAPI not reached): cannot tell which host the alert names`);
    }
    const host =
      t.hostUuid !== undefined
        ? snap.hosts.find((h) => h.uuid === t.hostUuid)
        : t.host !== undefined
          ? (snap.hosts.find((h) => h.name === t.host) ?? snap.hosts.find((h) => `${h.name} (${h.uuid.slice(0, 8)})` === t.host))
          : undefined;
    if (!host) {
      this.o.events?.onRefusal?.(pool, 'unknown-host');
      const named = t.hostUuid ?? t.host;
      return refused(
        'unknown-host',
        named === undefined ? 'the alert names no host (label host_uuid or host)' : `pool ${pool} has no host ${named}`,
      );
    }
    if (t.hostUuid === undefined && snap.hosts.filter((h) => h.name === t.host).length > 1) {
      this.o.events?.onRefusal?.(pool, 'unknown-host');
      return refused('unknown-host', `pool ${pool} has several hosts named ${t.host}: the alert must name it by host_uuid`);
    }
    // Its boot tells one death from the next; without boot_time (an older xapi), the alert's own start
    // does (Alertmanager keeps startsAt over its re-sends, and a new firing has a new one).
    const boot = host.bootTime ?? `alert-${t.startsAt}`;
    const id = incidentId(pool, host.uuid, boot);
    const existing = this.o.state.incidents.get(id);
    if (t.status === 'resolved') {
      // The open incidents this alert fired for, whatever the host's boot is now (it may have rebooted).
      const open = [...this.o.state.incidents.values()].filter(
        (i) => i.pool === pool && i.host === host.uuid && i.resolvedAt === null && (i.id === id || i.fingerprints.includes(t.fingerprint)),
      );
      if (open.length === 0) return { fingerprint: t.fingerprint, outcome: 'resolved', reason: 'no open incident for this host' };
      for (const inc of open) {
        appends.push(this.record({ type: 'resolved', incident: inc.id, fingerprint: t.fingerprint }));
        after.push(() => this.cancelUnstarted(inc));
      }
      return { fingerprint: t.fingerprint, outcome: 'resolved', incident: open[0]!.id };
    }
    this.firedAt.set(id, this.wallClock());
    if (existing || this.pendingIncidents.has(id)) {
      appends.push(this.record({ type: 'duplicate', incident: id, fingerprint: t.fingerprint }));
      this.o.events?.onDuplicate?.(pool);
      // Nothing planned yet (refused, or waiting), or only a cancelled plan: this notification is evaluated again.
      after.push(() => {
        const inc = this.o.state.incidents.get(id);
        if (inc && this.replannable(inc) && !this.deferred.has(id)) this.schedule(inc, 0);
      });
      return { fingerprint: t.fingerprint, outcome: 'duplicate', incident: id };
    }
    this.pendingIncidents.add(id);
    const written = this.record({
      type: 'incident',
      incident: id,
      pool,
      host: host.uuid,
      hostName: host.name,
      boot,
      fingerprint: t.fingerprint,
    });
    void written.then(
      () => this.pendingIncidents.delete(id),
      () => this.pendingIncidents.delete(id),
    );
    appends.push(written);
    after.push(() => this.schedule(this.o.state.incidents.get(id)!, 0));
    return { fingerprint: t.fingerprint, outcome: 'new', incident: id };
  }

  /** A resolved alert cancels a plan that waits (manual mode), never one that runs. */
  private async cancelUnstarted(inc: Incident): Promise<void> {
    const t = this.deferred.get(inc.id);
    if (t !== undefined) {
      this.timers.clearTimeout(t);
      this.deferred.delete(inc.id);
    }
    const plan = inc.plan ? this.o.state.plans.get(inc.plan) : undefined;
    if (plan?.state !== 'awaiting-ack' || this.claims.has(plan.id)) return;
    this.claims.add(plan.id);
    try {
      await this.record({
        type: 'plan-state',
        plan: plan.id,
        state: 'cancelled',
        reason: 'the alert resolved before the plan was acknowledged',
      });
    } finally {
      this.claims.delete(plan.id);
    }
  }

  // ------------------------------------------------------------------ evaluation

  private schedule(inc: Incident, delayMs: number): void {
    if (this.stopping.signal.aborted) return;
    const old = this.deferred.get(inc.id);
    if (old !== undefined) this.timers.clearTimeout(old);
    const ctx = context.active();
    const t = this.timers.setTimeout(() => {
      this.deferred.delete(inc.id);
      this.enqueue(inc.pool, () => context.with(ctx, () => this.evaluate(inc.id)));
    }, delayMs);
    this.deferred.set(inc.id, t);
  }

  private quietLeftMs(rt: PoolRuntime): number {
    const left = this.o.section.quietPeriod - (this.monotonic() - this.startedAt);
    if (left > 0) return left;
    // Its own view must exist too: a snapshot, classified over enough rounds for a verdict to be confirmed.
    const formed = rt.sampler.state.snapshot && rt.sampler.state.memory && rt.sampler.counters.rounds >= rt.config.timing.confirmSamples;
    if (!formed) return rt.config.timing.sampleInterval;
    if (!this.viewSince.has(rt.config.name)) this.viewSince.set(rt.config.name, this.wallClock());
    return 0;
  }

  private async evaluate(id: string): Promise<void> {
    const inc = this.o.state.incidents.get(id);
    if (!inc || !this.replannable(inc) || inc.resolvedAt !== null) return;
    const rt = this.pools.get(inc.pool)!;
    await withSpan('remediation.recheck', { 'xenha.pool': inc.pool, 'xenha.host': inc.host, 'xenha.incident': id }, async (span) => {
      const quiet = this.quietLeftMs(rt);
      if (quiet > 0 && this.o.section.quietPeriod - (this.monotonic() - this.startedAt) <= 0) {
        // The quiet period is over, but the service has no view of the pool yet (no master answers).
        if (inc.refusals.at(-1)?.gate !== 'no-view')
          await this.refuse(
            inc,
            'no-view',
            `the service has no view of pool ${inc.pool} yet (no XAPI master answers, or its first classification is not made): it cannot check the alert`,
            null,
          );
        span.setAttribute('xenha.result', 'deferred');
        this.schedule(inc, quiet);
        return;
      }
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
      const decideNow = () => {
        const mem = rt.sampler.state.memory!;
        return decide({
          host: inc.host,
          view: {
            snapshot: rt.sampler.connection.snapshot() ?? rt.sampler.state.snapshot!,
            hosts: mem.hosts,
            observerIsolated: mem.observerIsolated,
          },
          history: fenceHistory(this.o.state, inc.pool),
          policy: this.policy(),
          alreadyFenced: confirmedFenced(this.o.state, inc.pool, inc.host, inc.boot),
          fencedHosts: this.fencedHosts(inc.pool, rt.sampler.connection.snapshot() ?? rt.sampler.state.snapshot!),
          now: this.wallClock(),
        });
      };
      // The gates first, on what the service holds; a plan is then made on fresh VM records.
      let d = decideNow();
      if (d.kind === 'plan') {
        await rt.sampler.connection.refreshVms();
        if (inc.resolvedAt !== null) return; // resolved meanwhile
        d = decideNow();
      }
      const snapshot = rt.sampler.state.snapshot!;
      if (d.kind === 'refused') {
        span.setAttributes({ 'xenha.result': 'refused', 'xenha.gate': d.gate });
        // An own verdict that shows no life now (suspect, or a state its hysteresis still holds while
        // both paths read down or unknown) settles from the latest firing notification (after a restart:
        // the incident's opening). One with a path alive is refused at once.
        // Its window starts with the later of the notification and the service's own view of the pool.
        const firedAt = Math.max(this.firedAt.get(inc.id) ?? Date.parse(inc.openedAt), this.viewSince.get(inc.pool) ?? 0);
        const own = rt.sampler.state.memory?.hosts[inc.host];
        const noLifeNow = own !== undefined && !alive(own.network) && !alive(own.storage);
        const settling =
          d.gate === 'not-dead' &&
          (d.ownState === 'suspect' || noLifeNow) &&
          this.wallClock() < firedAt + SETTLE_DEAD_AFTERS * rt.sampler.state.deadAfter.ms;
        const last = inc.refusals.at(-1);
        if (settling) {
          // Journaled once per notification, not counted: it is not a refusal until the window ends.
          if (last?.gate !== d.gate || last.ownState !== d.ownState || Date.parse(last.at) < firedAt)
            await this.refuse(inc, d.gate, `${d.reason} (re-checked while it settles)`, d.ownState, false);
          this.schedule(inc, RECHECK_SETTLING_MS);
          return;
        }
        // The same transient refusal is journaled once, not at every re-check.
        const transient = TRANSIENT_GATES.includes(d.gate);
        if (!transient || last?.gate !== d.gate) await this.refuse(inc, d.gate, d.reason, d.ownState);
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
      // A second plan for one death only after the first was cancelled (the incident fired again).
      const planId = planIdOf(inc.plan === null ? id : `${id}#${inc.plan}`);
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
        addresses: Object.fromEntries(snapshot.hosts.filter((h) => h.uuid in d.names).map((h) => [h.uuid, h.address])),
        unplaced: d.plan.unplaced,
        refused: d.plan.fences.refused,
      });
      span.setAttributes({ 'xenha.result': 'planned', 'xenha.plan': planId, 'xenha.plan.state': state });
      this.o.log.info({ plan: planId, pool: inc.pool, host: inc.hostName, state, steps: d.plan.steps.length }, `plan made (${effective})`);
      if (state === 'running') await this.execute(this.o.state.plans.get(planId)!);
    });
  }

  /** Hosts of the pool a plan confirmed off whose boot is still the one of that incident (not powered on again since). */
  private fencedHosts(pool: string, snapshot: PoolSnapshot): string[] {
    const out: string[] = [];
    for (const inc of this.o.state.incidents.values()) {
      if (inc.pool !== pool || !confirmedFenced(this.o.state, pool, inc.host, inc.boot)) continue;
      if (snapshot.hosts.find((h) => h.uuid === inc.host)?.bootTime === inc.boot) out.push(inc.host);
    }
    return out;
  }

  /** Journals a refusal; `counted: false` keeps it out of xenha_remediation_refusals_total (a verdict still settling is no refusal yet). */
  private async refuse(inc: Incident, gate: RefusalGate, reason: string, ownState: string | null, counted = true): Promise<void> {
    await this.record({ type: 'refusal', incident: inc.id, gate, reason, ownState });
    if (counted) this.o.events?.onRefusal?.(inc.pool, gate);
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
    if (this.o.fenceLevelsFor) return this.o.fenceLevelsFor(plan);
    const rt = this.pools.get(plan.pool);
    const f = rt?.remediation.fence;
    // By UUID; by name only when one host of the pool has that name now (names repeat and change).
    const sameName = rt?.sampler.state.snapshot?.hosts.filter((h) => h.name === plan.hostName).length ?? 0;
    const config = f?.hosts[plan.host] ?? (sameName === 1 ? f?.hosts[plan.hostName] : undefined) ?? f?.default;
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

  /**
   * The re-check right before a fence is sent, whenever the plan was made: the mode still allows it,
   * the quiet period is over, the pool's own HA is still off, its own verdict is still dead, and the
   * host has not booted since the incident. Null to go on (also when the service is stopping: the
   * executor then stops before the step).
   */
  private async beforeFence(plan: Plan): Promise<string | null> {
    if (this.o.section.mode === 'dry-run') return 'the service runs in dry-run mode';
    const rt = this.pools.get(plan.pool)!;
    for (let left = this.quietLeftMs(rt); left > 0 && !this.stopping.signal.aborted; left = this.quietLeftMs(rt))
      await this.timers.sleep(left, this.stopping.signal);
    if (this.stopping.signal.aborted) return null;
    // Its own verdict must be dead. A view just formed (a restart) may not have reached it yet: wait for
    // dead or a sign of life, at most twice dead-after; whatever else, no fence.
    const deadline = this.monotonic() + 2 * rt.sampler.state.deadAfter.ms;
    let own = rt.sampler.state.memory?.hosts[plan.host];
    while (own?.state !== 'dead' && !(own && (alive(own.network) || alive(own.storage))) && this.monotonic() < deadline) {
      await this.timers.sleep(rt.config.timing.sampleInterval, this.stopping.signal);
      if (this.stopping.signal.aborted) return null;
      own = rt.sampler.state.memory?.hosts[plan.host];
    }
    return this.stillDead(plan);
  }

  /** Now, without waiting: the mode allows a fence, the pool's HA is off, its own verdict is dead, the host has not booted since. */
  private stillDead(plan: Plan): string | null {
    if (this.o.section.mode === 'dry-run') return 'the service runs in dry-run mode';
    const rt = this.pools.get(plan.pool)!;
    const own = rt.sampler.state.memory?.hosts[plan.host];
    const snap = rt.sampler.state.snapshot;
    if (!snap || !own) return 'the service has no view of the pool';
    if (snap.haEnabled) return "the pool's own HA is on now: xhad fences and xapi restarts there";
    if (own.state !== 'dead') return `its own verdict of ${plan.hostName} is ${own.state} now (${own.rule}), not dead`;
    const inc = this.o.state.incidents.get(plan.incident);
    const now = snap.hosts.find((h) => h.uuid === plan.host)?.bootTime;
    if (inc && now && !inc.boot.startsWith('alert-') && now !== inc.boot) return `${plan.hostName} has booted again since the incident`;
    return null;
  }

  private async execute(plan: Plan): Promise<void> {
    // A plan resumed at start whose master hand-over lacks a journaled address needs the service's first view.
    const rt = this.pools.get(plan.pool)!;
    const unaddressed = plan.steps.some(
      (st) =>
        (st.state === 'pending' || st.state === 'running') &&
        (st.step.kind === 'transition-master' || st.step.kind === 'follow-master') &&
        (plan.addresses[st.step.host] === undefined || (st.step.kind === 'follow-master' && plan.addresses[st.step.master] === undefined)),
    );
    // Any plan waits a while for the service's first view (a fence level named by host name needs it);
    // one whose master hand-over is journaled with its addresses goes on without it (no master answers).
    const viewDeadline = this.monotonic() + 2 * rt.sampler.state.deadAfter.ms;
    while (!rt.sampler.state.snapshot && !this.stopping.signal.aborted && (unaddressed || this.monotonic() < viewDeadline))
      await this.timers.sleep(rt.config.timing.sampleInterval, this.stopping.signal);
    if (this.stopping.signal.aborted) return;
    const started = this.monotonic();
    const end = await this.executor.run(plan, this.stopping.signal);
    if (end !== 'running') this.o.events?.onPlanFinished?.(end, (this.monotonic() - started) / 1000);
    // The plan moved VMs: the service's VM records (refreshed every capacityInterval) learn it now, while
    // a master answers — a plan made for the next death (its master's, say) must know where they run.
    if (end !== 'running') await rt.sampler.connection.refreshVms().catch(() => false);
    // Cancelled by a re-check (its own verdict not dead right before a fence): the incident, still
    // firing, is evaluated again — a view just formed after a restart may say dead a little later.
    const inc = this.o.state.incidents.get(plan.incident);
    if (end === 'cancelled' && inc && inc.resolvedAt === null && !this.deferred.has(inc.id)) this.schedule(inc, RECHECK_SETTLING_MS);
  }

  // ------------------------------------------------------------------ operator

  /** `xenha cancel <plan>`: a plan that has not started (awaiting-ack) or waits for an operator is cancelled; one running is not. */
  async cancel(planId: string, by: string): Promise<Plan> {
    this.claim(planId);
    try {
      await this.record({ type: 'plan-state', plan: planId, state: 'cancelled', reason: `cancelled by ${by}` });
      return this.o.state.plans.get(planId)!;
    } finally {
      this.claims.delete(planId);
    }
  }

  /** Takes a plan waiting for a person (synchronously: a second concurrent call gets 409), or says why not. */
  private claim(planId: string): Plan {
    const plan = this.o.state.plans.get(planId);
    if (!plan) throw new AckError(404, `no plan ${planId}`);
    if (this.claims.has(planId)) throw new AckError(409, `plan ${planId} is being changed by another call`);
    if (plan.state !== 'awaiting-ack' && plan.state !== 'needs-operator')
      throw new AckError(
        409,
        `plan ${planId} is ${plan.state}: only a plan awaiting-ack or needs-operator can be acknowledged or cancelled (a running plan never is)`,
      );
    this.claims.add(planId);
    return plan;
  }

  /**
   * `xenha ack <plan>`: runs a plan waiting for acknowledgement (manual mode), or, after a fence no
   * device confirmed, records a person's word that the host is off and resumes the plan.
   */
  async ack(planId: string, by: string): Promise<Plan> {
    const plan = this.claim(planId);
    try {
      // Dry-run is a kill switch: no plan runs, whether it awaits approval or a person's word after a failure.
      if (this.o.section.mode === 'dry-run') throw new AckError(409, `the service runs in dry-run mode: plan ${planId} is not run`);
      // After a failed fence or confirmation the person's word is that the host is off; else an approval.
      const fenceFailed = plan.steps.some(
        (st) => (st.step.kind === 'fence' || st.step.kind === 'confirm-fenced') && (st.state === 'failed' || st.state === 'running'),
      );
      const kind = plan.state === 'needs-operator' && fenceFailed ? 'host-off' : 'approve';
      await this.record({ type: 'ack', plan: planId, by, kind });
      if (plan.state === 'needs-operator') {
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
          else if (st.step.kind === 'reset-power-state' || st.step.kind === 'start-vm')
            // Tried again (it failed for want of a master, say): each step checks the pool before it acts.
            await this.record({
              type: 'step',
              plan: planId,
              index: st.index,
              state: 'pending',
              outcome: null,
              detail: `tried again after ${by}'s xenha ack`,
            });
        }
      }
      await this.record({ type: 'plan-state', plan: planId, state: 'running', reason: `acknowledged by ${by}` });
      this.enqueue(plan.pool, () => this.execute(this.o.state.plans.get(planId)!));
      return plan;
    } finally {
      this.claims.delete(planId);
    }
  }
}
