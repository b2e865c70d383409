/**
 * One story, played: the simulated pool's runtime on the injected clock; xenha's exporter sampler (the
 * real probes through simulated I/O, the real classification); Prometheus' XenhaHostDead rule and
 * Alertmanager's notifications as deploy/ configures them (with the story's disturbances); the real
 * remediation service — intake, journal on disk, its own sampler, re-check, gates, planner, executor,
 * fence levels — killed and restarted on its journal when the story says so. Beside it, the ground
 * truth: when each host last showed life on any path, where each VM's domain really runs, every action
 * the pool saw. The checks (checks.ts) compare the two.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { exporterConfig, type PoolConfig } from '../exporter/config.ts';
import { PoolSampler } from '../exporter/sampler.ts';
import { XapiActions } from '../io/xapi/actions.ts';
import { createProbes } from '../plugins/probes/index.ts';
import { alertmanagerPayload } from '../remediation/alertmanager.ts';
import { remediationSection } from '../remediation/config.ts';
import { Journal } from '../remediation/journal.ts';
import { PoolActions } from '../remediation/pool-actions.ts';
import { Remediator } from '../remediation/remediator.ts';
import { replay } from '../remediation/service.ts';
import type { JournalEntry } from '../remediation/records.ts';
import { applyFault } from '../simulator/faults.ts';
import { defaultTiming, SimulatedPool, type HostRuntime } from '../simulator/pool.ts';
import { generatePoolSpec, poolSpec } from '../simulator/pool-spec.ts';
import { SessionTable } from '../simulator/xapi/sessions.ts';
import { NULL_REF } from '../core/model/xapi-records.ts';
import { VirtualClock } from './clock.ts';
import { HeartbeatModel } from './heartbeat-model.ts';
import { addressBook, simProbeIo, simTransport, SimConnection, SimFenceDevice, type CallHooks, type DeviceHooks } from './sim-io.ts';
import { storyDeadAfterMs, type Story } from './story.ts';

export const CAMPAIGN_POOL = 'campaign';
const PASSWORD = 'campaign';
/** Story time 0 (a fixed date, so that the journal's timestamps and the pool's boot times replay exactly). */
export const STORY_EPOCH = Date.UTC(2026, 10, 1);
/** Alertmanager's repeat_interval and group_interval for the xenha route (deploy/alertmanager.yml). */
const REPEAT_INTERVAL_MS = 5 * 60_000;
const GROUP_INTERVAL_MS = 60_000;
/** Bounds on the work at one instant (a loop that never lets time move is a bug, not a story). */
const MAX_STEPS_AT_ONE_INSTANT = 10_000;
const MAX_SETTLE_TURNS = 100_000;
/** A story ends early once nothing was journaled for this long (see `settled`). */
const QUIET_END_MS = 15_000;

/** A span of time a host showed no life on any path (crashed, powered off, or cut off on both paths). */
export interface DeathEpisode {
  host: string;
  hostName: string;
  /** The first tick without life (ms of story time). */
  from: number;
  /** The tick life came back, or null. */
  to: number | null;
  /** The host was the master when it died. */
  wasMaster: boolean;
  /** The exporter first called it dead. */
  detectedAt: number | null;
  /** A fence device powered it off. */
  fencedAt: number | null;
  /** Protected VMs (ha_restart_priority restart) running on it when it died. */
  protectedVms: string[];
}

export interface FenceRecord {
  host: string;
  hostName: string;
  /** The power cut. */
  at: number;
  /** When the off was sent (the fencer's decision). */
  sentAt: number;
  /** ms since the host last showed life on any path, when the off was sent. */
  lifeAgoMs: number;
  /** The host showed life again between the send and the cut (a boot finishing): no fencer can see that. */
  backBeforeCut: boolean;
  boot: number;
}

export interface Violation {
  check:
    | 'false-fence'
    | 'missed-recovery'
    | 'late-recovery'
    | 'vm-on-two-hosts'
    | 'action-twice'
    | 'restart-before-fence'
    | 'refusal-without-gate'
    | 'error';
  detail: string;
}

