/**
 * A pool snapshot: what xenha needs of a pool's XAPI records, validated and joined (hosts with their
 * metrics, management homes and heartbeat PBD; the heartbeat SR with its statefile and metadata
 * VDIs; VMs with what the planner needs). Pure: records in, snapshot out. A record that fails its
 * schema is left out and listed in `invalid`, never a crash.
 */
import { z } from 'zod';
import {
  hostMetricsRecord,
  hostRecord,
  NULL_REF,
  pbdRecord,
  pifRecord,
  poolRecord,
  srRecord,
  vbdRecord,
  vdiRecord,
  vmRecord,
  type HostRecord,
  type PbdRecord,
  type PifRecord,
  type SrRecord,
  type VdiRecord,
  type VmRecord,
} from './xapi-records.ts';

/** Records by class, each `{ref: record}`, as `<class>.get_all_records` answers. */
export type RecordsByClass = Partial<
  Record<'pool' | 'host' | 'host_metrics' | 'PIF' | 'PBD' | 'SR' | 'VDI' | 'VM' | 'VBD', Record<string, unknown>>
>;

export interface HeartbeatPbd {
  attached: boolean;
  /** Multipath legs from PBD.other_config["mpath-<SCSIid>"] = "[active, total]"; null when not multipathed. */
  activeLegs: number | null;
  totalLegs: number | null;
}

export interface HostView {
  ref: string;
  uuid: string;
  name: string;
  address: string;
  /** Management homes: the management PIF's IP first, then secondary interfaces carrying management. */
  homes: string[];
  enabled: boolean;
  live: boolean | null;
  memoryTotal: number | null;
  memoryFree: number | null;
  memoryOverhead: number;
  haStatefiles: string[];
  haNetworkPeers: string[];
  haLicensed: boolean;
  managementIpMode: 'None' | 'DHCP' | 'Static' | null;
  heartbeatPbd: HeartbeatPbd | null;
  /**
   * The host's system boot time as its xapi last wrote it (`other_config["boot_time"]`, seconds since
   * the epoch as OCaml prints a float, "1732771200."), null when absent. Unchanged while the host is
   * down; a reboot writes a new one: it tells one life of a host from the next.
   */
  bootTime: string | null;
}

export interface VmView {
  ref: string;
  uuid: string;
  name: string;
  powerState: VmRecord['power_state'];
  residentOn: string | null;
  haRestartPriority: VmRecord['ha_restart_priority'];
  haAlwaysRun: boolean;
  order: number;
  startDelay: number;
  /** Memory the VM needs to start: static_max + overhead (xapi's planner uses static_max). */
  memoryNeed: number;
  isControlDomain: boolean;
  /** Host the VM is tied to by a disk on a host-local SR, or null when it can run anywhere. */
  pinnedTo: string | null;
}

export interface HeartbeatSrView {
  ref: string;
  uuid: string;
  name: string;
  type: string;
  shared: boolean;
  statefileBytes: number | null;
  metadataBytes: number | null;
  /** Refs of the hosts with a currently attached PBD to it. */
  attachedHosts: string[];
  scsiId: string | null;
}

export interface PoolSnapshot {
  ref: string;
  uuid: string;
  name: string;
  masterRef: string;
  haEnabled: boolean;
  haHostFailuresToTolerate: number;
  haPlanExistsFor: number;
  haOvercommitted: boolean;
  haAllowOvercommit: boolean;
  /** HA timeout T in seconds (ha_configuration.timeout, else other_config.default_ha_timeout, else 60). */
  haTimeoutSeconds: number;
  /** Where T came from (Xapi_ha.Timeouts.get_base_t's order); 'default' also when the field is not a positive number. */
  haTimeoutFrom: 'ha_configuration.timeout' | 'other_config.default_ha_timeout' | 'default';
  hosts: HostView[];
  vms: VmView[];
  heartbeatSr: HeartbeatSrView | null;
  invalid: { cls: string; ref: string; error: string }[];
}

function validated<T>(
  cls: string,
  records: Record<string, unknown> | undefined,
  schema: z.ZodType<T>,
  invalid: PoolSnapshot['invalid'],
): Map<string, T> {
  const out = new Map<string, T>();
  for (const [ref, raw] of Object.entries(records ?? {})) {
    const r = schema.safeParse(raw);
    if (r.success) out.set(ref, r.data);
    else invalid.push({ cls, ref, error: z.prettifyError(r.error).replace(/\n/g, ' ') });
  }
  return out;
}

function legs(pbd: PbdRecord): { active: number | null; total: number | null } {
  for (const [k, v] of Object.entries(pbd.other_config)) {
    if (!k.startsWith('mpath-')) continue;
    const m = /^\[\s*(\d+)\s*,\s*(\d+)\s*\]$/.exec(v);
    if (m) return { active: Number(m[1]), total: Number(m[2]) };
  }
  return { active: null, total: null };
}

function homesOf(host: HostRecord, pifs: Map<string, PifRecord>): string[] {
  const own = host.PIFs.map((r) => pifs.get(r)).filter((p): p is PifRecord => p !== undefined && p.IP !== '');
  const mgmt = own.filter((p) => p.management).map((p) => p.IP);
  const secondary = own.filter((p) => !p.management && p.other_config.management_purpose !== undefined).map((p) => p.IP);
  const homes = [...new Set([...mgmt, ...secondary])];
  return homes.length > 0 ? homes : [host.address];
}

