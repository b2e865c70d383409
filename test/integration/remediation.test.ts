/**
 * The remediation service end to end against an HA-off simulated pool running xenha-heartbeat on every
 * host, with Debian's real fence_dummy powering hosts off through the simulator's power files, and
 * Alertmanager's notifications posted as Alertmanager posts them. What is checked is read from the
 * simulator's own records (power state, VM records, its event log), never from the service's word:
 * - a dead host is fenced (once), then its protected VMs run on survivors, in the planner's order;
 *   a duplicate notification changes nothing;
 * - a network-only fault is refused with its reason (its own verdict is not dead), nothing powered off;
 * - dry-run plans and changes nothing in the pool;
 * - a fence agent that fails stops the plan with nothing restarted; `ack` after the host is off by hand
 *   restarts its VMs;
 * - a dead master is replaced before any restart.
 * Real time (the daemons run on the wall clock); every wait bounded; everything stopped in afterAll.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startRemediation, type RunningRemediation } from '../../remediation/service.ts';
import type { Plan } from '../../remediation/state.ts';
import { applyFault } from '../../simulator/faults.ts';
import { generatePoolSpec, type PoolSpec } from '../../simulator/pool-spec.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { notification } from '../helpers/alertmanager.ts';
import { EXPORTER_PASSWORD_ENV, healthyOnEvidence } from '../helpers/exporter.ts';
import { PASSWORD, requireFile, startTestSim } from '../helpers/sim.ts';
import { waitFor } from '../helpers/wait.ts';
import { FENCE_DUMMY, fenceAgentHosts, serviceConfig, slotWritten } from '../helpers/remediation.ts';
import { run, xenha } from '../helpers/run.ts';

const PROMTOOL = '/usr/bin/promtool';
const TOKEN = 'e2e-webhook-token';

let dir: string;
let sim: Simulator;
const services: RunningRemediation[] = [];

/** One VM in three with a start delay of 1 s (the plan waits), the others none: the test stays short. */
function spec(): PoolSpec {
  const s = generatePoolSpec({ hosts: 4, vms: 16, seed: 41 });
  return { ...s, haEnabled: false, vms: s.vms.map((v, i) => ({ ...v, startDelay: i % 3 === 0 ? 1 : 0 })) };
}

beforeAll(async () => {
  requireFile(FENCE_DUMMY, 'apt-get install fence-agents');
  dir = mkdtempSync(join(tmpdir(), 'xenha-remediation-'));
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  chmodSync(join(dir, 'token'), 0o600);
  process.env[EXPORTER_PASSWORD_ENV] = PASSWORD;
  sim = await startTestSim({ spec: spec(), addressBase: '127.0.64.1', heartbeat: { intervalMs: 100, peerWindowMs: 400 } });
}, 30_000);

/** Every host back: faults healed, hosts powered on through their power files as a BMC would, all booted. */
afterEach(async () => {
  applyFault(sim.pool, { kind: 'heal' });
  for (const h of sim.info().hosts) writeFileSync(h.powerFile, 'on');
  sim.pool.pollPowerFiles();
  await waitFor('every host up again', () => sim.pool.hosts.every((h) => sim.pool.isUp(h)), { timeoutMs: 5000 });
});

afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** fence_dummy on each host's power file; on the hosts in `fail`, its `fail` type (every call fails, after 1 s). */
const fenceLevels = (fail: string[] = []) =>
  fenceAgentHosts(sim, FENCE_DUMMY, (h) =>
    fail.includes(h.name) ? { type: 'fail', power_timeout: 1 } : { type: 'file', status_file: h.powerFile },
  );

/** Starts a service for one test; the previous test's is stopped first (each watches the pool: one at a time keeps the load down). */
async function start(name: string, mode: 'enforce' | 'dry-run' | 'manual', fail: string[] = []): Promise<RunningRemediation> {
  await Promise.all(services.splice(0).map((x) => x.stop()));
  const config = serviceConfig(sim, dir, name, { mode, pools: { sim: { fence: { hosts: fenceLevels(fail) } } } });
  const s = await startRemediation(config, pino({ level: 'silent' }));
  services.push(s);
  return s;
}

async function post(
  s: RunningRemediation,
  body: unknown,
): Promise<{ status: number; body: { incidents?: { outcome: string; reason?: string; incident?: string }[] } }> {
  const res = await fetch(`${s.url}/webhook/alertmanager`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as never };
}

const db = () => sim.pool.built.db;
const hostRef = (name: string) => sim.pool.host(name).built.ref;
const ownState = (s: RunningRemediation, name: string) => s.samplers[0]!.state.memory?.hosts[sim.pool.host(name).built.uuid]?.state;
/**
 * Healthy on the evidence of both paths (not only by rule `initial` before any probe could tell), and
 * its heartbeat slot written: a host whose daemon never wrote one cannot be called dead on the storage
 * path (a never-written slot proves nothing), as xenha_heartbeat_written_all_hosts would say.
 */
