/**
 * The pool's HA requirements from the source material, checked on a snapshot, and what the monitor
 * needs of the pool (a storage heartbeat it reads; on a pool without HA, xenha-heartbeat written by
 * every host, every host heard on every home, one pool secret). Pure. One result per check, each with
 * the reason a person acts on.
 */
import type { HostView, PoolSnapshot } from './model/snapshot.ts';

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
  'xenha_heartbeat_written_all_hosts',
  'xenha_heartbeat_heard_all_homes',
  'xenha_heartbeat_secret_consistent',
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

/** One host as xenha-heartbeat's file shows it (the storage-statefile probe's summary of its slot). */
export interface XenhaHeartbeatHost {
  /** Its slot is valid and its sequence advanced within the probe's stall window, on at least one device. */
  writing: boolean;
  /** Not writing: how long its slot has been still, ms (absent: watched for less than the stall window). */
  stalledForMs?: number;
  /** Management homes its slot says it has. */
  homes: number;
  /** heardOnHome[k]: the UUIDs of the hosts its slot says it heard on home k (itself included when bound). */
  heardOnHome: string[][];
  /** Its pool secret's key id (16 hex characters): equal on two hosts with the same secret. */
  keyId: string;
}

/**
 * xenha-heartbeat's file as the probe last read it, by host UUID. A host with no valid slot on any
 * device is absent.
 */
export type XenhaHeartbeatView = Readonly<Record<string, XenhaHeartbeatHost>>;

/**
 * What a probe last read: xhad's statefile (HA on), or xenha-heartbeat's file (a pool without HA
 * running xenha's daemon), with its summary.
 */
export type StorageHeartbeatRead = { kind: 'xhad-statefile' } | { kind: 'xenha-heartbeat'; hosts: XenhaHeartbeatView };
export type StorageHeartbeatKind = StorageHeartbeatRead['kind'];

/**
 * Whether the monitor has a storage heartbeat for the pool: a probe reading one, and either HA on
 * (xhad writes the statefile) or xenha-heartbeat's file read (`read`: what the probe last read).
 * Without one there is no second path to confirm a death: no host is called dead.
 */
export function storageHeartbeatCheck(
  s: Pick<PoolSnapshot, 'haEnabled'>,
  monitor: MonitorSetup,
  read: StorageHeartbeatRead | null = null,
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
  if (read?.kind === 'xenha-heartbeat') return { check, ok: true, reason: `xenha-heartbeat's file read by ${by}: two-path verdicts` };
  if (!s.haEnabled)
    return {
      check,
      ok: false,
      reason: `HA is off: no xhad writes the statefile and no xenha-heartbeat file was read, so the pool has no storage heartbeat and ${never}`,
    };
  return { check, ok: true, reason: `HA on and the statefile read by ${by}: two-path verdicts` };
}

/** How many missing (host, home, peer) triples a reason names before "and N more". */
export const HEARD_MISSING_SHOWN = 5;

/**
 * xenha-heartbeat's three checks, for a pool without HA whose monitor reads xenha-heartbeat's file:
 * every host writes it; every writing host hears every other writing host with the same secret on
 * each home both have; every writing host has the same pool secret (by its key id, never the secret).
 * One cause fails one check: a host not writing is left out of the other two, a pair with different
 * secrets out of the hearing. They apply only there: with HA on the pool's storage heartbeat is xhad's
 * statefile, and without the file read `storage_heartbeat` already fails: they are then ok, saying why not.
 */
