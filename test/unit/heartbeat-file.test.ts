/**
 * xenha's heartbeat file (flavour 'xenha', version 1): xhad's statefile geometry and fields, its own
 * signatures, and a slot extension at xhad's end-marker offset. The byte-level expectations below are
 * written from the spec (docs/statefile.md), not from the encoder, so the Python daemon's bytes and
 * these are checked against one description.
 */
import { describe, expect, it } from 'vitest';
import { test as fcTest, fc } from '@fast-check/vitest';
import {
  decodeGlobal,
  decodeHostSlot,
  decodeStatefile,
  detectFlavour,
  emptyHostSlot,
  encodeGlobal,
  encodeHostSlot,
  FLAVOURS,
  hostIndexOrder,
  hostSlotOffset,
  initialVolume,
  LAYOUT_BYTES,
  POOL_STATES,
  sigInv,
  SIG_END_MARKER_XENHA_GLOBAL,
  SIG_END_MARKER_XENHA_HOST,
  SIG_XENHA_GLOBAL,
  SIG_XENHA_HOST,
  type Flavour,
  type StatefileGlobal,
  type XenhaHostSlot,
} from '../../core/statefile/layout.ts';

const uuidArb = fc.uuid().map((u) => u.toLowerCase());
const GEN = '0123abcd-4567-89ab-cdef-0123456789ab';
const HOST = 'ffffffff-0000-4000-8000-000000000001';
/** A key id as the daemon writes it: 8 bytes, read back as 16 lower-case hex characters. */
const KEY_ID = '1a2b3c4d5e6f7089';

/** The spec's checksum, written out again: u32 wrap-around sum of the LE words 12 .. end-4. */
function specChecksum(buf: Buffer, endMarkerOffset: number): number {
  let sum = 0;
  for (let off = 12; off < endMarkerOffset; off += 4) sum = (sum + buf.readUInt32LE(off)) % 2 ** 32;
  return sum;
}

function reseal(buf: Buffer, endMarkerOffset: number): Buffer {
  buf.writeUInt32LE(specChecksum(buf, endMarkerOffset), 8);
  return buf;
}

function slot(over: Partial<XenhaHostSlot> = {}): XenhaHostSlot {
  return {
    sequence: 42,
    hostIndex: 1,
    hostUuid: HOST,
    excluded: false,
    starting: false,
    sinceLastHbReceiptMs: [700, 0, -1],
    sinceLastSfUpdateMs: [1200, 0, -1],
    sinceXapiRestartFirstAttemptedMs: -1,
    currentLiveset: [],
    proposedLiveset: [],
    hbdomain: [0, 1],
    sfdomain: [0, 1],
    lockRequest: false,
    lockGrant: [],
    smPhase: 0,
    weight: 1,
    xenha: { writtenAtMs: 1_700_000_000_123, intervalMs: 1000, homes: [[0, 1], [1]], keyId: KEY_ID },
    ...over,
  };
}

describe("xenha's heartbeat file: signatures", () => {
  it('are the ASCII bytes of the spec, read as LE u32', () => {
    const ascii = (v: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v);
      return b.toString('ascii');
    };
    expect(ascii(SIG_XENHA_GLOBAL)).toBe('xhbg');
    expect(ascii(SIG_END_MARKER_XENHA_GLOBAL)).toBe('xhbe');
    expect(ascii(SIG_XENHA_HOST)).toBe('xhbs');
    expect(ascii(SIG_END_MARKER_XENHA_HOST)).toBe('xhbf');
    expect([SIG_XENHA_GLOBAL, SIG_END_MARKER_XENHA_GLOBAL, SIG_XENHA_HOST, SIG_END_MARKER_XENHA_HOST]).toEqual([
      0x67626878, 0x65626878, 0x73626878, 0x66626878,
    ]);
  });

  it('have the inverses worked out by hand: (~sig >>> 0) >>> 3', () => {
    // ~0x67626878 = 0x989d9787; >>> 3 = 0x1313b2f0
    expect(sigInv(SIG_XENHA_GLOBAL)).toBe(0x1313b2f0);
    expect(sigInv(SIG_END_MARKER_XENHA_GLOBAL)).toBe(0x1353b2f0);
    expect(sigInv(SIG_XENHA_HOST)).toBe(0x1193b2f0);
    expect(sigInv(SIG_END_MARKER_XENHA_HOST)).toBe(0x1333b2f0);
  });

  it('frame the layout of the xenha flavour', () => {
    expect(FLAVOURS.xenha).toEqual({
      version: 1,
      sigGlobal: SIG_XENHA_GLOBAL,
      endMarkerGlobal: SIG_END_MARKER_XENHA_GLOBAL,
      sigHost: SIG_XENHA_HOST,
      endMarkerHost: SIG_END_MARKER_XENHA_HOST,
      globalUsed: 104,
      hostUsed: 688,
    });
    expect(FLAVOURS.xhad).toMatchObject({ version: 2, globalUsed: 104, hostUsed: 632 });
  });
});

