/**
 * The whole loop end to end, with every real part: the simulator (HA off, the real xenha-heartbeat on
 * every host), the exporter, real Prometheus with the repository's alert rules, real Alertmanager with
 * deploy/alertmanager.yml, the remediation service in enforce mode, Debian's real fence_dummy powering
 * the simulated hosts. Nothing here posts to the webhook: every notification is Alertmanager's.
 *
 * What is checked is read from outside the code under test: the simulator's own event log (power
 * changes, VM starts with their host and time), its database (where VMs run, who is master) and
 * Prometheus' alerts API, polled by the test.
 *
 * 1. Network-only fault: XenhaHostOnePathDown fires, XenhaHostDead never, nothing fenced.
 * 2. Host crash: XenhaHostDead, Alertmanager calls the webhook, fence_dummy powers the host off, its
 *    protected VMs run on survivors in `order`, after the power-off; the time is printed.
 * 3. Master crash: a new master, then the restarts.
 * 4. Observer isolation: nothing fenced over counted evaluation rounds.
 * 5. Alertmanager restarted mid-incident without its data (as a container without a volume): it sends
 *    the notification again; the service takes it as a duplicate; nothing is done twice.
 *
 * The tests share one loop and run in order (each leaves the pool healed). Short timing (dead-after
 * 3 s, a 250 ms heartbeat) keeps the suite fast; Prometheus resends alerts every second (instead of
 * its 1 m default) so that a restarted Alertmanager hears of the alert at once. Prometheus loads a copy
 * of alerts/xenha.rules.yml in which only XenhaHostOnePathDown's `for:` is shortened (1m → 10s: test 1
 * waits for it to fire), every other rule as the checkout has it (test 6 runs the checkout's own file's
 * expressions). Loopback only, free ports, the loop stopped in afterAll even when a test fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse, stringify } from 'yaml';
import { dashboardQueries, instantiate } from '../../dashboards/index.ts';
import { routeLibraryLogs } from '../../io/library-logs.ts';
import type { RunningLoop } from '../../loop/loop.ts';
import { alertRuleFiles } from '../../loop/repo.ts';
import { generatePoolSpec, type PoolSpec } from '../../simulator/pool-spec.ts';
import { applyFault } from '../../simulator/faults.ts';
import { getJson, loopAllHealthy, requireLoopBinaries, startFastLoop } from '../helpers/loop.ts';
import { waitFor } from '../helpers/wait.ts';

const DEAD_AFTER_MS = 3_000;
/** Rounds a "never" is held over: Prometheus' alerts polled this many times, one evaluation (1 s) apart at least. */
const NEVER_ROUNDS = 8;
/** XenhaHostOnePathDown's `for:` in the copy of the rules this loop loads (the checkout's says 1m). */
const ONE_PATH_FOR = '10s';

let loop: RunningLoop;
let restoreLogs: (() => void) | undefined;
let rulesDir: string | undefined;

/**
 * The checkout's rule files, alerts/xenha.rules.yml replaced by a copy in which only
 * XenhaHostOnePathDown's `for:` is ONE_PATH_FOR (test 1 would otherwise wait its full minute).
 */
function ruleFilesWithShortOnePathFor(dir: string): string[] {
  const xenha = alertRuleFiles().find((f) => f.endsWith('/xenha.rules.yml'));
  if (!xenha) throw new Error('alerts/xenha.rules.yml not found in the checkout');
  const rules = parse(readFileSync(xenha, 'utf8')) as { groups: { rules: { alert?: string; for?: string }[] }[] };
  const onePath = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert === 'XenhaHostOnePathDown');
  if (onePath.length !== 1 || onePath[0]!.for !== '1m')
    throw new Error(`expected one XenhaHostOnePathDown with for: 1m in ${xenha}, found ${JSON.stringify(onePath)}`);
  onePath[0]!.for = ONE_PATH_FOR;
  const copy = join(dir, 'xenha.rules.yml');
  writeFileSync(copy, stringify(rules));
  return alertRuleFiles().map((f) => (f === xenha ? copy : f));
}

function spec(): PoolSpec {
  const s = generatePoolSpec({ hosts: 6, vms: 48, seed: 12 });
  // A 1 s start_delay on every VM: plans take a few seconds, so that test 5 restarts Alertmanager mid-plan.
  return { ...s, vms: s.vms.map((v) => ({ ...v, startDelay: 1 })) };
}

