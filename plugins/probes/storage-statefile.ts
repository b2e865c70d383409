/**
 * storage-statefile: reads the HA statefile with the shared core's decoder, through every configured
 * device (each a storage home: a multipath leg from the monitoring host to the heartbeat LUN), and
 * checks that each host's sequence number keeps advancing: a slot still for a few statefile
 * intervals (xapi's max(2, T/20) s) is down, with its age. It also reads what each slot says of the
 * network heartbeat: a host heard recently by a live peer is alive on the network as the pool sees
 * it, whatever the monitor's own reach. With HA off no host writes xhad's statefile: it cannot tell,
 * unless the file is xenha-heartbeat's (xenha's own daemon, same layout, its own signature), whose
 * slots it reads the same way, at the interval they say. The verdicts are pure
 * (storage-statefile-verdicts.ts); this file reads.
 */
import { z } from 'zod';
import type { DecodedStatefile, XenhaHostSlot } from '../../core/statefile/layout.ts';
import { heartbeatIntervalMs, statefileIntervalMs } from '../../core/model/ha-timeouts.ts';
import { readStatefile } from '../../io/statefile-reader.ts';
import { defineProbe } from './contract.ts';
import {
  deviceVerdicts,
  peerHeartbeatTimeoutMs,
  peerVerdicts,
  xenhaHeartbeatView,
  type SlotReading,
  type SlotTrack,
  type XenhaDeviceRead,
} from './storage-statefile-verdicts.ts';

/** Statefile intervals a slot may stay still before it is down: one missed write is not a stall. */
export const STALL_INTERVALS = 3;

/**
 * xenha-heartbeat sends its UDP heartbeat and writes its slot once per interval: the peers' word on a
 * host lasts 3 heartbeats plus the write that reports them, as for xhad.
 */
export const XENHA_PEER_WINDOW_INTERVALS = 4;

/** The interval xenha-heartbeat's slots say they are written at (the largest, so no slow writer is called stalled). */
function xenhaIntervalMs(files: readonly DecodedStatefile<XenhaHostSlot>[]): number | null {
  let interval: number | null = null;
  for (const f of files)
    for (const slot of f.slots) {
      const ms = slot.ok ? slot.value.xenha.intervalMs : 0;
      if (ms > 0 && (interval === null || ms > interval)) interval = ms;
    }
  return interval;
}

const options = z.strictObject({
  /** The statefile as the monitor sees it, one entry per home (e.g. two multipath legs). */
  devices: z
    .array(
      z.strictObject({
        home: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, 'letters, digits, "_", "." and "-" (a label value)'),
        path: z.string().min(1),
      }),
    )
    .min(1)
    .max(8)
    .refine((d) => new Set(d.map((x) => x.home)).size === d.length, { error: 'each device needs its own home' }),
  readMode: z.enum(['auto', 'direct', 'buffered']).default('auto'),
  /**
   * A slot whose sequence has not changed for this long is down. Default: STALL_INTERVALS statefile
   * intervals of the pool (xapi's max(2, T/20) s for the pool's HA timeout T), following T as it changes.
   */
  stallAfterMs: z.number().int().positive().optional(),
  /**
   * How much longer a host may have lived, unseen, after the life a sample shows: a slot's writer until
   * its next write, a peer's word until the host's next heartbeat. Default: the write interval (xhad:
   * max(2, T/20) s; xenha-heartbeat: the interval its slots say), and for the peers' word the larger of
   * that and xhad's heartbeat interval (min((T + 10) / 10, 3) s). Dead is counted from there.
   */
  lifeWindowMs: z.number().int().nonnegative().optional(),
  /**
   * A peer that heard a host's network heartbeat within this long vouches for its network path.
   * Default: 3 heartbeat intervals + 1 statefile interval of the pool (xapi's, from T: 11 s for T = 30 s).
   */
  peerHeartbeatTimeoutMs: z.number().int().positive().optional(),
});