export function buildSnapshot(records: RecordsByClass): PoolSnapshot {
  const invalid: PoolSnapshot['invalid'] = [];
  const pools = validated('pool', records.pool, poolRecord, invalid);
  const hosts = validated('host', records.host, hostRecord, invalid);
  const metrics = validated('host_metrics', records.host_metrics, hostMetricsRecord, invalid);
  const pifs = validated('PIF', records.PIF, pifRecord, invalid);
  const pbds = validated('PBD', records.PBD, pbdRecord, invalid);
  const srs = validated('SR', records.SR, srRecord, invalid);
  const vdis = validated('VDI', records.VDI, vdiRecord, invalid);
  const vms = validated('VM', records.VM, vmRecord, invalid);
  const vbds = validated('VBD', records.VBD, vbdRecord, invalid);

  const [poolRef, pool] = [...pools.entries()][0] ?? [];
  if (!poolRef || !pool) throw new Error('no valid pool record');

  // The heartbeat SR: where pool.ha_statefiles points, else the SR holding an ha_statefile VDI.
  const statefileVdi: [string, VdiRecord] | undefined =
    pool.ha_statefiles.map((r) => [r, vdis.get(r)] as const).find((x): x is [string, VdiRecord] => x[1] !== undefined) ??
    [...vdis.entries()].find(([, v]) => v.type === 'ha_statefile');
  let heartbeatSr: HeartbeatSrView | null = null;
  let heartbeatPbds = new Map<string, PbdRecord>();
  if (statefileVdi) {
    const srRef = statefileVdi[1].SR;
    const sr: SrRecord | undefined = srs.get(srRef);
    if (sr) {
      const onSr = [...vdis.values()].filter((v) => v.SR === srRef);
      const metadata = onSr.find((v) => v.type === 'redo_log');
      const srPbds = sr.PBDs.map((r) => pbds.get(r)).filter((p): p is PbdRecord => p !== undefined);
      heartbeatPbds = new Map(srPbds.map((p) => [p.host, p]));
      heartbeatSr = {
        ref: srRef,
        uuid: sr.uuid,
        name: sr.name_label,
        type: sr.type,
        shared: sr.shared,
        statefileBytes: statefileVdi[1].virtual_size,
        metadataBytes: metadata?.virtual_size ?? null,
        attachedHosts: srPbds.filter((p) => p.currently_attached).map((p) => p.host),
        scsiId: srPbds.map((p) => p.device_config.SCSIid).find((x) => x !== undefined) ?? null,
      };
    }
  }

  const hostViews: HostView[] = [...hosts.entries()]
    .map(([ref, h]) => {
      const m = metrics.get(h.metrics);
      const mgmt = h.PIFs.map((r) => pifs.get(r)).find((p) => p?.management);
      const pbd = heartbeatPbds.get(ref);
      const l = pbd ? legs(pbd) : null;
      return {
        ref,
        uuid: h.uuid,
        name: h.name_label,
        address: h.address,
        homes: homesOf(h, pifs),
        enabled: h.enabled,
        live: m?.live ?? null,
        memoryTotal: m?.memory_total ?? null,
        memoryFree: m?.memory_free ?? null,
        memoryOverhead: h.memory_overhead,
        haStatefiles: h.ha_statefiles,
        haNetworkPeers: h.ha_network_peers,
        haLicensed: h.license_params.restrict_ha !== 'true',
        managementIpMode: mgmt?.ip_configuration_mode ?? null,
        heartbeatPbd: pbd ? { attached: pbd.currently_attached, activeLegs: l!.active, totalLegs: l!.total } : null,
        bootTime: h.other_config.boot_time ?? null,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));

  // A disk on a host-local SR ties its VM to that host. SR.VDIs says which VDIs an SR holds, so
  // no VDI records are needed for this.
  const localVdiHost = new Map<string, string>();
  for (const sr of srs.values()) {
    if (sr.shared) continue;
    const host = sr.PBDs.map((r) => pbds.get(r)?.host).find((x) => x !== undefined);
    if (host) for (const vdi of sr.VDIs) localVdiHost.set(vdi, host);
  }
  const vmViews: VmView[] = [...vms.entries()]
    .filter(([, v]) => !v.is_a_template && !v.is_a_snapshot)
    .map(([ref, v]) => {
      const pinnedTo =
        v.VBDs.map((r) => vbds.get(r)?.VDI)
          .map((vdi) => (vdi ? localVdiHost.get(vdi) : undefined))
          .find((x) => x !== undefined) ?? null;
      return {
        ref,
        uuid: v.uuid,
        name: v.name_label,
        powerState: v.power_state,
        residentOn: v.resident_on === NULL_REF ? null : v.resident_on,
        haRestartPriority: v.ha_restart_priority,
        haAlwaysRun: v.ha_always_run,
        order: v.order,
        startDelay: v.start_delay,
        memoryNeed: v.memory_static_max + v.memory_overhead,
        isControlDomain: v.is_control_domain,
        pinnedTo,
      };
    });

  const timeoutFrom =
    pool.ha_configuration.timeout !== undefined
      ? ('ha_configuration.timeout' as const)
      : pool.other_config.default_ha_timeout !== undefined
        ? ('other_config.default_ha_timeout' as const)
        : ('default' as const);
  const t = Number(pool.ha_configuration.timeout ?? pool.other_config.default_ha_timeout ?? 60);
  const timeoutOk = Number.isFinite(t) && t > 0;
  return {
    ref: poolRef,
    uuid: pool.uuid,
    name: pool.name_label,
    masterRef: pool.master,
    haEnabled: pool.ha_enabled,
    haHostFailuresToTolerate: pool.ha_host_failures_to_tolerate,
    haPlanExistsFor: pool.ha_plan_exists_for,
    haOvercommitted: pool.ha_overcommitted,
    haAllowOvercommit: pool.ha_allow_overcommit,
    haTimeoutSeconds: timeoutOk ? t : 60,
    haTimeoutFrom: timeoutOk ? timeoutFrom : 'default',
    hosts: hostViews,
    vms: vmViews,
    heartbeatSr,
    invalid,
  };
}