const ownHealthy = (s: RunningRemediation, name: string) =>
  healthyOnEvidence(s.samplers[0]!, sim.pool.host(name).built.uuid) && slotWritten(sim, sim.pool.host(name).built.uuid);

/** The protected (restart) VMs the database has running on the host now, by name. */
function protectedOn(name: string): string[] {
  return db()
    .all('VM')
    .filter(
      ([, v]) =>
        v.resident_on === hostRef(name) && !v.is_control_domain && v.power_state === 'Running' && v.ha_restart_priority === 'restart',
    )
    .map(([, v]) => v.name_label as string)
    .sort();
}

function vmByName(name: string) {
  return db()
    .all('VM')
    .find(([, v]) => v.name_label === name)![1];
}

const powerEvents = (name: string) => sim.pool.eventLog().filter((e) => e.kind === 'power' && e.host === name);

async function planOf(s: RunningRemediation, incident: string, states: Plan['state'][], timeoutMs = 20_000): Promise<Plan> {
  return waitFor(
    `a plan for ${incident} in ${states.join('/')}`,
    () => {
      const inc = s.state.incidents.get(incident);
      const p = inc?.plan ? s.state.plans.get(inc.plan) : undefined;
      return p && states.includes(p.state) ? p : false;
    },
    { timeoutMs, intervalMs: 50 },
  );
}

