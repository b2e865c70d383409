import { describe, expect, it } from 'vitest';
import { buildPool } from '../../simulator/build.ts';
import { generatePoolSpec, parsePoolSpecYaml, type PoolSpec } from '../../simulator/pool-spec.ts';
import { buildSnapshot, type RecordsByClass } from '../../core/model/snapshot.ts';
import { preflight, PREFLIGHT_CHECKS, type StorageHeartbeatKind, type StorageHeartbeatRead } from '../../core/preflight.ts';

function recordsOf(spec: PoolSpec): RecordsByClass {
  const b = buildPool(spec, '127.0.0.1');
  const out: Record<string, Record<string, unknown>> = {};
  for (const cls of ['pool', 'host', 'host_metrics', 'PIF', 'PBD', 'SR', 'VDI', 'VM', 'VBD']) {
    out[cls] = Object.fromEntries(b.db.refs(cls).map((r) => [r, b.db.get(cls, r)]));
  }
  return out;
}

/** The monitor as the quick start runs it: the statefile read. */
const READS_STATEFILE = { storageHeartbeatProbes: ['storage-statefile'] };

const failed = (spec: PoolSpec) =>
  preflight(buildSnapshot(recordsOf(spec)), READS_STATEFILE)
    .filter((r) => !r.ok)
    .map((r) => r.check);

describe('pool snapshot', () => {
  it('joins hosts with their homes, metrics and heartbeat PBD; VMs with where they are pinned', () => {
    const s = buildSnapshot(
      recordsOf(
        parsePoolSpecYaml(`
hosts: [{name: a, memory: 64GiB}, {name: b, memory: 64GiB}]
vms: [{name: local, memory: 1GiB, host: b, localStorage: true}, {name: free, memory: 2GiB, host: a, haRestartPriority: restart}]
`),
      ),
    );
    expect(s.hosts.map((h) => [h.name, h.homes])).toEqual([
      ['a', ['127.0.0.1', '127.0.1.1']],
      ['b', ['127.0.0.2', '127.0.1.2']],
    ]);
    expect(s.hosts[0]!.heartbeatPbd).toEqual({ attached: true, activeLegs: 2, totalLegs: 2 });
    expect(s.heartbeatSr).toMatchObject({ type: 'lvmoiscsi', shared: true, statefileBytes: 4 * 2 ** 20, metadataBytes: 256 * 2 ** 20 });
    const b = s.hosts.find((h) => h.name === 'b')!;
    expect(s.vms.find((v) => v.name === 'local')!.pinnedTo).toBe(b.ref);
    expect(s.vms.find((v) => v.name === 'free')).toMatchObject({
      pinnedTo: null,
      haRestartPriority: 'restart',
      memoryNeed: 2 * 2 ** 30 + 2 ** 20 * Math.ceil((2 * 2 ** 30) / 100 / 2 ** 20),
    });
    expect(s.haTimeoutSeconds).toBe(30);
  });

  it('leaves out a record that fails its schema and says which', () => {
    const r = recordsOf(generatePoolSpec({ hosts: 2, vms: 2, seed: 1 }));
    const [vmRef] = Object.keys(r.VM!);
    (r.VM![vmRef!] as Record<string, unknown>).power_state = 'Exploded';
    const s = buildSnapshot(r);
    expect(s.invalid).toHaveLength(1);
    expect(s.invalid[0]).toMatchObject({ cls: 'VM', ref: vmRef });
    expect(s.vms.some((v) => v.ref === vmRef)).toBe(false);
  });
});

describe('preflight checks', () => {
  const base = generatePoolSpec({ hosts: 3, vms: 4, seed: 2 });

  it('passes on a well-formed pool', () => {
    expect(failed(base)).toEqual([]);
  });

  it('flags each requirement of the source material', () => {
    expect(failed({ ...base, hosts: base.hosts.slice(0, 1), vms: [] })).toEqual(['at_least_two_hosts']);
    expect(failed({ ...base, hosts: base.hosts.map((h, i) => ({ ...h, haLicensed: i !== 1 })) })).toEqual(['ha_licensed_all_hosts']);
    expect(
      failed({ ...base, hosts: base.hosts.map((h, i) => ({ ...h, ipConfiguration: i === 2 ? ('DHCP' as const) : ('Static' as const) })) }),
    ).toEqual(['static_ip_all_hosts']);
    expect(failed({ ...base, heartbeatSr: { ...base.heartbeatSr, statefileSize: 2 ** 20 } })).toEqual(['statefile_volume_size']);
    expect(failed({ ...base, heartbeatSr: { ...base.heartbeatSr, metadataSize: 128 * 2 ** 20 } })).toEqual(['metadata_volume_size']);
    expect(failed({ ...base, heartbeatSr: { ...base.heartbeatSr, shared: false } })).toEqual(['heartbeat_sr_shared']);
    expect(failed({ ...base, heartbeatSr: { ...base.heartbeatSr, type: 'netapp' } })).toEqual(['heartbeat_lun_auto_provisioned']);
    expect(failed({ ...base, heartbeatSr: { ...base.heartbeatSr, type: 'equal' } })).toEqual(['heartbeat_lun_auto_provisioned']);
  });

  it('flags a missing heartbeat SR and an unattached PBD', () => {
    const r = recordsOf(base);
    for (const [ref, v] of Object.entries(r.VDI!)) if ((v as { type: string }).type === 'ha_statefile') delete r.VDI![ref];
    for (const p of Object.values(r.pool!)) (p as { ha_statefiles: string[] }).ha_statefiles = [];
    const none = preflight(buildSnapshot(r), READS_STATEFILE)
      .filter((x) => !x.ok)
      .map((x) => x.check);
    expect(none).toEqual(
      expect.arrayContaining([
        'heartbeat_sr_present',
        'heartbeat_sr_shared',
        'heartbeat_sr_attached_all_hosts',
        'statefile_volume_size',
        'metadata_volume_size',
      ]),
    );
    const r2 = recordsOf(base);
    const hbPbd = Object.entries(r2.PBD!).find(([, p]) => (p as { device_config: Record<string, string> }).device_config.SCSIid)!;
    (hbPbd[1] as { currently_attached: boolean }).currently_attached = false;
    const results = preflight(buildSnapshot(r2), READS_STATEFILE);
    expect(results.filter((x) => !x.ok).map((x) => x.check)).toEqual(['heartbeat_sr_attached_all_hosts']);
    expect(results.find((x) => x.check === 'heartbeat_sr_attached_all_hosts')!.reason).toMatch(/^not attached on host-0\d$/);
  });
});