describe("xenha's heartbeat file: global section", () => {
  it('lays the global section out byte for byte', () => {
    const buf = encodeGlobal({ genUuid: GEN, poolState: 'active', master: null, configHosts: 3 }, 'xenha');
    expect(buf.length).toBe(512);
    expect(buf.subarray(0, 4).toString('ascii')).toBe('xhbg');
    expect(buf.readUInt32LE(4)).toBe(0x1313b2f0);
    expect(buf.readUInt32LE(12)).toBe(1); // version
    expect(buf.readUInt32LE(16)).toBe(4096);
    expect(buf.readUInt32LE(20)).toBe(4096);
    expect(buf.readUInt32LE(24)).toBe(64);
    expect(buf.subarray(28, 60).toString('ascii')).toBe('0123abcd456789abcdef0123456789ab');
    expect(buf.readUInt32LE(60)).toBe(2); // active
    expect(buf.subarray(64, 96).toString('ascii')).toBe('0'.repeat(32));
    expect(buf.readUInt32LE(96)).toBe(3);
    expect(buf.subarray(100, 104).toString('ascii')).toBe('xhbe');
    expect(buf.readUInt32LE(8)).toBe(specChecksum(buf, 100));
    expect(buf.subarray(104).every((b) => b === 0)).toBe(true);
  });

  it('decodes a global section written by hand from the spec', () => {
    const buf = Buffer.alloc(512);
    buf.write('xhbg', 0, 'ascii');
    buf.writeUInt32LE(0x1313b2f0, 4);
    buf.writeUInt32LE(1, 12);
    buf.writeUInt32LE(4096, 16);
    buf.writeUInt32LE(4096, 20);
    buf.writeUInt32LE(64, 24);
    buf.write('0123abcd456789abcdef0123456789ab', 28, 'ascii');
    buf.writeUInt32LE(2, 60);
    buf.write('0'.repeat(32), 64, 'ascii');
    buf.writeUInt32LE(5, 96);
    buf.write('xhbe', 100, 'ascii');
    reseal(buf, 100);
    expect(decodeGlobal(buf, 'xenha')).toEqual({
      ok: true,
      value: { genUuid: GEN, poolState: 'active', master: null, configHosts: 5 },
    });
    expect(detectFlavour(buf)).toBe('xenha');
  });

  it("refuses xhad's version in a xenha frame", () => {
    const buf = encodeGlobal({ genUuid: GEN, poolState: 'active', master: null, configHosts: 1 }, 'xenha');
    buf.writeUInt32LE(2, 12);
    reseal(buf, 100);
    expect(decodeGlobal(buf, 'xenha')).toMatchObject({ ok: false, error: { kind: 'bad_version' } });
  });

  fcTest.prop({
    genUuid: uuidArb,
    master: fc.option(uuidArb, { nil: null }),
    poolState: fc.constantFrom(...POOL_STATES),
    configHosts: fc.integer({ min: 0, max: 64 }),
    flavour: fc.constantFrom<Flavour>('xhad', 'xenha'),
  })('round-trips any global section in either flavour', ({ flavour, ...g }) => {
    const global: StatefileGlobal = g;
    expect(decodeGlobal(encodeGlobal(global, flavour), flavour)).toEqual({ ok: true, value: global });
  });
});