export interface WorldRecord {
  story: Story;
  deadAfterMs: number;
  episodes: DeathEpisode[];
  fences: FenceRecord[];
  /** VM uuid → story ms it was started (each successful VM.start_on). */
  starts: { vm: string; host: string; at: number }[];
  violations: Violation[];
  journal: JournalEntry[];
  /** Intervals (story ms) the exporter saw its observer isolated. */
  isolated: { from: number; to: number | null }[];
  notifications: number;
  /** Alerts the webhook's intake refused (no incident): when, for which host, with which gate. */
  intakeRefusals: { at: number; host: string; gate: string | null; reason: string }[];
  protectedVms: Set<string>;
  vmNames: Map<string, string>;
  /** Final state: VM uuid → host uuid where it runs (Running on a live host), else absent. */
  runningAtEnd: Map<string, string>;
  /** VMs not running at the end that some live, enabled host has the free memory for (xapi's own accounting). */
  roomAtEnd: Set<string>;
  /** ms of story time. */
  endMs: number;
  wallMs: number;
}

const silent = pino({ level: 'silent' });

function fingerprint(labels: Record<string, string>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\u00ff');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function scratchDir(): string {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  return mkdtempSync(join(base, 'xenha-campaign-'));
}

interface Incarnation {
  owner: string;
  remediator: Remediator;
  journal: Journal;
  sampler: PoolSampler;
  killed: boolean;
}

/**
 * The checks' own test (test/integration/campaign.test.ts): at `at` ms, something outside xenha does what
 * xenha must never do — a BMC powers off a live host, or a VM running on one host is started on
 * another — through the same edges the checks watch. Never used by a campaign.
 */
export interface Sabotage {
  kind: 'fence-live-host' | 'start-running-vm';
  at: number;
  host: string;
}