describe('storage heartbeat', () => {
  const snap = (haEnabled: boolean) => buildSnapshot(recordsOf({ ...generatePoolSpec({ hosts: 3, vms: 3, seed: 2 }), haEnabled }));
  /** What the probe read: xenha-heartbeat's file with every host writing, hearing all, one secret. */
  const readOf = (s: ReturnType<typeof snap>, kind: StorageHeartbeatKind | null): StorageHeartbeatRead | null => {
    if (kind !== 'xenha-heartbeat') return kind === null ? null : { kind };
    const uuids = s.hosts.map((h) => h.uuid);
    const host = { writing: true, homes: 1, heardOnHome: [uuids], keyId: '0123456789abcdef' };
    return { kind, hosts: Object.fromEntries(uuids.map((u) => [u, host])) };
  };
  const results = (haEnabled: boolean, probes: string[], read: StorageHeartbeatKind | null = null) => {
    const s = snap(haEnabled);
    return preflight(s, { storageHeartbeatProbes: probes }, readOf(s, read));
  };
  const check = (haEnabled: boolean, probes: string[], read: StorageHeartbeatKind | null = null) =>
    results(haEnabled, probes, read).find((r) => r.check === 'storage_heartbeat')!;

  it("holds with a probe reading it, and HA on or xenha-heartbeat's file read", () => {
    expect(check(true, ['storage-statefile'])).toMatchObject({ ok: true, reason: expect.stringMatching(/^HA on .*two-path verdicts/) });
    expect(check(false, ['storage-statefile'])).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^HA is off: .*no xenha-heartbeat file was read.* never calls a host dead/),
    });
    // HA off, xenha's own daemon's file read: a storage heartbeat after all.
    expect(check(false, ['storage-statefile'], 'xenha-heartbeat')).toMatchObject({
      ok: true,
      reason: expect.stringMatching(/^xenha-heartbeat's file read by storage-statefile/),
    });
    expect(check(true, [])).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^no statefile device configured.* never calls a host dead/),
    });
    // Nothing reads a storage heartbeat: whatever was read before does not count.
    expect(check(false, [], 'xenha-heartbeat')).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^no statefile device configured/),
    });
  });

  it("adds xenha-heartbeat's checks, which fail only where the pool depends on xenha-heartbeat: one cause, one failed check", () => {
    const XENHA = ['xenha_heartbeat_written_all_hosts', 'xenha_heartbeat_heard_all_homes', 'xenha_heartbeat_secret_consistent'];
    const failedOf = (r: ReturnType<typeof results>) => r.filter((x) => !x.ok).map((x) => x.check);
    // One result per check, in the declared order (the metric's label values).
    expect(results(false, ['storage-statefile'], 'xenha-heartbeat').map((r) => r.check)).toEqual([...PREFLIGHT_CHECKS]);
    expect(PREFLIGHT_CHECKS).toEqual(expect.arrayContaining(XENHA));
    // HA off, xenha-heartbeat's file read, all well: nothing fails.
    expect(failedOf(results(false, ['storage-statefile'], 'xenha-heartbeat'))).toEqual([]);
    // HA off without the file (or without a probe to read it): storage_heartbeat alone fails; the three do not apply.
    for (const r of [results(false, ['storage-statefile']), results(false, []), results(false, [], 'xenha-heartbeat')]) {
      expect(failedOf(r)).toEqual(['storage_heartbeat']);
      for (const c of XENHA)
        expect(r.find((x) => x.check === c)).toMatchObject({
          ok: true,
          reason: 'does not apply: no xenha-heartbeat file read (see storage_heartbeat)',
        });
    }
    // HA on: xhad's statefile, whatever else was read.
    for (const read of [null, 'xhad-statefile', 'xenha-heartbeat'] as const) {
      const r = results(true, ['storage-statefile'], read);
      for (const c of XENHA)
        expect(r.find((x) => x.check === c)).toMatchObject({
          ok: true,
          reason: expect.stringMatching(/^does not apply: HA on: .*xhad's statefile/),
        });
    }
  });
});