export const storageStatefile = defineProbe({
  name: 'storage-statefile',
  path: 'storage',
  observerSide: false,
  source: 'statefile',
  storageHeartbeat: true,
  enabledByDefault: false,
  description: "statefile slot sequence numbers advancing, per device; peers' view of the network heartbeat",
  options,
  series: {
    sequence: { name: 'xenha_statefile_slot_sequence', help: "The host's statefile slot sequence number as last read.", labelNames: [] },
    peers: {
      name: 'xenha_statefile_slot_peers',
      help: "Hosts the host's statefile slot says it sees: on the network heartbeat (network) or alive on the statefile (storage).",
      labelNames: ['domain'],
    },
  },
  create(o, deps) {
    const readDevice = deps.io?.readStatefile ?? readStatefile;
    const tracks = new Map<string, Map<string, SlotTrack>>(); // device home → host uuid → track
    return {
      async sample(round) {
        const s = round.snapshot;
        const hosts = s.hosts.map((h) => h.uuid);
        const reads = await Promise.all(
          o.devices.map(async (dev) => {
            const started = performance.now();
            try {
              const read = await readDevice(dev.path, o.readMode, round.signal);
              return { dev, read, seconds: (performance.now() - started) / 1000 };
            } catch (e) {
              return { dev, error: `cannot read ${dev.path}: ${(e as Error).message}` };
            }
          }),
        );
        // Whose file: xenha-heartbeat's (a storage heartbeat with HA off or on), or xhad's statefile,
        // which no host writes with HA off.
        const xenhaFiles = reads.flatMap((r) => (r.read?.flavour === 'xenha' ? [r.read.decoded] : []));
        const xenha = xenhaFiles.length > 0;
        if (!xenha && s.haEnabled && reads.some((r) => r.read)) round.storageHeartbeatRead({ kind: 'xhad-statefile' });
        if (!xenha && !s.haEnabled) {
          tracks.clear();
          for (const host of hosts) {
            for (const dev of o.devices)
              round.report(
                host,
                dev.home,
                null,
                'HA is off and no xenha-heartbeat file: no host writes the statefile (no storage heartbeat)',
              );
            round.report(host, 'peers', null, 'HA is off: no network heartbeat in the statefile', { path: 'network' });
          }
          return;
        }
        // The writers' interval: xenha-heartbeat says its own in each slot; xhad's follows the pool's T.
        const interval = (xenha ? xenhaIntervalMs(xenhaFiles) : null) ?? statefileIntervalMs(s.haTimeoutSeconds);
        const stallAfter = o.stallAfterMs ?? STALL_INTERVALS * interval;
        const peerWindow =
          o.peerHeartbeatTimeoutMs ?? (xenha ? XENHA_PEER_WINDOW_INTERVALS * interval : peerHeartbeatTimeoutMs(s.haTimeoutSeconds));
        const slotLifeWindow = o.lifeWindowMs ?? interval;
        const peerLifeWindow = o.lifeWindowMs ?? (xenha ? interval : Math.max(interval, heartbeatIntervalMs(s.haTimeoutSeconds)));
        const readings: SlotReading[] = [];
        const xenhaReads: XenhaDeviceRead[] = [];
        for (const r of reads) {
          if (!r.read) {
            for (const host of hosts) round.report(host, r.dev.home, null, r.error);
            continue;
          }
          const verdicts = deviceVerdicts(r.read.decoded, hosts, tracks.get(r.dev.home) ?? new Map(), round.now, stallAfter);
          tracks.set(r.dev.home, verdicts.tracks);
          readings.push(...verdicts.readings);
          if (r.read.flavour === 'xenha') xenhaReads.push({ decoded: r.read.decoded, verdicts: verdicts.samples });
          for (const v of verdicts.samples)
            // A slot's change is dated when it was seen; its writer may have lived until its next write.
            round.report(v.host, r.dev.home, v.up, v.detail, {
              latencySeconds: v.up ? r.seconds : null,
              ageMs: v.ageMs,
              lifeWindowMs: slotLifeWindow,
            });
        }
        // xenha-heartbeat's file, with who writes, who hears whom on which home, and which pool secret.
        if (xenha) round.storageHeartbeatRead({ kind: 'xenha-heartbeat', hosts: xenhaHeartbeatView(hosts, xenhaReads) });
        // One value per host: the freshest reading over the devices (each device reads the same slot).
        const freshest = new Map<string, SlotReading>();
        for (const r of readings) if ((freshest.get(r.host)?.ageMs ?? Infinity) >= r.ageMs) freshest.set(r.host, r);
        for (const r of freshest.values()) {
          round.observe('sequence', r.host, r.slot.sequence);
          round.observe('peers', r.host, r.slot.hbdomain.length, { domain: 'network' });
          round.observe('peers', r.host, r.slot.sfdomain.length, { domain: 'storage' });
        }
        for (const v of peerVerdicts(hosts, readings, peerWindow))
          // A peer dates the heartbeat it heard last; the host may have sent more until the peer's next chance to hear one.
          round.report(v.host, 'peers', v.up, v.detail, { path: 'network', ageMs: v.ageMs, lifeWindowMs: peerLifeWindow });
      },
    };
  },
});
