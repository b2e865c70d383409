/**
 * `xenha start --scenario tour` (`npm start -- --scenario tour`): a guided tour of the whole loop
 * (loop/loop.ts) on its simulated pool, printed as it happens, each line prefixed with the seconds since
 * the tour began. Five phases (TOUR_PHASES), each a fault applied through the simulator's control API
 * (`POST /faults`, as `xenha fault` sends it) and what every part of the loop makes of it:
 *
 *   network-only   a slave's management network cut on every home: the exporter says network_isolated,
 *                  XenhaHostOnePathDown goes pending then fires (after its rule's `for:`, 1m),
 *                  XenhaHostDead never does, nothing reaches the remediation service, nothing is fenced;
 *                  healed, healthy.
 *   storage-only   another slave's heartbeat SR legs cut: storage_lost, XenhaHostOnePathDown pending (not
 *                  waited for: a few evaluations, then on), nothing fenced; healed, healthy.
 *   host-death     a slave running protected VMs (ha_restart_priority "restart") crashes: suspect, dead,
 *                  XenhaHostDead fires, Alertmanager calls the webhook (an incident, a plan), the plan's
 *                  steps as they run (fence with fence_dummy, confirm-fenced, reset-power-state, start-vm,
 *                  waits), each protected VM running again and where, crash → last VM running.
 *   master-death   the master crashes: the same, with the new master (transition-master, follow-master).
 *   heal           every fault cleared, the fenced hosts powered on as a BMC would (fence_dummy
 *                  --action=on on their power files: `heal` leaves power alone), every host healthy,
 *                  then a summary (faults, alerts fired, fences, VMs restarted, refusals).
 *
 * What it reads: the exporter's /api/v1/state, Prometheus' /api/v1/alerts (and /api/v1/rules, /targets),
 * the remediation service's /api/v1/plans and /api/v1/incidents (and its own view, /api/v1/pools), the
 * simulator's /events; which VMs are protected and where they run, from the simulated pool's database.
 * Everything on loopback, polled every 250 ms; every wait is bounded (TourOptions.phaseTimeoutMs) and
 * ends at once when the signal aborts (the tour then returns; the caller stops the loop). A fault the
 * tour applied is left in place when it is aborted or fails.
 *
 * The service re-checks every alert with its own sampler, which may not have reached `dead` yet when
 * XenhaHostDead arrives (the rule has no `for:`): while its own verdict is `suspect` it re-checks until
 * that settles (docs/remediation.md); any other refusal waits for Alertmanager to send the still-firing
 * alert again (the route's repeat_interval, 5m in deploy/). The tour says which and waits (its bound
 * covers the repeat).
 *
 * It needs Prometheus and Alertmanager (without them no alert fires and no webhook is called: it says
 * what to install and throws), the remediation service in enforce mode, and at least 3 hosts. Run it
 * on a fresh loop: a host fenced within the cooldown (15 min) is not fenced again, and the storm window
 * allows 3 fences an hour per pool (the tour fences 2).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { parse } from 'yaml';
import type { Incident, Plan, StepView } from '../remediation/state.ts';
import type { PlanStep } from '../remediation/records.ts';
import { REMEDIATION_RECEIVER } from './alertmanager.ts';
import { INSTALL_HINT } from './binaries.ts';
import { FENCE_DUMMY, LOOP_POOL, type RunningLoop } from './loop.ts';
import { PROMETHEUS_JOBS } from './prometheus.ts';

export const TOUR_PHASES = ['network-only', 'storage-only', 'host-death', 'master-death', 'heal'] as const;
export type TourPhase = (typeof TOUR_PHASES)[number];

export interface TourOptions {
  /** Called at each phase's start with its name (one of TOUR_PHASES) and Date.now(). */
  onPhase?: (phase: TourPhase, at: number) => void;
  /** Upper bound for each wait (default: generous, derived from the pool's dead-after, e.g. 4 × dead-after + 2 min). */
  phaseTimeoutMs?: number;
  /**
   * Wait for XenhaHostOnePathDown to fire in the network-only phase (its `for: 1m`; default true). False:
   * show it pending and move on, as the storage-only phase always does.
   */
  waitForWarnings?: boolean;
}

/** How often every source is read. */
const POLL_MS = 250;
/** One HTTP request's bound (loopback: each answers in milliseconds). */
const REQUEST_TIMEOUT_MS = 5000;
/** Prometheus evaluations the storage-only phase watches the pending alert for. */
const PENDING_EVALUATIONS = 3;
/** Plan states after which nothing more runs. */
const FINAL_PLAN_STATES = new Set(['done', 'needs-operator', 'cancelled', 'dry-run']);
const HOST_ALERTS = new Set(['XenhaHostDead', 'XenhaHostOnePathDown', 'XenhaHostSuspect']);

/** The abort of the caller's signal, inside the tour (caught by runTour, which returns). */
class Aborted extends Error {}

type ExporterHost = { name: string; uuid: string; state: string | null; reason: string | null };
type ExporterState = { pools: { pool: string; master: string | null; hosts: ExporterHost[] }[] };
type PromAlert = { labels: Record<string, string>; state: 'pending' | 'firing'; activeAt?: string };
type SimEvent = { seq: number; atMs: number; kind: string; host?: string; detail: Record<string, unknown> };
type ApiStep = StepView & { seconds: number | null };
type ApiPlan = Omit<Plan, 'steps'> & { steps: ApiStep[] };
type OwnView = { pools: { pool: string; hosts: { name: string; state: string | null; reason: string | null }[] }[] };
type RuleGroups = { data: { groups: { name: string; lastEvaluation: string; rules: { name: string }[] }[] } };
type Targets = { data: { activeTargets: { labels: { job: string }; health: string }[] } };

