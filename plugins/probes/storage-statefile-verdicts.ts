/**
 * The storage-statefile probe's verdicts, pure: from a decoded statefile, the hosts, what was seen of
 * each slot before and the time, say which slots still advance (storage path) and which hosts their
 * live peers hear on the network heartbeat (network path); for xenha-heartbeat's file, a summary per
 * host for the preflight (who writes, who hears whom on which home, which pool secret). The probe
 * itself only reads the devices.
 */
import { heartbeatIntervalMs, statefileIntervalMs } from '../../core/model/ha-timeouts.ts';
import type { XenhaHeartbeatHost, XenhaHeartbeatView } from '../../core/preflight.ts';
import { hostIndexOrder, type DecodedStatefile, type StatefileHostSlot, type XenhaHostSlot } from '../../core/statefile/layout.ts';

/** What the probe remembers of one host's slot on one device. */
export interface SlotTrack {
  sequence: number;
  /** When the sequence last changed (−Infinity: never seen changing). */
  changedAt: number;
  firstSeenAt: number;
}

export interface Verdict {
  host: string;
  up: boolean | null;
  detail: string;
  /** How old the evidence is (Sample.ageMs): for up, the age of the life shown; for down, how long silent when known. */
  ageMs: number | null;
}

/** A host's slot as read from one device, and how long ago it last advanced. */
export interface SlotReading {
  host: string;
  slot: StatefileHostSlot;
  up: boolean | null;
  /** Milliseconds since the sequence last changed (Infinity: not seen changing yet). */
  ageMs: number;
}

export interface DeviceVerdicts {
  samples: Verdict[];
  readings: SlotReading[];
  tracks: Map<string, SlotTrack>;
}

/**
 * How long a peer's word that it heard a host stays good by default: three heartbeat intervals (two
 * lost UDP heartbeats tolerated) plus one statefile interval (the peer reports what it heard when it
 * next writes its slot). 8 s for T = 10 s, 11 s for T = 30 s, 12 s for T = 60 s: shorter than T, so
 * a network verdict comes before dead-after and a crash is dead at T.
 */
export function peerHeartbeatTimeoutMs(haTimeoutSeconds: number): number {
  return 3 * heartbeatIntervalMs(haTimeoutSeconds) + statefileIntervalMs(haTimeoutSeconds);
}

/**
 * One device: a host's slot is up while its sequence changed within the stall threshold (a few
 * statefile intervals), down once it has not (and it was watched that long), cannot tell before. A
 * torn or corrupt slot says nothing; an intact statefile with no slot written by the host says down.
 * An up slot shows life as old as its last change; a down one says how long it has been still.
 */
export function deviceVerdicts(
  decoded: DecodedStatefile,
  hosts: readonly string[],
  tracks: ReadonlyMap<string, SlotTrack>,
  now: number,
  stallAfterMs: number,
): DeviceVerdicts {
  if (!decoded.global.ok) {
    const detail = `global section unreadable: ${decoded.global.error.detail}`;
    return { samples: hosts.map((host) => ({ host, up: null, detail, ageMs: null })), readings: [], tracks: new Map(tracks) };
  }
  const slots = new Map<string, StatefileHostSlot>();
  const unreadable = new Set<number>();
  decoded.slots.forEach((d, i) => {
    if (!d.ok) unreadable.add(i);
    else if (d.value.hostUuid) slots.set(d.value.hostUuid, d.value);
  });
  // What was seen of a slot that cannot be read this round (torn) is kept; hosts that left the pool go.
  const next = new Map([...tracks].filter(([host]) => hosts.includes(host)));
  const samples: Verdict[] = [];
  const readings: SlotReading[] = [];
  for (const host of hosts) {
    const slot = slots.get(host);
    if (!slot) {
      // Any unreadable slot might be this host's: cannot tell.
      const torn = unreadable.size > 0;
      samples.push({
        host,
        up: torn ? null : false,
        detail: torn
          ? `${unreadable.size} slot(s) unreadable (torn or corrupt after retries): cannot tell`
          : 'no slot written by this host',
        ageMs: null,
      });
      continue;
    }
    const prev = tracks.get(host);
    const t: SlotTrack = !prev
      ? { sequence: slot.sequence, changedAt: -Infinity, firstSeenAt: now }
      : prev.sequence !== slot.sequence
        ? { ...prev, sequence: slot.sequence, changedAt: now }
        : prev;
    next.set(host, t);
    const age = now - t.changedAt;
    const up = age < stallAfterMs ? true : now - t.firstSeenAt >= stallAfterMs ? false : null;
    readings.push({ host, slot, up, ageMs: age });
    // Still since at least the first sight when never seen changing.
    const still = Number.isFinite(age) ? age : now - t.firstSeenAt;
    samples.push({
      host,
      up,
      detail:
        up === null
          ? `sequence ${slot.sequence}, watched for less than the stall threshold (${stallAfterMs / 1000} s)`
          : up
            ? `sequence ${slot.sequence}, last change ${(age / 1000).toFixed(1)} s ago (stalled after ${stallAfterMs / 1000} s)`
            : `sequence ${slot.sequence} stalled: ${Number.isFinite(age) ? 'last change' : 'unchanged since first read'} ${(still / 1000).toFixed(1)} s ago (stalled after ${stallAfterMs / 1000} s)`,
      ageMs: up === null ? null : still,
    });
  }
  return { samples, readings, tracks: next };
}