beforeAll(async () => {
  requireLoopBinaries();
  // xen-api's own warnings (its event watch cut by a crashed master) go to a silent logger, as the CLI routes them.
  restoreLogs = routeLibraryLogs(pino({ level: 'silent' }));
  rulesDir = mkdtempSync(join(tmpdir(), 'xenha-e2e-rules-'));
  loop = await startFastLoop(DEAD_AFTER_MS, {
    addressBase: '127.0.108.1',
    ruleFiles: ruleFilesWithShortOnePathFor(rulesDir),
    spec: spec(),
  });
  await allHealthy();
}, 180_000);

afterAll(async () => {
  try {
    await loop?.stop();
  } finally {
    restoreLogs?.();
    if (rulesDir) rmSync(rulesDir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ what the test reads from outside

const pool = () => loop.sim.pool;
const db = () => pool().built.db;
const uuidOf = (name: string) => pool().host(name).built.uuid;
const hostNameOfRef = (ref: string) => pool().hosts.find((h) => h.built.ref === ref)?.built.name;

/** Every host healthy on both paths' evidence in the exporter's and the service's view, its heartbeat slot written, Prometheus scraping. */
const allHealthy = () => loopAllHealthy(loop, { evidenceMs: 60_000, prometheusMs: 30_000, prometheusPollMs: 250 });

async function promQuery(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const r = await getJson<{ data: { result: { metric: Record<string, string>; value: [number, string] }[] } }>(
    `${loop.urls.prometheus}/api/v1/query?query=${encodeURIComponent(q)}`,
  );
  return r.data.result;
}

interface PromAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}
async function alerts(): Promise<PromAlert[]> {
  return (await getJson<{ data: { alerts: PromAlert[] } }>(`${loop.urls.prometheus}/api/v1/alerts`)).data.alerts;
}
const hostDead = (as: PromAlert[]) => as.filter((a) => a.labels.alertname === 'XenhaHostDead');

/** The simulator's events since `seq`. */
const eventsSince = (seq: number) =>
  pool()
    .eventLog()
    .filter((e) => e.seq > seq);
const lastSeq = () => pool().eventLog().at(-1)?.seq ?? 0;
const powerOffs = (since: number) => eventsSince(since).filter((e) => e.kind === 'power' && e.detail.state === 'off');
const vmStarts = (since: number) => eventsSince(since).filter((e) => e.kind === 'vm' && e.detail.action === 'start');

/**
 * The protected (restart) VMs running on a host now: name, order, and whether a disk of theirs is on an
 * SR that is not shared (the host's local storage: no other host can start them, and the planner must
 * leave them unplaced), read from the database's VBD → VDI → SR links.
 */
function protectedOn(name: string): { name: string; order: number; local: boolean }[] {
  const ref = pool().host(name).built.ref;
  const rec = (cls: string, r: unknown) => db().peek(cls, r as string) as Record<string, unknown>;
  return db()
    .all('VM')
    .filter(([, v]) => v.resident_on === ref && !v.is_control_domain && v.power_state === 'Running' && v.ha_restart_priority === 'restart')
    .map(([, v]) => ({
      name: v.name_label as string,
      order: Number(v.order ?? 0),
      local: (v.VBDs as string[]).some((vbd) => {
        const vdi = rec('VBD', vbd).VDI;
        return vdi !== 'OpaqueRef:NULL' && rec('SR', rec('VDI', vdi).SR).shared === false;
      }),
    }));
}

/** A non-master host with protected VMs, not one of `exclude`. */
function victimWithProtectedVms(exclude: string[] = []): string {
  const h = pool().hosts.find(
    (x) => x !== pool().master && !exclude.includes(x.built.name) && protectedOn(x.built.name).some((v) => !v.local),
  );
  if (!h) throw new Error('no non-master host with protected VMs left');
  return h.built.name;
}

/** Heals every fault and powers every host on as a BMC would; waits until all are healthy again. */
async function healAll(): Promise<void> {
  applyFault(pool(), { kind: 'heal' });
  for (const h of loop.sim.info().hosts) writeFileSync(h.powerFile, 'on');
  pool().pollPowerFiles();
  await waitFor('every host up', () => pool().hosts.every((h) => pool().isUp(h)), { timeoutMs: 20_000 });
  await allHealthy();
}

/** Polls Prometheus' alerts at least `rounds` times, one evaluation apart, while `also` holds; returns every XenhaHostDead seen. */
async function watchNever(rounds: number, also: () => void = () => {}): Promise<PromAlert[]> {
  const seen: PromAlert[] = [];
  for (let i = 0; i < rounds; i++) {
    seen.push(...hostDead(await alerts()));
    also();
    await new Promise((r) => setTimeout(r, 1_000));
  }
  return seen;
}

/** The incidents for `host` opened at or after `after` (an ISO time: the crash's). */
const incidentsFor = (host: string, after: string) =>
  [...loop.remediation.state.incidents.values()].filter((i) => i.host === uuidOf(host) && i.openedAt >= after);

/** Waits for the plan of the incident for `host` opened since `after` (by Alertmanager's notification) to finish. */
async function finishedPlanFor(host: string, after: string, timeoutMs: number) {
  return waitFor(
    `the plan for ${host} to finish`,
    () => {
      const inc = incidentsFor(host, after).find((i) => i.plan !== null);
      const p = inc?.plan ? loop.remediation.state.plans.get(inc.plan) : undefined;
      return p && p.state !== 'running' ? { incident: inc!, plan: p } : undefined;
    },
    { timeoutMs, intervalMs: 50 },
  );
}

/**
 * Waits until every one of `all` that is not on local storage has a start event since `since`, after
 * checking that the plan left exactly the local ones unplaced; else fails with what the plan did of them.
 */
async function allStarted(
  all: { name: string; local: boolean }[],
  since: number,
  plan: { unplaced: { name: string; reason: string }[]; steps: { step: unknown; state: string; outcome: string | null }[] },
) {
  const vms = all.filter((v) => !v.local);
  expect(
    plan.unplaced
      .map((u) => u.name)
      .filter((n) => all.some((v) => v.name === n))
      .sort(),
    `unplaced: the protected VMs with a local disk (the plan's unplaced: ${JSON.stringify(plan.unplaced).slice(0, 2000)})`,
  ).toEqual(
    all
      .filter((v) => v.local)
      .map((v) => v.name)
      .sort(),
  );
  await waitFor('every protected VM started', () => vms.every((v) => vmStarts(since).some((e) => e.detail.vm === v.name)), {
    timeoutMs: 10_000,
  }).catch((e: Error) => {
    const started = vmStarts(since).map((x) => `${String(x.detail.vm)}@${x.host}`);
    throw new Error(
      `${e.message}: protected ${vms.map((v) => v.name).join(', ')}; started ${started.join(', ')}; unplaced ${JSON.stringify(plan.unplaced)}; ` +
        `steps ${JSON.stringify(plan.steps.filter((x) => (x.step as { kind: string }).kind !== 'wait').map((x) => [x.step, x.state, x.outcome]))}`.slice(
          0,
          4000,
        ),
    );
  });
}

/**
 * The protected VMs of the dead host each started once, on another live host, after the host's power-off,
 * by `order` ascending (the simulator's event order), all of them running now.
 */
function checkRestarts(host: string, all: { name: string; order: number; local: boolean }[], since: number): void {
  const off = powerOffs(since).filter((e) => e.host === host);
  expect(off, `${host} powered off exactly once`).toHaveLength(1);
  // Those on the dead host's local storage cannot start anywhere else: never started.
  const vms = all.filter((v) => !v.local);
  for (const v of all.filter((x) => x.local))
    expect(
      vmStarts(since).filter((e) => e.detail.vm === v.name),
      `${v.name} (local disk) not started`,
    ).toEqual([]);
  const starts = vmStarts(since).filter((e) => vms.some((v) => v.name === e.detail.vm));
  for (const v of vms) {
    const mine = starts.filter((e) => e.detail.vm === v.name);
    expect(mine, `${v.name} started exactly once`).toHaveLength(1);
    expect(mine[0]!.seq, `${v.name} started after ${host}'s power-off`).toBeGreaterThan(off[0]!.seq);
    expect(mine[0]!.host, `${v.name} started on another host`).not.toBe(host);
    const rec = db()
      .all('VM')
      .find(([, r]) => r.name_label === v.name)![1];
    expect(rec.power_state, `${v.name} running now`).toBe('Running');
    expect(hostNameOfRef(rec.resident_on as string)).not.toBe(host);
  }
  const orders = starts.map((e) => vms.find((v) => v.name === e.detail.vm)!.order);
  expect(orders, 'protected VMs started by order ascending').toEqual([...orders].sort((a, b) => a - b));
}

// ------------------------------------------------------------------ the stories

describe('the whole loop: simulator, exporter, Prometheus, Alertmanager, remediation, fence_dummy', () => {
  it('1. a network-only fault: XenhaHostOnePathDown fires, XenhaHostDead never does, nothing is fenced', async () => {
    const host = victimWithProtectedVms();
    const since = lastSeq();
    applyFault(pool(), { kind: 'network-down', host });
    const deadSeen: PromAlert[] = [];
    const onePath = await waitFor(
      `XenhaHostOnePathDown firing for ${host}`,
      async () => {
        const as = await alerts();
        deadSeen.push(...hostDead(as));
        return as.find((a) => a.labels.alertname === 'XenhaHostOnePathDown' && a.labels.host === host && a.state === 'firing');
      },
      // The rule's `for:` (ONE_PATH_FOR in this loop's copy of the rules), after the exporter's verdict.
      { timeoutMs: 40_000, intervalMs: 500 },
    );
    expect(onePath.labels.state).toBe('network_isolated');
    expect(onePath.labels.remediation).toBeUndefined();
    deadSeen.push(...(await watchNever(NEVER_ROUNDS)));
    expect(deadSeen, 'XenhaHostDead pending or firing at any poll').toEqual([]);
    expect(powerOffs(since), 'power-offs').toEqual([]);
    expect(
      [...loop.remediation.state.incidents.values()].filter((i) => i.host === uuidOf(host)),
      'incidents',
    ).toEqual([]);
    await healAll();
  }, 120_000);

  it('2. a host crash: XenhaHostDead reaches the webhook, fence_dummy powers it off, its protected VMs run on survivors in order', async () => {
    const host = victimWithProtectedVms();
    const vms = protectedOn(host);
    const since = lastSeq();
    const t0 = performance.now();
    const crashedAt = new Date().toISOString();
    applyFault(pool(), { kind: 'host-crash', host });
    const firing = await waitFor(
      `XenhaHostDead firing for ${host}`,
      async () => hostDead(await alerts()).find((a) => a.labels.host === host && a.state === 'firing'),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(firing.labels).toMatchObject({ pool: 'sim', host_uuid: uuidOf(host), remediation: 'xenha' });
    const { incident, plan } = await finishedPlanFor(host, crashedAt, 60_000);
    expect(plan.state, `${plan.stateReason}`).toBe('done');
    expect(incident.hostName).toBe(host);
    await allStarted(vms, since, plan);
    const ms = performance.now() - t0;
    checkRestarts(host, vms, since);
    expect(
      powerOffs(since).map((e) => e.host),
      'only the dead host powered off',
    ).toEqual([host]);
    process.stdout.write(
      `loop e2e: ${host} crashed → its ${vms.length} protected VMs running in ${(ms / 1000).toFixed(2)} s (dead-after ${DEAD_AFTER_MS / 1000} s, start_delays ${vms.length} s)\n`,
    );
    await healAll();
  }, 120_000);

  it('3. a master crash: a new master first, then the restarts', async () => {
    const master = pool().master.built.name;
    const vms = protectedOn(master);
    const since = lastSeq();
    const crashedAt = new Date().toISOString();
    applyFault(pool(), { kind: 'master-crash' });
    const { plan } = await finishedPlanFor(master, crashedAt, 90_000);
    expect(plan.state, `${plan.stateReason}`).toBe('done');
    const newMaster = pool().master.built.name;
    expect(newMaster).not.toBe(master);
    expect(pool().isUp(pool().master)).toBe(true);
    const masterChange = eventsSince(since).find((e) => e.kind === 'master');
    expect(masterChange, 'a master change in the event log').toBeDefined();
    await waitFor(
      'every protected VM of the old master started',
      () => vms.every((v) => vmStarts(since).some((e) => e.detail.vm === v.name)),
      {
        timeoutMs: 10_000,
      },
    );
    checkRestarts(master, vms, since);
    for (const s of vmStarts(since).filter((e) => vms.some((v) => v.name === e.detail.vm)))
      expect(s.seq, 'restarts after the new master took over').toBeGreaterThan(masterChange!.seq);
    await healAll();
  }, 150_000);

  it('4. observer isolation: the monitor cut off from every host fences nothing', async () => {
    const since = lastSeq();
    const incidents0 = loop.remediation.state.incidents.size;
    applyFault(pool(), { kind: 'observer-isolation' });
    await waitFor(
      'Prometheus: xenha_pool_observer_isolated 1',
      async () => Number((await promQuery('xenha_pool_observer_isolated{pool="sim"}'))[0]?.value[1]) === 1,
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    // Held for more than twice dead-after, every poll one evaluation apart.
    const seen = await watchNever(Math.max(NEVER_ROUNDS, Math.ceil((3 * DEAD_AFTER_MS) / 1000)));
    expect(seen, 'XenhaHostDead pending or firing at any poll').toEqual([]);
    expect(powerOffs(since), 'power-offs').toEqual([]);
    expect(loop.remediation.state.incidents.size, 'incidents').toBe(incidents0);
    await healAll();
  }, 120_000);

  it('5. Alertmanager restarted mid-incident without its data: it sends again, nothing is done twice', async () => {
    const am = loop.alertmanager!;
    const host = victimWithProtectedVms();
    const vms = protectedOn(host);
    const uuid = uuidOf(host);
    const since = lastSeq();
    const crashedAt = new Date().toISOString();
    applyFault(pool(), { kind: 'host-crash', host });
    const incident = await waitFor(`an incident for ${host} from Alertmanager`, () => incidentsFor(host, crashedAt)[0], {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    // Restarted as a container without a volume would be: its notification log gone. Mid-incident: its plan not finished yet.
    const planAtRestart = () => {
      const inc = loop.remediation.state.incidents.get(incident.id);
      return inc?.plan ? loop.remediation.state.plans.get(inc.plan)?.state : undefined;
    };
    expect(planAtRestart(), 'the plan when Alertmanager restarts').not.toBe('done');
    await am.restart({ wipe: true });
    await waitFor(
      'the restarted Alertmanager to send the notification again (a duplicate at the service)',
      () => (loop.remediation.state.incidents.get(incident.id)?.duplicates ?? 0) > 0,
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const { plan } = await finishedPlanFor(host, crashedAt, 60_000);
    expect(plan.state, `${plan.stateReason}`).toBe('done');
    await allStarted(vms, since, plan);
    // A while longer: more re-sends may land; still nothing twice.
    await watchNever(3);
    checkRestarts(host, vms, since);
    expect(powerOffs(since).map((e) => e.host)).toEqual([host]);
    const plans = [...loop.remediation.state.plans.values()].filter((p) => p.host === uuid && p.createdAt >= incident.openedAt);
    expect(plans, 'one plan for the incident').toHaveLength(1);
    expect([...loop.remediation.state.incidents.values()].filter((i) => i.host === uuid && i.openedAt >= incident.openedAt)).toHaveLength(
      1,
    );
    await healAll();
  }, 150_000);

  it('6. every PromQL expression of the dashboards and the alert rules runs on this Prometheus; the key panels return data', async () => {
    const host = pool().hosts[0]!.built.name;
    const exprs: { what: string; expr: string; key: boolean }[] = dashboardQueries().map((q) => ({
      what: `dashboard ${q.dashboard} / ${q.panel}`,
      expr: instantiate(q.expr, { pool: 'sim', host }),
      key: q.key,
    }));
    const rules = parse(readFileSync(new URL('../../alerts/xenha.rules.yml', import.meta.url), 'utf8')) as {
      groups: { rules: { alert?: string; record?: string; expr: string }[] }[];
    };
    for (const g of rules.groups) for (const r of g.rules) exprs.push({ what: `rule ${r.alert ?? r.record}`, expr: r.expr, key: false });
    expect(exprs.length).toBeGreaterThan(20);
    const failed: string[] = [];
    const empty: string[] = [];
    for (const e of exprs) {
      const res = await fetch(`${loop.urls.prometheus}/api/v1/query?query=${encodeURIComponent(e.expr)}`, {
        signal: AbortSignal.timeout(5_000),
      });
      const body = (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
      if (res.status !== 200 || body.status !== 'success') failed.push(`${e.what}: ${res.status} ${body.error ?? ''} (${e.expr})`);
      else if (e.key && (body.data?.result.length ?? 0) === 0) empty.push(`${e.what}: ${e.expr}`);
    }
    expect(failed, 'expressions Prometheus refused').toEqual([]);
    expect(empty, 'key panels without data').toEqual([]);
  }, 60_000);
});
