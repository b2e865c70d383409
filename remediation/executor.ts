/**
 * Runs a plan's steps in order against the pool. Each step is journaled before it runs (`running`) and
 * after (`done`, `skipped`, `failed`), and each checks the pool first, so a plan resumed after a crash
 * (a step found `running`) does nothing twice: a host already off is not powered off again (the fence
 * asks the device's status first), a VM already running is not started again, a VM whose power state
 * was already reset is not reset again, a VM whose disks are in use on another live host is not
 * started at all. Nothing of a host restarts before its fence is confirmed by the device's status
 * (or by a person's `xenha ack` after a failed fence).
 */
import type { Logger } from 'pino';
import { SpanStatusCode } from '@opentelemetry/api';
import { withSpan } from './telemetry.ts';
import { fenceHost, sleepFor, type FenceLevel } from '../plugins/fence/fence.ts';
import { isFenced } from '../plugins/fence/contract.ts';
import { XapiCallError } from '../io/xapi/actions.ts';
import type { PoolActions, HostNow, VmNow } from './pool-actions.ts';
import type { JournalEntry, NewEntry, PlanState, PlanStep } from './records.ts';
import type { Plan, RemediationState } from './state.ts';

export interface ExecutorDeps {
  /** Journals a record and folds it into the state; resolves once it is on disk. */
  record(e: NewEntry): Promise<JournalEntry>;
  state: RemediationState;
  actions(pool: string): PoolActions;
  /** The host's fence levels, built for this incident (the manual level reads this plan's acks). */
  fenceLevels(plan: Plan): FenceLevel[];
  /** A host's management address as the service last saw it (for a slave's emergency calls when the master is dead). */
  address(plan: Plan, host: string): string | null;
  log: Logger;
  powerTimeoutMs?: number;
  pollMs?: number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Monotonic ms for the executor's own deadlines and the fence's (default performance.now). */
  now?: () => number;
  /** Counts an action by kind and result (metrics). */
  onAction?: (kind: PlanStep['kind'], result: string, seconds: number) => void;
  /**
   * The re-check right before a fence is sent (a plan approved or resumed later than it was made):
   * null to go on, else why not — the plan is then cancelled, nothing done.
   */
  beforeFence?: (plan: Plan) => Promise<string | null>;
  /**
   * The quick re-check right before each level's `off` (a slow level may take minutes; the host may
   * come back meanwhile): null to send it, else why not — the fence is cancelled and the plan with it.
   */
  beforeOff?: (plan: Plan) => Promise<string | null>;
  /** How many times, and how far apart, a reset or a start is tried again after a transport error (a master restarting). */
  transportRetries?: number;
  transportRetryMs?: number;
  /** How long a new master may take to answer as one after its emergency transition (default 120 s). */
  masterWaitMs?: number;
}

/** A call that did not reach a master: the master may be restarting (an emergency transition), try again. */
const TRANSPORT = /^E[A-Z]+$|^UND_ERR|^TIMEOUT$|^FETCH_FAILED$|^HOST_IS_SLAVE$|^NO_MASTER$/;
/** No master answered at all (every address refused, or only slaves answered). */
const NO_MASTER = /^ECONNREFUSED$|^HOST_IS_SLAVE$|^NO_MASTER$/;

type StepResult = { state: 'done' | 'skipped' | 'failed'; outcome: string | null; detail: string; stop?: PlanState };

/**
 * Steps whose failure, even an unexpected one, stops the plan for a person: nothing of a host restarts
 * unless its fence is confirmed, and nothing is reset or started without a master.
 */
const STOPPING_KINDS: ReadonlySet<PlanStep['kind']> = new Set(['fence', 'confirm-fenced', 'transition-master', 'await-master-election']);

/** A fence or a status check is never cut short by the service stopping: each is bounded by its own timeouts. */
const NEVER = new AbortController().signal;

export class PlanExecutor {
  constructor(private readonly d: ExecutorDeps) {}

  /** Runs (or resumes) the plan from its first step not finished. Resolves when the plan stops. */
  async run(plan: Plan, signal: AbortSignal): Promise<PlanState> {
    const attributes = { 'xenha.pool': plan.pool, 'xenha.host': plan.host, 'xenha.plan': plan.id, 'xenha.mode': plan.mode };
    return withSpan('remediation.plan', attributes, async (span) => {
      const end = await this.steps(plan, signal);
      span.setAttribute('xenha.plan.state', end);
      return end;
    });
  }