describe("xenha's heartbeat file: host slot", () => {
  it('decodes a slot written by hand from the spec', () => {
    const buf = Buffer.alloc(1024);
    buf.write('xhbs', 0, 'ascii');
    buf.writeUInt32LE(0x1193b2f0, 4);
    buf.writeUInt32LE(42, 12); // sequence
    buf.writeUInt32LE(1, 16); // host index
    buf.write('ffffffff000040008000000000000001', 20, 'ascii');
    buf.writeUInt32LE(0, 52); // excluded
    buf.writeUInt32LE(0, 56); // starting
    [700, 0, -1].forEach((v, j) => buf.writeInt32LE(v, 60 + 4 * j));
    [1200, 0, -1].forEach((v, j) => buf.writeInt32LE(v, 316 + 4 * j));
    buf.writeInt32LE(-1, 572);
    buf.writeUInt32LE(0b11, 592); // hbdomain {0, 1}
    buf.writeUInt32LE(0b01, 600); // sfdomain lo {0}
    buf.writeUInt32LE(1, 604); // sfdomain hi {32}
    buf.writeUInt32LE(1, 624); // weight
    // the extension: 1_700_000_000_123 ms = 395 * 2^32 + 3487918203
    buf.writeUInt32LE(3487918203, 628);
    buf.writeUInt32LE(395, 632);
    buf.writeUInt32LE(2000, 636);
    buf.writeUInt32LE(3, 640);
    buf.writeUInt32LE(0b11, 644); // home 0: {0, 1}
    buf.writeUInt32LE(0b10, 652); // home 1: {1}
    buf.writeUInt32LE(0x80000000, 664); // home 2: {63}
    Buffer.from([0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x70, 0x89]).copy(buf, 676); // key id
    buf.write('xhbf', 684, 'ascii');
    reseal(buf, 684);
    expect(decodeHostSlot(buf, 3, 'xenha')).toEqual({
      ok: true,
      value: {
        sequence: 42,
        hostIndex: 1,
        hostUuid: HOST,
        excluded: false,
        starting: false,
        sinceLastHbReceiptMs: [700, 0, -1],
        sinceLastSfUpdateMs: [1200, 0, -1],
        sinceXapiRestartFirstAttemptedMs: -1,
        currentLiveset: [],
        proposedLiveset: [],
        hbdomain: [0, 1],
        sfdomain: [0, 32],
        lockRequest: false,
        lockGrant: [],
        smPhase: 0,
        weight: 1,
        xenha: { writtenAtMs: 1_700_000_000_123, intervalMs: 2000, homes: [[0, 1], [1], [63]], keyId: '1a2b3c4d5e6f7089' },
      },
    });
  });

  it('puts an encoded slot at the spec offsets', () => {
    const buf = encodeHostSlot(
      slot({
        hostIndex: 33,
        hbdomain: [0, 33],
        xenha: {
          writtenAtMs: 1_700_000_000_123,
          intervalMs: 1000,
          homes: [
            [0, 1, 2],
            [0, 33],
          ],
          keyId: 'fedcba9876543210',
        },
      }),
      'xenha',
    );
    expect(buf.length).toBe(1024);
    expect(buf.subarray(0, 4).toString('ascii')).toBe('xhbs');
    expect(buf.readUInt32LE(4)).toBe(0x1193b2f0);
    expect(buf.readUInt32LE(12)).toBe(42);
    expect(buf.readUInt32LE(16)).toBe(33);
    expect(buf.subarray(20, 52).toString('ascii')).toBe('ffffffff000040008000000000000001');
    expect(buf.readInt32LE(60)).toBe(700);
    expect(buf.readInt32LE(68)).toBe(-1);
    expect(buf.readInt32LE(316)).toBe(1200);
    expect(buf.readInt32LE(572)).toBe(-1);
    expect([buf.readUInt32LE(592), buf.readUInt32LE(596)]).toEqual([1, 2]); // hbdomain {0, 33}
    expect(buf.readUInt32LE(624)).toBe(1);
    // no xhad end marker where the extension starts
    expect(buf.subarray(628, 632).toString('ascii')).not.toBe('endh');
    expect(buf.readUInt32LE(628)).toBe(3487918203);
    expect(buf.readUInt32LE(632)).toBe(395);
    expect(buf.readUInt32LE(636)).toBe(1000);
    expect(buf.readUInt32LE(640)).toBe(2);
    expect([buf.readUInt32LE(644), buf.readUInt32LE(648)]).toEqual([0b111, 0]);
    expect([buf.readUInt32LE(652), buf.readUInt32LE(656)]).toEqual([0b1, 0b10]);
    expect(buf.subarray(660, 676).every((b) => b === 0)).toBe(true); // homes 2, 3 unused
    expect([...buf.subarray(676, 684)]).toEqual([0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10]); // key id, raw bytes
    expect(buf.subarray(684, 688).toString('ascii')).toBe('xhbf');
    expect(buf.readUInt32LE(8)).toBe(specChecksum(buf, 684));
    expect(buf.subarray(688).every((b) => b === 0)).toBe(true);
  });

  it('covers the extension with the checksum, key id included, up to the end marker at 684', () => {
    const buf = encodeHostSlot(slot(), 'xenha');
    const torn = Buffer.from(buf);
    torn[683] = torn[683]! ^ 1; // key id, last checksummed byte
    expect(decodeHostSlot(torn, 3, 'xenha')).toMatchObject({ ok: false, error: { kind: 'bad_checksum' } });
    const badEnd = Buffer.from(buf);
    badEnd.write('endh', 684, 'ascii'); // the end marker is outside the checksum
    expect(decodeHostSlot(badEnd, 3, 'xenha')).toMatchObject({ ok: false, error: { kind: 'bad_signature' } });
    const oldEnd = Buffer.from(buf);
    oldEnd.fill(0, 676, 688);
    oldEnd.write('xhbf', 676, 'ascii'); // the end marker where it was before the key id: not a frame
    expect(decodeHostSlot(reseal(oldEnd, 676), 3, 'xenha')).toMatchObject({ ok: false });
    const afterEnd = Buffer.from(buf);
    afterEnd[688] = 0xff; // past the used bytes: not covered
    expect(decodeHostSlot(afterEnd, 3, 'xenha')).toMatchObject({ ok: true });
    expect(decodeHostSlot(buf.subarray(0, 687), 3, 'xenha')).toMatchObject({ ok: false, error: { kind: 'short_read' } });
  });

  fcTest.prop({ flip: fc.integer({ min: 12, max: 683 }), bit: fc.integer({ min: 0, max: 7 }) })(
    'rejects a torn slot by its checksum, extension included',
    ({ flip, bit }) => {
      const buf = encodeHostSlot(slot(), 'xenha');
      buf[flip] = buf[flip]! ^ (1 << bit);
      expect(decodeHostSlot(buf, 3, 'xenha')).toMatchObject({ ok: false, error: { kind: 'bad_checksum' } });
    },
  );

  it('refuses more than four homes and a written-at past 2^53 ms; ignores unused homes', () => {
    const five = encodeHostSlot(slot(), 'xenha');
    five.writeUInt32LE(5, 640);
    expect(decodeHostSlot(reseal(five, 684), 3, 'xenha')).toMatchObject({ ok: false, error: { kind: 'bad_version' } });
    const far = encodeHostSlot(slot(), 'xenha');
    far.writeUInt32LE(2 ** 21, 632);
    expect(decodeHostSlot(reseal(far, 684), 3, 'xenha')).toMatchObject({ ok: false, error: { kind: 'bad_version' } });
    const stray = encodeHostSlot(slot(), 'xenha'); // 2 homes
    stray.writeUInt32LE(0xff, 668); // home 3
    expect(decodeHostSlot(reseal(stray, 684), 3, 'xenha')).toMatchObject({ ok: true, value: { xenha: { homes: [[0, 1], [1]] } } });
  });

  it('refuses to encode what the layout cannot hold', () => {
    const x = slot().xenha;
    expect(() => encodeHostSlot(slot({ xenha: { ...x, homes: [[], [], [], [], []] } }), 'xenha')).toThrow(/homes/);
    expect(() => encodeHostSlot(slot({ xenha: { ...x, homes: [[64]] } }), 'xenha')).toThrow(/out of range/);
    expect(() => encodeHostSlot(slot({ xenha: { ...x, writtenAtMs: -1 } }), 'xenha')).toThrow(/writtenAtMs/);
    expect(() => encodeHostSlot(slot({ xenha: { ...x, intervalMs: 2 ** 32 } }), 'xenha')).toThrow();
    for (const keyId of ['', '1a2b3c4d5e6f708', '1a2b3c4d5e6f708900', '1A2B3C4D5E6F7089', '1a2b3c4d5e6f708g'])
      expect(() => encodeHostSlot(slot({ xenha: { ...x, keyId } }), 'xenha'), keyId).toThrow(/keyId/);
    const { xenha: _dropped, ...plain } = slot();
    expect(() => encodeHostSlot(plain, 'xenha' as Flavour)).toThrow(/extension/);
  });

  fcTest.prop({
    uuid: uuidArb,
    seq: fc.nat({ max: 2 ** 32 - 1 }),
    n: fc.integer({ min: 1, max: 64 }),
    ms: fc.array(fc.integer({ min: -1, max: 2 ** 31 - 1 }), { minLength: 128, maxLength: 128 }),
    bits: fc.uniqueArray(fc.integer({ min: 0, max: 63 }), { maxLength: 64 }),
    writtenAtMs: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
    intervalMs: fc.nat({ max: 2 ** 32 - 1 }),
    homes: fc.array(fc.uniqueArray(fc.integer({ min: 0, max: 63 }), { maxLength: 64 }), { maxLength: 4 }),
    keyId: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  })('round-trips any xenha slot', ({ uuid, seq, n, ms, bits, writtenAtMs, intervalMs, homes, keyId }) => {
    const set = [...bits].sort((a, b) => a - b);
    const s: XenhaHostSlot = {
      sequence: seq,
      hostIndex: n - 1,
      hostUuid: uuid,
      excluded: false,
      starting: false,
      sinceLastHbReceiptMs: ms.slice(0, n),
      sinceLastSfUpdateMs: ms.slice(64, 64 + n),
      sinceXapiRestartFirstAttemptedMs: -1,
      currentLiveset: [],
      proposedLiveset: [],
      hbdomain: set,
      sfdomain: set,
      lockRequest: false,
      lockGrant: [],
      smPhase: 0,
      weight: 1,
      xenha: {
        writtenAtMs,
        intervalMs,
        homes: homes.map((h) => [...h].sort((a, b) => a - b)),
        keyId: [...keyId].map((b) => b.toString(16).padStart(2, '0')).join(''),
      },
    };
    const buf = encodeHostSlot(s, 'xenha');
    expect(buf.subarray(676, 684).equals(Buffer.from(keyId))).toBe(true);
    expect(decodeHostSlot(buf, n, 'xenha')).toEqual({ ok: true, value: s });
  });
});