/** A protected VM of a host, from the simulated pool's database. */
interface GuestVm {
  name: string;
  order: number;
  startDelay: number;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const cut = (s: string, n = 160) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
/** Labels every alert of the loop carries alike, left out of what is shown. */
const COMMON_LABELS = new Set(['alertname', 'severity', 'job', 'instance', 'pool', 'remediation', 'host_uuid']);
/** An alert as shown, which is also its identity: `XenhaHostOnePathDown{host-02, state=network_isolated}`. */
const alertKey = (a: PromAlert) =>
  `${a.labels.alertname ?? '?'}{${[
    ...(a.labels.host ? [a.labels.host] : []),
    ...Object.entries(a.labels)
      .filter(([k]) => k !== 'host' && !COMMON_LABELS.has(k))
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([k, v]) => `${k}=${v}`),
  ].join(', ')}}`;

class Tour {
  private readonly t0 = Date.now();
  /** Each wait's bound. */
  readonly timeoutMs: number;
  private readonly u: RunningLoop['urls'];
  // What the sources said at the last poll.
  private hosts = new Map<string, ExporterHost>();
  private exporterMaster: string | null = null;
  private alerts = new Map<string, PromAlert>();
  private plans = new Map<string, ApiPlan>();
  private incidents = new Map<string, Incident>();
  private eventSeq = 0;
  private first = true;
  // What happened, for the phases' checks and the summary.
  readonly alertLog: { key: string; name: string; host: string | undefined; state: string; at: number }[] = [];
  readonly faults: string[] = [];
  readonly unexpected: string[] = [];
  /** The last start of each VM (by name) the simulator recorded, at its time. */
  readonly vmStarts = new Map<string, { host: string; atMs: number }>();
  readonly masterChanges: string[] = [];
  /** Each alert rule's `for:` in seconds, from Prometheus' rules API (loadRules). */
  private readonly ruleFor = new Map<string, number>();
  /** Steps shown running (`plan/index`): a wait shown waiting is not shown again when done. */
  private readonly runningShown = new Set<string>();

  constructor(
    loop: RunningLoop,
    private readonly out: (line: string) => void,
    readonly signal: AbortSignal,
    private readonly opts: TourOptions,
  ) {
    this.u = loop.urls;
    const deadAfterMs = loop.exporter.samplers[0]?.state.deadAfter.ms ?? 30_000;
    this.timeoutMs = opts.phaseTimeoutMs ?? 4 * deadAfterMs + 120_000;
  }

  say(line: string): void {
    this.out(`[${((Date.now() - this.t0) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  }

  checkAbort(): void {
    if (this.signal.aborted) throw new Aborted('aborted');
  }

  phase(p: TourPhase, n: number, title: string): void {
    this.checkAbort();
    this.say(`── ${n}/${TOUR_PHASES.length} ${p}: ${title}`);
    this.opts.onPhase?.(p, Date.now());
    this.checkAbort();
  }

  private async request(url: string, init?: RequestInit): Promise<Response> {
    this.checkAbort();
    try {
      return await fetch(url, { ...init, signal: AbortSignal.any([this.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) });
    } catch (e) {
      this.checkAbort();
      throw e;
    }
  }

  async json<T>(url: string): Promise<T> {
    const res = await this.request(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  /** A fault through the simulator's control API, as `xenha fault` sends it. */
  async fault(body: { kind: string; host?: string }): Promise<SimEvent> {
    const res = await this.request(`${this.u.control}/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await res.json().catch(() => ({}))) as { event?: SimEvent; error?: string };
    if (!res.ok || !answer.event) throw new Error(`the simulator refused ${JSON.stringify(body)}: ${answer.error ?? `HTTP ${res.status}`}`);
    const what = `${body.kind}${body.host ? ` ${body.host}` : ''}`;
    this.faults.push(what);
    this.say(`fault: ${what} (POST ${this.u.control}/faults)`);
    return answer.event;
  }

  /** Reads every alert rule's `for:` from Prometheus. */
  async loadRules(): Promise<void> {
    const r = await this.json<{ data: { groups: { rules: { name: string; type: string; duration?: number }[] }[] } }>(
      `${this.u.prometheus}/api/v1/rules?type=alert`,
    );
    for (const g of r.data.groups) for (const rule of g.rules) this.ruleFor.set(rule.name, rule.duration ?? 0);
  }

  hasRule(alertname: string): boolean {
    return this.ruleFor.has(alertname);
  }

  forSeconds(alertname: string): number {
    return this.ruleFor.get(alertname) ?? 0;
  }

  /** An alert rule's `for:` as Prometheus writes it (`1m`, `2m30s`), or '' when it has none (or is unknown). */
  forOf(alertname: string | undefined): string {
    const sec = this.ruleFor.get(alertname ?? '') ?? 0;
    if (sec <= 0) return '';
    const m = Math.floor(sec / 60);
    const rest = sec % 60;
    return `${m > 0 ? `${m}m` : ''}${rest > 0 || m === 0 ? `${rest}s` : ''}`;
  }

  // ------------------------------------------------------------------ reading every source