export async function playStory(story: Story, sabotage?: Sabotage): Promise<WorldRecord> {
  const wallStart = performance.now();
  const dir = scratchDir();
  const clock = new VirtualClock(STORY_EPOCH);
  const t = () => clock.now() - STORY_EPOCH;
  const violations: Violation[] = [];
  const base = generatePoolSpec({ hosts: story.pool.hosts, vms: story.pool.vms, seed: story.pool.specSeed });
  // Start delays are 0: the recovery time measured is xenha's, not the plan's own waits.
  const spec = poolSpec.parse({
    ...base,
    haEnabled: story.pool.haEnabled,
    haTimeout: story.pool.haTimeout,
    vms: base.vms.map((v) => ({ ...v, startDelay: 0 })),
  });
  const pool = new SimulatedPool({
    spec,
    stateDir: join(dir, 'sim'),
    addressBase: '127.0.120.1',
    timing: defaultTiming(spec.haTimeout, spec.haEnabled),
    now: () => clock.now(),
    pollPowerFiles: false,
  });
  const heartbeat = spec.haEnabled
    ? null
    : new HeartbeatModel(pool, join(dir, 'sim', 'xenha-heartbeat.img'), story.seed, (h, now) => shown(h, now));
  const sessions = new SessionTable(() => clock.now());
  const book = addressBook(pool);
  const probeIo = simProbeIo(pool, book);
  const config: PoolConfig = exporterConfig.parse({
    pools: [
      {
        name: CAMPAIGN_POOL,
        urls: pool.hosts.map((h) => `https://${h.built.addresses[0]}/`),
        user: 'root',
        passwordEnv: 'XENHA_CAMPAIGN_UNUSED',
        probes: {
          'network-tcp': {},
          'network-xapi': {},
          'storage-xapi': {},
          'storage-statefile': { devices: [{ home: '0', path: heartbeat?.file ?? pool.statefilePath }], readMode: 'buffered' },
        },
        timing: story.timing.deadAfterMs === null ? {} : { deadAfter: `${story.timing.deadAfterMs}ms` },
      },
    ],
  }).pools[0]!;
  const section = remediationSection.parse({
    mode: 'enforce',
    journal: join(dir, 'journal.jsonl'),
    tokenEnv: 'XENHA_CAMPAIGN_UNUSED',
    quietPeriod: `${story.timing.quietPeriodMs}ms`,
  });
  const newSampler = () =>
    new PoolSampler(
      config,
      silent,
      () => clock.now(),
      createProbes(config.probes, { log: silent, io: probeIo }),
      new SimConnection(pool, clock, config, silent),
    );
  const exporter = newSampler();
  const deadAfterMs = () => exporter.state.deadAfter.ms;

  // ------------------------------------------------------------------ ground truth
  const lastLife = new Map<HostRuntime, number>();
  /**
   * When each host last *showed* life: alive at an instant the monitor or the service looked, a slot
   * written, a heartbeat a peer heard. A host up for a moment between two looks that wrote and sent
   * nothing showed life to nobody (no monitor can see that; the false-fence check counts from here).
   */
  const lastShown = new Map<HostRuntime, number>();
  const shown = (h: HostRuntime, now: number) => lastShown.set(h, Math.max(lastShown.get(h) ?? -Infinity, now));
  const open = new Map<HostRuntime, DeathEpisode>();
  const episodes: DeathEpisode[] = [];
  const fences: FenceRecord[] = [];
  const starts: WorldRecord['starts'] = [];
  const db = pool.built.db;
  const vmNames = new Map<string, string>();
  const protectedVms = new Set<string>();
  /** VM uuid → hosts whose domain of it really runs. */
  const domains = new Map<string, Set<HostRuntime>>();
  for (const [, vm] of db.all('VM')) {
    if (vm.is_control_domain) continue;
    vmNames.set(vm.uuid as string, vm.name_label as string);
    if (vm.ha_restart_priority === 'restart') protectedVms.add(vm.uuid as string);
    const h = pool.hostByRef(vm.resident_on as string);
    domains.set(vm.uuid as string, new Set(vm.power_state === 'Running' && h ? [h] : []));
  }
  const fenceStartedAt = new Map<HostRuntime, number>();
  const statusOffAt = new Map<HostRuntime, number>();
  const offsPerBoot = new Map<string, number>();
  const resets = new Map<string, number>();
  const alive = (h: HostRuntime, now: number) => pool.isUp(h, now) && (pool.anyNetwork(h, now) || pool.anyStorage(h, now));
  for (const h of pool.hosts) {
    lastLife.set(h, clock.now());
    lastShown.set(h, clock.now());
  }
  const looked = (now: number) => {
    for (const h of pool.hosts) if (alive(h, now)) shown(h, now);
  };

  const observeTruth = (now: number) => {
    for (const h of pool.hosts) {
      // xhad (HA on) writes its slot and sends its heartbeat on its own intervals.
      if (h.lastSlotWrite === now) shown(h, now);
      if (h.lastHbSent === now && pool.hosts.some((p) => p !== h && pool.hears(p, h, now))) shown(h, now);
      if (!pool.isUp(h, now)) for (const set of domains.values()) set.delete(h);
      if (alive(h, now)) {
        lastLife.set(h, now);
        const ep = open.get(h);
        if (ep) {
          ep.to = t();
          open.delete(h);
        }
      } else if (!open.has(h)) {
        const ep: DeathEpisode = {
          host: h.built.uuid,
          hostName: h.built.name,
          from: t(),
          to: null,
          wasMaster: pool.masterRef === h.built.ref,
          detectedAt: null,
          fencedAt: cutWhileAlive.get(h) ?? null,
          protectedVms: [...domains]
            .filter(([vm]) => protectedVms.has(vm))
            .flatMap(([vm, set]) => (set.has(h) || runningOnInDb(vm, h) ? [vm] : [])),
        };
        open.set(h, ep);
        episodes.push(ep);
        cutWhileAlive.delete(h);
      }
    }
  };
  function runningOnInDb(vmUuid: string, h: HostRuntime): boolean {
    const vm = db.peek('VM', db.byUuid('VM', vmUuid));
    return vm.power_state === 'Running' && vm.resident_on === h.built.ref;
  }

  /** A cut that landed on a host back to life: the death it starts counts as fenced at the cut. */
  const cutWhileAlive = new Map<HostRuntime, number>();
  const deviceHooks: DeviceHooks = {
    // The false-fence check is judged when the off is sent, right after the service's last look.
    offSent: (h) => {
      const lifeAgoMs = clock.now() - lastShown.get(h)!;
      if (alive(h, clock.now()) || lifeAgoMs < deadAfterMs())
        violations.push({
          check: 'false-fence',
          detail: `${h.built.name} sent off at ${t()} ms, ${lifeAgoMs} ms after it last showed life (dead-after ${deadAfterMs()} ms; alive now: ${alive(h, clock.now())}, last alive ${clock.now() - lastLife.get(h)!} ms ago)`,
        });
      return { at: clock.now(), lifeAgoMs };
    },
    off: (h, sent) => {
      const backBeforeCut = alive(h, clock.now()) || lastShown.get(h)! > sent.at;
      fences.push({
        host: h.built.uuid,
        hostName: h.built.name,
        at: t(),
        sentAt: sent.at - STORY_EPOCH,
        lifeAgoMs: sent.lifeAgoMs,
        backBeforeCut,
        boot: h.bootedAt,
      });
      const key = `${h.built.uuid}/${h.bootedAt}`;
      offsPerBoot.set(key, (offsPerBoot.get(key) ?? 0) + 1);
      if (offsPerBoot.get(key)! > 1) violations.push({ check: 'action-twice', detail: `${h.built.name} powered off twice in one boot` });
      const ep = open.get(h);
      if (ep && ep.fencedAt === null) ep.fencedAt = t();
      else if (!ep) cutWhileAlive.set(h, t());
    },
    statusOff: (h) => statusOffAt.set(h, clock.now()),
  };
  let resetFrom: string | null = null;
  const callHooks: CallHooks = {
    before: (method, params) => {
      const vmRef = String(params[1]);
      const vm = db.has('VM', vmRef) ? db.peek('VM', vmRef) : undefined;
      if (!vm) return;
      const name = vm.name_label as string;
      if (method === 'VM.power_state_reset') {
        const old = pool.hostByRef(vm.resident_on as string);
        resetFrom = old ? `${old.built.uuid}/${old.bootedAt}` : null;
        if (old && old.power !== 'off')
          violations.push({ check: 'restart-before-fence', detail: `${name} reset at ${t()} ms while ${old.built.name} is powered on` });
        if (old && !((statusOffAt.get(old) ?? -Infinity) >= (fenceStartedAt.get(old) ?? Infinity)))
          violations.push({
            check: 'restart-before-fence',
            detail: `${name} reset at ${t()} ms before a device confirmed ${old.built.name} off`,
          });
      }
      if (method === 'VM.start_on') {
        const running = [...(domains.get(vm.uuid as string) ?? [])].filter((h) => pool.isUp(h));
        if (running.length > 0)
          violations.push({
            check: 'vm-on-two-hosts',
            detail: `${name} started at ${t()} ms while it runs on ${running.map((h) => h.built.name).join(', ')}`,
          });
      }
    },
    after: (method, params) => {
      const vmRef = String(params[1]);
      const vm = db.peek('VM', vmRef);
      const uuid = vm.uuid as string;
      if (method === 'VM.power_state_reset') {
        // Once per death of the host it was on (the key: that host's boot).
        const key = `${uuid}/${resetFrom ?? ''}`;
        resets.set(key, (resets.get(key) ?? 0) + 1);
        if (resets.get(key)! > 1)
          violations.push({ check: 'action-twice', detail: `${vm.name_label as string} reset twice for one death` });
      } else {
        const h = pool.hostByRef(vm.resident_on as string)!;
        domains.get(uuid)?.add(h);
        starts.push({ vm: uuid, host: h.built.uuid, at: t() });
      }
    },
  };

  // ------------------------------------------------------------------ the remediation service
  let current: Incarnation | null = null;
  let incarnations = 0;
  let lastAppendAt = clock.now();
  const startService = async (): Promise<Incarnation> => {
    const owner = `service-${++incarnations}`;
    const { journal, records } = await Journal.open(section.journal, { clock: () => new Date(clock.now()) });
    const sampler = newSampler();
    const xapi = new XapiActions({
      urls: config.urls,
      user: 'root',
      password: PASSWORD,
      timeoutMs: config.timing.xapiTimeout,
      transport: simTransport(pool, book, clock, sessions, PASSWORD, owner, callHooks),
    });
    const inc: Incarnation = { owner, journal, sampler, killed: false, remediator: null as unknown as Remediator };
    const never = new Promise<never>(() => {});
    inc.remediator = new Remediator({
      pools: [{ config, remediation: { fence: { hosts: {} } }, sampler, actions: new PoolActions(xapi) }],
      section,
      // A killed process appends nothing more, and learns of nothing it appended.
      journal: {
        append: (e) => {
          lastAppendAt = clock.now();
          return inc.killed ? never : journal.append(e).then((r) => (inc.killed ? never : r));
        },
      },
      state: replay(records),
      log: silent,
      monotonic: () => clock.now(),
      wallClock: () => clock.now(),
      timers: {
        setTimeout: (fn, ms) => clock.setTimeout(fn, ms, owner),
        clearTimeout: (h) => clock.clearTimeout(h),
        sleep: (ms, signal) => clock.sleep(ms, signal, owner),
      },
      fenceLevelsFor: (plan) => {
        const h = pool.host(plan.host);
        const note = { ...deviceHooks };
        const mark = () => {
          if (!fenceStartedAt.has(h) || (fenceStartedAt.get(h) ?? 0) < h.bootedAt) fenceStartedAt.set(h, clock.now());
        };
        mark();
        const levels = [
          {
            plugin: 'campaign-bmc',
            device: new SimFenceDevice('bmc', pool, h, story.fence.bmc, story.fence.hangMs, clock, owner, note, story.fence.offMs),
          },
        ];
        if (story.fence.pdu)
          levels.push({
            plugin: 'campaign-pdu',
            device: new SimFenceDevice('pdu', pool, h, 'ok', story.fence.hangMs, clock, owner, note, story.fence.offMs),
          });
        return levels;
      },
    });
    inc.remediator.start();
    return inc;
  };

  const settle = async () => {
    for (let i = 0, idle = 0; i < MAX_SETTLE_TURNS; i++) {
      await new Promise((r) => setImmediate(r));
      idle = current === null || current.journal.idle ? idle + 1 : 0;
      if (idle >= 2) return;
    }
    throw new Error(`the service did not settle at ${t()} ms`);
  };

  // ------------------------------------------------------------------ Prometheus' rule and Alertmanager
  const alerts = new Map<string, { startsAt: number; lastSent: number; fp: string; labels: Record<string, string> }>();
  let notifications = 0;
  const intakeRefusals: WorldRecord['intakeRefusals'] = [];
  let stale: { payload: unknown } | null = null;
  const deliver = (payload: unknown) => {
    notifications++;
    const inc = current;
    if (!inc) return;
    const parsed = alertmanagerPayload.parse(payload);
    const hostOf = new Map(parsed.alerts.map((a) => [a.fingerprint, a.labels.host_uuid ?? '']));
    const at = t();
    inc.remediator.intake(parsed, { receivedAt: clock.now(), remote: '127.0.0.1' }).then(
      (res) => {
        for (const i of res.incidents)
          if (i.outcome === 'refused')
            intakeRefusals.push({ at, host: hostOf.get(i.fingerprint) ?? '', gate: i.gate ?? null, reason: i.reason ?? '' });
      },
      (e: unknown) => {
        if (!inc.killed) violations.push({ check: 'error', detail: `intake failed at ${at} ms: ${(e as Error).message}` });
      },
    );
  };
  const notify = (status: 'firing' | 'resolved', a: { startsAt: number; fp: string; labels: Record<string, string> }, extraMs = 0) => {
    const payload = {
      version: '4',
      groupKey: `{}/{remediation="xenha"}:{host="${a.labels.host}", pool="${CAMPAIGN_POOL}"}`,
      truncatedAlerts: 0,
      status,
      receiver: 'xenha-remediation',
      groupLabels: { pool: CAMPAIGN_POOL, host: a.labels.host! },
      commonLabels: a.labels,
      commonAnnotations: {},
      externalURL: 'http://127.0.0.1:9093',
      alerts: [
        {
          status,
          labels: a.labels,
          annotations: {},
          startsAt: new Date(a.startsAt).toISOString(),
          endsAt: status === 'resolved' ? new Date(clock.now()).toISOString() : '0001-01-01T00:00:00Z',
          generatorURL: 'http://127.0.0.1:9090/graph',
          fingerprint: a.fp,
        },
      ],
    };
    const delay = story.alerting.delayMs + story.alerting.lateMs + extraMs;
    const send = () => {
      // Out of order: an earlier notification of this alert arrives after this one.
      if (story.alerting.outOfOrder && stale && status === 'firing') {
        const old = stale.payload;
        clock.setTimeout(() => deliver(old), 500, 'alertmanager');
      }
      deliver(payload);
      if (story.alerting.duplicate) clock.setTimeout(() => deliver(payload), 250, 'alertmanager');
      stale = { payload };
    };
    clock.setTimeout(send, delay, 'alertmanager');
  };
  /** XenhaHostDead (alerts/xenha.rules.yml): the exporter says dead, its monitor is not isolated; no `for`. */
  const evaluateRule = () => {
    const mem = exporter.state.memory;
    const snap = exporter.state.snapshot;
    if (!mem || !snap) return;
    for (const h of snap.hosts) {
      const firing = mem.hosts[h.uuid]?.state === 'dead' && !mem.observerIsolated;
      const a = alerts.get(h.uuid);
      if (firing && !a) {
        const labels = {
          alertname: 'XenhaHostDead',
          pool: CAMPAIGN_POOL,
          host: h.name,
          host_uuid: h.uuid,
          severity: 'critical',
          remediation: 'xenha',
          job: 'xenha-exporter',
          instance: '127.0.0.1:9945',
        };
        const fresh = { startsAt: clock.now(), lastSent: clock.now(), fp: fingerprint(labels), labels };
        alerts.set(h.uuid, fresh);
        notify('firing', fresh);
      } else if (firing && a && clock.now() - a.lastSent >= REPEAT_INTERVAL_MS) {
        a.lastSent = clock.now();
        notify('firing', a);
      } else if (!firing && a) {
        alerts.delete(h.uuid);
        notify('resolved', a, GROUP_INTERVAL_MS);
      }
      if (firing) {
        const ep = [...open.values()].find((e) => e.host === h.uuid);
        if (ep && ep.detectedAt === null) ep.detectedAt = t();
      }
    }
  };
  const isolated: WorldRecord['isolated'] = [];
  const watchIsolation = () => {
    const iso = exporter.state.memory?.observerIsolated === true;
    const last = isolated.at(-1);
    if (iso && (!last || last.to !== null)) isolated.push({ from: t(), to: null });
    if (!iso && last && last.to === null) last.to = t();
  };

  // ------------------------------------------------------------------ the story's clock
  const end = STORY_EPOCH + story.endMs;
  // The story may end earlier once everything has settled: every event played, two dead-afters and a
  // margin after the last one (a quiet period after a restart), no plan running, no evaluation waiting,
  // nothing journaled for QUIET_END_MS.
  const d = storyDeadAfterMs(story);
  const lastFault = Math.max(0, ...story.events.map((e) => e.at));
  const lastRestart = Math.max(-Infinity, ...story.events.filter((e) => e.kind === 'restart-service').map((e) => e.at));
  const settledFrom = STORY_EPOCH + Math.max(lastFault + 2 * d + 20_000, lastRestart + story.timing.quietPeriodMs + d + 20_000);
  const settled = () =>
    clock.now() >= settledFrom &&
    clock.now() - lastAppendAt >= QUIET_END_MS &&
    current !== null &&
    // Nothing waits to be evaluated again (a transient gate, a verdict settling) or runs.
    clock.pending(current.owner) === 0 &&
    ![...current.remediator.state.plans.values()].some((p) => p.state === 'running');
  const sampleMs = config.timing.sampleInterval;
  let nextTick = STORY_EPOCH;
  let nextExporter = STORY_EPOCH + sampleMs;
  let nextService = STORY_EPOCH + sampleMs + story.timing.serviceOffsetMs;
  const events = story.events.map((e) => ({ ...e, atMs: STORY_EPOCH + e.at }));
  let eventIndex = 0;
  let runningAtEnd = new Map<string, string>();
  const roomAtEnd = new Set<string>();
  let journalRecords: JournalEntry[] = [];
  try {
    current = await startService();
    let lastInstant = -1;
    let stepsAtInstant = 0;
    while (clock.now() < end && !settled()) {
      const nextEvent = events[eventIndex]?.atMs ?? Infinity;
      const at = Math.min(nextTick, nextExporter, nextService, nextEvent, clock.nextAt(), sabotage ? STORY_EPOCH + sabotage.at : Infinity);
      if (at === lastInstant) {
        if (++stepsAtInstant > MAX_STEPS_AT_ONE_INSTANT) throw new Error(`no progress at ${t()} ms: timers keep firing at one instant`);
      } else {
        lastInstant = at;
        stepsAtInstant = 0;
      }
      for (const timer of clock.advance(at)) {
        timer.fn();
        await settle();
      }
      if (sabotage && at >= STORY_EPOCH + sabotage.at) {
        const h = pool.host(sabotage.host);
        if (sabotage.kind === 'fence-live-host')
          await new SimFenceDevice('rogue', pool, h, 'ok', 0, clock, 'rogue', deviceHooks).off(new AbortController().signal);
        else {
          const [vmRef] =
            db.all('VM').find(([, v]) => !v.is_control_domain && v.power_state === 'Running' && v.resident_on === h.built.ref) ?? [];
          const other = pool.hosts.find((x) => x !== h)!;
          if (vmRef) callHooks.before('VM.start_on', ['session', vmRef, other.built.ref, false, false], other);
        }
        sabotage = undefined;
      }
      while (eventIndex < events.length && events[eventIndex]!.atMs <= at) {
        const e = events[eventIndex++]!;
        if (e.kind === 'fault') {
          try {
            applyFault(pool, e.fault);
          } catch (err) {
            violations.push({ check: 'error', detail: `fault ${e.fault.kind} at ${e.at} ms: ${(err as Error).message}` });
          }
        } else {
          current.killed = true;
          clock.kill(current.owner);
          await current.journal.close();
          current = null;
          current = await startService();
        }
      }
      if (at >= nextTick) {
        pool.tick(at);
        heartbeat?.tick(at);
        sessions.maybeGc(at);
        observeTruth(at);
        nextTick += pool.timing.tickMs;
      }
      if (at >= nextExporter) {
        looked(at);
        await exporter.round();
        evaluateRule();
        watchIsolation();
        nextExporter += sampleMs;
      }
      if (at >= nextService) {
        looked(at);
        await current.sampler.round();
        if (process.env.XENHA_CAMPAIGN_TRACE) {
          const ex = exporter.state.memory?.hosts;
          const own = current.sampler.state.memory?.hosts;
          for (const h of pool.hosts)
            if (ex?.[h.built.uuid]?.state !== 'healthy' || own?.[h.built.uuid]?.state !== 'healthy')
              console.log(
                t(),
                h.built.name,
                'exporter',
                ex?.[h.built.uuid]?.state,
                ex?.[h.built.uuid]?.rule,
                ex?.[h.built.uuid]?.network,
                ex?.[h.built.uuid]?.storage,
                '| own',
                own?.[h.built.uuid]?.state,
                own?.[h.built.uuid]?.rule,
                own?.[h.built.uuid]?.network,
                own?.[h.built.uuid]?.storage,
                own?.[h.built.uuid]?.reason,
              );
        }
        nextService += sampleMs;
      }
      await settle();
    }
    const inc = current;
    inc.killed = true;
    clock.kill(inc.owner);
    await inc.journal.close();
    journalRecords = replayJournal(await Journal.open(section.journal));
    const free = pool.hosts.filter((h) => pool.isUp(h) && db.peek('host', h.built.ref).enabled === true).map((h) => pool.memoryFree(h));
    for (const [, vm] of db.all('VM')) {
      if (vm.is_control_domain || vm.power_state === 'Running') continue;
      const need = (vm.memory_static_max as number) + (vm.memory_overhead as number);
      if (free.some((f) => f >= need)) roomAtEnd.add(vm.uuid as string);
    }
    runningAtEnd = new Map(
      db.all('VM').flatMap(([, vm]) => {
        const h = pool.hostByRef(vm.resident_on as string);
        return vm.power_state === 'Running' && vm.resident_on !== NULL_REF && h && pool.isUp(h)
          ? [[vm.uuid as string, h.built.uuid] as const]
          : [];
      }),
    );
  } catch (e) {
    violations.push({ check: 'error', detail: `the story stopped at ${t()} ms: ${(e as Error).stack ?? String(e)}` });
  } finally {
    heartbeat?.close();
    pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    story,
    deadAfterMs: deadAfterMs(),
    episodes,
    fences,
    starts,
    violations,
    journal: journalRecords,
    isolated,
    notifications,
    intakeRefusals,
    protectedVms,
    vmNames,
    runningAtEnd,
    roomAtEnd,
    endMs: t(),
    wallMs: performance.now() - wallStart,
  };
}

function replayJournal(opened: { journal: Journal; records: Record<string, unknown>[] }): JournalEntry[] {
  void opened.journal.close();
  return opened.records as JournalEntry[];
}
