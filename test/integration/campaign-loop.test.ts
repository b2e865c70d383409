/**
 * The safety campaign's stories through the whole real loop: the simulator (HA off, the real
 * xenha-heartbeat on every host), the exporter, real Prometheus with the repository's alert rules, real
 * Alertmanager with deploy/alertmanager.yml, the remediation service in enforce mode, Debian's real
 * fence_dummy powering the simulated hosts. Nothing here posts to the webhook: every notification is
 * Alertmanager's. One loop for the whole file; the stories run one after another on it.
 *
 * Each story is drawn with campaign/story.ts's generateStory(seed) for a fixed seed (SEEDS) and mapped
 * onto the loop's 8-host pool: only its fault events are played, through the simulator's own API
 * (applyFault); its story host-01 (the story's master) is the loop's master at the story's start and its
 * host-0k the loop's k-1-th other host, in order (after a master death the loop's master is another
 * host). Story time is scaled so that the story's dead-after maps onto the loop's 3 s:
 * t_loop = (t − first event's at) × 3000 / storyDeadAfterMs(story); flap periods and slow-XAPI
 * latencies are scaled the same way (flap periods never under 500 ms, the simulator's two ticks).
 *
 * What is not played, and why: the story's pool (the loop's is fixed: 8 hosts, HA off, so the HA-on
 * gate is never met here), its `restart-service` events (the in-process service of the loop cannot be
 * killed and restarted on its journal without a second service — remediation-crash.test.ts covers
 * that), its fence device behaviour (fence_dummy always works) and its Alertmanager disturbances
 * (the real Alertmanager sends what it sends). Every kind of STORY_KINDS is a set of simulator faults
 * and is played: the seeds below cover each of the 12 at least once. Seeds whose story pool has more
 * than 8 hosts are not used (their host names do not exist on the loop).
 *
 * The ground truth is read from outside the code under test: the simulator's pool runtime and event
 * log. Life (a host up and any path up: `isUp(h) && (anyNetwork(h) || anyStorage(h))`, the campaign's
 * definition) is sampled by the test itself — at every simulator tick (the instants its path events are
 * logged), at every simulator event, just before and after each fault the test applies, and every 20 ms
 * by a poll of its own — and death episodes (no life on any path) are derived from those samples.
 * A host's life counts once it could be seen: a host that boots (healed from a crash, powered on) is
 * up for the simulator from its boot's end, but nothing of it can be seen before the simulator's next
 * tick opens its listeners and starts its heartbeat daemon, so its life counts from the first tick it
 * is up at (flaps and faults are seen at once: the heartbeat relay and the listeners follow them).
 * The instant a fence was sent is logged by a wrapper around fence_dummy (its first line, before the
 * real agent runs), outside the service.
 * Checks per story:
 *  1. no power-off of a host that showed life within dead-after (3 s) before the off was sent; life
 *     that began within the service's last look before the send (LOOK_MS) or while fence_dummy ran is
 *     printed, not counted: no fencer can see it (a crashed host booting just as its fence goes out);
 *  2. every host dead on both paths for longer than dead-after + 10 s whose death no gate holds back is
 *     powered off, and its protected VMs (ha_restart_priority restart, running on it at the death, not
 *     on local storage) run again on a live host by the story's end — and so do those of every host
 *     that was powered off in the story, however short its death. The gates that may hold a death back:
 *     observer isolation during it (from the simulator's fault log); several deaths beyond quorum, when
 *     the service's incidents API says it refused with gate `quorum` and the ground truth backs it (more
 *     than half the hosts without life and not powered off at the refusal). The recovery time (death →
 *     last protected VM running) is printed per story;
 *  3. no VM started while its domain still runs on the host it was on (that host powered on and up,
 *     and not crashed, powered off or rebooted since the VM started there), and each VM started at most
 *     once per death of the host it was on;
 *  4. each host powered off at most once per death.
 * A story ends once its faults are played and every host without life is either recovered (powered off,
 * its protected VMs running again), held back by a gate, or dead for longer than dead-after + 10 s;
 * then everything is healed, fenced hosts are powered on through their power files (as a BMC would),
 * and the test waits until every host is healthy again in the exporter, the service and Prometheus.
 *
 * Timing as test/integration/loop-e2e.test.ts (heartbeat 250 ms, sample interval 250 ms, dead-after
 * 3 s, flap window 5 s, quiet period 1 s, Prometheus resending every second), plus: start_delay 0 on
 * every VM (the recovery time is xenha's, not the plan's waits); a 1 s boot (the simulator's 3 s boot
 * scaled as the stories' time is: ≤ 1.8 s for every story dead-after ≥ 5 s); a 1 s fence cooldown and
 * no storm window (the loop's pool is fenced many times over the file; a second fence of one death is
 * what check 4 watches for, not the cooldown). Loopback only, free ports, the loop stopped in afterAll
 * even when a test fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { generateStory, STORY_KINDS, storyDeadAfterMs, type Story, type StoryKind } from '../../campaign/story.ts';
import { routeLibraryLogs } from '../../io/library-logs.ts';
import { FENCE_DUMMY, type RunningLoop } from '../../loop/loop.ts';
import { applyFault, type FaultRequest } from '../../simulator/faults.ts';
import { generatePoolSpec, type PoolSpec } from '../../simulator/pool-spec.ts';
import type { HostRuntime, SimEvent } from '../../simulator/pool.ts';
import { getJson, loopAllHealthy, requireLoopBinaries, startFastLoop } from '../helpers/loop.ts';
import { waitFor } from '../helpers/wait.ts';

const DEAD_AFTER_MS = 3_000;
const HOSTS = 8;
/** A death this much longer than dead-after must have been acted on (check 2). */
const OBLIGATION_MS = DEAD_AFTER_MS + 10_000;
/** After its last fault, a story is watched at least this long (a false fence would come within it). */
const WATCH_AFTER_LAST_MS = 1_500;
/** After its first fault, at least this long: dead-after, a scrape, an evaluation, the webhook, the re-check. */
const WATCH_AFTER_FIRST_MS = DEAD_AFTER_MS + 3_000;
const LIFE_POLL_MS = 20;
/**
 * The service's last look at a host before it sends an off (a round of its sampler right before, then
 * the agent's start) takes at most this long: life that began within it before the off was sent, after
 * a death, could be seen by no fencer (twice the sample interval, for a loaded machine).
 */
