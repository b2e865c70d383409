/**
 * The storage-statefile probe's pure verdicts: which slots still advance (deviceVerdicts) and which
 * hosts the live peers hear on the network heartbeat (peerVerdicts). Statefiles are built with the
 * real codec; every expected value is worked out here from the inputs (the timeout arithmetic), not
 * by calling the code under test.
 */
import { describe, expect, it } from 'vitest';
import { test as fcTest, fc } from '@fast-check/vitest';
import {
  decodeStatefile,
  emptyHostSlot,
  encodeGlobal,
  encodeHostSlot,
  hostSlotOffset,
  initialVolume,
  LAYOUT_BYTES,
  type DecodedStatefile,
  type StatefileHostSlot,
} from '../../core/statefile/layout.ts';
import {
  deviceVerdicts,
  peerHeartbeatTimeoutMs,
  peerVerdicts,
  type SlotReading,
  type SlotTrack,
} from '../../plugins/probes/storage-statefile-verdicts.ts';
import { heartbeatIntervalMs, statefileIntervalMs } from '../../core/model/ha-timeouts.ts';

const GEN = '0123abcd-4567-89ab-cdef-0123456789ab';
// Packed (dashes removed) these sort a < b < c, so their slot indexes by UUID rank are 0, 1, 2.
const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';
const C = 'cccccccc-0000-4000-8000-000000000003';
const HOSTS = [C, A, B]; // the snapshot's order need not be the slot order

function slot(uuid: string, hostIndex: number, sequence: number, extra: Partial<StatefileHostSlot> = {}): StatefileHostSlot {
  return { ...emptyHostSlot(hostIndex), hostUuid: uuid, sequence, smPhase: 1, weight: 1, ...extra };
}

type SlotSpec = StatefileHostSlot | 'torn' | undefined;

/**
 * A statefile of `configHosts` slots: each given slot written at its index, 'torn' = a slot written
 * then one byte of it flipped (its checksum fails), undefined = left as initialised (no owner).
 */
function statefile(slots: SlotSpec[], configHosts = slots.length): Buffer {
  const vol = initialVolume(GEN, configHosts, LAYOUT_BYTES);
  slots.forEach((s, i) => {
    if (s === undefined) return;
    const off = hostSlotOffset(i);
    encodeHostSlot(s === 'torn' ? slot(C, i, 99) : s).copy(vol, off);
    if (s === 'torn') vol[off + 24] = vol[off + 24]! ^ 0x01; // inside the host UUID: the checksum no longer matches
  });
  return vol;
}

const decode = (slots: SlotSpec[], configHosts?: number): DecodedStatefile => decodeStatefile(statefile(slots, configHosts));

function verdictOf(r: ReturnType<typeof deviceVerdicts>, host: string) {
  const v = r.samples.find((s) => s.host === host);
  if (!v) throw new Error(`no verdict for ${host}`);
  return v;
}

