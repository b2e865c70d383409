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
import { readPool, subsets, whatIfBruteForce, maxPlaceable, type BfPool } from '../helpers/brute-force.ts';

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
    expect(table.stdout).toContain("not restarted: build-1: its disk is on xs-a's local storage");
    expect(table.stdout).toMatch(/start-vm +db-1 → xs-b/);
  });

  it('names the bad field of a bad snapshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenha-plan-'));
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        pool: { name: 'p', master: 'a', haEnabled: true, hostFailuresToTolerate: 1 },
        hosts: [{ uuid: 'a', name: 'a', live: 'yes', enabled: true, memoryTotal: 1, memoryOverhead: 0 }],
        vms: [],
      }),
    );
    const r = await xenha(['plan', '--input', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file} is not a valid planner snapshot`);
    expect(r.stderr).toContain('at hosts[0].live');
  });

  it('plans from a live pool: a crashed host is fenced, exactly its protected VMs that fit restarted elsewhere', async () => {
    const db = sim.pool.built.db;
    const before = readPool(db);
    // The victim: a host other than the master (the CLI reads the pool through it) running the most
    // protected VMs, so that the restarts below cannot be vacuous.
    const protectedOn = (ref: string) => before.vms.filter((v) => v.protected && v.host === ref);
    const victim = sim.pool.hosts
      .filter((h) => h !== sim.pool.master)
      .sort((a, b) => protectedOn(b.built.ref).length - protectedOn(a.built.ref).length || a.built.name.localeCompare(b.built.name))[0]!;
    const victimVms = protectedOn(victim.built.ref);
    expect(victimVms.length, `${victim.built.name} runs a protected VM`).toBeGreaterThan(0);
    try {
      applyFault(sim.pool, { kind: 'host-crash', host: victim.built.name });
      await waitFor('the victim not live', () => db.peek('host_metrics', victim.built.metricsRef).live === false);
      // Without the exporter's two-path evidence, nothing is fenced...
      const refused = await xenha(['plan', '--pool', sim.info().masterUrl], { XENHA_PASSWORD: PASSWORD });
      expect(refused.code, refused.stderr).toBe(0);
      expect(refused.stderr).toContain('no --exporter: host states derived from host_metrics.live');
      const first = JSON.parse(refused.stdout) as { plan: { steps: unknown[]; fences: { refused: { host: string; gate: string }[] } } };
      expect(first.plan.steps).toEqual([]);
      expect(first.plan.fences.refused).toEqual([expect.objectContaining({ host: victim.built.uuid, gate: 'no-path-evidence' })]);

      // ...unless the operator says so. What should be restarted, from the records: the victim is
      // down already (not live), so nothing more fails; its protected VMs need a survivor.
      const pool = readPool(db);
      expect(pool.hosts.filter((h) => !h.live).map((h) => h.ref)).toEqual([victim.built.ref]);
      const want = whatIfBruteForce(pool, new Set());
      expect(want.displaced.map((v) => v.ref).sort()).toEqual(victimVms.map((v) => v.ref).sort());
      const r = await xenha(['plan', '--pool', sim.info().masterUrl, '--allow-without-path-evidence'], { XENHA_PASSWORD: PASSWORD });
      expect(r.code, r.stderr).toBe(0);
      const { plan } = JSON.parse(r.stdout) as { plan: { steps: { kind: string; host?: string; vm?: string }[] } };
      expect(plan.steps[0]).toMatchObject({ kind: 'fence', host: victim.built.uuid });
      const starts = plan.steps.filter((s) => s.kind === 'start-vm').map((s) => ({ vm: s.vm!, host: s.host! }));
      const uuidOfVm = new Map(pool.vms.map((v) => [v.uuid, v]));
      const hostByUuid = new Map(pool.hosts.map((h) => [h.uuid, h]));
      // Every start is one of the victim's VMs HA restarts (a best-effort one may follow the
      // protected ones where room is left), on a live, enabled host other than the victim, within
      // that host's free memory.
      for (const s of starts) {
        const vm = uuidOfVm.get(s.vm);
        expect(vm?.host, `started VM ${s.vm}`).toBe(victim.built.ref);
        expect(['restart', 'best-effort']).toContain(vm!.priority);
        const host = hostByUuid.get(s.host);
        expect(host, `host ${s.host}`).toBeDefined();
        expect(host!.ref).not.toBe(victim.built.ref);
        expect(host!.live && host!.enabled).toBe(true);
      }
      for (const h of pool.hosts) {
        const load = starts.filter((s) => s.host === h.uuid).reduce((sum, s) => sum + uuidOfVm.get(s.vm)!.need, 0);
        expect(load, `memory started on ${h.name}`).toBeLessThanOrEqual(Math.max(0, h.free));
      }
      // The protected VMs started: all of them when the brute force places them all; else as many
      // as can be placed at once.
      const startedProtected = new Set(starts.filter((s) => uuidOfVm.get(s.vm)!.protected).map((s) => uuidOfVm.get(s.vm)!.ref));
      if (want.survives) {
        expect(startedProtected).toEqual(new Set(victimVms.map((v) => v.ref)));
      } else {
        const best = maxPlaceable(
          victimVms,
          want.survivors.map((h) => ({ ref: h.ref, free: Math.max(0, h.free) })),
        );
        expect(best.sets).toContainEqual(startedProtected);
      }
    } finally {
      applyFault(sim.pool, { kind: 'heal' });
    }
  });

  it('what-if answers as a brute force over the records does: survives (exit 0) or not (exit 3), with a valid placement', async () => {
    const db = sim.pool.built.db;
    const names = sim.info().hosts.map((h) => h.name);
    await waitFor('every host live again', () => sim.pool.hosts.every((h) => db.peek('host_metrics', h.built.metricsRef).live === true));
    const pool: BfPool = readPool(db);
    const refOf = new Map(pool.hosts.map((h) => [h.name, h.ref]));
    const answer = (failed: string[]) => whatIfBruteForce(pool, new Set(failed.map((n) => refOf.get(n)!)));
    // Failure sets the brute force says the pool survives and does not: the first of each, by size.
    const sets = [...Array(names.length).keys()].flatMap((k) => [...subsets(names, k + 1)]);
    const survivable = sets.find((f) => answer(f).survives);
    const fatal = sets.find((f) => !answer(f).survives);
    expect(survivable, 'a failure set the pool survives').toBeDefined();
    expect(fatal, 'a failure set the pool does not survive').toBeDefined();

    for (const failed of [survivable!, fatal!]) {
      const want = answer(failed);
      const table = await xenha(['what-if', '--pool', sim.info().masterUrl, '--fail', failed.join(','), '--format', 'table'], {
        XENHA_PASSWORD: PASSWORD,
      });
      expect(table.code, table.stderr).toBe(want.survives ? 0 : 3);
      expect(table.stdout).toMatch(new RegExp(`^losing ${failed.join(', ')}: ${want.survives ? 'SURVIVES' : 'DOES NOT SURVIVE'} — `));
      // (JSON's exit code is checked in the next test.)
      const json = await xenha(['what-if', '--pool', sim.info().masterUrl, '--fail', failed.join(',')], { XENHA_PASSWORD: PASSWORD });
      expect(json.stderr).not.toMatch(/error|invalid/i);
      const got = JSON.parse(json.stdout) as { survives: boolean | null; placement: Record<string, string> };
      expect(got.survives).toBe(want.survives);
      // The records did not change under the CLI's feet.
      expect(answer(failed).survives).toBe(want.survives);
      if (want.survives) {
        // Its placement: exactly the displaced protected VMs, each on a survivor, within its free memory.
        expect(Object.keys(got.placement).sort()).toEqual(want.displaced.map((v) => v.uuid).sort());
        const need = new Map(pool.vms.map((v) => [v.uuid, v.need]));
        for (const h of pool.hosts) {
          const onIt = Object.entries(got.placement)
            .filter(([, host]) => host === h.uuid)
            .map(([vm]) => need.get(vm)!);
          if (onIt.length === 0) continue;
          expect(
            want.survivors.map((x) => x.uuid),
            `${h.name} takes VMs`,
          ).toContain(h.uuid);
          expect(onIt.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(Math.max(0, h.free));
        }
      }
    }

    const bad = await xenha(['what-if', '--pool', sim.info().masterUrl, '--fail', 'nope'], { XENHA_PASSWORD: PASSWORD });
    expect(bad.stderr).toContain('no host "nope"');
    const noPw = await xenha(['plan', '--pool', sim.info().masterUrl, '--password-env', 'XENHA_UNSET_VAR']);
    expect(noPw.stderr).toContain('environment variable XENHA_UNSET_VAR is not set');
    const both = await xenha(['plan']);
    expect(both.stderr).toContain('give exactly one of --input <file> and --pool <url>');
  });

  it('what-if exits 3 when the pool does not survive, with JSON output as with the table (docs/planner.md)', async () => {
    const db = sim.pool.built.db;
    await waitFor('every host live again', () => sim.pool.hosts.every((h) => db.peek('host_metrics', h.built.metricsRef).live === true));
    const pool = readPool(db);
    // Losing every host: nowhere to restart the protected VMs (the brute force agrees there are some).
    const all = pool.hosts.map((h) => h.name);
    expect(whatIfBruteForce(pool, new Set(pool.hosts.map((h) => h.ref))).survives).toBe(false);
    const table = await xenha(['what-if', '--pool', sim.info().masterUrl, '--fail', all.join(','), '--format', 'table'], {
      XENHA_PASSWORD: PASSWORD,
    });
    expect(table.code, table.stderr).toBe(3);
    const json = await xenha(['what-if', '--pool', sim.info().masterUrl, '--fail', all.join(',')], { XENHA_PASSWORD: PASSWORD });
    expect((JSON.parse(json.stdout) as { survives: boolean | null }).survives).toBe(false);
    expect(json.code, 'the exit code of `xenha what-if` (JSON) on a pool that does not survive').toBe(3);
  });
});