const LOOK_MS = 500;
/** fence_dummy writes its power file at once: an off logged longer before the power-off is a broken log (the check would lose its point). */
const SEND_TO_OFF_MAX_MS = 10_000;
const QUORUM_FRACTION = 0.5;

/**
 * The stories, by seed: every one's pool has at most 8 hosts. Chosen so that every kind of
 * STORY_KINDS is played at least once (the kinds are printed, and checked below). When this file was
 * written, seed 20 failed on the real loop (a second death refused `storm-concurrent` while the first
 * host's fence ran, never fenced within dead-after + 10 s) and seed 5 after it (its first victim never
 * reached the service as an incident): left in, as findings.
 */
const SEEDS = [17, 16, 62, 14, 37, 10, 13, 22, 31, 1, 15, 82, 47, 72, 7, 20, 5, 2, 59, 63, 34];

let loop: RunningLoop;
let restoreLogs: (() => void) | undefined;
/** The wrapper's directory: the script and its log of the actions asked. */
let agentDir: string | undefined;

/**
 * fence_dummy behind a shell wrapper whose first line logs the instant an action was asked (ms since
 * the epoch, GNU date), the action and the power file, before the real agent runs with the same input
 * and answers for the wrapper: the instant a fence was sent, seen from outside the service.
 */
function loggedFenceDummy(dir: string): string {
  const script = join(dir, 'fence_dummy_logged');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      't=$(date +%s%3N)',
      'input=$(cat)',
      "action=$(printf '%s\\n' \"$input\" | sed -n 's/^action=//p')",
      "file=$(printf '%s\\n' \"$input\" | sed -n 's/^status_file=//p')",
      `printf '%s %s %s\\n' "$t" "$action" "$file" >> '${join(dir, 'actions.log')}'`,
      `printf '%s\\n' "$input" | ${FENCE_DUMMY}`,
      '',
    ].join('\n'),
  );
  chmodSync(script, 0o755);
  return script;
}

/** When the latest `off` for `host` was sent at or before `at` (from the wrapper's log), if any was. */
function offSentAt(host: string, at: number): number | undefined {
  const file = loop.sim.info().hosts.find((h) => h.name === host)?.powerFile;
  let log: string;
  try {
    log = readFileSync(join(agentDir!, 'actions.log'), 'utf8');
  } catch {
    return undefined; // no action asked yet
  }
  let latest: number | undefined;
  for (const line of log.split('\n')) {
    const [t, action, f] = line.split(' ');
    const ms = Number(t);
    if (action === 'off' && f === file && ms <= at && (latest === undefined || ms > latest)) latest = ms;
  }
  return latest;
}