describe('deviceVerdicts: a slot advancing within the stall threshold', () => {
  const T = 1000;

  it('cannot tell a slot first seen until it was watched for the stall threshold, then says down if it never moved', () => {
    const t0 = 50_000;
    const file = decode([slot(A, 0, 7), slot(B, 1, 3), slot(C, 2, 5)]);
    let r = deviceVerdicts(file, HOSTS, new Map(), t0, T);
    for (const h of HOSTS) {
      expect(verdictOf(r, h).up).toBeNull();
      expect(verdictOf(r, h).detail).toContain('watched for less than the stall threshold');
      expect(verdictOf(r, h).ageMs).toBeNull();
    }
    expect(r.tracks.get(A)).toEqual({ sequence: 7, changedAt: -Infinity, firstSeenAt: t0 });
    // Unchanged, one millisecond short of the timeout since first seen: still cannot tell.
    r = deviceVerdicts(file, HOSTS, r.tracks, t0 + T - 1, T);
    for (const h of HOSTS) expect(verdictOf(r, h).up).toBeNull();
    // Watched for exactly the timeout and never seen changing: down.
    r = deviceVerdicts(file, HOSTS, r.tracks, t0 + T, T);
    for (const h of HOSTS) {
      expect(verdictOf(r, h).up).toBe(false);
      expect(verdictOf(r, h).detail).toContain('unchanged since first read');
      // Still for at least as long as it was watched.
      expect(verdictOf(r, h).ageMs).toBe(T);
    }
  });

  it('says up while the sequence changed within the timeout, down once it has not for the timeout', () => {
    const t0 = 0;
    let r = deviceVerdicts(decode([slot(A, 0, 1), slot(B, 1, 1), slot(C, 2, 1)]), HOSTS, new Map(), t0, T);
    // At t1, A and B have advanced, C has not.
    const t1 = 300;
    r = deviceVerdicts(decode([slot(A, 0, 2), slot(B, 1, 2), slot(C, 2, 1)]), HOSTS, r.tracks, t1, T);
    expect([verdictOf(r, A).up, verdictOf(r, B).up, verdictOf(r, C).up]).toEqual([true, true, null]);
    expect(r.tracks.get(A)).toEqual({ sequence: 2, changedAt: t1, firstSeenAt: t0 });
    // At t2, only A advanced again; B last changed at t1, C never since first seen at t0.
    const t2 = t1 + T - 1; // B: t2 − t1 = T − 1 < T (up); C: t2 − t0 = T + 299 ≥ T (down)
    r = deviceVerdicts(decode([slot(A, 0, 3), slot(B, 1, 2), slot(C, 2, 1)]), HOSTS, r.tracks, t2, T);
    expect([verdictOf(r, A).up, verdictOf(r, B).up, verdictOf(r, C).up]).toEqual([true, true, false]);
    // At t3 = t1 + T, B's last change is exactly the timeout ago: down. A changed at t2, 1 ms ago: up.
    const t3 = t1 + T;
    r = deviceVerdicts(decode([slot(A, 0, 3), slot(B, 1, 2), slot(C, 2, 1)]), HOSTS, r.tracks, t3, T);
    expect(t3 - t2).toBeLessThan(T);
    expect([verdictOf(r, A).up, verdictOf(r, B).up, verdictOf(r, C).up]).toEqual([true, false, false]);
    // The readings carry each slot and its age.
    const reading = r.readings.find((x) => x.host === A)!;
    expect(reading).toMatchObject({ up: true, ageMs: t3 - t2, slot: { sequence: 3, hostUuid: A, hostIndex: 0 } });
    expect(r.readings.find((x) => x.host === C)!.ageMs).toBe(Infinity);
  });

  it('a slot torn for one round keeps what was seen of it; a host that left the pool is forgotten', () => {
    const t0 = 0;
    let r = deviceVerdicts(decode([slot(A, 0, 1), slot(B, 1, 1), slot(C, 2, 1)]), HOSTS, new Map(), t0, T);
    const t1 = 300;
    r = deviceVerdicts(decode([slot(A, 0, 2), slot(B, 1, 2), slot(C, 2, 2)]), HOSTS, r.tracks, t1, T);
    expect([verdictOf(r, A).up, verdictOf(r, B).up, verdictOf(r, C).up]).toEqual([true, true, true]);
    // At t2, C's slot is torn: C cannot tell, and its track (changed at t1, first seen at t0) stays.
    const t2 = t1 + 100;
    r = deviceVerdicts(decode([slot(A, 0, 3), slot(B, 1, 3), 'torn']), HOSTS, r.tracks, t2, T);
    expect(verdictOf(r, C).up).toBeNull();
    expect(r.tracks.get(C)).toEqual({ sequence: 2, changedAt: t1, firstSeenAt: t0 });
    // At t3 C reads again with the same sequence: judged from t1 (t3 − t1 < T: up), not first seen anew.
    const t3 = t1 + T - 1;
    r = deviceVerdicts(decode([slot(A, 0, 3), slot(B, 1, 3), slot(C, 2, 2)]), HOSTS, r.tracks, t3, T);
    expect(verdictOf(r, C).up).toBe(true);
    // B leaves the pool: its track goes with it.
    r = deviceVerdicts(decode([slot(A, 0, 4), slot(B, 1, 3), slot(C, 2, 3)]), [A, C], r.tracks, t3 + 1, T);
    expect([...r.tracks.keys()].sort()).toEqual([A, C]);
  });

  it('a wrapped-around sequence (2^32 − 1 → 0) is a change', () => {
    let r = deviceVerdicts(decode([slot(A, 0, 2 ** 32 - 1)]), [A], new Map(), 0, T);
    r = deviceVerdicts(decode([slot(A, 0, 0)]), [A], r.tracks, 10, T);
    expect(verdictOf(r, A).up).toBe(true);
  });

  it('a torn slot makes every host without a readable slot "cannot tell"; an intact file without the host\'s slot says down', () => {
    const D = 'dddddddd-0000-4000-8000-000000000004'; // a host of the pool with no slot in a 3-slot file
    const torn = deviceVerdicts(decode([slot(A, 0, 1), slot(B, 1, 1), 'torn']), [...HOSTS, D], new Map(), 0, T);
    expect(decode([slot(A, 0, 1), slot(B, 1, 1), 'torn']).slots[2]).toMatchObject({ ok: false, error: { kind: 'bad_checksum' } });
    for (const h of [C, D]) {
      expect(verdictOf(torn, h).up).toBeNull();
      expect(verdictOf(torn, h).detail).toContain('1 slot(s) unreadable');
    }
    // The readable slots are judged as usual (first seen: cannot tell yet), and tracked.
    expect(torn.readings.map((x) => x.host).sort()).toEqual([A, B]);
    expect([...torn.tracks.keys()].sort()).toEqual([A, B]);

    const intact = deviceVerdicts(decode([slot(A, 0, 1), slot(B, 1, 1), undefined]), [...HOSTS, D], new Map(), 0, T);
    for (const h of [C, D]) {
      expect(verdictOf(intact, h).up).toBe(false);
      expect(verdictOf(intact, h).detail).toBe('no slot written by this host');
    }
  });

  it('an unreadable global section says "cannot tell" for every host and keeps what it knew', () => {
    const good = decode([slot(A, 0, 1), slot(B, 1, 1), slot(C, 2, 1)]);
    const first = deviceVerdicts(good, HOSTS, new Map(), 0, T);
    const broken = statefile([slot(A, 0, 2), slot(B, 1, 2), slot(C, 2, 2)]);
    broken[40] = broken[40]! ^ 0xff; // inside gen_uuid: the global checksum fails
    const d = decodeStatefile(broken);
    expect(d.global.ok).toBe(false);
    const r = deviceVerdicts(d, HOSTS, first.tracks, 500, T);
    expect(r.samples.map((s) => s.host)).toEqual(HOSTS);
    for (const s of r.samples) {
      expect(s.up).toBeNull();
      expect(s.detail).toMatch(/^global section unreadable: /);
    }
    expect(r.readings).toEqual([]);
    expect(r.tracks).toEqual(first.tracks);
    // A global section with a bad version reads as unreadable too.
    const v3 = statefile([slot(A, 0, 1)]);
    const g = encodeGlobal({ genUuid: GEN, poolState: 'active', master: null, configHosts: 1 });
    g.writeUInt32LE(3, 12);
    let sum = 0;
    for (let off = 12; off < 100; off += 4) sum = (sum + g.readUInt32LE(off)) >>> 0;
    g.writeUInt32LE(sum, 8);
    g.copy(v3, 0);
    expect(deviceVerdicts(decodeStatefile(v3), [A], new Map(), 0, T).samples).toEqual([
      { host: A, up: null, detail: expect.stringContaining('version 3'), ageMs: null },
    ]);
  });

  // Model of the rule, from the inputs alone: first read at t = 0; the slot is up when its last
  // change (a read that saw a different sequence) is less than T ago, down when it was never seen
  // changing for at least T (or its last change is at least T ago), else cannot tell.
  fcTest.prop({
    T: fc.integer({ min: 1, max: 5000 }),
    steps: fc.array(fc.record({ dt: fc.integer({ min: 1, max: 3000 }), advanced: fc.boolean() }), { minLength: 1, maxLength: 30 }),
  })('for any sequence of reads, up exactly when the last change is within the timeout', ({ T: timeout, steps }) => {
    let now = 0;
    let seq = 0;
    let tracks: ReadonlyMap<string, SlotTrack> = deviceVerdicts(decode([slot(A, 0, seq)]), [A], new Map(), now, timeout).tracks;
    let lastChange: number | null = null;
    for (const { dt, advanced } of steps) {
      now += dt;
      if (advanced) {
        seq += 1;
        lastChange = now;
      }
      const r = deviceVerdicts(decode([slot(A, 0, seq)]), [A], tracks, now, timeout);
      tracks = r.tracks;
      const expected = lastChange !== null && now - lastChange < timeout ? true : now >= timeout ? false : null;
      // The age: how old the life an up slot shows, or how long a down one has been still (since
      // first read when never seen changing); nothing while it cannot tell.
      const age = expected === null ? null : lastChange !== null ? now - lastChange : now;
      expect(r.samples).toEqual([{ host: A, up: expected, detail: expect.any(String), ageMs: age }]);
      expect(r.readings[0]!.ageMs).toBe(lastChange === null ? Infinity : now - lastChange);
    }
  });
});