  /** Reads every source once and says what changed since the last read. */
  async poll(): Promise<void> {
    const [exp, alerts, plans, incidents, events] = await Promise.allSettled([
      this.json<ExporterState>(`${this.u.exporter}/api/v1/state`),
      this.json<{ data: { alerts: PromAlert[] } }>(`${this.u.prometheus}/api/v1/alerts`),
      this.json<{ plans: ApiPlan[] }>(this.u.plans),
      this.json<{ incidents: Incident[] }>(`${this.u.remediation}/api/v1/incidents`),
      this.json<{ events: SimEvent[] }>(`${this.u.control}/events?since=${this.eventSeq}`),
    ]);
    this.checkAbort();
    const quiet = this.first;
    if (events.status === 'fulfilled') this.onEvents(events.value.events, quiet);
    if (exp.status === 'fulfilled') this.onExporter(exp.value, quiet);
    if (alerts.status === 'fulfilled') this.onAlerts(alerts.value.data.alerts, quiet);
    if (incidents.status === 'fulfilled') this.onIncidents(incidents.value.incidents, quiet);
    if (plans.status === 'fulfilled') this.onPlans(plans.value.plans, quiet);
    if ([exp, alerts, plans, incidents, events].every((r) => r.status === 'fulfilled')) this.first = false;
    const failed = [exp, alerts, plans, incidents, events].find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private onEvents(events: SimEvent[], quiet: boolean): void {
    for (const e of events) {
      this.eventSeq = Math.max(this.eventSeq, e.seq);
      if (e.kind === 'vm' && e.detail.action === 'start' && e.host) {
        this.vmStarts.set(String(e.detail.vm), { host: e.host, atMs: e.atMs });
      } else if (e.kind === 'power' && !quiet) {
        this.say(`simulator: ${e.host} powered ${String(e.detail.state)} (${String(e.detail.by)})`);
      } else if (e.kind === 'master' && !quiet) {
        this.masterChanges.push(`${String(e.detail.previous)} → ${e.host}`);
        this.say(`simulator: ${e.host} is the pool's master now (${String(e.detail.how)}; was ${String(e.detail.previous)})`);
      }
    }
  }

  private onExporter(s: ExporterState, quiet: boolean): void {
    const pool = s.pools.find((p) => p.pool === LOOP_POOL) ?? s.pools[0];
    if (!pool) return;
    for (const h of pool.hosts) {
      const before = this.hosts.get(h.name);
      // Its first classification (null before) is no change worth a line.
      if (!quiet && before?.state && before.state !== h.state && h.state !== null)
        this.say(`exporter: ${h.name} ${before.state} → ${h.state}${h.reason ? ` (${cut(h.reason, 120)})` : ''}`);
      this.hosts.set(h.name, h);
    }
    if (!quiet && pool.master !== null && this.exporterMaster !== null && pool.master !== this.exporterMaster)
      this.say(`exporter: follows the new master ${pool.master}`);
    if (pool.master !== null) this.exporterMaster = pool.master;
  }

  private onAlerts(list: PromAlert[], quiet: boolean): void {
    const now = new Map(list.map((a) => [alertKey(a), a]));
    for (const [key, a] of now) {
      const before = this.alerts.get(key);
      if (before?.state === a.state) continue;
      this.alertLog.push({ key, name: a.labels.alertname ?? '?', host: a.labels.host, state: a.state, at: Date.now() });
      if (quiet) this.say(`Prometheus: ${key} already ${a.state}`);
      else
        this.say(
          `Prometheus: ${key} ${a.state}${a.state === 'pending' && this.forOf(a.labels.alertname) ? ` (fires once it holds for ${this.forOf(a.labels.alertname)})` : ''}`,
        );
    }
    for (const [key, a] of this.alerts)
      if (!now.has(key)) {
        this.alertLog.push({ key, name: a.labels.alertname ?? '?', host: a.labels.host, state: 'inactive', at: Date.now() });
        this.say(`Prometheus: ${key} resolved`);
      }
    this.alerts = now;
  }

  private onIncidents(list: Incident[], quiet: boolean): void {
    for (const i of list) {
      const before = this.incidents.get(i.id);
      if (!quiet && !before)
        this.say(`remediation: Alertmanager called the webhook: incident for ${i.hostName} opened (${i.id.slice(0, 60)})`);
      for (const r of i.refusals.slice(before?.refusals.length ?? 0))
        if (!quiet) this.say(`remediation: refused for ${i.hostName}, gate ${r.gate}: ${cut(r.reason)}`);
      if (!quiet && before && !before.resolvedAt && i.resolvedAt) this.say(`remediation: the alert for ${i.hostName} resolved`);
      this.incidents.set(i.id, i);
    }
  }

  private onPlans(list: ApiPlan[], quiet: boolean): void {
    for (const p of [...list].reverse()) {
      const before = this.plans.get(p.id);
      this.plans.set(p.id, p);
      if (quiet) continue;
      const name = (id: string) => p.names[id] ?? id.slice(0, 8);
      if (!before) {
        const kinds = new Map<string, number>();
        for (const s of p.steps) kinds.set(s.step.kind, (kinds.get(s.step.kind) ?? 0) + 1);
        this.say(
          `remediation: plan ${p.id} for ${p.hostName} (${p.mode}, ${p.state}): ${p.steps.length} steps — ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}`,
        );
        for (const u of p.unplaced) this.say(`  not placed: ${u.name}: ${u.reason}`);
        for (const r of p.refused) this.say(`  fence refused: ${name(r.host)} (${r.gate}): ${cut(r.reason)}`);
      }
      // Each step's result as it finishes; consecutive power-state resets finished together on one line.
      const finished: { i: number; s: ApiStep }[] = [];
      const flush = () => {
        if (finished.length === 0) return;
        const first = finished[0]!;
        const vms = finished.map((f) => name((f.s.step as { vm: string }).vm));
        const span = finished.length > 1 ? `steps ${first.i + 1}–${first.i + finished.length}` : `step ${first.i + 1}`;
        this.say(
          `  ${span}/${p.steps.length} reset-power-state of ${vms.length > 12 ? `${vms.slice(0, 12).join(', ')}, … (${vms.length})` : vms.join(', ')} (on ${name((first.s.step as { host: string }).host)}): ${first.s.state}${first.s.outcome ? ` (${first.s.outcome})` : ''}`,
        );
        finished.length = 0;
      };
      p.steps.forEach((s, i) => {
        const was = before?.steps[i]?.state ?? 'pending';
        if (s.state === was || s.state === 'pending') return;
        const key = `${p.id}/${i}`;
        const label = `  step ${i + 1}/${p.steps.length} ${describeStep(s.step, name)}`;
        if (s.state === 'running') {
          flush();
          if ((s.step.kind === 'wait' && s.step.seconds > 0) || s.step.kind === 'fence' || s.step.kind === 'transition-master') {
            this.runningShown.add(key);
            this.say(`${label}: ${s.step.kind === 'wait' ? 'waiting' : 'running'}`);
          }
          return;
        }
        if (s.step.kind === 'reset-power-state') {
          const last = finished.at(-1);
          if (last && (last.i !== i - 1 || last.s.state !== s.state || last.s.outcome !== s.outcome)) flush();
          finished.push({ i, s });
          return;
        }
        flush();
        // A wait already shown waiting says nothing more: the next step's line shows it is over.
        if (s.step.kind === 'wait' && s.state === 'done' && this.runningShown.has(key)) return;
        const detail =
          s.state !== 'done' || ['fence', 'confirm-fenced', 'transition-master', 'follow-master'].includes(s.step.kind) ? s.detail : '';
        this.say(
          `${label}: ${s.state}${s.outcome ? ` (${s.outcome})` : ''}${s.seconds !== null && s.step.kind !== 'wait' ? ` in ${s.seconds.toFixed(2)} s` : ''}${detail ? ` — ${cut(detail)}` : ''}`,
        );
      });
      flush();
      if (before && before.state !== p.state)
        this.say(`remediation: plan ${p.id} ${p.state}${p.stateReason ? `: ${cut(p.stateReason)}` : ''}`);
    }
  }

  // ------------------------------------------------------------------ waiting

  /** Polls every source until `check` gives a value, bounded by the phase timeout; ends at once on abort. */
  async until<T>(
    what: string,
    check: () => T | undefined | false | null | Promise<T | undefined | false | null>,
    timeoutMs = this.timeoutMs,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      try {
        await this.poll();
        lastError = undefined;
      } catch (e) {
        if (e instanceof Aborted) throw e;
        lastError = e;
      }
      let v: T | undefined | false | null;
      try {
        v = await check();
      } catch (e) {
        if (e instanceof Aborted) throw e;
        lastError = e;
        v = undefined;
      }
      if (v !== undefined && v !== false && v !== null) return v;
      if (Date.now() > deadline)
        throw new Error(
          `the tour waited ${seconds(timeoutMs)} for ${what} in vain${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`,
        );
      try {
        await delay(POLL_MS, undefined, { signal: this.signal });
      } catch {
        throw new Aborted('aborted');
      }
    }
  }