function spec(): PoolSpec {
  const s = generatePoolSpec({ hosts: HOSTS, vms: 32, seed: 21 });
  return { ...s, vms: s.vms.map((v) => ({ ...v, startDelay: 0 })) };
}

// ------------------------------------------------------------------ the ground truth, sampled by the test

const pool = () => loop.sim.pool;
const db = () => pool().built.db;
const hostNamed = (name: string) => pool().host(name);
const alive = (h: HostRuntime, now = Date.now()) => pool().isUp(h, now) && (pool().anyNetwork(h, now) || pool().anyStorage(h, now));

interface Episode {
  id: number;
  host: string;
  /** The first sample without life. */
  from: number;
  /** The first sample with life again, or null. */
  to: number | null;
  /** The host was the master at the death. */
  wasMaster: boolean;
  /** Protected VMs running on it (in the database) at the death, not on local storage. */
  protectedVms: string[];
  /** Power-offs (ms) during the episode. */
  offs: number[];
}

interface Violation {
  at: number;
  check: string;
  detail: string;
}

/** What the test records from the simulator for the whole file. */
class Truth {
  /** Per host, the spans [from, to] of consecutive samples with life. */
  readonly lifeSpans = new Map<string, { from: number; to: number }[]>();
  /** Per host, the boot (bootedAt) seen up at a simulator tick: only then can its life be seen. */
  readonly seenBoot = new Map<string, number>();
  /** Worth printing, not violations (a host that came back while its fence ran). */
  readonly notes: { at: number; text: string }[] = [];
  readonly episodes: Episode[] = [];
  readonly open = new Map<string, Episode>();
  readonly violations: Violation[] = [];
  /** VM name → the host its domain runs on (null: none), from the database at the start and the event log after. */
  readonly domain = new Map<string, string | null>();
  /** VM name → the host it last ran on (its "previous host" at its next start). */
  readonly lastHost = new Map<string, string>();
  /** (vm, previous host, that host's death episode) → starts. */
  readonly startsPerDeath = new Map<string, number>();
  /** (host, boot) → power-offs. */
  readonly offsPerBoot = new Map<string, number>();
  private nextId = 1;

  constructor() {
    const now = Date.now();
    for (const h of pool().hosts) {
      this.lifeSpans.set(h.built.name, [{ from: now, to: now }]);
      this.seenBoot.set(h.built.name, h.bootedAt);
    }
    for (const [, vm] of db().all('VM')) {
      if (vm.is_control_domain) continue;
      const h = pool().hostByRef(vm.resident_on as string);
      const name = vm.name_label as string;
      this.domain.set(name, vm.power_state === 'Running' && h ? h.built.name : null);
      if (h) this.lastHost.set(name, h.built.name);
    }
  }

  /** A simulator tick: the listeners and heartbeat daemons of a host up now follow it (a boot is seen). */
  tick(now: number): void {
    for (const h of pool().hosts) if (pool().isUp(h, now)) this.seenBoot.set(h.built.name, h.bootedAt);
    this.sample(now);
  }

  sample(now = Date.now()): void {
    for (const h of pool().hosts) {
      const name = h.built.name;
      if (alive(h, now) && this.seenBoot.get(name) === h.bootedAt) {
        const spans = this.lifeSpans.get(name)!;
        const ep = this.open.get(name);
        if (ep) {
          ep.to = now;
          this.open.delete(name);
          spans.push({ from: now, to: now });
        } else spans.at(-1)!.to = now;
      } else if (!this.open.has(name)) {
        const ep: Episode = {
          id: this.nextId++,
          host: name,
          from: now,
          to: null,
          wasMaster: pool().master === h,
          protectedVms: protectedRunningOn(name),
          offs: [],
        };
        this.open.set(name, ep);
        this.episodes.push(ep);
      }
    }
  }

  /** The spans of `host`'s life that overlap [from, to]. */
  lifeWithin(host: string, from: number, to: number): { from: number; to: number }[] {
    return this.lifeSpans.get(host)!.filter((x) => x.to >= from && x.from <= to);
  }