describe('remediation against an HA-off pool with xenha-heartbeat, fence_dummy and real XAPI', () => {
  it('a network-only fault is refused (its own verdict is not dead): nothing fenced', async () => {
    const s = await start('refuse', 'enforce');
    applyFault(sim.pool, { kind: 'network-down', host: 'host-02' });
    try {
      await waitFor('host-02 network_isolated in its own view', () => ownState(s, 'host-02') === 'network_isolated', { timeoutMs: 15_000 });
      const r = await post(s, notification([{ labels: { pool: 'sim', host: 'host-02' } }]));
      expect(r.status).toBe(200);
      expect(r.body.incidents?.[0]?.outcome).toBe('new');
      const inc = await waitFor('a refusal', () => s.state.incidents.get(r.body.incidents![0]!.incident!)?.refusals[0], {
        timeoutMs: 10_000,
      });
      expect(inc).toMatchObject({ gate: 'not-dead', ownState: 'network_isolated' });
      expect(s.state.plans.size).toBe(0);
      expect(powerEvents('host-02')).toEqual([]);
      const m = await (await fetch(`${s.url}/metrics`)).text();
      expect(m).toMatch(/xenha_remediation_refusals_total\{pool="sim",gate="not-dead"\} 1/);
    } finally {
      applyFault(sim.pool, { kind: 'heal', host: 'host-02' });
    }
  });

  it('a storage-only fault is refused too (its own verdict is storage_lost): nothing fenced', async () => {
    const s = await start('refuse-storage', 'enforce');
    const victim = sim.pool.hosts.find((h) => h !== sim.pool.master)!.built.name;
    await waitFor(`${victim} healthy`, () => ownHealthy(s, victim), { timeoutMs: 20_000 });
    const from = sim.pool.eventLog().at(-1)?.seq ?? 0;
    applyFault(sim.pool, { kind: 'storage-down', host: victim });
    await waitFor(`${victim} storage_lost in its own view`, () => ownState(s, victim) === 'storage_lost', { timeoutMs: 15_000 });
    const r = await post(s, notification([{ labels: { pool: 'sim', host: victim } }]));
    expect(r.status).toBe(200);
    const refusal = await waitFor('a refusal', () => s.state.incidents.get(r.body.incidents![0]!.incident!)?.refusals[0], {
      timeoutMs: 10_000,
    });
    expect(refusal).toMatchObject({ gate: 'not-dead', ownState: 'storage_lost' });
    expect(s.state.plans.size).toBe(0);
    expect(powerEvents(victim).filter((e) => e.seq > from)).toEqual([]);
  });

  it('dry-run: a plan is made and shown, nothing is done in the pool', async () => {
    const s = await start('dry', 'dry-run');
    const victim = 'host-04';
    const before = structuredClone(db().all('VM'));
    applyFault(sim.pool, { kind: 'host-crash', host: victim });
    try {
      await waitFor(`${victim} dead in its own view`, () => ownState(s, victim) === 'dead', { timeoutMs: 15_000 });
      const r = await post(s, notification([{ labels: { pool: 'sim', host: victim } }]));
      const plan = await planOf(s, r.body.incidents![0]!.incident!, ['dry-run']);
      expect(plan.steps.map((x) => x.step.kind)).toContain('fence');
      expect(plan.steps.every((x) => x.state === 'pending')).toBe(true);
      expect(powerEvents(victim)).toEqual([]);
      expect(db().all('VM')).toEqual(before);
      const api = (await (await fetch(`${s.url}/api/v1/plans/${plan.id}`)).json()) as { state: string };
      expect(api.state).toBe('dry-run');
    } finally {
      applyFault(sim.pool, { kind: 'heal', host: victim });
    }
    await waitFor(`${victim} back`, () => ownHealthy(s, victim), { timeoutMs: 15_000 });
  });

  it('a dead host is fenced once, then its protected VMs run on survivors in plan order; a duplicate changes nothing', async () => {
    const s = await start('enforce', 'enforce');
    const victim = 'host-03';
    await waitFor(`${victim} healthy in its own view`, () => ownHealthy(s, victim), { timeoutMs: 15_000 });
    const protectedVms = protectedOn(victim);
    expect(protectedVms.length).toBeGreaterThan(0);
    applyFault(sim.pool, { kind: 'host-crash', host: victim });
    await waitFor(`${victim} dead in its own view`, () => ownState(s, victim) === 'dead', { timeoutMs: 15_000 });
    const r = await post(s, notification([{ labels: { pool: 'sim', host: victim } }]));
    expect(r.status).toBe(200);
    const incident = r.body.incidents![0]!.incident!;
    const plan = await planOf(s, incident, ['done', 'needs-operator'], 40_000);
    expect(plan.state, JSON.stringify(plan.steps.map((x) => [x.step.kind, x.state, x.outcome, x.detail]))).toBe('done');
    // Fenced once, through fence_dummy's file: the simulator powered it off.
    expect(readFileSync(sim.info().hosts.find((h) => h.name === victim)!.powerFile, 'utf8').trim()).toBe('off');
    expect(powerEvents(victim).map((e) => e.detail.state)).toEqual(['off']);
    // Every protected VM it ran runs now on a live survivor, once.
    for (const name of protectedVms) {
      const v = vmByName(name);
      expect(v.power_state, name).toBe('Running');
      expect(v.resident_on, name).not.toBe(hostRef(victim));
    }
    // In the planner's order: `order` ascending (negative last), as the VM starts happened in the simulator.
    const starts = sim.pool
      .eventLog()
      .filter((e) => e.kind === 'vm' && e.detail.action === 'start')
      .map((e) => e.detail.vm as string)
      .filter((n) => protectedVms.includes(n));
    const orderOf = (n: string) => {
      const o = vmByName(n).order as number;
      return o < 0 ? Number.MAX_SAFE_INTEGER + o : o;
    };
    expect(starts).toHaveLength(protectedVms.length);
    expect(starts.map(orderOf)).toEqual([...starts.map(orderOf)].sort((a, b) => a - b));
    // Nothing started before the fence was confirmed: the first start comes after the power-off.
    const offAt = powerEvents(victim)[0]!.seq;
    expect(sim.pool.eventLog().filter((e) => e.kind === 'vm' && e.detail.action === 'start' && e.seq < offAt)).toEqual([]);

    // Alertmanager re-sends (and its peer sends its copy): one incident, nothing done twice.
    const dup = await post(s, notification([{ labels: { pool: 'sim', host: victim } }]));
    expect(dup.body.incidents?.[0]).toMatchObject({ outcome: 'duplicate', incident });
    const byUuid = await post(s, notification([{ labels: { pool: 'sim', host_uuid: sim.pool.host(victim).built.uuid } }]));
    expect(byUuid.body.incidents?.[0]).toMatchObject({ outcome: 'duplicate', incident });
    expect(s.state.plans.size).toBe(1);
    expect(powerEvents(victim)).toHaveLength(1);
    const m = await (await fetch(`${s.url}/metrics`)).text();
    expect(m).toMatch(/xenha_remediation_duplicate_alerts_total\{pool="sim"\} 2/);
    // Every protected VM of the dead host runs (read above from the simulator): none left unplaced.
    expect(m).toMatch(/^xenha_remediation_protected_vms_unplaced\{pool="sim"\} 0$/m);
  });

  it('a fence agent that fails stops the plan with nothing restarted; ack once the host is off by hand restarts its VMs', async () => {
    const s = await start('fail', 'enforce', ['host-04']);
    const victim = 'host-04';
    await waitFor(`${victim} healthy in its own view`, () => ownHealthy(s, victim), { timeoutMs: 20_000 });
    const protectedVms = protectedOn(victim);
    const before = new Map(protectedVms.map((n) => [n, structuredClone(vmByName(n))]));
    applyFault(sim.pool, { kind: 'host-crash', host: victim });
    await waitFor(`${victim} dead`, () => ownState(s, victim) === 'dead', { timeoutMs: 15_000 });
    const r = await post(s, notification([{ labels: { pool: 'sim', host: victim } }]));
    const plan = await planOf(s, r.body.incidents![0]!.incident!, ['needs-operator', 'done'], 30_000);
    expect(plan.state).toBe('needs-operator');
    expect(plan.steps.find((x) => x.step.kind === 'fence')).toMatchObject({ state: 'failed', outcome: 'failed' });
    for (const [n, v] of before) expect(vmByName(n), n).toEqual(v);
    // A person powers it off by hand, then acknowledges.
    writeFileSync(sim.info().hosts.find((h) => h.name === victim)!.powerFile, 'off');
    sim.pool.pollPowerFiles();
    // Two operators (or a retried CLI) at once: one ack takes the plan, the other is refused.
    const ack = () =>
      fetch(`${s.url}/api/v1/plans/${plan.id}/ack`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ by: 'e2e' }),
      });
    const statuses = (await Promise.all([ack(), ack()])).map((r) => r.status).sort();
    expect(statuses).toEqual([200, 409]);
    const done = await planOf(s, plan.incident, ['done'], 30_000);
    expect(done.steps.find((x) => x.step.kind === 'fence')).toMatchObject({ state: 'done', outcome: 'operator-confirmed' });
    expect(done.acks.map((a) => a.kind)).toEqual(['host-off']);
    expect(sim.shared.callCounts.get('VM.start_on') ?? 0).toBeGreaterThan(0);
    for (const n of protectedVms) expect(vmByName(n).power_state, n).toBe('Running');
    // Without the token, no ack.
    const anon = await fetch(`${s.url}/api/v1/plans/${plan.id}/ack`, { method: 'POST' });
    expect(anon.status).toBe(401);
  });

  it('a dead master is replaced before any restart', async () => {
    const s = await start('master', 'enforce');
    const master = sim.pool.master.built.name;
    await waitFor(`${master} healthy`, () => ownHealthy(s, master), { timeoutMs: 20_000 });
    const protectedVms = protectedOn(master);
    const crashSeq = applyFault(sim.pool, { kind: 'master-crash' }).seq;
    await waitFor(`${master} dead`, () => ownState(s, master) === 'dead', { timeoutMs: 20_000 });
    const r = await post(s, notification([{ labels: { pool: 'sim', host: master } }]));
    const plan = await planOf(s, r.body.incidents![0]!.incident!, ['done', 'needs-operator'], 40_000);
    expect(plan.state, JSON.stringify(plan.steps.map((x) => [x.step.kind, x.state, x.outcome, x.detail]))).toBe('done');
    const kinds = plan.steps.map((x) => x.step.kind);
    expect(kinds.indexOf('transition-master')).toBeGreaterThan(kinds.indexOf('confirm-fenced'));
    expect(kinds.indexOf('transition-master')).toBeLessThan(kinds.indexOf('start-vm') === -1 ? Infinity : kinds.indexOf('start-vm'));
    expect(sim.pool.master.built.name).not.toBe(master);
    const masterAt = sim.pool.eventLog().find((e) => e.kind === 'master' && e.detail.previous === master)!.seq;
    expect(
      sim.pool.eventLog().filter((e) => e.kind === 'vm' && e.detail.action === 'start' && e.seq > crashSeq && e.seq < masterAt),
    ).toEqual([]);
    for (const n of protectedVms) expect(vmByName(n).power_state, n).toBe('Running');
  });
});

