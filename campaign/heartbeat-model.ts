/**
 * xenha-heartbeat (heartbeat/xenha-heartbeat.py) as the campaign runs it: in-process, on the injected
 * clock, one daemon per running host, writing the same file layout with the shared core's encoder.
 * Each interval a running host sends its UDP heartbeat on every management home whose interface is up
 * (a peer with an up interface on that home hears it), and — while a storage leg is up — reads every
 * slot to see whose sequence changes and writes its own: the peers it heard and the slots it saw
 * change within the peer window, per home too. A host that is down runs no daemon; a booted one starts
 * a new sequence. This is a model of the daemon for the campaign's speed: the daemon itself is tested
 * against the simulator in test/integration/heartbeat-*.test.ts.
 */
import { openSync, writeSync, readSync, closeSync } from 'node:fs';
import {
  encodeHostSlot,
  hostSlotOffset,
  initialVolume,
  LAYOUT_BYTES,
  decodeHostSlot,
  LENGTH_HOST_SPECIFIC,
} from '../core/statefile/layout.ts';
import { NETWORK_HOMES } from '../simulator/build.ts';
import type { HostRuntime, SimulatedPool } from '../simulator/pool.ts';

export const HEARTBEAT_INTERVAL_MS = 2000;
export const HEARTBEAT_PEER_WINDOW_MS = 4 * HEARTBEAT_INTERVAL_MS;
const KEY_ID = '5eed5eed5eed5eed';

interface Daemon {
  bootedAt: number;
  nextAt: number;
  sequence: number;
  /** `${slot}/${home}` → when heard. */
  heard: Map<string, number>;
  seqSeen: Map<number, number>;
  changedAt: Map<number, number>;
}

export class HeartbeatModel {
  private readonly fd: number;
  private readonly daemons = new Map<HostRuntime, Daemon>();
  private readonly buf = Buffer.alloc(LAYOUT_BYTES);

  constructor(
    private readonly pool: SimulatedPool,
    readonly file: string,
    private readonly seqSeed: number,
    /** A host showed life: its heartbeat heard by a peer, or its slot written. */
    private readonly onShown: (h: HostRuntime, now: number) => void = () => {},
  ) {
    this.fd = openSync(file, 'w+');
    writeSync(this.fd, initialVolume(pool.built.haGenerationUuid, pool.hosts.length, LAYOUT_BYTES, 'xenha'), 0, undefined, 0);
  }

  close(): void {
    closeSync(this.fd);
  }

  tick(now: number): void {
    const pool = this.pool;
    for (const h of pool.hosts) {
      if (!pool.isUp(h, now)) {
        this.daemons.delete(h);
        continue;
      }
      let d = this.daemons.get(h);
      if (d?.bootedAt !== h.bootedAt) {
        // A (re)started daemon: a sequence from a seed, nothing heard yet, its first interval now.
        d = {
          bootedAt: h.bootedAt,
          nextAt: now,
          sequence: (this.seqSeed * 7919 + h.slot * 104729 + h.bootedAt) >>> 0,
          heard: new Map(),
          seqSeen: new Map(),
          changedAt: new Map(),
        };
        this.daemons.set(h, d);
      }
      if (now < d.nextAt) continue;
      d.nextAt = now + HEARTBEAT_INTERVAL_MS;
      // Its UDP heartbeat, on each home, to every peer whose interface there is up.
      for (const [peer, pd] of this.daemons) {
        if (peer === h) continue;
        for (let k = 0; k < NETWORK_HOMES; k++)
          if (pool.networkUp(h, k, now) && pool.networkUp(peer, k, now)) {
            pd.heard.set(`${h.slot}/${k}`, now);
            this.onShown(h, now);
          }
      }
      if (pool.anyStorage(h, now)) this.readAndWrite(h, d, now);
    }
  }

  private readAndWrite(h: HostRuntime, d: Daemon, now: number): void {
    const pool = this.pool;
    readSync(this.fd, this.buf, 0, LAYOUT_BYTES, 0);
    const n = pool.hosts.length;
    for (const p of pool.hosts) {
      if (p === h) continue;
      const off = hostSlotOffset(p.slot);
      const slot = decodeHostSlot(this.buf.subarray(off, off + LENGTH_HOST_SPECIFIC), n, 'xenha');
      if (!slot.ok || slot.value.hostUuid !== p.built.uuid) continue;
      const prev = d.seqSeen.get(p.slot);
      if (prev !== undefined && prev !== slot.value.sequence) d.changedAt.set(p.slot, now);
      d.seqSeen.set(p.slot, slot.value.sequence);
    }
    const win = HEARTBEAT_PEER_WINDOW_MS;
    const since = (t: number | undefined) => (t === undefined ? -1 : Math.min(now - t, 2 ** 31 - 1));
    const hb = [h.slot];
    const sf = [h.slot];
    const homes: number[][] = Array.from({ length: NETWORK_HOMES }, () => [h.slot]);
    const hbMs = new Array<number>(n).fill(-1);
    const sfMs = new Array<number>(n).fill(-1);
    hbMs[h.slot] = 0;
    sfMs[h.slot] = 0;
    for (const p of pool.hosts) {
      if (p === h) continue;
      let latest: number | undefined;
      for (let k = 0; k < NETWORK_HOMES; k++) {
        const t = d.heard.get(`${p.slot}/${k}`);
        if (t === undefined) continue;
        if (now - t <= win) homes[k]!.push(p.slot);
        if (latest === undefined || t > latest) latest = t;
      }
      if (latest !== undefined && now - latest <= win) hb.push(p.slot);
      const changed = d.changedAt.get(p.slot);
      if (changed !== undefined && now - changed <= win) sf.push(p.slot);
      hbMs[p.slot] = since(latest);
      sfMs[p.slot] = since(changed);
    }
    d.sequence = (d.sequence + 1) >>> 0;
    const bytes = encodeHostSlot(
      {
        sequence: d.sequence,
        hostIndex: h.slot,
        hostUuid: h.built.uuid,
        excluded: false,
        starting: false,
        sinceLastHbReceiptMs: hbMs,
        sinceLastSfUpdateMs: sfMs,
        sinceXapiRestartFirstAttemptedMs: -1,
        currentLiveset: [],
        proposedLiveset: [],
        hbdomain: hb.sort((a, b) => a - b),
        sfdomain: sf.sort((a, b) => a - b),
        lockRequest: false,
        lockGrant: [],
        smPhase: 0,
        weight: 1,
        xenha: { writtenAtMs: now, intervalMs: HEARTBEAT_INTERVAL_MS, homes: homes.map((l) => l.sort((a, b) => a - b)), keyId: KEY_ID },
      },
      'xenha',
    );
    writeSync(this.fd, bytes, 0, bytes.length, hostSlotOffset(h.slot));
    this.onShown(h, now);
  }
}
