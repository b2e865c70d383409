import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { SCHEMA_PATH, schemaText } from '../../scripts/gen-schema.ts';
import { plannerSnapshot } from '../../core/planner/model.ts';

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
});
