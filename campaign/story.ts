/**
 * A story: one random pool, its timing, and the faults that befall it on the campaign's clock — drawn
 * from a seed, so that `xenha campaign --replay` (the seed, or the story's JSON) plays it again exactly.
 * Faults are the simulator's own fault requests (simulator/faults.ts); the rest disturb what xenha
 * does about them: its fence devices, Alertmanager's notifications, the remediation service itself.
 */
import { z } from 'zod';
import { faultRequest } from '../simulator/faults.ts';
import { Rng } from './rng.ts';

export const STORY_KINDS = [
  'host-crash',
  'master-crash',
  'network-cut',
  'storage-cut',
  'both-paths-cut',
  'heal-before-dead-after',
  'flapping',
  'slow-xapi',
  'observer-isolation',
  'several-deaths',
  'death-during-remediation',
  'reboot-before-fence',
] as const;
export type StoryKind = (typeof STORY_KINDS)[number];

const ms = z.number().int().min(0);

export const storyEvent = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('fault'), at: ms, fault: faultRequest }),
  /** The remediation service is killed (SIGKILL: its timers and waits die with it) and started again on its journal. */
  z.strictObject({ kind: z.literal('restart-service'), at: ms }),
]);
export type StoryEvent = z.output<typeof storyEvent>;

export const story = z.strictObject({
  seed: z.number().int(),
  kinds: z.array(z.enum(STORY_KINDS)).min(1),
  pool: z.strictObject({
    hosts: z.number().int().min(2).max(16),
    vms: z.number().int().min(0).max(200),
    haEnabled: z.boolean(),
    haTimeout: z.number().int().min(10).max(120),
    specSeed: z.number().int(),
  }),
  timing: z.strictObject({
    /** The exporter's and the service's deadAfter (null: the pool's HA timeout, or 30 s with HA off). */
    deadAfterMs: ms.nullable(),
    /** The service's own sampler runs this long after the exporter's in each interval. */
    serviceOffsetMs: ms,
    quietPeriodMs: ms,
  }),
  fence: z.strictObject({
    /** What the first-level device (the host's BMC) does. */
    bmc: z.enum(['ok', 'fail', 'hang']),
    /** A second level (a PDU) that works. */
    pdu: z.boolean(),
    /** A hung device call gives up after this long (its agent's own bound). */
    hangMs: ms,
    /**
     * A working device cuts the power this long after its `off` is sent (a BMC's command and the
     * agent's round trip), whatever becomes of the caller meanwhile. 0 in stories written before.
     */
    offMs: ms.default(0),
  }),
  alerting: z.strictObject({
    /** Scrape, rule evaluation and Alertmanager's dispatch: from the exporter's verdict to the webhook. */
    delayMs: ms,
    /** Every notification arrives twice (two Alertmanager replicas). */
    duplicate: z.boolean(),
    /** Added to every notification's delay. */
    lateMs: ms,
    /** A resolved notification of an earlier firing arrives after the next firing (and a stale firing after its resolved). */
    outOfOrder: z.boolean(),
  }),
  events: z.array(storyEvent),
  /** The story ends here (ms of story time). */
  endMs: ms,
});
export type Story = z.output<typeof story>;

/** The dead-after a story's pool runs with (the sampler's deadAfterInForce on the same inputs). */
export function storyDeadAfterMs(s: Pick<Story, 'pool' | 'timing'>): number {
  return s.timing.deadAfterMs ?? (s.pool.haEnabled ? s.pool.haTimeout * 1000 : 30_000);
}

const hostName = (i: number) => `host-${String(i + 1).padStart(2, '0')}`;