describe('modes, refusals and the quiet period', () => {
  it('manual: the plan waits for ack; a resolved alert cancels it before it starts; nothing is done', async () => {
    const s = await start('manual', 'manual');
    const victim = 'host-02';
    await waitFor(`${victim} healthy`, () => ownHealthy(s, victim), { timeoutMs: 20_000 });
    const before = new Map(protectedOn(victim).map((n) => [n, structuredClone(vmByName(n))]));
    const offsBefore = powerEvents(victim).length;
    applyFault(sim.pool, { kind: 'host-crash', host: victim });
    try {
      await waitFor(`${victim} dead`, () => ownState(s, victim) === 'dead', { timeoutMs: 15_000 });
      const labels = { pool: 'sim', host: victim };
      const r = await post(s, notification([{ labels }]));
      const plan = await planOf(s, r.body.incidents![0]!.incident!, ['awaiting-ack']);
      expect(plan.mode).toBe('manual');
      const resolved = await post(s, notification([{ labels, status: 'resolved' }]));
      expect(resolved.body.incidents?.[0]).toMatchObject({ outcome: 'resolved', incident: plan.incident });
      await planOf(s, plan.incident, ['cancelled']);
      const late = await fetch(`${s.url}/api/v1/plans/${plan.id}/ack`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      expect(late.status).toBe(409);
      expect(powerEvents(victim)).toHaveLength(offsBefore);
      for (const [n, v] of before) expect(vmByName(n), n).toEqual(v);
    } finally {
      applyFault(sim.pool, { kind: 'heal', host: victim });
    }
  });

  it('an unknown pool or host is refused with its reason (422 when nothing of the notification is acceptable)', async () => {
    const s = await start('unknown', 'enforce');
    await waitFor('a view of the pool', () => s.samplers[0]!.state.snapshot !== null, { timeoutMs: 10_000 });
    const r = await post(s, notification([{ labels: { pool: 'nowhere', host: 'host-01' } }, { labels: { pool: 'sim', host: 'host-99' } }]));
    expect(r.status).toBe(422);
    expect(JSON.stringify(r.body)).toMatch(/unknown pool nowhere/);
    expect(JSON.stringify(r.body)).toMatch(/pool sim has no host host-99/);
    expect(s.state.incidents.size).toBe(0);
  });

  it('the quiet period: an alert right after start waits, then is planned once the period is over and its own view says dead', async () => {
    // Not the master: a service that starts while the master is dead has no view of the pool at all.
    const victim = sim.pool.hosts.find((h) => h !== sim.pool.master)!.built.name;
    await Promise.all(services.splice(0).map((x) => x.stop()));
    applyFault(sim.pool, { kind: 'host-crash', host: victim });
    try {
      const config = serviceConfig(sim, dir, 'quiet', {
        mode: 'dry-run',
        quietPeriod: '3s',
        pools: { sim: { fence: { hosts: fenceLevels() } } },
      });
      const startedAt = Date.now();
      const s = await startRemediation(config, pino({ level: 'silent' }));
      services.push(s);
      await waitFor('a view of the pool', () => s.samplers[0]!.state.snapshot !== null, { timeoutMs: 10_000 });
      const r = await post(s, notification([{ labels: { pool: 'sim', host: victim } }]));
      const incident = r.body.incidents![0]!.incident!;
      const first = await waitFor('the first evaluation', () => s.state.incidents.get(incident)?.refusals[0], { timeoutMs: 5000 });
      expect(first.gate).toBe('quiet-period');
      const plan = await planOf(s, incident, ['dry-run'], 15_000).catch((e: Error) => {
        throw new Error(`${e.message}; refusals ${JSON.stringify(s.state.incidents.get(incident)?.refusals)}`);
      });
      expect(Date.parse(plan.createdAt) - startedAt).toBeGreaterThanOrEqual(3000);
    } finally {
      applyFault(sim.pool, { kind: 'heal', host: victim });
    }
  });
});

describe('what the review found', () => {
  it('quorum: with most of the pool looking dead at once, nothing is fenced (every dead host counts, whatever its incident)', async () => {
    const s = await start('quorum', 'enforce');
    const victims = sim.pool.hosts.filter((h) => h !== sim.pool.master).map((h) => h.built.name);
    for (const v of victims) await waitFor(`${v} healthy`, () => ownHealthy(s, v), { timeoutMs: 20_000 });
    const from = sim.pool.eventLog().at(-1)?.seq ?? 0;
    for (const v of victims) applyFault(sim.pool, { kind: 'host-crash', host: v });
    for (const v of victims) await waitFor(`${v} dead`, () => ownState(s, v) === 'dead', { timeoutMs: 15_000 });
    const r = await post(s, notification([{ labels: { pool: 'sim', host: victims[0]! } }]));
    const refusal = await waitFor('a refusal', () => s.state.incidents.get(r.body.incidents![0]!.incident!)?.refusals[0], {
      timeoutMs: 10_000,
    });
    expect(refusal.gate).toBe('quorum');
    expect(s.state.plans.size).toBe(0);
    for (const v of victims) expect(powerEvents(v).filter((e) => e.seq > from && e.detail.state === 'off')).toEqual([]);
  });

  it('a resolved incident that fires again is checked again', async () => {
    const s = await start('refire', 'enforce');
    const victim = sim.pool.hosts.find((h) => h !== sim.pool.master)!.built.name;
    applyFault(sim.pool, { kind: 'network-down', host: victim });
    await waitFor(`${victim} network_isolated`, () => ownState(s, victim) === 'network_isolated', { timeoutMs: 15_000 });
    const labels = { pool: 'sim', host: victim };
    const r = await post(s, notification([{ labels }]));
    const id = r.body.incidents![0]!.incident!;
    await waitFor('the first refusal', () => s.state.incidents.get(id)?.refusals.length === 1, { timeoutMs: 10_000 });
    await post(s, notification([{ labels, status: 'resolved' }]));
    expect(s.state.incidents.get(id)?.resolvedAt).not.toBeNull();
    const again = await post(s, notification([{ labels }]));
    expect(again.body.incidents?.[0]).toMatchObject({ outcome: 'duplicate', incident: id });
    await waitFor('a second check, refused again', () => s.state.incidents.get(id)?.refusals.length === 2, { timeoutMs: 10_000 });
    expect(s.state.incidents.get(id)?.resolvedAt).toBeNull();
  });

  it("manual mode with a manual fence level: approving the plan is not a person's word that the host is off", async () => {
    await Promise.all(services.splice(0).map((x) => x.stop()));
    const config = serviceConfig(sim, dir, 'manual-fence', {
      mode: 'manual',
      pools: { sim: { fence: { default: { levels: [{ plugin: 'manual' }] } } } },
    });
    const s = await startRemediation(config, pino({ level: 'silent' }));
    services.push(s);
    const victim = sim.pool.hosts.find((h) => h !== sim.pool.master)!.built.name;
    await waitFor(`${victim} healthy`, () => ownHealthy(s, victim), { timeoutMs: 20_000 });
    const protectedVms = protectedOn(victim);
    applyFault(sim.pool, { kind: 'host-crash', host: victim });
    await waitFor(`${victim} dead`, () => ownState(s, victim) === 'dead', { timeoutMs: 15_000 });
    const r = await post(s, notification([{ labels: { pool: 'sim', host: victim } }]));
    const plan = await planOf(s, r.body.incidents![0]!.incident!, ['awaiting-ack']);
    const ack = (by: string) =>
      fetch(`${s.url}/api/v1/plans/${plan.id}/ack`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ by }),
      });
    expect((await ack('approver')).status).toBe(200);
    // Approved: the manual level asks a person to power it off, and nothing restarts before they say so.
    const waiting = await planOf(s, plan.incident, ['needs-operator', 'done'], 15_000);
    expect(waiting.state).toBe('needs-operator');
    expect(waiting.steps.find((x) => x.step.kind === 'fence')).toMatchObject({ state: 'failed', outcome: 'awaiting-operator' });
    for (const n of protectedVms) expect(vmByName(n).resident_on, n).toBe(hostRef(victim));
    // The person powers it off and says so.
    writeFileSync(sim.info().hosts.find((h) => h.name === victim)!.powerFile, 'off');
    sim.pool.pollPowerFiles();
    expect((await ack('operator')).status).toBe(200);
    const done = await planOf(s, plan.incident, ['done'], 30_000);
    expect(done.acks.map((a) => a.kind)).toEqual(['approve', 'host-off']);
    for (const n of protectedVms) expect(vmByName(n).power_state, n).toBe('Running');
  });

  it('stopping the service while a fence runs lets the fence finish: the step is journaled done, not cut', async () => {
    // fence_dummy behind a wrapper that takes a second over `off`.
    const agent = join(dir, 'slow-agent.sh');
    writeFileSync(
      agent,
      `#!/bin/sh\ninput=$(cat)\ncase "$input" in *action=off*) sleep 1;; esac\nprintf '%s\\n' "$input" | exec ${FENCE_DUMMY}\n`,
    );
    chmodSync(agent, 0o755);
    await Promise.all(services.splice(0).map((x) => x.stop()));
    const config = serviceConfig(sim, dir, 'slow', { pools: { sim: { fence: { hosts: fenceAgentHosts(sim, agent) } } } });
    const s = await startRemediation(config, pino({ level: 'silent' }));
    const victim = sim.pool.hosts.find((h) => h !== sim.pool.master)!.built.name;
    try {
      await waitFor(`${victim} healthy`, () => ownHealthy(s, victim), { timeoutMs: 20_000 });
      applyFault(sim.pool, { kind: 'host-crash', host: victim });
      await waitFor(`${victim} dead`, () => ownState(s, victim) === 'dead', { timeoutMs: 15_000 });
      const r = await post(s, notification([{ labels: { pool: 'sim', host: victim } }]));
      const incident = r.body.incidents![0]!.incident!;
      const fenceRunning = () => {
        const p = [...s.state.plans.values()].find((x) => x.incident === incident);
        return p?.steps[0]?.state === 'running' ? p : false;
      };
      const plan = await waitFor('the fence running', fenceRunning, { timeoutMs: 10_000, intervalMs: 10 });
      await s.stop();
      expect(plan.steps[0]).toMatchObject({ state: 'done', outcome: 'confirmed-off' });
      expect(powerEvents(victim).at(-1)?.detail.state).toBe('off');
    } finally {
      await s.stop();
    }
  });
});

