/**
 * Crash safety: the remediation service (the compiled CLI, its own process) is killed with SIGKILL at
 * every point of its journal while it recovers a dead host — just before each record is appended (the
 * action before it done, not yet journaled) and just after each is on disk (the action after it not
 * yet done) — then started again on the same journal. Each time the plan finishes with every action
 * done exactly once: one `off` sent by the fence agent (counted by a wrapper around fence_dummy), one
 * VM.power_state_reset and one VM.start_on per protected VM (counted by the simulator's XAPI), the VMs
 * running. The service's SIGKILL comes from its own fault-injection hook (XENHA_REMEDIATION_CRASH_AT),
 * so the point is exact. Pools: fresh 3-host HA-off pools running xenha-heartbeat, a few at a time.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import { applyFault } from '../../simulator/faults.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { notification } from '../helpers/alertmanager.ts';
import { EXPORTER_PASSWORD_ENV } from '../helpers/exporter.ts';
import { FENCE_DUMMY, fenceAgentHosts, serviceConfigInput, slotWritten } from '../helpers/remediation.ts';
import { XENHA_BIN } from '../helpers/run.ts';
import { PASSWORD, requireFile, startTestSim } from '../helpers/sim.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = 'crash-token';
/** Journal records of one recovery of a host with one protected VM and no start delay (found by a first, uncrashed run). */
let RECORDS = 0;
const PARALLEL = 3;

let dir: string;
const children = new Set<ChildProcess>();

beforeAll(() => {
  requireFile(FENCE_DUMMY, 'apt-get install fence-agents');
  dir = mkdtempSync(join(tmpdir(), 'xenha-crash-'));
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  chmodSync(join(dir, 'token'), 0o600);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One pool: 3 hosts; the victim (not the master) runs exactly one protected VM, with no start delay. */
async function pool(index: number): Promise<{ sim: Simulator; victim: string; vm: string }> {
  const s = generatePoolSpec({ hosts: 3, vms: 3, seed: 50 });
  const [master, victim, other] = s.hosts.map((h) => h.name) as [string, string, string];
  const vms = s.vms.map((v, i) => ({
    ...v,
    host: i === 0 ? victim : i === 1 ? other : master,
    haRestartPriority: i === 0 ? ('restart' as const) : ('' as const),
    localStorage: false,
    startDelay: 0,
    memory: 2 ** 30,
  }));
  const sim = await startTestSim({
    spec: { ...s, haEnabled: false, vms },
    addressBase: `127.0.${72 + 4 * index}.1`,
    heartbeat: { intervalMs: 100, peerWindowMs: 400 },
  });
  return { sim, victim, vm: vms[0]!.name };
}

function writeConfig(name: string, sim: Simulator): { config: string; agentLog: string } {
  const agentLog = join(dir, `${name}.agent.log`);
  writeFileSync(agentLog, '');
  // fence_dummy behind a wrapper that records each call's action.
  const agent = join(dir, `${name}.agent.sh`);
  writeFileSync(
    agent,
    `#!/bin/sh\ninput=$(cat)\nprintf '%s\\n' "$input" | grep '^action=' >> '${agentLog}'\nprintf '%s\\n' "$input" | exec ${FENCE_DUMMY}\n`,
  );
  chmodSync(agent, 0o755);
  const config = join(dir, `${name}.yaml`);
  const body = serviceConfigInput(sim, dir, name, { pools: { sim: { fence: { hosts: fenceAgentHosts(sim, agent) } } } });
  writeFileSync(config, JSON.stringify(body));
  return { config, agentLog };
}

/** Starts `xenha remediate`; resolves with its URL once it listens, and its exit. */
async function startService(
  config: string,
  crashAt?: string,
): Promise<{ url: string; child: ChildProcess; exited: Promise<NodeJS.Signals | number | null> }> {
  const child = spawn(process.execPath, [XENHA_BIN, 'remediate', '--config', config, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, [EXPORTER_PASSWORD_ENV]: PASSWORD, XENHA_REMEDIATION_CRASH_AT: crashAt ?? '' },
  });
  children.add(child);
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  void exited.then(() => children.delete(child));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const url = await waitFor(
    'the service listening',
    () =>
      /xenha remediate: (http:\/\/[^/\s]+)/.exec(out)?.[1] ??
      (child.exitCode !== null ? Promise.reject(new Error(`exited: ${err}`)) : false),
    {
      timeoutMs: 15_000,
    },
  );
  return { url, child, exited };
}

async function getJson<T>(url: string): Promise<T> {
  return (await (await fetch(url)).json()) as T;
}

async function postAlert(url: string, host: string): Promise<number> {
  const res = await fetch(`${url}/webhook/alertmanager`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(notification([{ labels: { pool: 'sim', host } }])),
  });
  return res.status;
}