describe('each flavour refuses the other', () => {
  const g: StatefileGlobal = { genUuid: GEN, poolState: 'active', master: null, configHosts: 3 };

  it('global sections: bad_signature both ways', () => {
    expect(decodeGlobal(encodeGlobal(g, 'xenha'))).toMatchObject({ ok: false, error: { kind: 'bad_signature' } });
    expect(decodeGlobal(encodeGlobal(g, 'xenha'), 'xhad')).toMatchObject({ ok: false, error: { kind: 'bad_signature' } });
    expect(decodeGlobal(encodeGlobal(g), 'xenha')).toMatchObject({ ok: false, error: { kind: 'bad_signature' } });
  });

  it('host slots: bad_signature both ways', () => {
    expect(decodeHostSlot(encodeHostSlot(slot(), 'xenha'), 3)).toMatchObject({ ok: false, error: { kind: 'bad_signature' } });
    expect(decodeHostSlot(encodeHostSlot(slot()), 3, 'xenha')).toMatchObject({ ok: false, error: { kind: 'bad_signature' } });
    // an xhad slot's frame ends at 628: even re-signed as xenha, its end marker is not at 684
    const resigned = encodeHostSlot(slot());
    resigned.write('xhbs', 0, 'ascii');
    resigned.writeUInt32LE(sigInv(SIG_XENHA_HOST), 4);
    expect(decodeHostSlot(reseal(resigned, 684), 3, 'xenha')).toMatchObject({ ok: false, error: { kind: 'bad_signature' } });
  });

  it('whole files: bad_signature both ways, no slots', () => {
    const xenhaVol = initialVolume(GEN, 3, LAYOUT_BYTES, 'xenha');
    const xhadVol = initialVolume(GEN, 3);
    expect(decodeStatefile(xenhaVol)).toMatchObject({ global: { ok: false, error: { kind: 'bad_signature' } }, slots: [] });
    expect(decodeStatefile(xhadVol, 'xenha')).toMatchObject({ global: { ok: false, error: { kind: 'bad_signature' } }, slots: [] });
  });

  it('an xhad slot encoded from a xenha slot drops the extension', () => {
    const buf = encodeHostSlot(slot(), 'xhad');
    expect(buf.subarray(628, 632).toString('ascii')).toBe('endh');
    expect(buf.subarray(632).every((b) => b === 0)).toBe(true);
    const { xenha: _dropped, ...plain } = slot();
    expect(decodeHostSlot(buf, 3)).toEqual({ ok: true, value: plain });
  });
});