  /** The death episode of `host` covering `at` (or the latest one before it). */
  episodeAt(host: string, at: number): Episode | undefined {
    return this.episodes.filter((e) => e.host === host && e.from <= at).at(-1);
  }

  onEvent(e: SimEvent): void {
    if (e.kind === 'power' && e.detail.state === 'off' && e.host) {
      // Check 1, against the instant the off was sent (fence_dummy takes its time): no life within
      // dead-after before it, except life that began within the service's last look (LOOK_MS).
      const logged = offSentAt(e.host, e.atMs);
      if (logged !== undefined && e.atMs - logged > SEND_TO_OFF_MAX_MS)
        this.violations.push({
          at: e.atMs,
          check: '1 wrapper log',
          detail: `the off logged ${e.atMs - logged} ms before ${e.host}'s power-off`,
        });
      const sent = logged ?? e.atMs;
      const spans = this.lifeWithin(e.host, sent - DEAD_AFTER_MS, sent);
      const seeable = spans.filter((x) => x.from <= sent - LOOK_MS).at(-1);
      if (seeable)
        this.violations.push({
          at: e.atMs,
          check: '1 false fence',
          detail:
            `${e.host} powered off, the off sent ${e.atMs - sent} ms before (${logged === undefined ? 'no send logged: at the power-off' : 'logged by the wrapper'}), ` +
            `${sent - Math.min(seeable.to, sent)} ms after it last showed life on a path (dead-after ${DEAD_AFTER_MS} ms)`,
        });
      else if (this.lifeWithin(e.host, sent - LOOK_MS, e.atMs).length > 0)
        this.notes.push({
          at: e.atMs,
          text: `${e.host} came back within the last look before its off was sent or while fence_dummy ran (${e.atMs - sent} ms): powered off once back`,
        });
      const h = hostNamed(e.host);
      const key = `${e.host}/${h.bootedAt}`;
      this.offsPerBoot.set(key, (this.offsPerBoot.get(key) ?? 0) + 1);
      if (this.offsPerBoot.get(key)! > 1)
        this.violations.push({ at: e.atMs, check: '4 power-off twice', detail: `${e.host} powered off twice in one boot` });
      this.sample(e.atMs);
      const ep = this.open.get(e.host);
      if (ep) {
        ep.offs.push(e.atMs);
        if (ep.offs.length > 1)
          this.violations.push({
            at: e.atMs,
            check: '4 power-off twice',
            detail: `${e.host} powered off ${ep.offs.length} times in one death`,
          });
      }
      this.killDomains(e.host);
      return;
    }
    if (e.kind === 'fault' && (e.detail.fault === 'host-crash' || e.detail.fault === 'master-crash') && e.host) this.killDomains(e.host);
    if (e.kind === 'vm' && typeof e.detail.vm === 'string' && e.host) {
      const vm = e.detail.vm;
      if (e.detail.action === 'start') {
        const runsOn = this.domain.get(vm) ?? null;
        const runsHost = runsOn === null ? undefined : hostNamed(runsOn);
        // Check 3: its domain still runs where it was (that host on and up, never crashed, off or rebooted since).
        if (runsHost && pool().isUp(runsHost, e.atMs))
          this.violations.push({
            at: e.atMs,
            check: '3 VM on two hosts',
            detail: `${vm} started on ${e.host} while it still runs on ${runsOn} (powered ${runsHost.power}, up)`,
          });
        const prev = this.lastHost.get(vm) ?? '?';
        const ep = this.episodeAt(prev, e.atMs);
        const key = `${vm}/${prev}/${ep?.id ?? 'alive'}`;
        this.startsPerDeath.set(key, (this.startsPerDeath.get(key) ?? 0) + 1);
        if (this.startsPerDeath.get(key)! > 1)
          this.violations.push({
            at: e.atMs,
            check: '3 VM started twice',
            detail: `${vm} started ${this.startsPerDeath.get(key)} times for one death of ${prev}`,
          });
        this.domain.set(vm, e.host);
        this.lastHost.set(vm, e.host);
      } else if (this.domain.get(vm) === e.host) this.domain.set(vm, null);
    }
    this.sample(e.atMs);
  }

  private killDomains(host: string): void {
    for (const [vm, h] of this.domain) if (h === host) this.domain.set(vm, null);
  }
}

let truth: Truth;