describe('more of the executor and the service', () => {
  it('a VM whose disk is attached on another live host is not started; the others are; xenha plans shows it', async () => {
    // A pool of its own, as generated (earlier tests moved VMs around): the helpers read `sim`.
    const shared = sim;
    sim = await startTestSim({ spec: spec(), addressBase: '127.0.70.1', heartbeat: { intervalMs: 100, peerWindowMs: 400 } });
    const own = sim;
    const s = await start('disks', 'enforce');
    // The non-master host running the most protected VMs.
    const victim = sim.pool.hosts
      .filter((h) => h !== sim.pool.master)
      .map((h) => h.built.name)
      .sort((a, b) => protectedOn(b).length - protectedOn(a).length)[0]!;
    await waitFor(`${victim} healthy`, () => ownHealthy(s, victim), { timeoutMs: 20_000 });
    const protectedVms = protectedOn(victim);
    expect(protectedVms.length).toBeGreaterThan(1);
    // Another VM, running on a live survivor, has the first protected VM's disk attached too.
    const [blockedName, ...others] = protectedVms as [string, ...string[]];
    const d = db();
    const blocked = d.all('VM').find(([, v]) => v.name_label === blockedName)!;
    const vdi = d.peek('VBD', (blocked[1].VBDs as string[])[0]!).VDI as string;
    const survivor = sim.pool.hosts.find((h) => h.built.name !== victim && sim.pool.isUp(h))!;
    const holder = d
      .all('VM')
      .find(([, v]) => v.resident_on === survivor.built.ref && !v.is_control_domain && v.power_state === 'Running')!;
    const vbd = d.create('VBD', {
      ...structuredClone(d.peek('VBD', (blocked[1].VBDs as string[])[0]!)),
      uuid: crypto.randomUUID(),
      VM: holder[0],
      userdevice: '9',
      device: 'xvdj',
      currently_attached: true,
    });
    d.update('VM', holder[0], { VBDs: [...(holder[1].VBDs as string[]), vbd] });
    d.update('VDI', vdi, { VBDs: [...(d.peek('VDI', vdi).VBDs as string[]), vbd] });
    try {
      applyFault(sim.pool, { kind: 'host-crash', host: victim });
      await waitFor(`${victim} dead`, () => ownState(s, victim) === 'dead', { timeoutMs: 15_000 });
      const r = await post(s, notification([{ labels: { pool: 'sim', host: victim } }]));
      const plan = await planOf(s, r.body.incidents![0]!.incident!, ['done', 'needs-operator'], 40_000);
      const step = plan.steps.find((x) => x.step.kind === 'start-vm' && plan.names[(x.step as { vm: string }).vm] === blockedName)!;
      expect(step).toMatchObject({ state: 'failed', outcome: 'disks-in-use' });
      expect(vmByName(blockedName).power_state).toBe('Halted');
      for (const n of others) expect(vmByName(n).power_state, n).toBe('Running');
      expect(plan.stateReason).toMatch(new RegExp(`start-vm ${blockedName} \\(disks-in-use\\)`));
      // As a person reads it: the compiled CLI against the service.
      const out = await xenha(['plans', plan.id, '--url', s.url]);
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toMatch(new RegExp(`^plan ${plan.id} +pool sim +host ${victim} +done`));
      expect(out.stdout).toMatch(new RegExp(`failed +start-vm +${blockedName} +disks-in-use`));
    } finally {
      await Promise.all(services.splice(0).map((x) => x.stop()));
      sim = shared;
      await own.stop();
    }
  });

  it('a fence agent that hangs times out: the plan stops, nothing restarted; its metrics pass promtool', async () => {
    const agent = join(dir, 'hung-agent.sh');
    writeFileSync(agent, '#!/bin/sh\nexec sleep 1000\n');
    chmodSync(agent, 0o755);
    await Promise.all(services.splice(0).map((x) => x.stop()));
    const hosts = fenceAgentHosts(sim, agent, () => ({}), { timeoutMs: 500, killGraceMs: 100 });
    const s = await startRemediation(serviceConfig(sim, dir, 'hung', { pools: { sim: { fence: { hosts } } } }), pino({ level: 'silent' }));
    services.push(s);
    const victim = sim.pool.hosts.find((h) => h !== sim.pool.master)!.built.name;
    await waitFor(`${victim} healthy`, () => ownHealthy(s, victim), { timeoutMs: 20_000 });
    const before = new Map(protectedOn(victim).map((n) => [n, structuredClone(vmByName(n))]));
    applyFault(sim.pool, { kind: 'host-crash', host: victim });
    await waitFor(`${victim} dead`, () => ownState(s, victim) === 'dead', { timeoutMs: 15_000 });
    const r = await post(s, notification([{ labels: { pool: 'sim', host: victim } }]));
    const plan = await planOf(s, r.body.incidents![0]!.incident!, ['needs-operator', 'done'], 30_000);
    expect(plan.state).toBe('needs-operator');
    expect(plan.steps[0]).toMatchObject({ state: 'failed', outcome: 'timeout' });
    for (const [n, v] of before) expect(vmByName(n), n).toEqual(v);
    requireFile(PROMTOOL, 'apt-get install prometheus');
    const text = await (await fetch(`${s.url}/metrics`)).text();
    expect(text).toMatch(/xenha_remediation_plans_waiting_for_operator 1/);
    expect(text).toMatch(/xenha_remediation_actions_total\{kind="fence",result="timeout"\} 1/);
    const check = await run(PROMTOOL, ['check', 'metrics'], { input: text });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.code).toBe(0);
  });

  it('a pool whose own HA is on stays in dry-run whatever the mode, and says why', async () => {
    const haSpec = generatePoolSpec({ hosts: 3, vms: 6, seed: 42 });
    const haSim = await startTestSim({ spec: { ...haSpec, haEnabled: true }, addressBase: '127.0.66.1' });
    try {
      await Promise.all(services.splice(0).map((x) => x.stop()));
      const s = await startRemediation(serviceConfig(haSim, dir, 'ha-on'), pino({ level: 'silent' }));
      services.push(s);
      const victim = haSim.pool.hosts.find((h) => h !== haSim.pool.master)!;
      const own = () => s.samplers[0]!.state.memory?.hosts[victim.built.uuid];
      await waitFor('healthy', () => own()?.state === 'healthy' && own()?.rule === 'both-paths-up', { timeoutMs: 20_000 });
      applyFault(haSim.pool, { kind: 'host-crash', host: victim.built.name });
      await waitFor('dead', () => own()?.state === 'dead', { timeoutMs: 15_000 });
      const r = await post(s, notification([{ labels: { pool: 'sim', host: victim.built.name } }]));
      const plan = await planOf(s, r.body.incidents![0]!.incident!, ['dry-run', 'running', 'done', 'needs-operator']);
      expect(plan).toMatchObject({ state: 'dry-run', mode: 'enforce', modeReason: expect.stringMatching(/own HA on/) });
      expect(haSim.pool.eventLog().filter((e) => e.kind === 'power' || (e.kind === 'vm' && e.detail.action === 'start'))).toEqual([]);
      const m = await (await fetch(`${s.url}/metrics`)).text();
      expect(m).toMatch(/xenha_remediation_mode\{pool="sim",mode="enforce",dry_run_forced="1"\} 1/);
    } finally {
      await Promise.all(services.splice(0).map((x) => x.stop()));
      await haSim.stop();
    }
  });
});

