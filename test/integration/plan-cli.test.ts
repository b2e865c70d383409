/** `xenha plan` and `xenha what-if` as a user runs them, on a file and on a live (simulated) pool. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Simulator } from '../../simulator/simulator.ts';
import { applyFault } from '../../simulator/faults.ts';
import { PASSWORD, startTestSim } from '../helpers/sim.ts';
import { waitFor } from '../helpers/wait.ts';
import { xenha } from '../helpers/run.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';

const EXAMPLE = join(import.meta.dirname, '../../deploy/planner-snapshot.example.json');


let sim: Simulator;
beforeAll(async () => {
  sim = await startTestSim({ spec: { ...generatePoolSpec({ hosts: 4, vms: 12, seed: 31 }), haEnabled: false } });
});
afterAll(async () => {
  await sim?.stop();
});

describe('xenha plan / what-if', () => {
  it('plans from a snapshot file, as JSON and as a table', async () => {
    const json = await xenha(['plan', '--input', EXAMPLE]);
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout) as { capacity: { lower: number }; plan: { steps: { kind: string }[] } };
    expect(out.plan.steps.map((s) => s.kind).slice(0, 4)).toEqual(['fence', 'confirm-fenced', 'transition-master', 'follow-master']);
    const table = await xenha(['plan', '--input', EXAMPLE, '--format', 'table']);
    expect(table.stdout).toContain('not restarted: build-1: its disk is on xs-a\'s local storage');
    expect(table.stdout).toMatch(/start-vm +db-1 → xs-b/);
  });

  it('names the bad field of a bad snapshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenha-plan-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ pool: { name: 'p', master: 'a', haEnabled: true, hostFailuresToTolerate: 1 }, hosts: [{ uuid: 'a', name: 'a', live: 'yes', enabled: true, memoryTotal: 1, memoryOverhead: 0 }], vms: [] }));
    const r = await xenha(['plan', '--input', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file} is not a valid planner snapshot`);
    expect(r.stderr).toContain('at hosts[0].live');
  });

  it('plans from a live pool: a crashed host is fenced, its protected VMs restarted elsewhere', async () => {
    const victim = sim.pool.hosts[2]!;
    applyFault(sim.pool, { kind: 'host-crash', host: victim.built.name });
    await waitFor('the victim not live', () => sim.pool.built.db.peek('host_metrics', victim.built.metricsRef).live === false);
    // Without the exporter's two-path evidence, nothing is fenced...
    const refused = await xenha(['plan', '--pool', sim.info().masterUrl], { XENHA_PASSWORD: PASSWORD });
    expect(refused.code, refused.stderr).toBe(0);
    expect(refused.stderr).toContain('no --exporter: host states derived from host_metrics.live');
    const first = JSON.parse(refused.stdout) as { plan: { steps: unknown[]; fences: { refused: { host: string; gate: string }[] } } };
    expect(first.plan.steps).toEqual([]);
    expect(first.plan.fences.refused).toEqual([expect.objectContaining({ host: victim.built.uuid, gate: 'no-path-evidence' })]);
    // ...unless the operator says so.
    const r = await xenha(['plan', '--pool', sim.info().masterUrl, '--allow-without-path-evidence'], { XENHA_PASSWORD: PASSWORD });
    expect(r.code, r.stderr).toBe(0);
    const { plan } = JSON.parse(r.stdout) as { plan: { steps: { kind: string; host?: string }[] } };
    expect(plan.steps[0]).toMatchObject({ kind: 'fence', host: victim.built.uuid });
    const protectedOnVictim = sim.pool.built.db.all('VM').filter(([, v]) => v.resident_on === victim.built.ref && v.ha_restart_priority === 'restart').length;
    expect(plan.steps.filter((s) => s.kind === 'start-vm').length).toBeGreaterThanOrEqual(Math.min(1, protectedOnVictim));
    applyFault(sim.pool, { kind: 'heal' });
  });

  it('what-if names the hosts and answers with a placement; a missing password is a clear error', async () => {
    const names = sim.info().hosts.map((h) => h.name);
    const r = await xenha(['what-if', '--pool', sim.info().masterUrl, '--fail', names[1]!, '--format', 'table'], { XENHA_PASSWORD: PASSWORD });
    expect([0, 3]).toContain(r.code);
    expect(r.stdout).toMatch(new RegExp(`^losing ${names[1]}: (SURVIVES|DOES NOT SURVIVE)`));
    const bad = await xenha(['what-if', '--pool', sim.info().masterUrl, '--fail', 'nope'], { XENHA_PASSWORD: PASSWORD });
    expect(bad.stderr).toContain('no host "nope"');
    const noPw = await xenha(['plan', '--pool', sim.info().masterUrl, '--password-env', 'XENHA_UNSET_VAR']);
    expect(noPw.stderr).toContain('environment variable XENHA_UNSET_VAR is not set');
    const both = await xenha(['plan']);
    expect(both.stderr).toContain('give exactly one of --input <file> and --pool <url>');
  });
});