/** The protected (restart) VMs the database says run on a host, not on local storage (another host can start them). */
function protectedRunningOn(host: string): string[] {
  const ref = hostNamed(host).built.ref;
  const rec = (cls: string, r: unknown) => db().peek(cls, r as string) as Record<string, unknown>;
  return db()
    .all('VM')
    .filter(([, v]) => v.resident_on === ref && !v.is_control_domain && v.power_state === 'Running' && v.ha_restart_priority === 'restart')
    .filter(
      ([, v]) =>
        !(v.VBDs as string[]).some((vbd) => {
          const vdi = rec('VBD', vbd).VDI;
          return vdi !== 'OpaqueRef:NULL' && rec('SR', rec('VDI', vdi).SR).shared === false;
        }),
    )
    .map(([, v]) => v.name_label as string);
}

/** Where the database says a VM runs now, if Running on a host that is up. */
function runningOnLiveHost(vm: string): string | undefined {
  const rec = db()
    .all('VM')
    .find(([, r]) => r.name_label === vm)?.[1];
  if (!rec || rec.power_state !== 'Running') return undefined;
  const h = pool().hostByRef(rec.resident_on as string);
  return h && pool().isUp(h) ? h.built.name : undefined;
}

// ------------------------------------------------------------------ the loop

beforeAll(async () => {
  requireLoopBinaries();
  restoreLogs = routeLibraryLogs(pino({ level: 'silent' }));
  agentDir = mkdtempSync(join(tmpdir(), 'xenha-campaign-loop-'));
  loop = await startFastLoop(DEAD_AFTER_MS, {
    fenceAgent: loggedFenceDummy(agentDir),
    addressBase: '127.0.124.1',
    spec: spec(),
    simTiming: { bootMs: 1_000 },
    remediation: { fencePolicy: { cooldown: '1s', maxFencesInWindow: 1000 } },
    // deploy/alertmanager.yml's xenha route timing scaled down: repeat_interval 5m → 30s as the stories'
    // time is (their dead-after 30 s → the loop's 3 s); group_interval 1m → 2s, shorter than that scale
    // (6s), because healAll waits for Alertmanager's resolved notifications after every story, up to
    // one group_interval. With the unscaled minute, a host dying again within a minute of its last
    // death's notification joins that group and is sent only at its next flush — after this file's
    // dead-after + 10 s (see the header).
    alertmanagerRoute: { groupInterval: '2s', repeatInterval: '30s' },
  });
  await allHealthy();
  truth = new Truth();
  pool().on('event', (e: SimEvent) => truth.onEvent(e));
  pool().on('tick', (now: number) => truth.tick(now));
}, 120_000);

afterAll(async () => {
  try {
    await loop?.stop();
  } finally {
    restoreLogs?.();
    if (agentDir) rmSync(agentDir, { recursive: true, force: true });
  }
});

/** Every host healthy on both paths' evidence in the exporter's and the service's view, its heartbeat slot written, Prometheus agreeing. */
const allHealthy = () => loopAllHealthy(loop, { evidenceMs: 40_000, prometheusMs: 20_000, prometheusPollMs: 200 });

interface IncidentView {
  host: string;
  hostName: string;
  openedAt: string;
  refusals: { at: string; gate: string; reason: string }[];
  resolvedAt: string | null;
}
const incidents = async () => (await getJson<{ incidents: IncidentView[] }>(`${loop.urls.remediation}/api/v1/incidents`)).incidents;
const runningPlans = async () =>
  (await getJson<{ plans: { id: string; state: string }[] }>(loop.urls.plans)).plans.filter((p) => p.state === 'running');

/** The service's incidents and plans since `start`, for a failure's message (never for a verdict). */
async function serviceView(start: number): Promise<string> {
  interface PlanView {
    hostName: string;
    state: string;
    stateReason: string;
    createdAt: string;
    refused: unknown[];
    unplaced: unknown[];
    steps: { step: { kind: string; vm?: string; host?: string }; state: string; outcome: string | null; detail: string }[];
  }
  const plans = (await getJson<{ plans: PlanView[] }>(loop.urls.plans)).plans.filter((p) => Date.parse(p.createdAt) >= start);
  const incs = (await incidents()).filter(
    (i) => Date.parse(i.openedAt) >= start || i.resolvedAt === null || Date.parse(i.resolvedAt) >= start,
  );
  return JSON.stringify({
    incidents: incs,
    plans: plans.map((p) => ({
      host: p.hostName,
      state: p.state,
      reason: p.stateReason,
      refused: p.refused,
      unplaced: p.unplaced,
      steps: p.steps
        .filter((x) => x.step.kind !== 'wait')
        .map((x) => `${x.step.kind} ${x.step.vm ?? x.step.host ?? ''}: ${x.state} ${x.outcome ?? ''} ${x.detail}`.slice(0, 200)),
    })),
  }).slice(0, 6000);
}

