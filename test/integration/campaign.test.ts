/**
 * The seeded safety campaign (campaign/, docs/campaign.md).
 *
 * 1. A few hundred stories through the compiled CLI (`xenha campaign --json`, two worker threads): no
 *    violation of any safety promise, and the stories did reach what they are for — every kind of
 *    story, both HA modes, hosts fenced, deaths held back by gates, recoveries held to the 5 s bound.
 * 2. A story replays exactly: from its seed twice, and from its JSON through `--replay FILE`.
 * 3. The checks catch what they promise to catch: a BMC powering off a live host, a VM started while it
 *    runs elsewhere (the same edges the checks watch, driven from outside xenha), and — on records made
 *    by hand — a dead host never fenced, a slow recovery, a refusal without a gate, a second plan.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CampaignReport } from '../../campaign/campaign.ts';
import { judge, RECOVERY_MARGIN_MS } from '../../campaign/checks.ts';
import { generateStory, STORY_KINDS, storyDeadAfterMs, type Story } from '../../campaign/story.ts';
import { playStory, type WorldRecord } from '../../campaign/world.ts';
import { defaultTiming } from '../../simulator/pool.ts';
import { run } from '../helpers/run.ts';

const XENHA = join(import.meta.dirname, '../../bin/xenha.js');
const STORIES = 240;
const SEED = 20261128;

describe('the safety campaign', () => {
  it(`${STORIES} stories through the CLI: no false fence, no missed or late recovery, no VM on two hosts, nothing done twice, every refusal with its gate`, async () => {
    const r = await run(
      process.execPath,
      [XENHA, 'campaign', '--stories', String(STORIES), '--seed', String(SEED), '--workers', '2', '--json'],
      {
        timeoutMs: 240_000,
      },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as CampaignReport;
    expect(report.violations).toEqual([]);
    expect(report.stories).toBe(STORIES);
    expect(report.falseFences).toBe(0);
    expect(report.missedRecoveries).toBe(0);
    expect(report.lateRecoveries).toBe(0);
    // What the stories reached (else a pipeline that does nothing would pass): every kind several times,
    // both modes, real fences, deaths a gate held back, recoveries held to the bound and within it.
    for (const kind of STORY_KINDS) expect(report.kinds[kind], kind).toBeGreaterThanOrEqual(8);
    expect(report.haOn).toBeGreaterThan(STORIES / 5);
    expect(report.haOn).toBeLessThan(STORIES - STORIES / 5);
    expect(report.fences).toBeGreaterThanOrEqual(30);
    expect(report.fencedDue).toBeGreaterThanOrEqual(30);
    expect(report.due - report.fencedDue).toBeGreaterThan(0);
    expect(Object.keys(report.refusals)).toEqual(expect.arrayContaining(['not-dead', 'quorum']));
    expect(report.boundedRecoveryMs.n).toBeGreaterThanOrEqual(10);
    expect(report.boundedRecoveryMs.max).toBeLessThanOrEqual(RECOVERY_MARGIN_MS);
  }, 300_000);

  it('a story replays exactly, from its seed and from its JSON', async () => {
    // A crash the service remediates (fence, resets, starts) on a pool without HA.
    const story = findStory((s) => !s.pool.haEnabled && s.fence.bmc === 'ok' && s.kinds.includes('host-crash'));
    const a = await playStory(story);
    const b = await playStory(story);
    expect(a.fences.length).toBeGreaterThan(0);
    expect(a.starts.length).toBeGreaterThan(0);
    expect(trace(b)).toEqual(trace(a));
    const dir = mkdtempSync(join(tmpdir(), 'xenha-campaign-test-'));
    try {
      const file = join(dir, 'story.json');
      writeFileSync(file, JSON.stringify(story));
      const r = await run(process.execPath, [XENHA, 'campaign', '--replay', file, '--json'], { timeoutMs: 60_000 });
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as { story: Story; journal: WorldRecord['journal'] };
      expect(out.story).toEqual(story);
      expect(out.journal).toEqual(a.journal);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('the checks catch a fence of a live host and a VM started while it runs elsewhere', async () => {
    const story = findStory((s) => s.kinds.length === 1 && s.kinds[0] === 'network-cut' && s.pool.hosts >= 3);
    const fence = await playStory(story, { kind: 'fence-live-host', at: 20_000, host: 'host-02' });
    expect(judge(fence).violations.map((v) => v.check)).toContain('false-fence');
    const start = await playStory(story, { kind: 'start-running-vm', at: 20_000, host: 'host-02' });
    expect(judge(start).violations.map((v) => v.check)).toContain('vm-on-two-hosts');
    // And without sabotage the same story is clean.
    expect(judge(await playStory(story)).violations).toEqual([]);
  }, 120_000);

  it('a crashed host whose boot ends between its off and the power cut is cut and counted, not a false fence', async () => {
    // One slave crash on a pool without HA, fenced by a BMC that cuts the power 1 s after its off.
    const found = findStory(
      (s) =>
        !s.pool.haEnabled &&
        s.fence.bmc === 'ok' &&
        s.kinds.length === 1 &&
        s.kinds[0] === 'host-crash' &&
        s.events.every((e) => e.kind === 'fault') &&
        s.alerting.lateMs === 0 &&
        !s.alerting.outOfOrder,
    );
    const story: Story = { ...found, fence: { ...found.fence, offMs: 1_000 } };
    const first = await playStory(story);
    expect(first.fences).toHaveLength(1);
    const fence = first.fences[0]!;
    expect(fence.backBeforeCut).toBe(false);
    expect(fence.at - fence.sentAt).toBe(1_000);
    // The same story, the host healed so that its boot ends halfway between the off and the cut: nothing
    // of it can be seen before its boot ends, so the service decides as before, and the cut finds it back.
    const crash = story.events.find((e) => e.kind === 'fault' && e.fault.kind === 'host-crash')!;
    const host = crash.kind === 'fault' && crash.fault.kind === 'host-crash' ? crash.fault.host : '';
    const healAt = fence.sentAt + 500 - defaultTiming(story.pool.haTimeout, story.pool.haEnabled).bootMs;
    expect(healAt).toBeGreaterThan(crash.at);
    const healed: Story = {
      ...story,
      events: [...story.events, { kind: 'fault' as const, at: healAt, fault: { kind: 'heal' as const, host } }].sort((a, b) => a.at - b.at),
    };
    const w = await playStory(healed);
    expect(w.fences.map((f) => [f.hostName, f.sentAt, f.at, f.backBeforeCut])).toEqual([[fence.hostName, fence.sentAt, fence.at, true]]);
    const v = judge(w);
    expect(v.violations).toEqual([]);
    expect(v.backBeforeCut).toBe(1);
    // The death the cut started counts as fenced; the protected VMs of the crash run again elsewhere.
    const deaths = w.episodes.filter((e) => e.hostName === fence.hostName);
    expect(deaths.map((e) => e.fencedAt)).toEqual([null, fence.at]);
    expect(deaths[0]!.protectedVms.length).toBeGreaterThan(0);
    for (const vm of deaths[0]!.protectedVms) expect([undefined, deaths[0]!.host]).not.toContain(w.runningAtEnd.get(vm));
  }, 120_000);

  it('the checks catch a dead host never fenced, a slow recovery, a refusal without a gate and a second plan', () => {
    const story = generateStory(1);
    const d = storyDeadAfterMs(story);
    const base: WorldRecord = {
      story: {
        ...story,
        fence: { ...story.fence, bmc: 'ok', offMs: 0 },
        alerting: { ...story.alerting, lateMs: 0, outOfOrder: false },
        events: [],
      },
      deadAfterMs: d,
      episodes: [],
      fences: [],
      starts: [],
      violations: [],
      journal: [],
      isolated: [],
      notifications: 0,
      intakeRefusals: [],
      protectedVms: new Set(['vm-a']),
      vmNames: new Map([['vm-a', 'vm-a']]),
      runningAtEnd: new Map(),
      roomAtEnd: new Set(['vm-a']),
      endMs: 10 * d,
      wallMs: 0,
    };
    const at = (ms: number) => new Date(Date.UTC(2026, 10, 1) + ms).toISOString();
    const episode = {
      host: 'h1',
      hostName: 'host-01',
      from: 1000,
      to: null,
      wasMaster: false,
      detectedAt: 1000 + d,
      fencedAt: null,
      protectedVms: ['vm-a'],
    };

    // Dead for the whole story, never fenced, nothing refused.
    expect(judge({ ...base, episodes: [{ ...episode }] }).violations.map((v) => v.check)).toEqual(['missed-recovery']);
    // The same with a gate's refusal on record: held back, no violation.
    const incident = {
      seq: 1,
      at: at(1000 + d),
      type: 'incident' as const,
      incident: 'i1',
      pool: 'campaign',
      host: 'h1',
      hostName: 'host-01',
      boot: 'b',
      fingerprint: 'f',
    };
    const refusal = {
      seq: 2,
      at: at(1500 + d),
      type: 'refusal' as const,
      incident: 'i1',
      gate: 'quorum' as const,
      reason: 'too many',
      ownState: 'dead',
    };
    expect(judge({ ...base, episodes: [{ ...episode }], journal: [incident, refusal] }).violations).toEqual([]);
    // A refusal whose gate is not one of xenha's.
    const bad = { ...refusal, gate: 'because' as unknown as 'quorum' };
    expect(judge({ ...base, journal: [incident, bad] }).violations.map((v) => v.check)).toEqual(['refusal-without-gate']);
    // Fenced, its protected VM started 6 s after dead-after: late.
    const plan = {
      seq: 3,
      at: at(1000 + d),
      type: 'plan' as const,
      incident: 'i1',
      plan: 'p1',
      pool: 'campaign',
      host: 'h1',
      hostName: 'host-01',
      mode: 'enforce' as const,
      modeReason: null,
      state: 'running' as const,
      steps: [],
      names: {},
      unplaced: [],
      refused: [],
    };
    const late = judge({
      ...base,
      episodes: [{ ...episode, fencedAt: 1500 + d }],
      journal: [incident, plan],
      starts: [{ vm: 'vm-a', host: 'h2', at: 1000 + d + RECOVERY_MARGIN_MS + 1000 }],
      runningAtEnd: new Map([['vm-a', 'h2']]),
    });
    expect(late.violations.map((v) => v.check)).toEqual(['late-recovery']);
    // The same with a device that takes 2 s from its off to the power cut: within the bound, which adds the device's time.
    const slowDevice = judge({
      ...base,
      story: { ...base.story, fence: { ...base.story.fence, offMs: 2_000 } },
      episodes: [{ ...episode, fencedAt: 1500 + d }],
      journal: [incident, plan],
      starts: [{ vm: 'vm-a', host: 'h2', at: 1000 + d + RECOVERY_MARGIN_MS + 1000 }],
      runningAtEnd: new Map([['vm-a', 'h2']]),
    });
    expect(slowDevice.violations).toEqual([]);
    // Fenced, its protected VM never started again.
    const never = judge({ ...base, episodes: [{ ...episode, fencedAt: 1500 + d }], journal: [incident, plan] });
    expect(never.violations.map((v) => v.check)).toEqual(['missed-recovery']);
    // A second plan for the incident while the first was not cancelled.
    const second = { ...plan, seq: 4, plan: 'p2' };
    expect(judge({ ...base, journal: [incident, plan, second] }).violations.map((v) => v.check)).toEqual(['action-twice']);
  });
});

/** The first story (by seed from 1) that `want` accepts: bounded, and says so when none is found. */
function findStory(want: (s: Story) => boolean): Story {
  for (let seed = 1; seed <= 2000; seed++) {
    const s = generateStory(seed);
    if (want(s)) return s;
  }
  throw new Error('no story among seeds 1..2000 has what the test needs');
}

/** What a played story did, in order: every fence, start, journal record (timestamps are the injected clock's). */
function trace(w: WorldRecord) {
  return { fences: w.fences, starts: w.starts, journal: w.journal, episodes: w.episodes, violations: w.violations };
}