  state(host: string): string | null {
    return this.hosts.get(host)?.state ?? null;
  }

  alert(name: string, host: string, state?: 'pending' | 'firing'): PromAlert | undefined {
    return [...this.alerts.values()].find((a) => a.labels.alertname === name && a.labels.host === host && (!state || a.state === state));
  }

  /** Every alert state seen since `since` (ms) for a host. */
  alertsSeen(name: string, host: string, since: number): string[] {
    return this.alertLog.filter((a) => a.name === name && a.host === host && a.at >= since).map((a) => a.state);
  }

  incidentFor(host: string, since: number): Incident | undefined {
    return [...this.incidents.values()].find((i) => i.hostName === host && Date.parse(i.openedAt) >= since - 1000);
  }

  planOf(incident: Incident | undefined): ApiPlan | undefined {
    return incident?.plan ? this.plans.get(incident.plan) : [...this.plans.values()].find((p) => p.incident === incident?.id);
  }

  plansFor(host: string): ApiPlan[] {
    return [...this.plans.values()].filter((p) => p.hostName === host);
  }

  allPlans(): ApiPlan[] {
    return [...this.plans.values()];
  }

  allIncidents(): Incident[] {
    return [...this.incidents.values()];
  }

  hostNames(): string[] {
    return [...this.hosts.keys()];
  }

  activeAlerts(): PromAlert[] {
    return [...this.alerts.values()];
  }