/**
 * Heals every fault, powers every powered-off host on through its power file as a BMC would, waits
 * until all are healthy and until the service has heard Alertmanager resolve every incident. The last
 * wait is for the next story: Alertmanager sends a group only when its alerts changed since the last
 * notification, so a host-dead alert that resolves and fires again within one group_interval (a host
 * healed here and killed again at the start of the next story) looks unchanged to it and goes out
 * only at repeat_interval, after the story.
 */
async function healAll(): Promise<void> {
  applyFault(pool(), { kind: 'heal' });
  for (const h of loop.sim.info().hosts) if (hostNamed(h.name).power === 'off') writeFileSync(h.powerFile, 'on');
  pool().pollPowerFiles();
  await waitFor('every host up', () => pool().hosts.every((h) => pool().isUp(h)), { timeoutMs: 20_000 });
  await allHealthy();
  await waitFor(
    "every incident resolved by Alertmanager's notification",
    async () => (await incidents()).every((i) => i.resolvedAt !== null),
    // group_interval (2 s) after Prometheus resolves the alert (its evaluation and resend, 1 s each), with room.
    { timeoutMs: 30_000, intervalMs: 250 },
  );
}

// ------------------------------------------------------------------ a story on the loop

interface Played {
  at: number;
  fault: FaultRequest;
}

/** The story's faults on the loop: host names mapped, times, flap periods and latencies scaled. */
function mapStory(story: Story): Played[] {
  if (story.pool.hosts > HOSTS) throw new Error(`seed ${story.seed}: its pool has ${story.pool.hosts} hosts, the loop's ${HOSTS}`);
  const d = storyDeadAfterMs(story);
  const scale = (ms: number) => Math.round((ms * DEAD_AFTER_MS) / d);
  const master = pool().master.built.name;
  const others = pool()
    .hosts.map((h) => h.built.name)
    .filter((n) => n !== master);
  const names = new Map<string, string>([['host-01', master]]);
  for (let i = 1; i < story.pool.hosts; i++) names.set(`host-${String(i + 1).padStart(2, '0')}`, others[i - 1]!);
  const host = (n: string) => {
    const m = names.get(n);
    if (!m) throw new Error(`seed ${story.seed}: no loop host for ${n}`);
    return m;
  };
  const faults = story.events.flatMap((e) => (e.kind === 'fault' ? [e] : []));
  const t0 = faults[0]?.at ?? 0;
  return faults.map((e): Played => {
    const f = e.fault;
    const at = scale(e.at - t0);
    switch (f.kind) {
      case 'host-crash':
      case 'network-down':
      case 'storage-down':
        return { at, fault: { ...f, host: host(f.host) } };
      case 'flap':
        return { at, fault: { ...f, host: host(f.host), periodMs: Math.max(500, scale(f.periodMs)) } };
      case 'slow-xapi':
        return { at, fault: { ...f, ...(f.host !== undefined && { host: host(f.host) }), latencyMs: scale(f.latencyMs) } };
      case 'heal':
        return { at, fault: f.host === undefined ? { kind: 'heal' } : { kind: 'heal', host: host(f.host) } };
      case 'master-crash':
      case 'observer-isolation':
        return { at, fault: f };
    }
  });
}

/** Intervals (ms) the simulator's observer was isolated, from its fault log since `seq`. */
function isolationIntervals(events: SimEvent[], end: number): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  let from: number | null = null;
  for (const e of events) {
    if (e.kind === 'fault' && e.detail.fault === 'observer-isolation' && from === null) from = e.atMs;
    if (e.kind === 'heal' && e.host === undefined && from !== null) {
      out.push({ from, to: e.atMs });
      from = null;
    }
  }
  if (from !== null) out.push({ from, to: end });
  return out;
}