describe('an alert ahead of its own verdict', () => {
  it('an alert that finds its own verdict suspect waits for it to settle: dead, then the plan, with no second notification', async () => {
    const s = await start('settling', 'dry-run');
    const victim = sim.pool.hosts.find((h) => h !== sim.pool.master)!.built.name;
    await waitFor(`${victim} healthy`, () => ownHealthy(s, victim), { timeoutMs: 20_000 });
    applyFault(sim.pool, { kind: 'host-crash', host: victim });
    // The exporter may say dead a sampling round before the service's own sampler does: the alert comes while it says suspect.
    await waitFor(`${victim} suspect in its own view`, () => ownState(s, victim) === 'suspect', { timeoutMs: 15_000, intervalMs: 5 });
    const r = await post(s, notification([{ labels: { pool: 'sim', host: victim } }]));
    expect(r.status).toBe(200);
    const incident = r.body.incidents![0]!.incident!;
    const plan = await planOf(s, incident, ['dry-run'], 15_000);
    const inc = s.state.incidents.get(incident)!;
    // Refused once while suspect (journaled once, not at every re-check), then planned on the same notification.
    expect(inc.refusals.map((x) => [x.gate, x.ownState])).toEqual([['not-dead', 'suspect']]);
    expect(inc.duplicates).toBe(0);
    expect(plan.host).toBe(sim.pool.host(victim).built.uuid);
    // Not counted as a refusal (XenhaRemediationRefused must not fire on a recovery that went well).
    expect(await (await fetch(`${s.url}/metrics`)).text()).not.toMatch(/xenha_remediation_refusals_total\{[^}]*gate="not-dead"/);
  });
});