  get prometheus(): string {
    return this.u.prometheus!;
  }
}

function describeStep(s: PlanStep, name: (id: string) => string): string {
  switch (s.kind) {
    case 'fence':
      return `fence ${name(s.host)}`;
    case 'confirm-fenced':
      return `confirm-fenced ${name(s.host)}`;
    case 'await-master-election':
      return 'await-master-election';
    case 'transition-master':
      return `transition-master → ${name(s.host)}`;
    case 'follow-master':
      return `follow-master ${name(s.host)} → ${name(s.master)}`;
    case 'reset-power-state':
      return `reset-power-state ${name(s.vm)} (was on ${name(s.host)})`;
    case 'start-vm':
      return `start-vm ${name(s.vm)} on ${name(s.host)}`;
    case 'wait':
      return `wait ${s.seconds} s (${s.reason})`;
  }
}

// -------------------------------------------------------------------- the pool, from the simulator

type VmRecord = Record<string, unknown>;

function vmRecords(loop: RunningLoop): VmRecord[] {
  return loop.sim.pool.built.db
    .all('VM')
    .map(([, v]) => v as VmRecord)
    .filter((v) => v.is_control_domain !== true && v.is_a_template !== true && v.is_a_snapshot !== true);
}

/** The protected VMs running on a host now. */
function protectedOn(loop: RunningLoop, host: string): GuestVm[] {
  const ref = loop.sim.pool.host(host).built.ref;
  return vmRecords(loop)
    .filter((v) => v.ha_restart_priority === 'restart' && v.power_state === 'Running' && v.resident_on === ref)
    .map((v) => ({ name: String(v.name_label), order: Number(v.order), startDelay: Number(v.start_delay) }))
    .sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
}

/** Where a VM runs now (its host's name), or null. */
function runningOn(loop: RunningLoop, vm: string): string | null {
  const v = vmRecords(loop).find((x) => x.name_label === vm);
  if (!v || v.power_state !== 'Running') return null;
  return loop.sim.pool.hostByRef(String(v.resident_on))?.built.name ?? null;
}

const masterName = (loop: RunningLoop) => loop.sim.pool.master.built.name;

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Prometheus/Alertmanager duration (`5m`, `1h30m`, `0s`) in ms, or undefined. */
function durationMs(d: string | undefined): number | undefined {
  if (!d || !/^(\d+(ms|s|m|h))+$/.test(d)) return undefined;
  return [...d.matchAll(/(\d+)(ms|s|m|h)/g)].reduce((sum, m) => sum + Number(m[1]) * DURATION_MS[m[2]!]!, 0);
}

/** The remediation route's group_interval and repeat_interval, as the loop's Alertmanager runs them. */
function remediationRoute(loop: RunningLoop): { group: string; groupMs: number; repeat: string; repeatMs: number } {
  type Route = { receiver?: string; routes?: Route[]; group_interval?: string; repeat_interval?: string };
  let route: Route | undefined;
  try {
    const c = parse(readFileSync(loop.alertmanager!.configPath, 'utf8')) as { route?: Route };
    route = c.route?.routes?.find((r) => r.receiver === REMEDIATION_RECEIVER);
  } catch {
    // unreadable: Alertmanager's defaults below
  }
  // Alertmanager's own defaults when the route does not say.
  const group = route?.group_interval ?? '5m';
  const repeat = route?.repeat_interval ?? '4h';
  return { group, groupMs: durationMs(group) ?? 300_000, repeat, repeatMs: durationMs(repeat) ?? 4 * 3_600_000 };
}

function powerFileSays(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return 'missing';
  }
}

/** Powers a host on as a BMC would: fence_dummy --action=on on its power file (docs/loop.md), else the file itself. */
async function powerOn(file: string, signal: AbortSignal): Promise<string> {
  if (!existsSync(FENCE_DUMMY)) {
    writeFileSync(file, 'on');
    return `wrote "on" to ${file} (${FENCE_DUMMY} not installed)`;
  }
  const args = ['--type=file', `--status-file=${file}`, '--action=on'];
  await new Promise<void>((resolve, reject) => {
    execFile(FENCE_DUMMY, args, { timeout: 10_000, signal }, (err, _stdout, stderr) =>
      err ? reject(new Error(`${FENCE_DUMMY} ${args.join(' ')} failed: ${err.message} ${stderr}`.trim())) : resolve(),
    );
  });
  return `${FENCE_DUMMY} ${args.join(' ')}`;
}

// -------------------------------------------------------------------- the phases

/** What the tour needs of the loop; throws (after saying why and what to install) when it is not there. */
function requireLoop(loop: RunningLoop, out: (line: string) => void): void {
  if (!loop.prometheus || !loop.alertmanager || !loop.urls.prometheus) {
    out('The tour needs Prometheus and Alertmanager: without them no alert fires and nothing calls the remediation webhook.');
    if (loop.missing.length > 0) for (const m of loop.missing) out(`  missing: ${m}`);
    else out('  They are not running (started with --no-prometheus?).');
    out(`  Install them (Debian: ${INSTALL_HINT}), then run \`xenha start --scenario tour\` again.`);
    throw new Error(`the tour needs Prometheus and Alertmanager, which are not running (Debian: ${INSTALL_HINT})`);
  }
  const mode = loop.remediationConfig.remediation.mode;
  if (mode !== 'enforce') {
    out(`The tour needs the remediation service in enforce mode (it runs in ${mode}): start without --mode, or with --mode enforce.`);
    throw new Error(`the tour needs the remediation service in enforce mode, not ${mode}`);
  }
  if (loop.sim.pool.hosts.length < 3) {
    out('The tour needs at least 3 hosts: a slave and the master die, and a host must be left to run their VMs.');
    throw new Error(`the tour needs at least 3 hosts, the pool has ${loop.sim.pool.hosts.length}`);
  }
}

/**
 * The hosts each phase works on: the host-death victim first (of the slaves running protected VMs, the
 * one whose restarts take least time), then two other slaves for the one-path faults (reused in a pool
 * too small to have them).
 */