/**
 * The peers' word on each host's network heartbeat, from slots that are themselves alive (on any
 * device; the freshest reading counts). A host's index in the peers' arrays is its slot index as its
 * own slot says, else the rank of its UUID (xhad's order). A peer's "ms since heard" counts from its
 * own last write, so its slot's age is added.
 */
export function peerVerdicts(hosts: readonly string[], readings: readonly SlotReading[], peerTimeoutMs: number): Verdict[] {
  const fresh = new Map<string, SlotReading>();
  const index = new Map<string, number>();
  for (const r of readings) {
    index.set(r.host, r.slot.hostIndex);
    if (r.up === true && (fresh.get(r.host)?.ageMs ?? Infinity) > r.ageMs) fresh.set(r.host, r);
  }
  const order = hostIndexOrder(hosts);
  return hosts.map((host) => {
    const peers = [...fresh.values()].filter((p) => p.host !== host);
    if (peers.length === 0) return { host, up: null, detail: 'no live peer slot to vouch for the network path', ageMs: null };
    const j = index.get(host) ?? order.indexOf(host);
    // How long ago each peer last heard the host, as of now: its word plus its slot's age.
    const ages = peers.flatMap((p) => {
      const ms = p.slot.sinceLastHbReceiptMs[j];
      return ms !== undefined && ms >= 0 ? [ms + p.ageMs] : [];
    });
    const heard = ages.filter((a) => a < peerTimeoutMs);
    const newest = ages.length > 0 ? Math.min(...ages) : null;
    return {
      host,
      up: heard.length > 0,
      detail: `heard on the network heartbeat by ${heard.length}/${peers.length} live peers (statefile slots)${newest !== null ? `, last ${(newest / 1000).toFixed(1)} s ago` : ''}`,
      ageMs: newest,
    };
  });
}

/** One device's read of xenha-heartbeat's file: the decoded file and the stall verdicts deviceVerdicts gave it. */
export interface XenhaDeviceRead {
  decoded: DecodedStatefile<XenhaHostSlot>;
  /** deviceVerdicts(decoded, …).samples of this read. */
  verdicts: readonly Verdict[];
}

/**
 * xenha-heartbeat's file summarised per host, for the preflight: a host writes when its slot was up
 * (advancing within the stall window) on at least one device; otherwise, when a device says it is
 * stalled, for how long (the shortest). Its homes, whom it heard on each (slot indexes turned into
 * UUIDs by the slots of the same file, else by UUID rank) and its key id come from its freshest up
 * slot, else its freshest slot. A host with no valid slot on any device is left out.
 */
export function xenhaHeartbeatView(hosts: readonly string[], devices: readonly XenhaDeviceRead[]): XenhaHeartbeatView {
  const order = hostIndexOrder(hosts);
  const view: Record<string, XenhaHeartbeatHost> = {};
  for (const host of hosts) {
    const seen = devices.flatMap((d) => {
      const slot = d.decoded.slots.find((x) => x.ok && x.value.hostUuid === host);
      const verdict = d.verdicts.find((v) => v.host === host);
      return slot?.ok && verdict ? [{ slot: slot.value, verdict, decoded: d.decoded }] : [];
    });
    if (seen.length === 0) continue;
    const up = seen.filter((x) => x.verdict.up === true);
    const age = (x: (typeof seen)[number]) => x.verdict.ageMs ?? Infinity;
    const best = (up.length > 0 ? up : seen).reduce((a, b) => (age(b) < age(a) ? b : a));
    const stalled = seen.flatMap((x) => (x.verdict.up === false && x.verdict.ageMs !== null ? [x.verdict.ageMs] : []));
    // Slot j of the same file names the host with index j; an unreadable one, the rank of the UUIDs.
    const uuidAt = (j: number) => {
      const s = best.decoded.slots[j];
      return (s?.ok ? s.value.hostUuid : null) ?? order[j] ?? null;
    };
    const ext = best.slot.xenha;
    view[host] = {
      writing: up.length > 0,
      ...(up.length === 0 && stalled.length > 0 ? { stalledForMs: Math.min(...stalled) } : {}),
      homes: ext.homes.length,
      heardOnHome: ext.homes.map((indexes) => indexes.flatMap((j) => uuidAt(j) ?? [])),
      keyId: ext.keyId,
    };
  }
  return view;
}