describe('detectFlavour', () => {
  it("tells xhad's statefile from xenha's heartbeat file by the global signature", () => {
    expect(detectFlavour(initialVolume(GEN, 3))).toBe('xhad');
    expect(detectFlavour(initialVolume(GEN, 3, LAYOUT_BYTES, 'xenha'))).toBe('xenha');
    expect(detectFlavour(encodeGlobal({ genUuid: GEN, poolState: 'active', master: null, configHosts: 1 }, 'xenha'))).toBe('xenha');
  });

  it('is null for anything else', () => {
    expect(detectFlavour(Buffer.alloc(4096))).toBeNull();
    expect(detectFlavour(Buffer.from('xhbg', 'ascii'))).toBeNull(); // shorter than sig + inverse
    const wrongInv = encodeGlobal({ genUuid: GEN, poolState: 'active', master: null, configHosts: 1 }, 'xenha');
    wrongInv.writeUInt32LE(0, 4);
    expect(detectFlavour(wrongInv)).toBeNull();
    expect(detectFlavour(encodeHostSlot(slot(), 'xenha'))).toBeNull(); // a slot is no file
  });
});

describe('a heartbeat file as the daemon leaves it', () => {
  it('initialises with an ACTIVE global section and 64 framed empty slots', () => {
    const vol = initialVolume(GEN, 3, LAYOUT_BYTES, 'xenha');
    expect(vol.length).toBe(LAYOUT_BYTES);
    const d = decodeStatefile(vol, 'xenha');
    expect(d.global).toEqual({ ok: true, value: { genUuid: GEN, poolState: 'active', master: null, configHosts: 3 } });
    expect(d.slots).toHaveLength(3);
    for (const s of d.slots)
      expect(s).toEqual({
        ok: true,
        value: { ...emptyHostSlot(0, 'xenha'), sinceLastHbReceiptMs: [0, 0, 0], sinceLastSfUpdateMs: [0, 0, 0] },
      });
    expect(d.slots.map((s) => s.ok && s.value.xenha)).toEqual(
      Array.from({ length: 3 }, () => ({ writtenAtMs: 0, intervalMs: 0, homes: [], keyId: '0000000000000000' })),
    );
    expect(vol.subarray(hostSlotOffset(63), hostSlotOffset(63) + 4).toString('ascii')).toBe('xhbs');
    expect(vol.subarray(hostSlotOffset(63) + 676, hostSlotOffset(63) + 684).every((b) => b === 0)).toBe(true); // no key id
    expect(vol.subarray(hostSlotOffset(63) + 684, hostSlotOffset(63) + 688).toString('ascii')).toBe('xhbf');
  });

  it('puts each host at the rank of its UUID and reads it back', () => {
    const uuids = ['cccccccc-0000-4000-8000-000000000000', 'aaaaaaaa-0000-4000-8000-000000000000', 'bbbbbbbb-0000-4000-8000-000000000000'];
    const order = hostIndexOrder(uuids);
    const vol = initialVolume(GEN, 3, LAYOUT_BYTES, 'xenha');
    order.forEach((u, i) => encodeHostSlot(slot({ hostIndex: i, hostUuid: u, sequence: 10 + i }), 'xenha').copy(vol, 4096 + 4096 * i));
    const d = decodeStatefile(vol, 'xenha');
    expect(d.slots.map((s) => (s.ok ? [s.value.hostUuid, s.value.sequence, s.value.xenha.intervalMs] : null))).toEqual([
      ['aaaaaaaa-0000-4000-8000-000000000000', 10, 1000],
      ['bbbbbbbb-0000-4000-8000-000000000000', 11, 1000],
      ['cccccccc-0000-4000-8000-000000000000', 12, 1000],
    ]);
  });
});