describe("peerVerdicts: the live peers' word on each host's network heartbeat", () => {
  const P = 1000;
  /** A reading of `host`'s slot: it says it last heard host j `hb[j]` ms before its own last write. */
  function reading(host: string, hostIndex: number, hb: number[], up: boolean | null, ageMs: number): SlotReading {
    return { host, up, ageMs, slot: slot(host, hostIndex, 1, { sinceLastHbReceiptMs: hb }) };
  }
  const by = (vs: ReturnType<typeof peerVerdicts>) => Object.fromEntries(vs.map((v) => [v.host, v.up]));

  it("a host heard by a live peer within the peer timeout (its ms plus the peer's slot age) is up, beyond it down", () => {
    // A (index 0) and B (index 1) are live; C's own slot is not (up false): it vouches for nobody.
    const rs = [
      reading(A, 0, [0, 300, 5000], true, 100), // A heard B 300 + 100 = 400 ms ago, C 5100 ms ago
      reading(B, 1, [P - 50 - 1, 0, 9000], true, 50), // B heard A 949 + 50 = 999 ms ago (< P), C 9050 ms ago
      reading(C, 2, [0, 0, 0], false, 4000), // C hears everyone, but its slot is not advancing
    ];
    const v = peerVerdicts(HOSTS, rs, P);
    expect(by(v)).toEqual({ [A]: true, [B]: true, [C]: false });
    // C was last heard by A 5000 + 100 ms ago (B: 9050): silent that long. A by B 949 + 50 ms ago.
    expect(v.find((x) => x.host === C)).toMatchObject({
      detail: 'heard on the network heartbeat by 0/2 live peers (statefile slots), last 5.1 s ago',
      ageMs: 5100,
    });
    expect(v.find((x) => x.host === A)).toMatchObject({
      detail: 'heard on the network heartbeat by 1/1 live peers (statefile slots), last 1.0 s ago',
      ageMs: 999,
    });
    // One millisecond more of B's age puts its word on A at exactly P: no longer heard.
    const later = peerVerdicts(HOSTS, [rs[0]!, { ...rs[1]!, ageMs: 51 }, rs[2]!], P);
    expect(by(later)[A]).toBe(false);
  });

  it('-1 ("never heard") and a missing entry vouch for nobody', () => {
    const v = peerVerdicts(HOSTS, [reading(A, 0, [0, -1], true, 0), reading(B, 1, [0, 0], true, 0)], P);
    // A never heard B; B heard A. C's index (2) is beyond both arrays.
    expect(by(v)).toEqual({ [A]: true, [B]: false, [C]: false });
  });

  it('with no live peer slot it cannot tell', () => {
    expect(by(peerVerdicts(HOSTS, [], P))).toEqual({ [A]: null, [B]: null, [C]: null });
    const v = peerVerdicts(HOSTS, [reading(A, 0, [0, 0, 0], true, 0), reading(B, 1, [0, 0, 0], null, 0)], P);
    // A is the only live slot: it cannot vouch for itself, and does for B and C.
    expect(by(v)).toEqual({ [A]: null, [B]: true, [C]: true });
    expect(v.find((x) => x.host === A)!.detail).toBe('no live peer slot to vouch for the network path');
  });

  it("finds a host in the peers' arrays by its own slot's index, else by the rank of its UUID", () => {
    // C's own slot says index 0 (not its UUID rank, 2). A's array: index 0 heard recently, index 2 long ago.
    const hbOfA = [10, 10, 5000];
    const withOwn = peerVerdicts(HOSTS, [reading(A, 1, hbOfA, true, 0), reading(C, 0, [10, 10, 10], false, 0)], P);
    expect(by(withOwn)[C]).toBe(true); // index 0: 10 ms
    // Without a slot of its own, C is found by UUID rank: 2, heard 5000 ms ago.
    const byRank = peerVerdicts(HOSTS, [reading(A, 1, hbOfA, true, 0)], P);
    expect(by(byRank)[C]).toBe(false);
    // B has no slot either: rank 1, heard 10 ms ago.
    expect(by(byRank)[B]).toBe(true);
  });

  it('of several readings of one peer (one per device), the freshest live one counts', () => {
    const stale = reading(B, 1, [500, 0, 0], true, 900); // 500 + 900 ≥ P
    const fresh = reading(B, 1, [500, 0, 0], true, 10); // 500 + 10 < P
    const freshButDown = reading(B, 1, [500, 0, 0], false, 0);
    expect(by(peerVerdicts([A, B], [stale, fresh], P))[A]).toBe(true);
    expect(by(peerVerdicts([A, B], [fresh, stale], P))[A]).toBe(true);
    expect(by(peerVerdicts([A, B], [stale, freshButDown], P))[A]).toBe(false);
  });

  it('works on readings from deviceVerdicts: peers heard through the slots of a real statefile', () => {
    const T = 1000;
    // A (slot 0) heard B 99 ms and C 100 ms before its write; B (slot 1) heard A 50 ms before its own.
    const file = (seq: number) =>
      decode([
        slot(A, 0, seq, { sinceLastHbReceiptMs: [0, 99, 100] }),
        slot(B, 1, seq, { sinceLastHbReceiptMs: [50, 0, 2000] }),
        undefined,
      ]);
    const first = deviceVerdicts(file(1), HOSTS, new Map(), 0, T);
    // Nobody live yet (first seen): no peer can vouch.
    expect(by(peerVerdicts(HOSTS, first.readings, P))).toEqual({ [A]: null, [B]: null, [C]: null });
    // At 400 both advanced (age 0): A heard by B 50 ms ago, B by A 99 ms ago; C (no slot: UUID rank 2)
    // by A 100 ms ago: up on the peers' word although its own slot is missing.
    const second = deviceVerdicts(file(2), HOSTS, first.tracks, 400, T);
    expect(by(peerVerdicts(HOSTS, second.readings, P))).toEqual({ [A]: true, [B]: true, [C]: true });
    // At 1300 neither advanced again (age 900 < T: still live): A heard 50 + 900 = 950 ms ago, B
    // 99 + 900 = 999 ms ago, C 100 + 900 = 1000 ms ago (not < P).
    const third = deviceVerdicts(file(2), HOSTS, second.tracks, 1300, T);
    expect(third.readings.map((r) => [r.host, r.up, r.ageMs])).toEqual([
      [A, true, 900],
      [B, true, 900],
    ]);
    expect(by(peerVerdicts(HOSTS, third.readings, P))).toEqual({ [A]: true, [B]: true, [C]: false });
  });
});

describe("the probe's defaults follow the pool's HA timeout as xapi derives its timers", () => {
  // Xapi_ha.Timeouts.derive, in integer seconds: heart_beat_interval = min ((t + 10) / 10) 3,
  // state_file_interval = max 2 (t / 20). Worked out by hand for each T.
  it.each([
    // T, heartbeat interval, statefile interval, peer window (3 heartbeats + 1 statefile interval)
    [10, 2, 2, 8],
    [19, 2, 2, 8],
    [20, 3, 2, 11],
    [30, 3, 2, 11],
    [59, 3, 2, 11],
    [60, 3, 3, 12],
    [120, 3, 6, 15],
  ])('T = %i s: heartbeat every %i s, slot every %i s, peers vouch for %i s', (t, hb, sf, peers) => {
    expect(heartbeatIntervalMs(t)).toBe(hb * 1000);
    expect(statefileIntervalMs(t)).toBe(sf * 1000);
    expect(peerHeartbeatTimeoutMs(t)).toBe(peers * 1000);
  });
});
