import { describe, expect, it } from 'vitest';
import { generatePoolSpec, parsePoolSpecYaml, SpecError } from '../../simulator/pool-spec.ts';

describe('pool spec', () => {
  it('draws the same pool from the same seed, and another from another seed', () => {
    const a = generatePoolSpec({ hosts: 8, vms: 40, seed: 42 });
    const b = generatePoolSpec({ hosts: 8, vms: 40, seed: 42 });
    const c = generatePoolSpec({ hosts: 8, vms: 40, seed: 43 });
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    expect(a.hosts).toHaveLength(8);
    expect(a.vms).toHaveLength(40);
    expect(new Set(a.hosts.map((h) => h.uuid)).size).toBe(8);
  });

  it("places generated VMs within each host's memory", () => {
    const p = generatePoolSpec({ hosts: 4, vms: 300, seed: 3 });
    for (const h of p.hosts) {
      const used = p.vms.filter((v) => v.host === h.name).reduce((s, v) => s + v.memory, 0);
      expect(used).toBeLessThanOrEqual(h.memory - h.dom0Memory - h.memoryOverhead);
    }
    expect(p.vms.some((v) => v.host === undefined)).toBe(true); // 300 VMs do not all fit in 4 hosts
    expect(new Set(p.vms.map((v) => v.haRestartPriority))).toEqual(new Set(['restart', 'best-effort', '']));
  });

  it('loads a YAML pool with sizes in units and defaults', () => {
    const spec = parsePoolSpecYaml(`
name: lab
hosts:
  - name: a
    memory: 64GiB
  - name: b
    memory: 68719476736
vms:
  - name: db
    memory: 8 GiB
    host: a
    haRestartPriority: restart
    order: 1
`);
    expect(spec.hosts[0]!.memory).toBe(64 * 2 ** 30);
    expect(spec.hosts[1]!.memory).toBe(64 * 2 ** 30);
    expect(spec.vms[0]).toMatchObject({ memory: 8 * 2 ** 30, host: 'a', haRestartPriority: 'restart', order: 1, localStorage: false });
    expect(spec.haEnabled).toBe(true);
    expect(spec.heartbeatSr).toMatchObject({ type: 'lvmoiscsi', statefileSize: 4 * 2 ** 20, metadataSize: 256 * 2 ** 20 });
  });

  it('names the bad key and its line', () => {
    const bad = `name: lab
hosts:
  - name: a
    memory: 64GiB
  - name: b
    memory: lots
`;
    expect(() => parsePoolSpecYaml(bad, 'lab.yaml')).toThrow(SpecError);
    expect(() => parsePoolSpecYaml(bad, 'lab.yaml')).toThrow(/lab\.yaml is invalid:\n {2}hosts\.1\.memory \(line 6\): expected a size/);
    const dangling = `hosts:
  - name: a
    memory: 64GiB
vms:
  - name: x
    memory: 1GiB
    host: nowhere
`;
    expect(() => parsePoolSpecYaml(dangling, 'lab.yaml')).toThrow(/vms\.0\.host \(line 7\): no host named nowhere/);
  });

  it('rejects unknown keys and bad YAML', () => {
    expect(() => parsePoolSpecYaml('hosts: [{name: a, memory: 1GiB, colour: red}]')).toThrow(/colour/);
    expect(() => parsePoolSpecYaml('hosts: [')).toThrow(SpecError);
    expect(() => generatePoolSpec({ hosts: 65, vms: 1, seed: 1 })).toThrow(/--hosts must be 1..64/);
  });
});

describe('the example pool file', () => {
  it('loads and says what its comments say', async () => {
    const { loadPoolSpecFile } = await import('../../simulator/pool-spec.ts');
    const spec = loadPoolSpecFile(new URL('../../deploy/sim-pool.example.yaml', import.meta.url).pathname);
    expect(spec.hosts.map((h) => h.ipConfiguration)).toEqual(['Static', 'Static', 'DHCP']);
    expect(spec.vms.find((v) => v.name === 'build-1')).toMatchObject({ localStorage: true, host: 'xs-c' });
    expect(spec.vms.find((v) => v.name === 'spare')!.host).toBeUndefined();
  });
});