export function xenhaHeartbeatChecks(
  s: { haEnabled: boolean; hosts: readonly Pick<HostView, 'uuid' | 'name'>[] },
  monitor: MonitorSetup,
  read: StorageHeartbeatRead | null = null,
): PreflightResult[] {
  const checks = ['xenha_heartbeat_written_all_hosts', 'xenha_heartbeat_heard_all_homes', 'xenha_heartbeat_secret_consistent'] as const;
  const notApplicable = (why: string) => checks.map((check) => ({ check, ok: true, reason: `does not apply: ${why}` }));
  if (s.haEnabled) return notApplicable("HA on: the storage heartbeat is xhad's statefile, not xenha-heartbeat");
  if (monitor.storageHeartbeatProbes.length === 0 || read?.kind !== 'xenha-heartbeat')
    return notApplicable('no xenha-heartbeat file read (see storage_heartbeat)');
  const view = read.hosts;
  const nameOf = new Map(s.hosts.map((h) => [h.uuid, h.name]));
  const name = (uuid: string) => nameOf.get(uuid) ?? uuid;
  const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

  // Written by every host of the pool.
  const notWriting = s.hosts.flatMap((h) => {
    const v = view[h.uuid];
    if (!v) return [`${h.name} (no valid slot)`];
    if (v.writing) return [];
    return [
      v.stalledForMs !== undefined
        ? `${h.name} (stalled for ${secs(v.stalledForMs)})`
        : `${h.name} (not seen advancing yet: watched for less than the stall window)`,
    ];
  });
  const writers = s.hosts.flatMap((h) => {
    const v = view[h.uuid];
    return v?.writing ? [{ uuid: h.uuid, ...v }] : [];
  });
  const written: PreflightResult = {
    check: 'xenha_heartbeat_written_all_hosts',
    ok: notWriting.length === 0,
    reason:
      notWriting.length === 0
        ? `all ${s.hosts.length} host(s) write xenha-heartbeat's file`
        : `not writing xenha-heartbeat's file: ${notWriting.join(', ')}`,
  };

  // Each writing host hears each other writing host on every home both have. Two hosts with different
  // secrets cannot hear each other (their packets fail the HMAC): that is the secret check's to say.
  const missing: string[] = [];
  let otherSecret = 0;
  for (const a of writers)
    for (const b of writers) {
      if (b.uuid === a.uuid) continue;
      if (b.keyId !== a.keyId) {
        otherSecret++;
        continue;
      }
      for (let k = 0; k < Math.min(a.homes, b.homes); k++)
        if (!(a.heardOnHome[k] ?? []).includes(b.uuid)) missing.push(`${name(a.uuid)} does not hear ${name(b.uuid)} on home ${k}`);
    }
  const more = missing.length - HEARD_MISSING_SHOWN;
  const skipped =
    otherSecret > 0
      ? ` (${otherSecret} ordered pair(s) with different pool secrets not compared: see xenha_heartbeat_secret_consistent)`
      : '';
  const heard: PreflightResult = {
    check: 'xenha_heartbeat_heard_all_homes',
    ok: missing.length === 0,
    reason:
      missing.length === 0
        ? `each of the ${writers.length} writing host(s) hears every other on each home they share${skipped}`
        : `${missing.slice(0, HEARD_MISSING_SHOWN).join('; ')}${more > 0 ? `; and ${more} more` : ''}${skipped}`,
  };

  // One pool secret: one key id over the writing hosts.
  const groups = new Map<string, string[]>();
  for (const w of writers) groups.set(w.keyId, [...(groups.get(w.keyId) ?? []), name(w.uuid)]);
  const short = (keyId: string) => `${keyId.slice(0, 8)}…`;
  const ranked = [...groups].sort((x, y) => y[1].length - x[1].length || (x[0] < y[0] ? -1 : 1));
  const secret: PreflightResult = {
    check: 'xenha_heartbeat_secret_consistent',
    ok: groups.size <= 1,
    reason:
      groups.size === 0
        ? 'no host writes: no key id to compare'
        : groups.size === 1
          ? `one pool secret (key id ${short(ranked[0]![0])}) on the ${writers.length} writing host(s)`
          : `different pool secrets (key ids): ${ranked.map(([keyId, hosts]) => `${hosts.join(', ')}: ${short(keyId)}`).join('; ')}`,
  };
  return [written, heard, secret];
}

export function preflight(s: PoolSnapshot, monitor: MonitorSetup, read: StorageHeartbeatRead | null = null): PreflightResult[] {
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
    ...xenhaHeartbeatChecks(s, monitor, read),
  ];
}
