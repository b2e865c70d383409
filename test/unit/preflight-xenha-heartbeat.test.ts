/**
 * xenha-heartbeat's preflight checks, pure: the probe's summary of the file (xenhaHeartbeatView, from
 * decoded slots built with the real codec and stall verdicts written here) and the three checks on it
 * (written by every host, heard on every home, one pool secret). Every expected value is worked out
 * here from the fault the test builds, never by calling the code under test again.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeStatefile,
  emptyHostSlot,
  encodeHostSlot,
  hostSlotOffset,
  initialVolume,
  LAYOUT_BYTES,
  type DecodedStatefile,
  type XenhaHostSlot,
} from '../../core/statefile/layout.ts';
import { xenhaHeartbeatView, type Verdict } from '../../plugins/probes/storage-statefile-verdicts.ts';
import { HEARD_MISSING_SHOWN, xenhaHeartbeatChecks, type StorageHeartbeatRead, type XenhaHeartbeatHost } from '../../core/preflight.ts';

const GEN = '0123abcd-4567-89ab-cdef-0123456789ab';
// Packed (dashes removed) these sort a < b < c < d: slot indexes 0, 1, 2, 3.
const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';
const C = 'cccccccc-0000-4000-8000-000000000003';
const D = 'dddddddd-0000-4000-8000-000000000004';
const K1 = '1a2b3c4d5e6f7081';
const K2 = '9f8e7d6c5b4a3921';

function slot(uuid: string, hostIndex: number, homes: number[][], keyId: string, sequence = 5): XenhaHostSlot {
  const empty = emptyHostSlot(hostIndex, 'xenha');
  return { ...empty, hostUuid: uuid, sequence, weight: 1, xenha: { ...empty.xenha, intervalMs: 500, homes, keyId } };
}

/** A heartbeat file of `configHosts` slots: each given slot at its index, 'torn' = one byte flipped, undefined = empty. */
function file(slots: (XenhaHostSlot | 'torn' | undefined)[], configHosts = slots.length): DecodedStatefile<XenhaHostSlot> {
  const vol = initialVolume(GEN, configHosts, LAYOUT_BYTES, 'xenha');
  slots.forEach((s, i) => {
    if (s === undefined) return;
    const off = hostSlotOffset(i);
    encodeHostSlot(s === 'torn' ? slot(D, i, [], K1) : s, 'xenha').copy(vol, off);
    if (s === 'torn') vol[off + 24] = vol[off + 24]! ^ 0x01;
  });
  return decodeStatefile(vol, 'xenha');
}

const up = (host: string, ageMs: number): Verdict => ({ host, up: true, detail: 'advancing', ageMs });
const down = (host: string, ageMs: number): Verdict => ({ host, up: false, detail: 'stalled', ageMs });
const unsure = (host: string): Verdict => ({ host, up: null, detail: 'watched for less than the stall threshold', ageMs: null });

describe('xenhaHeartbeatView: the file summarised per host', () => {
  it('says who writes, for how long the others are still, whom each hears on each home (as UUIDs) and its key id', () => {
    const decoded = file([
      slot(
        A,
        0,
        [
          [0, 1, 2],
          [0, 1],
        ],
        K1,
      ),
      slot(B, 1, [[0, 1, 2]], K1),
      slot(C, 2, [[2], [2]], K2),
      undefined, // D never wrote
    ]);
    const view = xenhaHeartbeatView(
      [C, D, A, B],
      [
        {
          decoded,
          verdicts: [up(A, 120), up(B, 300), down(C, 4500), { host: D, up: false, detail: 'no slot written by this host', ageMs: null }],
        },
      ],
    );
    expect(view).toEqual({
      [A]: {
        writing: true,
        homes: 2,
        heardOnHome: [
          [A, B, C],
          [A, B],
        ],
        keyId: K1,
      },
      [B]: { writing: true, homes: 1, heardOnHome: [[A, B, C]], keyId: K1 },
      [C]: { writing: false, stalledForMs: 4500, homes: 2, heardOnHome: [[C], [C]], keyId: K2 },
    });
    expect(D in view).toBe(false);
  });

  it('a host is writing when it is up on any device; its slot then comes from its freshest up device', () => {
    const stale = file([slot(A, 0, [[0]], K1, 7), slot(B, 1, [[1]], K1)]);
    const fresh = file([
      slot(
        A,
        0,
        [
          [0, 1],
          [0, 1],
        ],
        K1,
        9,
      ),
      slot(B, 1, [[1]], K1),
    ]);
    const view = xenhaHeartbeatView(
      [A, B],
      [
        { decoded: stale, verdicts: [down(A, 3000), up(B, 900)] },
        { decoded: fresh, verdicts: [up(A, 100), up(B, 200)] },
      ],
    );
    // A: stalled on the first leg, advancing on the second: writing, no stall, the second leg's homes.
    expect(view[A]).toEqual({
      writing: true,
      homes: 2,
      heardOnHome: [
        [A, B],
        [A, B],
      ],
      keyId: K1,
    });
    expect(view[B]).toEqual({ writing: true, homes: 1, heardOnHome: [[B]], keyId: K1 });
  });

  it('not writing: stalled for the shortest stall any device saw; no stall known while watched too briefly', () => {
    const one = file([slot(A, 0, [[0]], K1), slot(B, 1, [[1]], K1)]);
    const view = xenhaHeartbeatView(
      [A, B],
      [
        { decoded: one, verdicts: [down(A, 8000), unsure(B)] },
        { decoded: one, verdicts: [down(A, 6500), unsure(B)] },
      ],
    );
    expect(view[A]).toEqual({ writing: false, stalledForMs: 6500, homes: 1, heardOnHome: [[A]], keyId: K1 });
    expect(view[B]).toEqual({ writing: false, homes: 1, heardOnHome: [[B]], keyId: K1 });
    expect('stalledForMs' in view[B]!).toBe(false);
  });

  it('names a heard slot whose own slot is torn by the rank of the UUIDs; leaves out a torn host', () => {
    // B's slot (index 1) is torn: A heard index 1, which is B by rank (a < b < c).
    const decoded = file([slot(A, 0, [[0, 1, 2]], K1), 'torn', slot(C, 2, [[0, 1, 2]], K1)]);
    const view = xenhaHeartbeatView([A, B, C], [{ decoded, verdicts: [up(A, 0), unsure(B), up(C, 0)] }]);
    expect(view[A]!.heardOnHome).toEqual([[A, B, C]]);
    expect(Object.keys(view).sort()).toEqual([A, C]);
  });

  it('is empty when no device has a valid slot (an unreadable global section)', () => {
    const broken = file([slot(A, 0, [[0]], K1)]);
    expect(
      xenhaHeartbeatView(
        [A],
        [{ decoded: { global: { ok: false, error: { kind: 'bad_signature', detail: 'x' } }, slots: [] }, verdicts: [unsure(A)] }],
      ),
    ).toEqual({});
    expect(xenhaHeartbeatView([A], [])).toEqual({});
    expect(xenhaHeartbeatView([A], [{ decoded: broken, verdicts: [] }])).toEqual({});
  });
});

