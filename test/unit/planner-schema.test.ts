import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { SCHEMA_PATH, schemaText } from '../../scripts/gen-schema.ts';
import { checkJsonSize } from '../../cli/plan.ts';
import { MAX_NAME_CHARS, MAX_SNAPSHOT_VMS, plannerSnapshot, type PlannerSnapshotInput } from '../../core/planner/model.ts';

const host = (uuid: string, name = uuid) => ({ uuid, name, live: true, enabled: true, memoryTotal: 1 << 30, memoryOverhead: 0 });
const vm = (uuid: string, name = uuid) => ({
  uuid,
  name,
  powerState: 'Running' as const,
  residentOn: 'h1',
  haRestartPriority: 'restart' as const,
  memoryNeed: 1,
});
const snapshot = (over: Partial<PlannerSnapshotInput> = {}): PlannerSnapshotInput => ({
  pool: { name: 'p', master: 'h1', haEnabled: true, hostFailuresToTolerate: 1 },
  hosts: [host('h1'), host('h2')],
  vms: [vm('v1'), vm('v2')],
  ...over,
});
/** The issues of a refused snapshot, as "path: message". */
function issues(input: unknown): string[] {
  const r = plannerSnapshot.safeParse(input);
  expect(r.success, 'the snapshot is refused').toBe(false);
  return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('planner snapshot format', () => {
  it('the published JSON Schema is the one generated from the zod schema (run npm run schema)', () => {
    expect(readFileSync(SCHEMA_PATH, 'utf8')).toBe(schemaText());
  });

  it('the example snapshot is valid', () => {
    const ex = JSON.parse(readFileSync(new URL('../../deploy/planner-snapshot.example.json', import.meta.url), 'utf8'));
    expect(plannerSnapshot.parse(ex).hosts).toHaveLength(3);
  });

  it('names the bad field', () => {
    const r = plannerSnapshot.safeParse({
      pool: { name: 'p', master: 'a', haEnabled: true, hostFailuresToTolerate: 1 },
      hosts: [{ uuid: 'a', name: 'a', live: true, enabled: true, memoryTotal: -1, memoryOverhead: 0 }],
      vms: [{ uuid: 'v', name: 'v', powerState: 'Running', residentOn: 'zz', haRestartPriority: 'restart', memoryNeed: 1 }],
    });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toContain('hosts.0.memoryTotal');
  });

  it('a valid snapshot (the base of the cases below) is accepted', () => {
    expect(plannerSnapshot.parse(snapshot()).vms).toHaveLength(2);
  });

  it('refuses two VMs with one UUID, naming it (a plan would start it twice)', () => {
    expect(issues(snapshot({ vms: [vm('v1', 'a'), vm('v2'), vm('v1', 'b')] }))).toEqual(['vms.2.uuid: duplicate VM UUID v1']);
  });

  it('refuses two hosts with one UUID, naming it; two hosts may share a name (XAPI allows it)', () => {
    expect(issues(snapshot({ hosts: [host('h1'), host('h2'), host('h1', 'other')] }))).toEqual(['hosts.2.uuid: duplicate host UUID h1']);
    expect(plannerSnapshot.parse(snapshot({ hosts: [host('h1', 'same'), host('h2', 'same')] })).hosts).toHaveLength(2);
  });

  it('bounds the number of hosts and VMs and the length of names and UUIDs', () => {
    expect(issues(snapshot({ hosts: Array.from({ length: 65 }, (_, i) => host(i === 0 ? 'h1' : `h${i + 1}`)) }))).toEqual([
      'hosts: Too big: expected array to have <=64 items',
    ]);
    const vms = Array.from({ length: MAX_SNAPSHOT_VMS + 1 }, (_, i) => vm(`v${i}`));
    expect(issues(snapshot({ vms }))).toEqual([`vms: Too big: expected array to have <=${MAX_SNAPSHOT_VMS} items`]);
    expect(plannerSnapshot.parse(snapshot({ vms: vms.slice(1) })).vms).toHaveLength(MAX_SNAPSHOT_VMS);
    expect(issues(snapshot({ vms: [vm('v1', 'x'.repeat(MAX_NAME_CHARS + 1))] }))).toEqual([
      `vms.0.name: Too big: expected string to have <=${MAX_NAME_CHARS} characters`,
    ]);
    expect(plannerSnapshot.parse(snapshot({ vms: [vm('v1', 'x'.repeat(MAX_NAME_CHARS))] })).vms).toHaveLength(1);
    expect(issues(snapshot({ vms: [vm('v'.repeat(129))] }))).toEqual(['vms.0.uuid: Too big: expected string to have <=128 characters']);
  });

  it('checkJsonSize (plan --input) refuses more objects, arrays or values than a snapshot has, before JSON.parse', () => {
    // 100,080 containers at most: an array of 100,079 objects is 100,080.
    expect(() => checkJsonSize(`[${'{},'.repeat(100_078)}{}]`)).not.toThrow();
    expect(() => checkJsonSize(`[${'{},'.repeat(100_079)}{}]`)).toThrow(/^more than 100080 JSON objects and arrays/);
    expect(() => checkJsonSize(`[${'0,'.repeat(1_601_280)}0]`)).not.toThrow();
    expect(() => checkJsonSize(`[${'0,'.repeat(1_601_281)}0]`)).toThrow(/^more than 1601280 JSON values/);
    // Inside strings nothing counts, an escaped quote included.
    expect(() => checkJsonSize(JSON.stringify({ name: `"${'{[,'.repeat(2_000_000)}` }))).not.toThrow();
  });
});