function castHosts(loop: RunningLoop): { network: string; storage: string; victim: string } {
  const master = masterName(loop);
  const slaves = loop.sim.pool.hosts.map((h) => h.built.name).filter((n) => n !== master);
  // The slave with protected VMs whose restarts take the least time (their start_delays), so that the
  // story does not wait minutes; among equals, the one with more of them.
  const cost = (n: string) => {
    const vms = protectedOn(loop, n);
    return vms.length === 0 ? Infinity : vms.reduce((sum, v) => sum + v.startDelay, 0);
  };
  const victim = [...slaves].sort(
    (a, b) => cost(a) - cost(b) || protectedOn(loop, b).length - protectedOn(loop, a).length || a.localeCompare(b),
  )[0]!;
  const others = slaves.filter((n) => n !== victim);
  const network = others[0] ?? victim;
  const storage = others[1] ?? others[0] ?? victim;
  return { network, storage, victim };
}

/** A one-path fault: the exporter's state, the warning pending (and firing), nothing fenced, then healed. */
async function onePath(
  t: Tour,
  loop: RunningLoop,
  host: string,
  path: 'network' | 'storage',
  waitForFiring: boolean,
  fencesBefore: number,
): Promise<void> {
  const want = path === 'network' ? 'network_isolated' : 'storage_lost';
  const since = Date.now();
  await t.fault({ kind: `${path}-down`, host });
  await t.until(`${host} ${want} on the exporter`, () => t.state(host) === want);
  await t.until(`XenhaHostOnePathDown pending for ${host}`, () => t.alert('XenhaHostOnePathDown', host));
  if (waitForFiring) {
    t.say(`waiting for XenhaHostOnePathDown to fire: it must hold for ${t.forOf('XenhaHostOnePathDown') || '0s'} (its rule's for:)`);
    await t.until(
      `XenhaHostOnePathDown firing for ${host}`,
      () => t.alert('XenhaHostOnePathDown', host, 'firing'),
      Math.max(t.timeoutMs, (t.forSeconds('XenhaHostOnePathDown') + 30) * 1000),
    );
  } else {
    // A few evaluations of the rule group while it stays pending, then on: it fires only after its for:.
    const seen = new Set<string>();
    await t.until(`${PENDING_EVALUATIONS} evaluations of XenhaHostOnePathDown while pending`, async () => {
      const r = await t.json<RuleGroups>(`${t.prometheus}/api/v1/rules`);
      const g = r.data.groups.find((x) => x.rules.some((y) => y.name === 'XenhaHostOnePathDown'));
      if (g && t.alert('XenhaHostOnePathDown', host, 'pending')) seen.add(g.lastEvaluation);
      // The first evaluation seen may be the one that made it pending.
      return seen.size > PENDING_EVALUATIONS;
    });
    t.say(
      `XenhaHostOnePathDown{${host}} still pending after ${PENDING_EVALUATIONS} evaluations (it fires after ${t.forOf('XenhaHostOnePathDown') || '0s'}): moving on`,
    );
  }
  // Nothing fenced: no XenhaHostDead, nothing sent to the webhook, no plan, the power file still on.
  const own = await t.json<OwnView>(`${loop.urls.remediation}/api/v1/pools`);
  const view = own.pools.find((p) => p.pool === LOOP_POOL)?.hosts.find((h) => h.name === host);
  const dead = t.alertsSeen('XenhaHostDead', host, since);
  const plans = t.plansFor(host);
  const power = powerFileSays(loop.sim.pool.powerFile(loop.sim.pool.host(host)));
  const fences = loop.sim.pool.eventLog().filter((e) => e.kind === 'power' && e.detail.state === 'off').length;
  const ok = dead.length === 0 && plans.length === 0 && power === 'on' && fences === fencesBefore;
  t.say(
    `nothing fenced: ${host} is alive on its ${path === 'network' ? 'storage heartbeat' : 'management network'}, XenhaHostDead ${dead.length === 0 ? 'never pending or firing' : `seen ${dead.join(', ')}`}, ${plans.length} plan(s) for it on the remediation service, its power file says ${power}; the service's own view: ${view?.state ?? 'unknown'}`,
  );
  if (!ok)
    t.unexpected.push(`${path}-only fault on ${host}: ${dead.length} XenhaHostDead state(s), ${plans.length} plan(s), power ${power}`);
  await t.fault({ kind: 'heal', host });
  await t.until(`${host} healthy again on the exporter`, () => t.state(host) === 'healthy');
  await t.until(`XenhaHostOnePathDown for ${host} resolved`, () => !t.alert('XenhaHostOnePathDown', host));
  t.say(`${host} healthy again, its warning resolved`);
}