// ------------------------------------------------------------------ the checks

const HOSTS = Array.from({ length: 8 }, (_, i) => ({
  uuid: `${(i + 1).toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`,
  name: `host-0${i + 1}`,
}));
const MONITOR = { storageHeartbeatProbes: ['storage-statefile'] };

/** A pool of n hosts, each writing, hearing every host on each of its `homes`, with one secret; then `change` applied. */
function pool(n: number, homes = 2, change: (v: Record<string, XenhaHeartbeatHost>, uuids: string[]) => void = () => {}) {
  const hosts = HOSTS.slice(0, n);
  const uuids = hosts.map((h) => h.uuid);
  const view: Record<string, XenhaHeartbeatHost> = Object.fromEntries(
    uuids.map((u) => [u, { writing: true, homes, heardOnHome: Array.from({ length: homes }, () => [...uuids]), keyId: K1 }]),
  );
  change(view, uuids);
  const read: StorageHeartbeatRead = { kind: 'xenha-heartbeat', hosts: view };
  return { s: { haEnabled: false, hosts }, read };
}

function checks(p: ReturnType<typeof pool>, read: StorageHeartbeatRead | null = p.read) {
  const [written, heard, secret] = xenhaHeartbeatChecks(p.s, MONITOR, read);
  expect([written?.check, heard?.check, secret?.check]).toEqual([
    'xenha_heartbeat_written_all_hosts',
    'xenha_heartbeat_heard_all_homes',
    'xenha_heartbeat_secret_consistent',
  ]);
  return { written: written!, heard: heard!, secret: secret! };
}

