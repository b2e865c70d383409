/**
 * The remediation service's traces, checked with an in-memory span exporter (the OpenTelemetry Node SDK
 * with a SimpleSpanProcessor): one trace per notification, the re-check inside it, the plan and each of
 * its steps under the re-check, with pool, host, VM and result attributes. Against an HA-off simulated
 * pool running xenha-heartbeat, fence_dummy fencing through the power files; real time, bounded waits.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { remediationConfig } from '../../remediation/config.ts';
import { startRemediation, type RunningRemediation } from '../../remediation/service.ts';
import { applyFault } from '../../simulator/faults.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { notification } from '../helpers/alertmanager.ts';
import { EXPORTER_PASSWORD_ENV, fastPoolInput } from '../helpers/exporter.ts';
import { PASSWORD, requireFile, startTestSim } from '../helpers/sim.ts';
import { waitFor } from '../helpers/wait.ts';
import { slotWritten } from '../helpers/remediation.ts';
import { FENCE_DUMMY } from '../../loop/binaries.ts';

const spans = new InMemorySpanExporter();
const sdk = new NodeSDK({ spanProcessors: [new SimpleSpanProcessor(spans)] });
let dir: string;
let sim: Simulator;
let service: RunningRemediation;

beforeAll(async () => {
  requireFile(FENCE_DUMMY, 'apt-get install fence-agents');
  sdk.start();
  dir = mkdtempSync(join(tmpdir(), 'xenha-traces-'));
  writeFileSync(join(dir, 'token'), 'trace-token\n', { mode: 0o600 });
  chmodSync(join(dir, 'token'), 0o600);
  process.env[EXPORTER_PASSWORD_ENV] = PASSWORD;
  const spec = generatePoolSpec({ hosts: 3, vms: 9, seed: 43 });
  sim = await startTestSim({
    spec: { ...spec, haEnabled: false, vms: spec.vms.map((v) => ({ ...v, startDelay: 0 })) },
    addressBase: '127.0.68.1',
    heartbeat: { intervalMs: 100, peerWindowMs: 400 },
  });
  const hosts = Object.fromEntries(
    sim
      .info()
      .hosts.map((h) => [
        h.name,
        { levels: [{ plugin: 'fence-agent', options: { agent: FENCE_DUMMY, args: { type: 'file', status_file: h.powerFile } } }] },
      ]),
  );
  service = await startRemediation(
    remediationConfig.parse({
      pools: [fastPoolInput(sim)],
      remediation: {
        listen: '127.0.0.1:0',
        mode: 'enforce',
        tokenFile: join(dir, 'token'),
        journal: join(dir, 'journal'),
        quietPeriod: '0s',
        powerTimeout: '5s',
        powerPoll: '100ms',
        pools: { sim: { fence: { hosts } } },
      },
    }),
    pino({ level: 'silent' }),
  );
}, 30_000);

afterAll(async () => {
  await service?.stop();
  await sim?.stop();
  await sdk.shutdown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('one trace per notification: the re-check, the plan and every step inside it, with pool, host, VM and result', async () => {
  // The non-master host running the most protected VMs.
  const protectedOn = (ref: string) =>
    sim.pool.built.db
      .all('VM')
      .filter(([, v]) => v.resident_on === ref && v.ha_restart_priority === 'restart' && v.power_state === 'Running').length;
  const victim = sim.pool.hosts
    .filter((h) => h !== sim.pool.master)
    .sort((a, b) => protectedOn(b.built.ref) - protectedOn(a.built.ref))[0]!;
  expect(protectedOn(victim.built.ref)).toBeGreaterThan(0);
  const uuid = victim.built.uuid;
  const own = () => service.samplers[0]!.state.memory?.hosts[uuid];
  // Healthy on both paths and its heartbeat slot written (a never-written slot cannot show it dead).
  const written = () => slotWritten(sim, uuid);
  await waitFor('healthy on both paths', () => own()?.state === 'healthy' && own()?.rule === 'both-paths-up' && written(), {
    timeoutMs: 15_000,
  });
  applyFault(sim.pool, { kind: 'host-crash', host: victim.built.name });
  await waitFor('dead in its own view', () => own()?.state === 'dead', { timeoutMs: 15_000 });
  spans.reset();
  const res = await fetch(`${service.url}/webhook/alertmanager`, {
    method: 'POST',
    headers: { authorization: 'Bearer trace-token', 'content-type': 'application/json' },
    body: JSON.stringify(notification([{ labels: { pool: 'sim', host: victim.built.name } }])),
  });
  expect(res.status).toBe(200);
  const planSpan = await waitFor('the plan span ended', () => spans.getFinishedSpans().find((s) => s.name === 'remediation.plan'), {
    timeoutMs: 30_000,
  });
  // The re-check holds the plan, then the refresh of the VM records the plan changed: it ends a little later.
  await waitFor('the re-check span ended', () => spans.getFinishedSpans().some((s) => s.name === 'remediation.recheck'), {
    timeoutMs: 10_000,
  });
  const all = spans.getFinishedSpans();
  const one = (name: string): ReadableSpan => {
    const found = all.filter((s) => s.name === name);
    expect(found, name).toHaveLength(1);
    return found[0]!;
  };
  const note = one('remediation.notification');
  const recheck = one('remediation.recheck');
  const trace = note.spanContext().traceId;
  // One trace: the re-check is the notification's child, the plan the re-check's, each step the plan's.
  expect(recheck.spanContext().traceId).toBe(trace);
  expect(recheck.parentSpanContext?.spanId).toBe(note.spanContext().spanId);
  expect(planSpan.parentSpanContext?.spanId).toBe(recheck.spanContext().spanId);
  expect(recheck.attributes).toMatchObject({ 'xenha.pool': 'sim', 'xenha.host': uuid, 'xenha.result': 'planned' });
  expect(planSpan.attributes).toMatchObject({ 'xenha.pool': 'sim', 'xenha.host': uuid, 'xenha.plan.state': 'done' });
  const steps = all.filter((s) => s.name.startsWith('remediation.step.'));
  const plan = [...service.state.plans.values()][0]!;
  expect(steps.map((s) => s.name)).toEqual(plan.steps.map((s) => `remediation.step.${s.step.kind}`));
  for (const s of steps) {
    expect(s.spanContext().traceId).toBe(trace);
    expect(s.parentSpanContext?.spanId).toBe(planSpan.spanContext().spanId);
  }
  expect(steps[0]!.attributes).toMatchObject({
    'xenha.host': uuid,
    'xenha.result': expect.stringMatching(/^(confirmed-off|already-off)$/),
  });
  const starts = steps.filter((s) => s.name === 'remediation.step.start-vm');
  expect(starts.length).toBeGreaterThan(0);
  for (const s of starts) expect(s.attributes).toMatchObject({ 'xenha.vm': expect.any(String), 'xenha.result': 'started' });
});