/** The longest part of [from, to] outside every isolation interval. */
function longestUnisolated(from: number, to: number, iso: { from: number; to: number }[]): number {
  let longest = 0;
  let cur = from;
  for (const i of [...iso].sort((a, b) => a.from - b.from)) {
    if (i.to <= cur) continue;
    if (i.from >= to) break;
    longest = Math.max(longest, Math.min(i.from, to) - cur);
    cur = Math.max(cur, i.to);
  }
  return Math.max(longest, to - cur);
}

/** Hosts without life and not powered off at `at`, by the ground truth. */
function lookingDeadAt(at: number): number {
  return truth.episodes.filter((e) => e.from <= at && (e.to === null || e.to > at) && !e.offs.some((o) => o <= at)).length;
}

interface StoryOutcome {
  violations: string[];
  lines: string[];
}

async function playOnLoop(seed: number): Promise<StoryOutcome> {
  const story = generateStory(seed);
  const played = mapStory(story);
  const seq0 = pool().eventLog().at(-1)?.seq ?? 0;
  const start = Date.now();
  const episodes0 = truth.episodes.length;
  const violations0 = truth.violations.length;
  const notes0 = truth.notes.length;
  const poll = setInterval(() => truth.sample(), LIFE_POLL_MS);
  const lines: string[] = [];
  const violations: string[] = [];
  let quorumRefused = new Map<string, { at: number; reason: string }>();
  try {
    // The faults, each at its scaled time (a schedule, not a synchronisation: the story says when).
    for (const p of played) {
      const wait = start + p.at - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      truth.sample();
      applyFault(pool(), p.fault);
      truth.sample();
    }
    const lastAt = played.at(-1)?.at ?? 0;
    const storyEps = () => truth.episodes.slice(episodes0);
    const recovered = (ep: Episode) =>
      ep.protectedVms.every((vm) => runningOnLiveHost(vm) !== undefined && runningOnLiveHost(vm) !== ep.host);
    let lastIncidentsAt = 0;
    await waitFor(
      `seed ${seed}: every host without life recovered, held back by a gate, or dead past dead-after + 10 s`,
      async () => {
        const now = Date.now();
        if (now < start + lastAt + WATCH_AFTER_LAST_MS || now < start + WATCH_AFTER_FIRST_MS) return false;
        if (now - lastIncidentsAt >= 500) {
          lastIncidentsAt = now;
          quorumRefused = new Map();
          for (const i of await incidents())
            for (const r of i.refusals)
              if (r.gate === 'quorum' && Date.parse(r.at) >= start)
                quorumRefused.set(i.hostName, { at: Date.parse(r.at), reason: r.reason });
        }
        for (const ep of storyEps()) {
          if (ep.to !== null) continue;
          if (ep.offs.length > 0) {
            if (!recovered(ep)) return false;
            continue;
          }
          if (pool().observerIsolated || quorumRefused.has(ep.host)) continue;
          if (now - ep.from <= OBLIGATION_MS + 1_000) return false;
        }
        return (await runningPlans()).length === 0;
      },
      { timeoutMs: lastAt + OBLIGATION_MS + 30_000, intervalMs: 100 },
    ).catch((e: Error) => violations.push(`the story did not settle: ${e.message}`));
    const end = Date.now();
    const events = pool().eventLog(seq0);
    const iso = isolationIntervals(events, end);
    // Check 2, and the recovery times.
    for (const ep of storyEps()) {
      const to = ep.to ?? end;
      const gatedByQuorum = ep.offs.length === 0 && quorumRefused.get(ep.host);
      if (gatedByQuorum) {
        const dead = lookingDeadAt(gatedByQuorum.at);
        lines.push(`  ${ep.host}: refused by quorum (${gatedByQuorum.reason}); ground truth ${dead} of ${HOSTS} without life`);
        if (!(dead / HOSTS > QUORUM_FRACTION))
          violations.push(
            `2 unjustified quorum refusal: ${ep.host} refused at ${gatedByQuorum.at - start} ms while only ${dead} of ${HOSTS} hosts were without life`,
          );
        continue;
      }
      const obliged = longestUnisolated(ep.from, to, iso) > OBLIGATION_MS;
      if (obliged && ep.offs.length === 0)
        violations.push(
          `2 missed fence: ${ep.host} dead on both paths from ${ep.from - start} ms for ${to - ep.from} ms (not isolated for ${longestUnisolated(ep.from, to, iso)} ms), never powered off; ` +
            `the service's incidents for it: ${JSON.stringify((await incidents()).filter((i) => i.hostName === ep.host && Date.parse(i.openedAt) >= start))}`,
        );
      if (obliged || ep.offs.length > 0) {
        const missing = ep.protectedVms.filter((vm) => {
          const on = runningOnLiveHost(vm);
          return on === undefined || on === ep.host;
        });
        if (missing.length > 0)
          violations.push(
            `2 missed recovery: ${ep.host}'s protected VMs ${missing.join(', ')} not running on a live host at the story's end`,
          );
        const starts = events.filter(
          (e) => e.kind === 'vm' && e.detail.action === 'start' && ep.protectedVms.includes(e.detail.vm as string) && e.atMs >= ep.from,
        );
        const last = Math.max(ep.from, ...starts.map((e) => e.atMs));
        lines.push(
          `  ${ep.host}${ep.wasMaster ? ' (master)' : ''}: dead at ${ep.from - start} ms, powered off ${ep.offs.map((o) => `${o - ep.from} ms`).join(', ') || 'never'} after, ` +
            `${ep.protectedVms.length} protected VM(s), recovery ${((last - ep.from) / 1000).toFixed(2)} s (death → last protected VM running)`,
        );
      } else lines.push(`  ${ep.host}: without life ${ep.from - start}..${to - start} ms, not powered off`);
    }
    // Power-offs of hosts that showed no death episode at all would be a false fence too (check 1 catches them at the instant).
  } finally {
    clearInterval(poll);
  }
  violations.push(...truth.violations.slice(violations0).map((v) => `${v.check}: ${v.detail} (at ${v.at - start} ms)`));
  lines.push(...truth.notes.slice(notes0).map((n) => `  ${n.text} (at ${n.at - start} ms)`));
  if (violations.length > 0) violations.push(`what the service did: ${await serviceView(start)}`);
  await healAll();
  return { violations, lines };
}

