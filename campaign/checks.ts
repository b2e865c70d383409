/**
 * The campaign's verdict on one played story: what xenha did (its journal, the fences and starts the
 * pool saw) against the ground truth (when each host really showed life, where each VM really ran).
 * The live checks (a false fence, a VM on two hosts, an action done twice, a restart before its host's
 * fence is confirmed) were taken as the actions happened (world.ts); these are the ones that need the
 * whole story: every dead host fenced and its protected VMs running again, in time, and every refusal
 * naming its gate.
 */
import { REFUSAL_GATES, type JournalEntry } from '../remediation/records.ts';
import { STORY_EPOCH as STORY_EPOCH_MS, type DeathEpisode, type Violation, type WorldRecord } from './world.ts';

/**
 * A host dead on both paths this much longer than dead-after must have been fenced: its last life is
 * seen up to a few statefile intervals late (xhad's max(2, T/20) s, xenha-heartbeat's 2 s), then the
 * exporter confirms over rounds and Alertmanager notifies.
 */
export const MUST_FENCE_AFTER_DEAD_AFTER_MS = 20_000;
/**
 * The bound: a dead host's protected VMs run again within dead-after + 5 s of its death, plus
 * the fence device's own time to cut the power after each off the recovery waited for (the story's
 * `fence.offMs`: the BMC's, not xenha's), its own and those of deaths queued before it.
 */
export const RECOVERY_MARGIN_MS = 5_000;
/** Gates that lift once no fence runs and the quiet period is over (the others may outlast a story: a cooldown, a storm window, no master). */
const LIFTING_GATES: ReadonlySet<string> = new Set(['in-flight', 'storm-concurrent', 'quiet-period']);

export interface EpisodeVerdict {
  episode: DeathEpisode;
  /** It lasted long enough that a fence was due. */
  due: boolean;
  /** What held the fence back, when it was due and not done (a gate, a failed device, the pool's own HA). */
  heldBy: string | null;
  /** Death → the exporter's dead verdict. */
  detectionMs: number | null;
  /** Death → the last of its protected VMs running again (fenced hosts with protected VMs). */
  recoveryMs: number | null;
  /** The dead-after the times are measured against. */
  deadAfterMs: number;
  /** The recovery time is held to dead-after + 5 s + the device's off time (nothing in the story excuses a slower one). */
  bounded: boolean;
  /** The fence devices' own time from off to power cut that the recovery waited for (in the recovery time, not xenha's). */
  deviceMs: number;
  /** Protected VMs the plan could not place (no capacity, a local disk). */
  unplaced: number;
}

export interface StoryVerdict {
  seed: number;
  violations: Violation[];
  episodes: EpisodeVerdict[];
  fences: number;
  /** Fences whose host showed life again between the off sent and the power cut (not a violation: see world.ts). */
  backBeforeCut: number;
  falseFences: number;
  missedRecoveries: number;
  refusals: Record<string, number>;
}

type Of<T extends JournalEntry['type']> = Extract<JournalEntry, { type: T }>;