/** A host that died: dead, the alert, the webhook, the plan run step by step, its protected VMs running again. */
async function recovery(
  t: Tour,
  loop: RunningLoop,
  host: string,
  crash: { atMs: number },
  vms: GuestVm[],
): Promise<{ restarted: number; lastMs: number | null }> {
  await t.until(`${host} dead on the exporter`, () => t.state(host) === 'dead');
  const deadAt = Date.now();
  const firing = await t.until(`XenhaHostDead firing for ${host}`, () => t.alert('XenhaHostDead', host, 'firing'));
  // No `for:`: it fired at the evaluation that made it active.
  const firingAt = firing.activeAt ? Date.parse(firing.activeAt) : Date.now();
  const incident = await t.until(`the incident for ${host} on the remediation service`, () => t.incidentFor(host, crash.atMs));
  // The service re-checks with its own sampler, which may not have reached dead yet when the alert
  // comes (it runs on its own, a round or so apart from the exporter's): while its own verdict is
  // suspect it re-checks until it settles; any other refusal waits for Alertmanager's next repeat.
  const route = remediationRoute(loop);
  let explained = false;
  const plan0 = await t.until(
    `a plan for ${host}`,
    () => {
      const inc = t.incidentFor(host, crash.atMs);
      const refusal = inc?.refusals.find((r) => r.gate === 'not-dead');
      if (!explained && refusal) {
        explained = true;
        t.say(
          refusal.ownState === 'suspect'
            ? `the service's own view said suspect, not dead yet: it does not act on the alert's word, and re-checks until its own verdict settles`
            : `the service's own view said ${refusal.ownState ?? 'nothing yet'}: it refused, and checks again when Alertmanager sends the still-firing alert again (repeat_interval ${route.repeat}, sent at a group_interval ${route.group} flush)`,
        );
      }
      return t.planOf(inc);
    },
    Math.max(t.timeoutMs, route.repeatMs + 2 * route.groupMs + 30_000),
  );
  const waits = plan0.steps.reduce((sum, s) => sum + (s.step.kind === 'wait' ? s.step.seconds * 1000 : 0), 0);
  const plan = await t.until(
    `plan ${plan0.id} to end`,
    () => {
      const p = t.planOf(t.incidentFor(host, crash.atMs));
      return p && FINAL_PLAN_STATES.has(p.state) ? p : undefined;
    },
    t.timeoutMs + waits,
  );
  if (plan.state !== 'done') {
    t.unexpected.push(`the plan for ${host} ended ${plan.state}: ${plan.stateReason}`);
    t.say(`the plan for ${host} ended ${plan.state}: ${plan.stateReason} (see \`xenha plans --url ${loop.urls.remediation}\`)`);
  }
  // Every protected VM the plan started, running again, and where.
  const names = new Map(Object.entries(plan.names));
  const started = plan.steps
    .filter((s) => s.step.kind === 'start-vm' && s.state === 'done')
    .map((s) => names.get((s.step as { vm: string }).vm)!);
  const expected = vms.filter((v) => started.includes(v.name));
  let lastMs: number | null = null;
  if (expected.length > 0) {
    // Running on another host in the pool's database, and the simulator's event of that start read.
    const startedAt = (v: GuestVm) => {
      const e = t.vmStarts.get(v.name);
      return e && e.atMs >= crash.atMs ? e.atMs : undefined;
    };
    await t.until(`the protected VMs of ${host} running again`, () =>
      expected.every((v) => (runningOn(loop, v.name) ?? host) !== host && startedAt(v) !== undefined),
    );
    const runs = expected.map((v) => ({ v, where: runningOn(loop, v.name)!, at: startedAt(v)! })).sort((a, b) => a.at - b.at);
    for (const { v, where, at } of runs) {
      lastMs = Math.max(lastMs ?? 0, at - crash.atMs);
      t.say(
        `  ${v.name} (order ${v.order}, start_delay ${v.startDelay} s) running again on ${where}, ${seconds(at - crash.atMs)} after the crash`,
      );
    }
  }
  for (const v of vms.filter((x) => !started.includes(x.name)))
    t.say(`  ${v.name} not restarted: ${plan.unplaced.find((u) => u.name === v.name)?.reason ?? 'not in the plan'}`);
  const fence = plan.steps.find((s) => s.step.kind === 'confirm-fenced' && s.state === 'done');
  t.say(
    [
      `${host}: crash → dead on the exporter ${seconds(deadAt - crash.atMs)}`,
      `XenhaHostDead firing ${seconds(firingAt - crash.atMs)}`,
      `webhook (incident) ${seconds(Date.parse(incident.openedAt) - crash.atMs)}`,
      ...(fence?.finishedAt ? [`fenced ${seconds(Date.parse(fence.finishedAt) - crash.atMs)}`] : []),
      lastMs !== null
        ? `last protected VM running ${seconds(lastMs)} (${expected.length} of ${vms.length} restarted)`
        : `no protected VM restarted (${vms.length} on it)`,
    ].join(', '),
  );
  return { restarted: expected.length, lastMs };
}

/** The protected VMs of a host: a line each, or one line when there are many. */
function sayVms(t: Tour, vms: GuestVm[]): void {
  const show = (v: GuestVm) => `${v.name} (order ${v.order}, start_delay ${v.startDelay} s)`;
  if (vms.length <= 6) for (const v of vms) t.say(`  protected: ${show(v)}`);
  else t.say(`  protected: ${vms.map(show).join(', ')}`);
}