// ------------------------------------------------------------------ the stories

describe('campaign stories through the whole loop: simulator, exporter, Prometheus, Alertmanager, remediation, fence_dummy', () => {
  it('the seeds cover every story kind', () => {
    const covered = new Set<StoryKind>(SEEDS.flatMap((s) => generateStory(s).kinds));
    expect(
      STORY_KINDS.filter((k) => !covered.has(k)),
      'kinds no seed plays',
    ).toEqual([]);
    expect(SEEDS.length).toBeGreaterThanOrEqual(20);
    for (const s of SEEDS) expect(generateStory(s).pool.hosts, `seed ${s}: story pool size`).toBeLessThanOrEqual(HOSTS);
  });

  for (const seed of SEEDS) {
    it(`story ${seed}`, async () => {
      const story = generateStory(seed);
      const t = performance.now();
      const { violations, lines } = await playOnLoop(seed);
      process.stdout.write(
        `campaign loop: seed ${seed} [${story.kinds.join(', ')}] (story dead-after ${storyDeadAfterMs(story) / 1000} s, ${story.events.filter((e) => e.kind === 'fault').length} faults) ` +
          `${((performance.now() - t) / 1000).toFixed(1)} s${violations.length ? ' VIOLATIONS' : ''}\n${lines.join('\n')}${lines.length ? '\n' : ''}`,
      );
      expect(violations, `seed ${seed}: ${JSON.stringify(story.events)}`).toEqual([]);
    }, 90_000);
  }

  it('check 1 fails on a power-off of a live host (the wrapper run by hand on one)', async () => {
    const victim = pool().hosts.find((h) => h !== pool().master && pool().isUp(h))!.built.name;
    const powerFile = loop.sim.info().hosts.find((h) => h.name === victim)!.powerFile;
    const before = truth.violations.length;
    const run = spawnSync(join(agentDir!, 'fence_dummy_logged'), {
      input: `action=off\ntype=file\nstatus_file=${powerFile}\n`,
      timeout: 10_000,
    });
    expect(run.status, String(run.stderr)).toBe(0);
    await waitFor(`${victim} powered off`, () => hostNamed(victim).power === 'off', { timeoutMs: 5_000 });
    const found = truth.violations.splice(before).map((v) => `${v.check}: ${v.detail}`);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(new RegExp(`^1 false fence: ${victim} powered off, the off sent \\d+ ms before \\(logged by the wrapper\\)`));
    await healAll();
  }, 60_000);
});
