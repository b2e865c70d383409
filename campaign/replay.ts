/** What `xenha campaign --replay` prints: the story, what the pool and xenha did in it, the verdict. */
import type { StoryVerdict } from './checks.ts';
import { STORY_EPOCH, type WorldRecord } from './world.ts';

const sec = (ms: number | null) => (ms === null ? '–' : `${(ms / 1000).toFixed(2)} s`);

export function formatReplay(w: WorldRecord, v: StoryVerdict): string {
  const s = w.story;
  const out: string[] = [];
  out.push(`story ${s.seed}: ${s.kinds.join(', ')}`);
  out.push(
    `pool: ${s.pool.hosts} hosts, ${s.pool.vms} VMs, HA ${s.pool.haEnabled ? `on (T = ${s.pool.haTimeout} s)` : 'off (xenha-heartbeat)'}; dead-after ${sec(w.deadAfterMs)}; quiet period ${sec(s.timing.quietPeriodMs)}`,
  );
  out.push(
    `fence: BMC ${s.fence.bmc}${s.fence.pdu ? ', then a PDU that works' : ''}; a working device cuts the power ${sec(s.fence.offMs)} after its off; alerts: ${sec(s.alerting.delayMs)} to the webhook${s.alerting.duplicate ? ', each twice' : ''}${s.alerting.lateMs > 0 ? `, ${sec(s.alerting.lateMs)} late` : ''}${s.alerting.outOfOrder ? ', out of order' : ''}`,
  );
  out.push('', 'events:');
  for (const e of s.events)
    out.push(
      `  ${sec(e.at).padStart(9)}  ${e.kind === 'fault' ? JSON.stringify(e.fault) : 'the remediation service is killed and started again'}`,
    );
  out.push('', 'deaths (no life on any path):');
  for (const e of v.episodes) {
    const ep = e.episode;
    out.push(
      `  ${ep.hostName}${ep.wasMaster ? ' (master)' : ''}: ${sec(ep.from)} → ${ep.to === null ? 'the end' : sec(ep.to)}; dead verdict ${sec(ep.detectedAt)}; fenced ${sec(ep.fencedAt)}; protected VMs ${ep.protectedVms.length}${e.recoveryMs === null ? '' : `, all running again ${sec(e.recoveryMs)} after the death`}${e.heldBy ? `; held back: ${e.heldBy}` : ''}`,
    );
  }
  out.push('', "the service's journal (decisions):");
  for (const r of w.journal) {
    if (r.type === 'notification' || r.type === 'step') continue;
    const at = sec(Date.parse(r.at) - STORY_EPOCH).padStart(9);
    const what =
      r.type === 'refusal'
        ? `refused (${r.gate}): ${r.reason}`
        : r.type === 'plan'
          ? `plan ${r.plan} for ${r.hostName} (${r.state}, ${r.steps.length} steps${r.unplaced.length > 0 ? `, ${r.unplaced.length} unplaced` : ''})`
          : r.type === 'plan-state'
            ? `plan ${r.plan} ${r.state}: ${r.reason}`
            : r.type === 'incident'
              ? `incident for ${r.hostName}`
              : r.type === 'fence'
                ? `fence of ${r.host} ${r.outcome}`
                : r.type;
    out.push(`  ${at}  ${what}`);
  }
  for (const r of w.intakeRefusals)
    out.push(`  ${sec(r.at).padStart(9)}  the webhook refused an alert (${r.gate ?? 'no gate'}): ${r.reason}`);
  out.push('', v.violations.length === 0 ? 'no violation' : `${v.violations.length} violation(s):`);
  for (const x of v.violations) out.push(`  ${x.check}: ${x.detail}`);
  out.push('', `the story as JSON (xenha campaign --replay FILE plays it): ${JSON.stringify(s)}`, '');
  return out.join('\n');
}