/** The service's own verdict on the host (its /api/v1/pools). */
async function ownState(url: string, host: string): Promise<string | null> {
  const r = await getJson<{ pools: { hosts: { name: string; state: string | null; rule: string | null }[] }[] }>(
    `${url}/api/v1/pools`,
  ).catch(() => null);
  const h = r?.pools[0]?.hosts.find((x) => x.name === host);
  return h?.state === 'healthy' ? `healthy:${h.rule}` : (h?.state ?? null);
}

interface Outcome {
  plan: string;
  offs: number;
  resets: number;
  starts: number;
  vmRunning: boolean;
  records: number;
}

/** One recovery, killed at `crashAt` (if given) and finished by a second run on the same journal. */
async function recovery(index: number, crashAt?: string): Promise<Outcome> {
  const name = `run-${index}-${crashAt ?? 'none'}`.replace(':', '-');
  const { sim, victim, vm } = await pool(index % PARALLEL);
  try {
    const { config, agentLog } = writeConfig(name, sim);
    let svc = await startService(config, crashAt);
    // Its slot written and seen: a host that never wrote one cannot be called dead on the storage path.
    const uuid = sim.pool.host(victim).built.uuid;
    const written = () => slotWritten(sim, uuid);
    await waitFor(
      `${victim} healthy on both paths`,
      async () => written() && (await ownState(svc.url, victim)) === 'healthy:both-paths-up',
      {
        timeoutMs: 15_000,
        intervalMs: 50,
      },
    );
    applyFault(sim.pool, { kind: 'host-crash', host: victim });
    await waitFor(`${victim} dead in the service's own view`, async () => (await ownState(svc.url, victim)) === 'dead', {
      timeoutMs: 15_000,
      intervalMs: 50,
    }).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(await getJson(`${svc.url}/api/v1/pools`))}`);
    });
    await postAlert(svc.url, victim).catch(() => 0); // the kill may cut the answer
    if (crashAt) {
      const how = await Promise.race([svc.exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 20_000))]);
      expect(how, `killed at ${crashAt}`).toBe('SIGKILL');
      svc = await startService(config);
      // As Alertmanager does when its notification got no 2xx, or at its next repeat: send it again.
      await waitFor(`${victim} dead again`, async () => (await ownState(svc.url, victim)) === 'dead', {
        timeoutMs: 15_000,
        intervalMs: 50,
      });
      await postAlert(svc.url, victim);
    }
    const plan = await waitFor(
      'the plan done',
      async () => {
        const r = await getJson<{ plans: { id: string; state: string; stateReason: string }[] }>(`${svc.url}/api/v1/plans`);
        const p = r.plans[0];
        if (p && p.state !== 'running') return p;
        return false;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    expect(plan.state, plan.stateReason).toBe('done');
    svc.child.kill('SIGTERM');
    await svc.exited;
    const calls = sim.shared.callCounts;
    const rec = sim.pool.built.db.all('VM').find(([, v]) => v.name_label === vm)![1];
    return {
      plan: plan.id,
      offs: readFileSync(agentLog, 'utf8')
        .split('\n')
        .filter((l) => l === 'action=off').length,
      resets: calls.get('VM.power_state_reset') ?? 0,
      starts: calls.get('VM.start_on') ?? 0,
      vmRunning: rec.power_state === 'Running' && rec.resident_on !== sim.pool.host(victim).built.ref,
      records: readFileSync(join(dir, `${name.replace(/:/g, '-')}.journal`), 'utf8')
        .trim()
        .split('\n').length,
    };
  } finally {
    await sim.stop();
  }
}

it('recovers once without a crash: the reference run', async () => {
  const r = await recovery(0);
  expect(r).toMatchObject({ offs: 1, resets: 1, starts: 1, vmRunning: true });
  RECORDS = r.records;
  expect(RECORDS).toBeGreaterThan(5);
}, 60_000);

it('killed with SIGKILL before and after every journal record, it finishes the plan with every action done exactly once', async () => {
  expect(RECORDS, 'the reference run must pass first').toBeGreaterThan(0);
  const points = Array.from({ length: RECORDS }, (_, i) => [`before:${i + 1}`, `after:${i + 1}`]).flat();
  const results = new Map<string, Outcome>();
  for (let i = 0; i < points.length; i += PARALLEL) {
    const batch = points.slice(i, i + PARALLEL);
    const done = await Promise.all(batch.map((p, k) => recovery(k, p)));
    batch.forEach((p, k) => results.set(p, done[k]!));
  }
  for (const [p, r] of results)
    expect({ point: p, offs: r.offs, resets: r.resets, starts: r.starts, vmRunning: r.vmRunning }).toEqual({
      point: p,
      offs: 1,
      resets: 1,
      starts: 1,
      vmRunning: true,
    });
}, 600_000);
