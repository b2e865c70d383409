/**
 * The pool's HA requirements from the source material, checked on a snapshot, and what the monitor
 * needs of the pool (a storage heartbeat it reads). Pure. One result per check, each with the reason
 * a person acts on.
 */
import type { PoolSnapshot } from './model/snapshot.ts';

export const STATEFILE_MIN_BYTES = 4 * 2 ** 20;
export const METADATA_MIN_BYTES = 256 * 2 ** 20;
/** SR types of the old NetApp and EqualLogic adapters: their heartbeat LUN is provisioned by hand. */
export const HAND_PROVISIONED_SR_TYPES = new Set(['netapp', 'equal']);

export const PREFLIGHT_CHECKS = [
  'heartbeat_sr_present',
  'heartbeat_sr_shared',
  'heartbeat_sr_attached_all_hosts',
  'statefile_volume_size',
  'metadata_volume_size',
  'at_least_two_hosts',
  'ha_licensed_all_hosts',
  'static_ip_all_hosts',
  'heartbeat_lun_auto_provisioned',
  'storage_heartbeat',
] as const;
export type PreflightCheck = (typeof PREFLIGHT_CHECKS)[number];

export interface PreflightResult {
  check: PreflightCheck;
  ok: boolean;
  reason: string;
}

const MiB = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

/** What the monitor reads of the pool, beside XAPI. */
export interface MonitorSetup {
  /** The configured probes that read a storage heartbeat (the statefile). */
  storageHeartbeatProbes: readonly string[];
}

/** xhad's statefile (HA on), or xenha-heartbeat's file (a pool without HA running xenha's daemon). */
export type StorageHeartbeatKind = 'xhad-statefile' | 'xenha-heartbeat';

/**
 * Whether the monitor has a storage heartbeat for the pool: a probe reading one, and either HA on
 * (xhad writes the statefile) or xenha-heartbeat's file read (`read`: what the probe last read).
 * Without one there is no second path to confirm a death: no host is called dead.
 */
export function storageHeartbeatCheck(
  s: Pick<PoolSnapshot, 'haEnabled'>,
  monitor: MonitorSetup,
  read: StorageHeartbeatKind | null = null,
): PreflightResult {
  const check = 'storage_heartbeat';
  const never = 'xenha never calls a host dead (suspect at most)';
  if (monitor.storageHeartbeatProbes.length === 0)
    return {
      check,
      ok: false,
      reason: `no statefile device configured (probe storage-statefile): without the storage heartbeat ${never}`,
    };
  const by = monitor.storageHeartbeatProbes.join(', ');
  if (read === 'xenha-heartbeat') return { check, ok: true, reason: `xenha-heartbeat's file read by ${by}: two-path verdicts` };
  if (!s.haEnabled)
    return {
      check,
      ok: false,
      reason: `HA is off: no xhad writes the statefile and no xenha-heartbeat file was read, so the pool has no storage heartbeat and ${never}`,
    };
  return { check, ok: true, reason: `HA on and the statefile read by ${by}: two-path verdicts` };
}

export function preflight(s: PoolSnapshot, monitor: MonitorSetup, read: StorageHeartbeatKind | null = null): PreflightResult[] {
  const sr = s.heartbeatSr;
  const r = (check: PreflightCheck, ok: boolean, reason: string): PreflightResult => ({ check, ok, reason });
  const missingSr = 'no heartbeat SR (no statefile VDI)';
  const unattached = sr ? s.hosts.filter((h) => !sr.attachedHosts.includes(h.ref)).map((h) => h.name) : [];
  const unlicensed = s.hosts.filter((h) => !h.haLicensed).map((h) => h.name);
  const dynamic = s.hosts
    .filter((h) => h.managementIpMode !== 'Static')
    .map((h) => `${h.name} (${h.managementIpMode ?? 'no management PIF'})`);
  return [
    r('heartbeat_sr_present', sr !== null, sr ? `heartbeat SR "${sr.name}" (${sr.type})` : missingSr),
    r('heartbeat_sr_shared', sr?.shared === true, sr ? (sr.shared ? 'shared' : `SR "${sr.name}" is not shared`) : missingSr),
    r(
      'heartbeat_sr_attached_all_hosts',
      sr !== null && unattached.length === 0,
      sr ? (unattached.length === 0 ? 'a PBD is attached on every host' : `not attached on ${unattached.join(', ')}`) : missingSr,
    ),
    r(
      'statefile_volume_size',
      (sr?.statefileBytes ?? 0) >= STATEFILE_MIN_BYTES,
      sr ? `statefile volume ${MiB(sr.statefileBytes ?? 0)}, need ≥ ${MiB(STATEFILE_MIN_BYTES)}` : missingSr,
    ),
    r(
      'metadata_volume_size',
      (sr?.metadataBytes ?? 0) >= METADATA_MIN_BYTES,
      sr
        ? sr.metadataBytes === null
          ? 'no metadata (redo_log) volume on the heartbeat SR'
          : `metadata volume ${MiB(sr.metadataBytes)}, need ≥ ${MiB(METADATA_MIN_BYTES)}`
        : missingSr,
    ),
    r('at_least_two_hosts', s.hosts.length >= 2, `${s.hosts.length} host(s)`),
    r(
      'ha_licensed_all_hosts',
      unlicensed.length === 0,
      unlicensed.length === 0 ? 'HA licensed on every host' : `HA not licensed on ${unlicensed.join(', ')}`,
    ),
    r(
      'static_ip_all_hosts',
      dynamic.length === 0,
      dynamic.length === 0 ? 'static management IP on every host' : `not static: ${dynamic.join(', ')}`,
    ),
    r(
      'heartbeat_lun_auto_provisioned',
      !(sr && HAND_PROVISIONED_SR_TYPES.has(sr.type)),
      sr && HAND_PROVISIONED_SR_TYPES.has(sr.type)
        ? `SR type ${sr.type}: the heartbeat iSCSI LUN must be provisioned by hand`
        : 'no hand-provisioned LUN needed',
    ),
    storageHeartbeatCheck(s, monitor, read),
  ];
}