async function tour(t: Tour, loop: RunningLoop, opts: TourOptions): Promise<void> {
  const info = loop.sim.info();
  const exporterDeadAfter = loop.exporter.samplers[0]?.state.deadAfter.ms ?? 30_000;
  const cast = castHosts(loop);
  t.say(
    `the tour of pool "${LOOP_POOL}": ${info.hosts.length} hosts (master ${masterName(loop)}), ${vmRecords(loop).length} VMs, HA off, xenha-heartbeat on every host; dead-after ${seconds(exporterDeadAfter)}; remediation ${loop.remediationConfig.remediation.mode} with fence_dummy`,
  );
  t.say(`waiting for every host to be healthy on the exporter and for Prometheus to scrape it`);
  await t.until('every host healthy on the exporter', () => {
    const names = t.hostNames();
    return names.length === info.hosts.length && names.every((n) => t.state(n) === 'healthy');
  });
  await t.until(`Prometheus scraping the exporter (job ${PROMETHEUS_JOBS.exporter})`, async () => {
    const r = await t.json<Targets>(`${t.prometheus}/api/v1/targets`);
    return r.data.activeTargets.some((x) => x.labels.job === PROMETHEUS_JOBS.exporter && x.health === 'up');
  });
  await t.until('the alert rules loaded in Prometheus', async () => {
    await t.loadRules();
    return t.hasRule('XenhaHostDead') && t.hasRule('XenhaHostOnePathDown');
  });
  const fencesBefore = () => loop.sim.pool.eventLog().filter((e) => e.kind === 'power' && e.detail.state === 'off').length;

  // 1. network-only
  t.phase(
    'network-only',
    1,
    `${cast.network}'s management network cut on every home; its xenha-heartbeat slot is still written (alive on storage)`,
  );
  await onePath(t, loop, cast.network, 'network', opts.waitForWarnings !== false, fencesBefore());

  // 2. storage-only
  t.phase('storage-only', 2, `${cast.storage}'s heartbeat SR legs cut on every home; it still answers on its management network`);
  await onePath(t, loop, cast.storage, 'storage', false, fencesBefore());

  // 3. host-death
  const victimVms = protectedOn(loop, cast.victim);
  t.phase('host-death', 3, `${cast.victim} crashes with ${victimVms.length} protected VM(s) running on it`);
  sayVms(t, victimVms);
  const crash = await t.fault({ kind: 'host-crash', host: cast.victim });
  const r3 = await recovery(t, loop, cast.victim, crash, victimVms);

  // 4. master-death
  const master = masterName(loop);
  const masterVms = protectedOn(loop, master);
  t.phase('master-death', 4, `the master ${master} crashes with ${masterVms.length} protected VM(s) running on it`);
  sayVms(t, masterVms);
  const crashM = await t.fault({ kind: 'master-crash' });
  const r4 = await recovery(t, loop, master, crashM, masterVms);
  t.say(`the pool's master is ${masterName(loop)} now`);

  // 5. heal
  t.phase('heal', 5, 'every fault cleared, the fenced hosts powered on (as their BMC would), every host healthy again');
  await t.fault({ kind: 'heal' });
  for (const h of loop.sim.info().hosts) {
    if (powerFileSays(h.powerFile) !== 'off') continue;
    const how = await powerOn(h.powerFile, t.signal);
    t.say(`${h.name} powered on: ${how}`);
  }
  await t.until('every host healthy on the exporter', () => t.hostNames().every((n) => t.state(n) === 'healthy'));
  await t.until('the host alerts resolved in Prometheus', () => !t.activeAlerts().some((a) => HOST_ALERTS.has(a.labels.alertname ?? '')));
  t.say('every host healthy, no host alert active');

  // The summary.
  const fired = [...new Set(t.alertLog.filter((a) => a.state === 'firing').map((a) => a.key))];
  const pendingOnly = [...new Set(t.alertLog.filter((a) => a.state === 'pending').map((a) => a.key))].filter((k) => !fired.includes(k));
  const plans = t.allPlans();
  const fences = plans.flatMap((p) =>
    p.steps
      .filter((s) => s.step.kind === 'fence')
      .map((s) => `${p.names[(s.step as { host: string }).host] ?? '?'} (${s.outcome ?? s.state})`),
  );
  const starts = plans.flatMap((p) =>
    p.steps
      .filter((s) => s.step.kind === 'start-vm' && s.state === 'done')
      .map((s) => ({
        what: `${p.names[(s.step as { vm: string }).vm] ?? '?'} → ${p.names[(s.step as { host: string }).host] ?? '?'}`,
        bestEffort: s.step.reason.startsWith('best-effort'),
      })),
  );
  const bestEffort = starts.filter((x) => x.bestEffort).length;
  const onePathFenced = t.unexpected.some((u) => u.includes('-only fault'));
  const refusals = t.allIncidents().flatMap((i) => i.refusals.map((r) => `${i.hostName}: ${r.gate}`));
  t.say('summary:');
  t.say(`  faults: ${t.faults.join(', ')}`);
  t.say(`  alerts fired: ${fired.join(', ') || 'none'}${pendingOnly.length ? `; pending only: ${pendingOnly.join(', ')}` : ''}`);
  t.say(`  fences: ${fences.join(', ') || 'none'}${onePathFenced ? '' : ' (none for the one-path faults)'}`);
  t.say(
    `  VMs restarted: ${starts.length}${starts.length ? ` (${starts.length - bestEffort} restart priority, ${bestEffort} best-effort): ${starts.map((x) => x.what).join(', ')}` : ''}`,
  );
  t.say(
    `  crash → last protected VM running: ${cast.victim} ${r3.lastMs === null ? 'n/a' : seconds(r3.lastMs)}, ${master} (master) ${r4.lastMs === null ? 'n/a' : seconds(r4.lastMs)}`,
  );
  t.say(`  master: ${t.masterChanges.join(', ') || 'unchanged'}`);
  t.say(`  refusals: ${refusals.length ? refusals.join(', ') : 'none'}`);
  if (t.unexpected.length) t.say(`  unexpected: ${t.unexpected.join('; ')}`);
}

/**
 * Plays the tour on a running loop, printing its timeline through `out`. Resolves when the tour is over,
 * or soon after `signal` aborts; rejects when the loop lacks what the tour needs (Prometheus and
 * Alertmanager, enforce mode, 3 hosts) or a wait times out.
 */
export async function runTour(loop: RunningLoop, out: (line: string) => void, signal: AbortSignal, opts: TourOptions = {}): Promise<void> {
  requireLoop(loop, out);
  const t = new Tour(loop, out, signal, opts);
  try {
    await tour(t, loop, opts);
  } catch (e) {
    if (e instanceof Aborted || signal.aborted) {
      t.say('the tour stopped (aborted)');
      return;
    }
    throw e;
  }
}