describe("xenha-heartbeat's preflight checks", () => {
  it('all pass on a pool where every host writes, hears every other on both homes, with one secret', () => {
    const c = checks(pool(3));
    expect(c.written).toMatchObject({ ok: true, reason: "all 3 host(s) write xenha-heartbeat's file" });
    expect(c.heard).toMatchObject({ ok: true, reason: 'each of the 3 writing host(s) hears every other on each home they share' });
    expect(c.secret).toMatchObject({ ok: true, reason: 'one pool secret (key id 1a2b3c4d…) on the 3 writing host(s)' });
  });

  it('do not apply with HA on, nor without the file read (storage_heartbeat says so): ok, saying why', () => {
    const p = pool(3);
    const on = xenhaHeartbeatChecks({ ...p.s, haEnabled: true }, MONITOR, p.read);
    expect(on.map((r) => [r.ok, r.reason])).toEqual(
      Array.from({ length: 3 }, () => [true, "does not apply: HA on: the storage heartbeat is xhad's statefile, not xenha-heartbeat"]),
    );
    for (const [monitor, read] of [
      [MONITOR, null],
      [MONITOR, { kind: 'xhad-statefile' }],
      [{ storageHeartbeatProbes: [] }, p.read], // read once, but nothing reads it now
    ] as const)
      expect(xenhaHeartbeatChecks(p.s, monitor, read).map((r) => [r.ok, r.reason])).toEqual(
        Array.from({ length: 3 }, () => [true, 'does not apply: no xenha-heartbeat file read (see storage_heartbeat)']),
      );
  });

  it('written: names each host not writing and why; the others are checked among the writers only', () => {
    const [, h2, h3, h4] = HOSTS.map((h) => h.uuid);
    const c = checks(
      pool(4, 2, (v) => {
        delete v[h2!]; // no valid slot
        v[h3!] = { ...v[h3!]!, writing: false, stalledForMs: 12_345, keyId: K2 }; // stalled, and an old secret
        v[h4!] = { ...v[h4!]!, writing: false }; // watched too briefly
        // Nobody hears the three: they do not write, so that is the written check's alone.
        for (const u of Object.keys(v))
          v[u] = { ...v[u]!, heardOnHome: v[u]!.heardOnHome.map((home) => home.filter((x) => x === HOSTS[0]!.uuid)) };
      }),
    );
    expect(c.written).toMatchObject({
      ok: false,
      reason:
        "not writing xenha-heartbeat's file: host-02 (no valid slot), host-03 (stalled for 12.3 s), host-04 (not seen advancing yet: watched for less than the stall window)",
    });
    expect(c.heard).toMatchObject({ ok: true, reason: 'each of the 1 writing host(s) hears every other on each home they share' });
    expect(c.secret).toMatchObject({ ok: true, reason: 'one pool secret (key id 1a2b3c4d…) on the 1 writing host(s)' });
  });

  it('heard: names each (host, home, peer) missing, on the homes both have', () => {
    const [h1, h2, h3] = HOSTS.map((h) => h.uuid);
    const c = checks(
      pool(3, 2, (v) => {
        v[h1!]!.heardOnHome[1] = [h1!, h3!]; // host-01 does not hear host-02 on home 1
        v[h3!] = { ...v[h3!]!, homes: 1, heardOnHome: [[h1!, h2!, h3!]] }; // host-03 has home 0 only
        // host-02 hears nobody on home 1 but itself: host-01 is missing there; host-03 has no home 1.
        v[h2!]!.heardOnHome[1] = [h2!];
      }),
    );
    expect(c.heard).toMatchObject({
      ok: false,
      reason: 'host-01 does not hear host-02 on home 1; host-02 does not hear host-01 on home 1',
    });
    expect(c.written.ok).toBe(true);
    expect(c.secret.ok).toBe(true);
  });

  it(`heard: names the first ${HEARD_MISSING_SHOWN} missing and counts the rest`, () => {
    // 8 hosts, 1 home, each hears only itself: 8 × 7 ordered pairs missing.
    const c = checks(pool(8, 1, (v) => Object.entries(v).forEach(([u, h]) => (h.heardOnHome = [[u]]))));
    const shown = ['host-02', 'host-03', 'host-04', 'host-05', 'host-06'].map((b) => `host-01 does not hear ${b} on home 0`);
    expect(c.heard).toMatchObject({ ok: false, reason: `${shown.join('; ')}; and ${8 * 7 - 5} more` });
  });

  it('secret: names the groups of hosts by key id (shortened), the largest first; their mutual deafness is left to it', () => {
    const [, , h3, h4] = HOSTS.map((h) => h.uuid);
    const c = checks(
      pool(4, 2, (v, uuids) => {
        for (const u of [h3!, h4!]) v[u] = { ...v[u]!, keyId: K2 };
        // Hosts with different secrets drop each other's packets: each hears only its own group.
        for (const u of uuids) {
          const group = uuids.filter((x) => v[x]!.keyId === v[u]!.keyId);
          v[u] = { ...v[u]!, heardOnHome: [[...group], [...group]] };
        }
        v[h4!] = { ...v[h4!]!, heardOnHome: [[h3!, h4!], [h4!]] }; // and host-04 does not hear host-03 on home 1
      }),
    );
    expect(c.secret).toMatchObject({
      ok: false,
      reason: 'different pool secrets (key ids): host-01, host-02: 1a2b3c4d…; host-03, host-04: 9f8e7d6c…',
    });
    // Only the hearing within a group is checked: 2 × 2 × 2 ordered pairs across the groups are not.
    expect(c.heard).toMatchObject({
      ok: false,
      reason:
        'host-04 does not hear host-03 on home 1 (8 ordered pair(s) with different pool secrets not compared: see xenha_heartbeat_secret_consistent)',
    });
    // Three groups, one of two hosts: the two-host group first, then by key id.
    const three = checks(
      pool(4, 1, (v, uuids) => {
        v[uuids[0]!]!.keyId = 'ffffffffffffffff';
        v[uuids[3]!]!.keyId = '0000000000000001';
      }),
    );
    expect(three.secret.reason).toBe(
      'different pool secrets (key ids): host-02, host-03: 1a2b3c4d…; host-04: 00000000…; host-01: ffffffff…',
    );
    // Only the key ids, shortened, ever appear.
    expect(three.secret.reason).not.toContain(K1);
  });
});