describe('the re-check right before a fence', () => {
  it('a manual-mode plan approved after its host came back is cancelled, nothing fenced', async () => {
    const s = await start('late-approval', 'manual');
    const victim = sim.pool.hosts.find((h) => h !== sim.pool.master)!.built.name;
    await waitFor(`${victim} healthy`, () => ownHealthy(s, victim), { timeoutMs: 20_000 });
    const from = sim.pool.eventLog().at(-1)?.seq ?? 0;
    applyFault(sim.pool, { kind: 'host-crash', host: victim });
    await waitFor(`${victim} dead`, () => ownState(s, victim) === 'dead', { timeoutMs: 15_000 });
    const r = await post(s, notification([{ labels: { pool: 'sim', host: victim } }]));
    const plan = await planOf(s, r.body.incidents![0]!.incident!, ['awaiting-ack']);
    // It comes back (rebooted) before anyone approves.
    applyFault(sim.pool, { kind: 'heal', host: victim });
    await waitFor(`${victim} healthy again`, () => ownHealthy(s, victim), { timeoutMs: 20_000 });
    const res = await fetch(`${s.url}/api/v1/plans/${plan.id}/ack`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ by: 'late' }),
    });
    expect(res.status).toBe(200);
    const end = await planOf(s, plan.incident, ['cancelled', 'done', 'needs-operator'], 15_000);
    expect(end).toMatchObject({ state: 'cancelled', stateReason: expect.stringMatching(/^re-checked before fencing: /) });
    expect(powerEvents(victim).filter((e) => e.seq > from && e.detail.state === 'off')).toEqual([]);
  });
});