/** Draws a story from a seed. The pool's master at the start is host-01 (the simulator's first host). */
export function generateStory(seed: number): Story {
  const r = new Rng(seed);
  const hosts = r.pick([2, 3, 3, 4, 4, 5, 6, 8, 8, 12, 16]);
  const haEnabled = r.chance(0.35);
  const haTimeout = r.pick([10, 15, 20, 30, 30, 45, 60]);
  const deadAfterMs = r.chance(0.5) ? r.pick([5, 8, 10, 15, 20, 30]) * 1000 : null;
  const timing = { deadAfterMs, serviceOffsetMs: r.int(0, 3) * 250, quietPeriodMs: r.pick([5, 10, 30, 60]) * 1000 };
  const pool = { hosts, vms: hosts * r.int(1, 4), haEnabled, haTimeout, specSeed: r.int(1, 2 ** 30) };
  const d = storyDeadAfterMs({ pool, timing });
  // Faults start once the exporter and the service have watched the pool for a while (their quiet period, dead-after).
  const t0 = Math.max(timing.quietPeriodMs, d) + r.int(2, 10) * 1000;
  const names = Array.from({ length: hosts }, (_, i) => hostName(i));
  const slaves = names.slice(1);
  const events: StoryEvent[] = [];
  const fault = (at: number, f: z.input<typeof faultRequest>) => events.push({ kind: 'fault', at, fault: faultRequest.parse(f) });
  const kindCount = r.chance(0.3) ? 2 : 1;
  const kinds = r.sample(STORY_KINDS, kindCount);
  let end = t0;
  for (const kind of kinds) {
    const at = t0 + r.int(0, 2) * 1000 + r.int(0, 3) * 250;
    const host = r.pick(slaves);
    const homes = r.chance(0.5) ? undefined : [r.int(0, 1)];
    switch (kind) {
      case 'host-crash':
        fault(at, { kind: 'host-crash', host });
        break;
      case 'master-crash':
        fault(at, { kind: 'master-crash' });
        break;
      case 'network-cut':
      case 'storage-cut': {
        const path = kind === 'network-cut' ? 'network' : 'storage';
        fault(at, { kind: `${path}-down`, host, ...(homes && { homes }) });
        if (r.chance(0.5)) fault(at + r.int(1, 3) * d, { kind: 'heal', host });
        break;
      }
      case 'both-paths-cut':
        fault(at, { kind: 'network-down', host });
        fault(at + r.int(0, 4) * 250, { kind: 'storage-down', host });
        break;
      case 'heal-before-dead-after': {
        // Both paths lost; one comes back just before dead-after (half a second to three seconds before).
        fault(at, { kind: 'network-down', host });
        fault(at, { kind: 'storage-down', host });
        fault(at + d - r.int(2, 12) * 250, { kind: 'heal', host });
        break;
      }
      case 'flapping': {
        // Periods around the timeouts: a quarter of dead-after to twice it, and the statefile's few seconds.
        const period = Math.max(500, Math.round((r.pick([0.25, 0.5, 0.9, 1, 1.1, 1.5, 2]) * d) / 250) * 250);
        const flapPath = r.pick(['network', 'storage', 'both'] as const);
        for (const p of flapPath === 'both' ? (['network', 'storage'] as const) : [flapPath])
          fault(at, { kind: 'flap', host, path: p, periodMs: period, ...(homes && { homes }) });
        if (flapPath !== 'both' && r.chance(0.5)) fault(at, { kind: `${flapPath === 'network' ? 'storage' : 'network'}-down`, host });
        fault(at + r.int(2, 4) * d, { kind: 'heal', host });
        break;
      }
      case 'slow-xapi':
        fault(at, { kind: 'slow-xapi', latencyMs: r.pick([500, 2000, 5000, 15000]) });
        if (r.chance(0.6)) fault(at + r.int(0, 4) * 1000, { kind: 'host-crash', host });
        // XAPI answers at its usual pace again two to four dead-afters later.
        fault(at + r.int(2, 4) * d, { kind: 'slow-xapi', latencyMs: 0 });
        break;
      case 'observer-isolation':
        fault(at, { kind: 'observer-isolation' });
        if (r.chance(0.5)) fault(at + r.int(0, 4) * 1000, { kind: 'host-crash', host });
        fault(at + r.int(1, 3) * d, { kind: 'heal' });
        break;
      case 'several-deaths': {
        const k = r.int(2, Math.max(2, hosts - 1));
        for (const h of r.sample(names, Math.min(k, hosts - 1)))
          fault(at + r.int(0, 3) * 250, h === names[0] ? { kind: 'master-crash' } : { kind: 'host-crash', host: h });
        break;
      }
      case 'death-during-remediation': {
        fault(at, { kind: 'host-crash', host });
        const second = r.pick(names.filter((n) => n !== host));
        fault(at + d + r.int(0, 8) * 500, second === names[0] ? { kind: 'master-crash' } : { kind: 'host-crash', host: second });
        break;
      }
      case 'reboot-before-fence':
        // Crashed, and back (a new boot) around dead-after.
        fault(at, { kind: 'host-crash', host });
        fault(at + d + r.int(-8, 8) * 250, { kind: 'heal', host });
        break;
    }
    end = Math.max(end, at + 3 * d + 60_000);
  }
  if (r.chance(0.15)) events.push({ kind: 'restart-service', at: t0 + d + r.int(0, 16) * 500 });
  events.sort((a, b) => a.at - b.at);
  const last = Math.max(...events.map((e) => e.at));
  const fence = { bmc: r.pick(['ok', 'ok', 'ok', 'ok', 'fail', 'hang'] as const), pdu: r.chance(0.5), hangMs: 20_000 };
  const alerting = {
    delayMs: r.int(2, 8) * 250,
    duplicate: r.chance(0.2),
    lateMs: r.chance(0.15) ? r.int(1, 10) * 1000 : 0,
    outOfOrder: r.chance(0.15),
  };
  // Drawn last, so that every story drawn before this field existed is drawn the same.
  const offMs = r.int(0, 8) * 125;
  return story.parse({
    seed,
    kinds,
    pool,
    timing,
    fence: { ...fence, offMs },
    alerting,
    events,
    // A bound only: the story ends earlier once everything has settled (world.ts).
    endMs: Math.max(end, last + 2 * d + timing.quietPeriodMs + 600_000),
  });
}