export function judge(w: WorldRecord): StoryVerdict {
  const violations = [...w.violations];
  const d = w.deadAfterMs;
  const at = (iso: string) => Date.parse(iso) - STORY_EPOCH_MS;
  const incidents = w.journal.filter((r): r is Of<'incident'> => r.type === 'incident');
  const plans = w.journal.filter((r): r is Of<'plan'> => r.type === 'plan');
  const refusals = w.journal.filter((r): r is Of<'refusal'> => r.type === 'refusal');
  const planStates = w.journal.filter((r): r is Of<'plan-state'> => r.type === 'plan-state');
  const hostOf = new Map(incidents.map((i) => [i.incident, i.host]));

  // Every refusal names its gate (and says why).
  const refusalCounts: Record<string, number> = {};
  for (const r of refusals) {
    if (!(REFUSAL_GATES as readonly string[]).includes(r.gate) || r.reason.trim() === '')
      violations.push({ check: 'refusal-without-gate', detail: `refusal ${r.seq} names gate ${JSON.stringify(r.gate)}: ${r.reason}` });
    refusalCounts[r.gate] = (refusalCounts[r.gate] ?? 0) + 1;
  }
  for (const r of w.intakeRefusals) {
    if (r.gate === null || !(REFUSAL_GATES as readonly string[]).includes(r.gate) || r.reason.trim() === '')
      violations.push({ check: 'refusal-without-gate', detail: `the webhook refused an alert at ${r.at} ms without a gate: ${r.reason}` });
    refusalCounts[r.gate ?? '(none)'] = (refusalCounts[r.gate ?? '(none)'] ?? 0) + 1;
  }
  for (const p of plans)
    for (const r of p.refused)
      if (!(REFUSAL_GATES as readonly string[]).includes(r.gate) || r.reason.trim() === '')
        violations.push({ check: 'refusal-without-gate', detail: `plan ${p.plan} refuses ${r.host} with gate ${JSON.stringify(r.gate)}` });

  // One plan per incident, unless the one before was cancelled.
  const byIncident = new Map<string, Of<'plan'>[]>();
  for (const p of plans) byIncident.set(p.incident, [...(byIncident.get(p.incident) ?? []), p]);
  for (const [incident, list] of byIncident)
    for (const [i, p] of list.entries()) {
      if (i === 0) continue;
      const prev = list[i - 1]!;
      const cancelled = planStates.some((s) => s.plan === prev.plan && s.state === 'cancelled' && s.seq < p.seq);
      if (!cancelled && prev.state !== 'dry-run')
        violations.push({
          check: 'action-twice',
          detail: `a second plan ${p.plan} for incident ${incident} while ${prev.plan} was not cancelled`,
        });
    }

  const storyEnd = w.endMs;
  /** A plan of the pool was running at story time `t` (from its record to its last state). */
  const planRunningAt = (t: number) =>
    plans.some((p) => {
      if (p.state !== 'running' || at(p.at) > t) return false;
      const ended = planStates.find((s) => s.plan === p.plan && s.state !== 'running' && at(s.at) >= at(p.at));
      return ended === undefined || at(ended.at) >= t;
    });
  const restarts = w.story.events.filter((e) => e.kind === 'restart-service').map((e) => e.at);
  const slow = w.story.events.some((e) => e.kind === 'fault' && e.fault.kind === 'slow-xapi');
  const disturbedAlerts = w.story.alerting.lateMs > 0 || w.story.alerting.outOfOrder;
  const verdicts: EpisodeVerdict[] = [];
  for (const ep of w.episodes) {
    const end = ep.to ?? storyEnd;
    const due = end - ep.from > d + MUST_FENCE_AFTER_DEAD_AFTER_MS;
    const mine = (incident: string) => hostOf.get(incident) === ep.host;
    const inWindow = (iso: string) => at(iso) >= ep.from && at(iso) <= end;
    const myRefusals = refusals.filter((r) => mine(r.incident) && inWindow(r.at));
    const myPlans = plans.filter((p) => mine(p.incident) && at(p.at) >= ep.from);
    const gates = [
      ...new Set([
        ...myRefusals.map((r) => r.gate as string),
        ...w.intakeRefusals.filter((r) => r.host === ep.host && r.at >= ep.from && r.at <= end).map((r) => r.gate ?? '(none)'),
      ]),
    ];
    // The last word: the latest refusal other than not-dead (a gate that lifted gave way to the next one).
    const lastGate =
      [
        ...myRefusals.map((r) => ({ at: at(r.at), gate: r.gate })),
        ...w.intakeRefusals
          .filter((r) => r.host === ep.host && r.at >= ep.from && r.at <= end)
          .map((r) => ({ at: r.at, gate: r.gate ?? '(none)' })),
      ]
        .filter((r) => r.gate !== 'not-dead')
        .sort((a, b) => a.at - b.at)
        .at(-1)?.gate ?? null;
    const isolated = w.isolated.some((i) => i.from <= end && (i.to ?? storyEnd) >= ep.from);
    // A plan stopped for a person: a fence no device confirmed, or no master to restart VMs on.
    const failedFence = myPlans.some((p) => planStates.some((s) => s.plan === p.plan && s.state === 'needs-operator'));
    let heldBy: string | null = null;
    if (ep.fencedAt === null && due) {
      if (w.story.pool.haEnabled && myPlans.some((p) => p.state === 'dry-run')) heldBy = 'pool-ha-on (dry-run)';
      else if (failedFence) heldBy = 'needs-operator';
      else if (isolated) heldBy = 'observer-isolated';
      else if (planRunningAt(ep.from + d + MUST_FENCE_AFTER_DEAD_AFTER_MS) && ep.to !== null)
        // One plan at a time per pool (maxConcurrentFences 1): this death waited behind another's plan
        // (a hung fence level takes minutes) and ended before its turn.
        heldBy = 'another plan running';
      else if (lastGate !== null && LIFTING_GATES.has(lastGate) && ep.to === null)
        // These lift by themselves once no fence runs and the quiet period is over; the story ends only
        // when nothing runs: a death still held by one at the end was missed.
        violations.push({
          check: 'missed-recovery',
          detail: `${ep.hostName} dead from ${ep.from} ms to the end and never fenced, held by ${lastGate}, a gate that should have lifted`,
        });
      else if (lastGate !== null) heldBy = `gate ${lastGate}`;
      else
        violations.push({
          check: 'missed-recovery',
          detail: `${ep.hostName} dead from ${ep.from} ms to ${ep.to ?? 'the end'} (${end - ep.from} ms, dead-after ${d} ms) and never fenced; detected ${ep.detectedAt ?? 'never'}; refusals: ${gates.join(', ') || 'none'}`,
        });
    }
    // Its protected VMs: each one the plan placed runs on a live host at the end.
    const plan = myPlans.find((p) => p.state !== 'dry-run');
    const unplaced = new Set(plan?.unplaced.map((u) => u.vm) ?? []);
    let recoveryMs: number | null = null;
    if (ep.fencedAt !== null && plan) {
      const expected = ep.protectedVms.filter((vm) => !unplaced.has(vm));
      // Started again after the fence (its new host may die in turn), or running at the end.
      // A VM no live host has room for at the end could not run again: the capacity did not allow it.
      const missing = expected.filter(
        (vm) => !w.runningAtEnd.has(vm) && !w.starts.some((st) => st.vm === vm && st.at >= ep.fencedAt!) && w.roomAtEnd.has(vm),
      );
      const needsOperator = planStates.some((s) => s.plan === plan.plan && s.state === 'needs-operator');
      if (missing.length > 0 && !needsOperator)
        violations.push({
          check: 'missed-recovery',
          detail: `${ep.hostName} fenced at ${ep.fencedAt} ms but ${missing.map((v) => w.vmNames.get(v) ?? v).join(', ')} never started again`,
        });
      const startsOf = expected.map((vm) => w.starts.filter((s) => s.vm === vm && s.at >= ep.from).map((s) => s.at)[0]);
      if (expected.length > 0 && startsOf.every((s) => s !== undefined)) recoveryMs = Math.max(...startsOf) - ep.from;
    }
    const transientGate = gates.some((g) => g !== 'not-dead');
    const restartedDuring = restarts.some((r) => r >= ep.from && r <= (recoveryMs === null ? end : ep.from + recoveryMs));
    const bounded =
      recoveryMs !== null &&
      w.story.fence.bmc === 'ok' &&
      !slow &&
      !disturbedAlerts &&
      !transientGate &&
      !restartedDuring &&
      !ep.wasMaster &&
      !isolated;
    // The device's time for every power cut the recovery waited for: its own, and those of the deaths
    // before it in the pool's queue of plans (one plan at a time).
    const cutsWaited = recoveryMs === null ? 1 : w.fences.filter((f) => f.sentAt >= ep.from && f.at <= ep.from + recoveryMs).length;
    const deviceMs = w.story.fence.offMs * Math.max(1, cutsWaited);
    if (bounded && recoveryMs! > d + RECOVERY_MARGIN_MS + deviceMs)
      violations.push({
        check: 'late-recovery',
        detail: `${ep.hostName}: its protected VMs ran again ${recoveryMs} ms after its death (bound: dead-after ${d} ms + ${RECOVERY_MARGIN_MS} ms + the device's ${deviceMs} ms)`,
      });
    verdicts.push({
      episode: ep,
      due,
      heldBy,
      detectionMs: ep.detectedAt === null ? null : ep.detectedAt - ep.from,
      recoveryMs,
      bounded,
      deviceMs,
      deadAfterMs: d,
      unplaced: ep.protectedVms.filter((vm) => unplaced.has(vm)).length,
    });
  }
  return {
    seed: w.story.seed,
    violations,
    episodes: verdicts,
    fences: w.fences.length,
    backBeforeCut: w.fences.filter((f) => f.backBeforeCut).length,
    falseFences: violations.filter((v) => v.check === 'false-fence').length,
    missedRecoveries: violations.filter((v) => v.check === 'missed-recovery').length,
    refusals: refusalCounts,
  };
}
