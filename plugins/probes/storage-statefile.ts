/**
 * storage-statefile: reads the HA statefile with the shared core's decoder, through every configured
 * device (each a storage home: a multipath leg from the monitoring host to the heartbeat LUN), and
 * checks that each host's sequence number keeps changing within the statefile timeout. It also reads
 * what each slot says of the network heartbeat: a host heard recently by a live peer is alive on the
 * network as the pool sees it, whatever the monitor's own reach.
 */
import { z } from 'zod';
import type { Sample } from '../../core/classify/state-machine.ts';
import { hostIndexOrder, type StatefileHostSlot } from '../../core/statefile/layout.ts';
import { readStatefile } from '../../io/statefile-reader.ts';
import { registerProbe, sample, type ProbeResult } from './contract.ts';

const options = z.strictObject({
  /** The statefile as the monitor sees it, one entry per home (e.g. two multipath legs). */
  devices: z.array(z.strictObject({ home: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, 'letters, digits, "_", "." and "-" (a label value)'), path: z.string().min(1) })).min(1).max(8)
    .refine((d) => new Set(d.map((x) => x.home)).size === d.length, { error: 'each device needs its own home' }),
  readMode: z.enum(['auto', 'direct', 'buffered']).default('auto'),
  /** A slot whose sequence has not changed for this long is down (xhad's T2; default the pool's HA timeout). */
  statefileTimeoutMs: z.number().int().positive().optional(),
  /** A peer that heard a host's network heartbeat within this long vouches for its network path. */
  peerHeartbeatTimeoutMs: z.number().int().positive().default(10_000),
});

interface SlotTrack {
  sequence: number;
  changedAt: number;
  firstSeenAt: number;
}

registerProbe({
  name: 'storage-statefile',
  path: 'storage',
  description: 'statefile slot sequence numbers advancing, per device; peers\' view of the network heartbeat',
  options,
  create(o) {
    const tracks = new Map<string, Map<string, SlotTrack>>(); // home → host uuid → track
    let extras = new Map<string, Record<string, number>>();
    return {
      name: 'storage-statefile',
      path: 'storage',
      extras: () => extras,
      async sample(ctx): Promise<ProbeResult> {
        const out: ProbeResult = new Map();
        const s = ctx.snapshot;
        if (!s) return out;
        const timeout = o.statefileTimeoutMs ?? s.haTimeoutSeconds * 1000;
        // host uuid → a slot that advanced recently, with how long ago it last changed
        const freshSlots = new Map<string, { slot: StatefileHostSlot; ageMs: number }>();
        const slotIndex = new Map<string, number>(); // host uuid → its slot index, as the slots say
        const roundExtras = new Map<string, Record<string, number>>();
        const push = (uuid: string, x: Sample) => out.set(uuid, [...(out.get(uuid) ?? []), x]);
        await Promise.all(o.devices.map(async (dev) => {
          const started = performance.now();
          let slots: Map<string, StatefileHostSlot>;
          let unreadable: Set<number>; // slot indices still torn or undecodable after the retries
          try {
            const { decoded } = await readStatefile(dev.path, o.readMode, ctx.signal);
            if (!decoded.global.ok) throw new Error(`global section: ${decoded.global.error.detail}`);
            slots = new Map();
            unreadable = new Set();
            decoded.slots.forEach((d, i) => {
              if (!d.ok) unreadable.add(i);
              else if (d.value.hostUuid) {
                slots.set(d.value.hostUuid, d.value);
                slotIndex.set(d.value.hostUuid, d.value.hostIndex);
              }
            });
          } catch (e) {
            for (const h of s.hosts) push(h.uuid, sample('storage-statefile', 'storage', dev.home, null, `cannot read ${dev.path}: ${(e as Error).message}`));
            return;
          }
          const seconds = (performance.now() - started) / 1000;
          const track = tracks.get(dev.home) ?? new Map<string, SlotTrack>();
          tracks.set(dev.home, track);
          const order = hostIndexOrder(s.hosts.map((h) => h.uuid));
          for (const h of s.hosts) {
            const slot = slots.get(h.uuid);
            if (!slot) {
              // A slot that cannot be read says nothing either way; an intact one not written by this host says down.
              const torn = unreadable.has(order.indexOf(h.uuid)) || unreadable.size > 0;
              push(h.uuid, sample('storage-statefile', 'storage', dev.home, torn ? null : false,
                torn ? `${unreadable.size} slot(s) unreadable (torn or corrupt after retries): cannot tell` : 'no slot written by this host'));
              continue;
            }
            const prev = track.get(h.uuid);
            const t: SlotTrack = !prev ? { sequence: slot.sequence, changedAt: -Infinity, firstSeenAt: ctx.now }
              : prev.sequence !== slot.sequence ? { ...prev, sequence: slot.sequence, changedAt: ctx.now } : prev;
            track.set(h.uuid, t);
            const age = ctx.now - t.changedAt;
            let up: boolean | null;
            if (age < timeout) up = true;
            else if (ctx.now - t.firstSeenAt >= timeout) up = false;
            else up = null; // not watched long enough to tell
            if (up && (freshSlots.get(h.uuid)?.ageMs ?? Infinity) > age) freshSlots.set(h.uuid, { slot, ageMs: age });
            roundExtras.set(h.uuid, { sequence: slot.sequence, hbdomain: slot.hbdomain.length, sfdomain: slot.sfdomain.length, ...(Number.isFinite(age) ? { slotAgeSeconds: age / 1000 } : {}) });
            push(h.uuid, sample('storage-statefile', 'storage', dev.home, up,
              up === null ? `sequence ${slot.sequence}, watched for less than the statefile timeout` : `sequence ${slot.sequence}, last change ${Number.isFinite(age) ? `${(age / 1000).toFixed(1)} s` : 'never seen'} ago (timeout ${timeout / 1000} s)`,
              up ? seconds : null));
          }
        }));
        extras = roundExtras;
        // The peers' word on each host's network heartbeat, from slots that are themselves alive.
        // A host's index in the peers' arrays is its slot index: as its own slot says, else the rank
        // of its UUID (xhad's order). A peer's "ms since heard" counts from its own last write.
        const order = hostIndexOrder(s.hosts.map((h) => h.uuid));
        for (const h of s.hosts) {
          const peers = [...freshSlots.values()].filter((p) => p.slot.hostUuid !== h.uuid);
          const j = slotIndex.get(h.uuid) ?? order.indexOf(h.uuid);
          if (peers.length === 0) {
            push(h.uuid, sample('storage-statefile', 'network', 'peers', null, 'no live peer slot to vouch for the network path'));
            continue;
          }
          const heard = peers.filter((p) => {
            const ms = p.slot.sinceLastHbReceiptMs[j];
            return ms !== undefined && ms >= 0 && ms + p.ageMs < o.peerHeartbeatTimeoutMs;
          });
          push(h.uuid, sample('storage-statefile', 'network', 'peers', heard.length > 0,
            `heard on the network heartbeat by ${heard.length}/${peers.length} live peers (statefile slots)`));
        }
        return out;
      },
    };
  },
});