  private async steps(plan: Plan, signal: AbortSignal): Promise<PlanState> {
    // Only a plan journaled running runs (made in enforce, approved, resumed): never a second time concurrently.
    if (plan.state !== 'running') return plan.state;
    const actions = this.d.actions(plan.pool);
    for (const st of plan.steps) {
      if (st.state === 'done' || st.state === 'skipped') continue;
      if (st.state === 'failed') {
        // A failed fence, confirmation or master step stops the plan again, whatever stopped it before
        // (a crash between the step's record and the plan's): only a person's ack moves it on.
        if (!STOPPING_KINDS.has(st.step.kind)) continue;
        const reason = `step ${st.index + 1} (${st.step.kind}) failed: ${st.detail}`;
        await this.d.record({ type: 'plan-state', plan: plan.id, state: 'needs-operator', reason });
        return 'needs-operator';
      }
      if (signal.aborted) return plan.state; // stopping: resumed at the next start
      if (st.step.kind === 'fence' && st.state === 'pending' && this.d.beforeFence) {
        const why = await this.d.beforeFence(plan);
        if (signal.aborted) return plan.state;
        if (why !== null) {
          await this.d.record({ type: 'plan-state', plan: plan.id, state: 'cancelled', reason: `re-checked before fencing: ${why}` });
          return 'cancelled';
        }
      }
      const resumed = st.state === 'running';
      await this.d.record({
        type: 'step',
        plan: plan.id,
        index: st.index,
        state: 'running',
        outcome: null,
        detail: resumed ? 'resumed' : '',
      });
      const started = performance.now();
      const attributes = { 'xenha.pool': plan.pool, 'xenha.plan': plan.id, 'xenha.step': st.index, ...stepAttributes(st.step) };
      const r = await withSpan(`remediation.step.${st.step.kind}`, attributes, async (span) => {
        let out: StepResult | 'interrupted';
        try {
          out = await this.step(plan, st.step, actions, signal);
          // A reset or a start that found no master (one restarting after a transition): again, a few times.
          for (let i = 0; i < (this.d.transportRetries ?? 6) && typeof out !== 'string' && out.state === 'failed'; i++) {
            if (!(st.step.kind === 'reset-power-state' || st.step.kind === 'start-vm') || !TRANSPORT.test(out.outcome ?? '')) break;
            await (this.d.sleep ?? sleepFor)(this.d.transportRetryMs ?? 5000, signal);
            if (signal.aborted) return 'interrupted';
            out = await this.step(plan, st.step, actions, signal);
          }
        } catch (e) {
          span.recordException(e as Error);
          const code = e instanceof XapiCallError ? e.code : 'error';
          out = { state: 'failed', outcome: code, detail: `unexpected error: ${(e as Error).message}` };
          if (STOPPING_KINDS.has(st.step.kind)) out.stop = 'needs-operator';
        }
        if (out === 'interrupted') return out;
        // Still no master after the retries: the plan stops for a person rather than end done with its
        // VMs left Halted (nothing would start them again: a new plan restarts only VMs still resident).
        if (
          out.state === 'failed' &&
          (st.step.kind === 'reset-power-state' || st.step.kind === 'start-vm') &&
          NO_MASTER.test(out.outcome ?? '')
        )
          out = {
            ...out,
            detail: `${out.detail}; no master answers: the rest of this plan waits (once the pool has a master again, \`xenha ack ${plan.id}\` resumes it)`,
            stop: 'needs-operator',
          };
        span.setAttribute('xenha.result', out.outcome ?? out.state);
        if (out.state === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: out.detail });
        return out;
      });
      // The service is stopping in the middle of a wait: the step stays running, resumed at the next start.
      if (r === 'interrupted') return plan.state;
      this.d.onAction?.(st.step.kind, r.outcome ?? r.state, (performance.now() - started) / 1000);
      await this.d.record({ type: 'step', plan: plan.id, index: st.index, state: r.state, outcome: r.outcome, detail: r.detail });
      if (r.stop) {
        await this.d.record({ type: 'plan-state', plan: plan.id, state: r.stop, reason: r.detail });
        return r.stop;
      }
      if (signal.aborted) return plan.state;
    }
    const failed = plan.steps.filter((s) => s.state === 'failed');
    const reason =
      failed.length === 0
        ? 'every step done'
        : `${failed.length} step(s) failed: ${failed.map((s) => `${s.step.kind}${'vm' in s.step ? ` ${plan.names[s.step.vm] ?? s.step.vm}` : ''} (${s.outcome})`).join(', ')}`;
    await this.d.record({ type: 'plan-state', plan: plan.id, state: 'done', reason });
    return 'done';
  }

  private async step(plan: Plan, step: PlanStep, actions: PoolActions, signal: AbortSignal): Promise<StepResult | 'interrupted'> {
    const name = (uuid: string) => plan.names[uuid] ?? uuid;
    switch (step.kind) {
      case 'fence': {
        // The gates' history: one record per fence, written on resume too when the crash came before it.
        const since = Date.parse(plan.createdAt);
        if (!(this.d.state.fences.get(plan.pool) ?? []).some((f) => f.host === step.host && f.at >= since))
          await this.d.record({ type: 'fence', pool: plan.pool, host: step.host, outcome: 'started' });
        const levels = this.d.fenceLevels(plan);
        if (levels.length === 0)
          return { state: 'failed', outcome: 'failed', detail: `no fence level configured for ${name(step.host)}`, stop: 'needs-operator' };
        const r = await fenceHost(levels, {
          signal: NEVER,
          log: this.d.log,
          ...(this.d.powerTimeoutMs !== undefined && { powerTimeoutMs: this.d.powerTimeoutMs }),
          ...(this.d.pollMs !== undefined && { pollMs: this.d.pollMs }),
          ...(this.d.sleep && { sleep: this.d.sleep }),
          ...(this.d.now && { now: this.d.now }),
          ...(this.d.beforeOff && { beforeOff: () => this.d.beforeOff!(plan) }),
        });
        const tried = r.attempts.map((a) => `level ${a.level} ${a.label}: ${a.outcome} (${a.detail})`).join('; ');
        if (isFenced(r.outcome)) return { state: 'done', outcome: r.outcome, detail: tried };
        if (r.outcome === 'cancelled') {
          // No off was sent by any level: the attempt leaves the fence history (cooldown, storm gates).
          if (!r.attempts.some((a) => a.offSent))
            await this.d.record({ type: 'fence', pool: plan.pool, host: step.host, outcome: 'cancelled' });
          return { state: 'failed', outcome: 'cancelled', detail: `fence of ${name(step.host)} cancelled: ${tried}`, stop: 'cancelled' };
        }
        return {
          state: 'failed',
          outcome: r.outcome,
          detail: `fence of ${name(step.host)} not confirmed on any level: ${tried || r.detail}. Check the host by hand; once it is off, \`xenha ack ${plan.id}\` restarts its VMs`,
          stop: 'needs-operator',
        };
      }
      case 'confirm-fenced': {
        const fence = plan.steps.find((s) => s.step.kind === 'fence' && s.step.host === step.host);
        if (fence?.outcome === 'operator-confirmed')
          return { state: 'done', outcome: 'operator-confirmed', detail: 'confirmed off by an operator (xenha ack)' };
        // The device's own word again, now: off, or nothing restarts.
        for (const level of this.d.fenceLevels(plan)) {
          try {
            const s = await level.device.status(NEVER);
            if (s.state === 'off') return { state: 'done', outcome: 'off', detail: `${level.device.label}: ${s.detail}` };
          } catch (e) {
            this.d.log.warn({ err: e, plan: plan.id, device: level.device.label }, 'fence device status failed');
          }
        }
        return {
          state: 'failed',
          outcome: 'not-off',
          detail: `no fence device says ${name(step.host)} is off now: nothing of it restarts; check it by hand, then \`xenha ack ${plan.id}\``,
          stop: 'needs-operator',
        };
      }
      case 'transition-master': {
        const address = this.d.address(plan, step.host);
        if (address === null)
          return { state: 'failed', outcome: 'no-address', detail: `no known address for ${name(step.host)}`, stop: 'needs-operator' };
        // No master answers (it is dead): null, transition.
        const current = await actions.master().catch(() => null);
        if (current === step.host)
          return { state: 'skipped', outcome: 'already-master', detail: `${name(step.host)} is the master already` };
        if (current !== null && current !== plan.host)
          return {
            state: 'failed',
            outcome: 'other-master',
            detail: `${name(current)} answers as the master already (made by hand?): no second master is made; check the pool, then xenha ack`,
            stop: 'needs-operator',
          };
        try {
          await actions.transitionToMaster(address);
          // xapi takes the role when it restarts (a fuse of about 10 s): wait until it answers as master.
          const now = this.d.now ?? (() => performance.now());
          const deadline = now() + (this.d.masterWaitMs ?? 120_000);
          while (!(await actions.xapi.answersAsMaster(address))) {
            if (now() > deadline)
              return {
                state: 'failed',
                outcome: 'not-master-yet',
                detail: `${name(step.host)} did not answer as the master within ${(this.d.masterWaitMs ?? 120_000) / 1000} s of its emergency transition`,
                stop: 'needs-operator',
              };
            await (this.d.sleep ?? sleepFor)(500, NEVER);
          }
          return { state: 'done', outcome: 'transitioned', detail: `${name(step.host)} is the master (emergency_transition_to_master)` };
        } catch (e) {
          const code = e instanceof XapiCallError ? e.code : String(e);
          return {
            state: 'failed',
            outcome: code,
            detail: `emergency_transition_to_master on ${name(step.host)}: ${(e as Error).message}`,
            stop: 'needs-operator',
          };
        }
      }
      case 'follow-master': {
        const address = this.d.address(plan, step.host);
        const master = this.d.address(plan, step.master);
        if (address === null || master === null)
          return { state: 'failed', outcome: 'no-address', detail: 'no known address for the slave or the new master' };
        try {
          await actions.resetMaster(address, master);
          return { state: 'done', outcome: 'following', detail: `${name(step.host)} follows ${name(step.master)}` };
        } catch (e) {
          const code = e instanceof XapiCallError ? e.code : String(e);
          // A slave that is down or already follows does not stop the recovery.
          return { state: 'failed', outcome: code, detail: `emergency_reset_master on ${name(step.host)}: ${(e as Error).message}` };
        }
      }
      case 'await-master-election':
        return {
          state: 'failed',
          outcome: 'not-supported',
          detail: 'with HA on xhad elects the master: the service does not act there',
          stop: 'needs-operator',
        };
      case 'reset-power-state': {
        const unmet = this.unmet(plan);
        if (unmet) return { state: 'failed', outcome: 'not-fenced', detail: unmet, stop: 'needs-operator' };
        const hosts = await actions.hosts();
        const vm = await actions.vm(step.vm, hosts, false);
        if (!vm) return { state: 'skipped', outcome: 'gone', detail: `${name(step.vm)} no longer exists` };
        if (vm.powerState === 'Halted' || vm.residentOn !== step.host)
          return {
            state: 'skipped',
            outcome: 'already-reset',
            detail: `${vm.name} is ${vm.powerState}${vm.residentOn ? ` on ${name(vm.residentOn)}` : ''}: nothing to reset`,
          };
        try {
          await actions.resetPowerState(vm.ref);
          return { state: 'done', outcome: 'reset', detail: `${vm.name} marked Halted (its host is fenced)` };
        } catch (e) {
          const code = e instanceof XapiCallError ? e.code : String(e);
          return { state: 'failed', outcome: code, detail: `VM.power_state_reset ${vm.name}: ${(e as Error).message}` };
        }
      }
      case 'start-vm': {
        const unmet = this.unmet(plan);
        if (unmet) return { state: 'failed', outcome: 'not-fenced', detail: unmet, stop: 'needs-operator' };
        return this.startVm(plan, step, actions);
      }
      case 'wait':
        await (this.d.sleep ?? sleepFor)(step.seconds * 1000, signal);
        if (signal.aborted) return 'interrupted';
        return { state: 'done', outcome: null, detail: step.reason };
    }
  }

  /**
   * Why nothing of the host may be reset or started yet: its fence not confirmed, or the master step not
   * done. A second guard behind the order of the steps (a step skipped by a bug or a crash never lets a VM start).
   */
  private unmet(plan: Plan): string | null {
    for (const s of plan.steps) {
      if (s.step.kind === 'confirm-fenced' && s.step.host === plan.host && s.state !== 'done')
        return `${plan.hostName}'s fence is not confirmed (confirm-fenced ${s.state}): nothing of it is reset or started`;
      if (s.step.kind === 'transition-master' && s.state !== 'done' && s.state !== 'skipped')
        return `the master transition is not done (${s.state}): nothing is reset or started without a master`;
    }
    return null;
  }

  private async startVm(plan: Plan, step: Extract<PlanStep, { kind: 'start-vm' }>, actions: PoolActions): Promise<StepResult> {
    const name = (uuid: string) => plan.names[uuid] ?? uuid;
    const hosts = await actions.hosts();
    const vm = await actions.vm(step.vm, hosts);
    if (!vm) return { state: 'skipped', outcome: 'gone', detail: `${name(step.vm)} no longer exists` };
    const running = (v: typeof vm, h: Map<string, HostNow>) =>
      v.powerState !== 'Halted' && v.residentOn !== null && h.get(v.residentOn)?.live === true && v.residentOn !== plan.host;
    if (running(vm, hosts))
      return { state: 'skipped', outcome: 'already-running', detail: `${vm.name} already runs on ${name(vm.residentOn!)}` };
    if (vm.powerState !== 'Halted')
      return {
        state: 'failed',
        outcome: 'not-halted',
        detail: `${vm.name} is ${vm.powerState} on its fenced host: not reset, not started`,
      };
    if (vm.disksInUseOn.length > 0)
      return {
        state: 'failed',
        outcome: 'disks-in-use',
        detail: `${vm.name}'s disks are attached on ${vm.disksInUseOn.map(name).join(', ')} (live): not started`,
      };
    const target = hosts.get(step.host);
    if (!target) return { state: 'failed', outcome: 'no-host', detail: `${name(step.host)} is no longer in the pool` };
    try {
      await actions.startOn(vm.ref, target.ref);
      return { state: 'done', outcome: 'started', detail: `${vm.name} started on ${target.name}` };
    } catch (e) {
      const code = e instanceof XapiCallError ? e.code : String(e);
      if (code === 'VM_BAD_POWER_STATE') {
        const again = await actions.vm(step.vm, await actions.hosts(), false);
        if (again && running(again, hosts)) return { state: 'skipped', outcome: 'already-running', detail: `${vm.name} runs already` };
      }
      const failed = {
        state: 'failed' as const,
        outcome: code,
        detail: `VM.start_on ${vm.name} on ${target.name}: ${(e as Error).message}`,
      };
      return TARGET_GONE.has(code) ? await this.startElsewhere(plan, vm, target, actions, failed) : failed;
    }
  }

  /**
   * The planned host died meanwhile (a death during the recovery): the VM goes to another live, enabled
   * host, tried in name order; xapi checks each one's memory. Never the plan's own host.
   */
  private async startElsewhere(plan: Plan, vm: VmNow, gone: HostNow, actions: PoolActions, failed: StepResult): Promise<StepResult> {
    const hosts = await actions.hosts();
    const candidates = [...hosts.values()]
      .filter((h) => h.live && h.enabled && h.uuid !== plan.host && h.uuid !== gone.uuid)
      .sort((a, b) => a.name.localeCompare(b.name))
      .slice(0, MAX_START_ELSEWHERE);
    const tried: string[] = [];
    for (const h of candidates) {
      try {
        await actions.startOn(vm.ref, h.ref);
        return {
          state: 'done',
          outcome: 'started-elsewhere',
          detail: `${vm.name} started on ${h.name} (${gone.name}, where it was planned, is gone: ${failed.outcome})`,
        };
      } catch (e) {
        tried.push(`${h.name}: ${e instanceof XapiCallError ? e.code : String(e)}`);
      }
    }
    return { ...failed, detail: `${failed.detail}; tried elsewhere: ${tried.join(', ') || 'no other live host'}` };
  }
}

/** VM.start_on's answers that say the target host itself is gone (not the VM's fault). */
const TARGET_GONE: ReadonlySet<string> = new Set(['HOST_NOT_LIVE', 'HOST_OFFLINE', 'HOST_CANNOT_ATTACH_NETWORK']);
const MAX_START_ELSEWHERE = 8;

function stepAttributes(s: PlanStep): Record<string, string> {
  const a: Record<string, string> = { 'xenha.step.kind': s.kind };
  if ('host' in s) a['xenha.host'] = s.host;
  if ('vm' in s) a['xenha.vm'] = s.vm;
  return a;
}
