import { describe, expect, it } from 'vitest';
import { test as fcTest, fc } from '@fast-check/vitest';
import {
  checksum,
  decodeGlobal,
  decodeHostSlot,
  decodeStatefile,
  encodeGlobal,
  encodeHostSlot,
  hostIndexOrder,
  hostSlotOffset,
  initialVolume,
  sigInv,
  SIG_SF_GLOBAL,
  SIG_SF_HOST,
  LAYOUT_BYTES,
  type StatefileHostSlot,
} from '../../core/statefile/layout.ts';

const uuidArb = fc.uuid().map((u) => u.toLowerCase());

describe('statefile layout (xha include/statefile.h)', () => {
  it('uses the signature inverses xhad computes', () => {
    expect(sigInv(SIG_SF_GLOBAL)).toBe(0x12721211);
    expect(sigInv(SIG_SF_HOST)).toBe(0x11719212);
  });

  it('lays the global section out byte for byte', () => {
    const buf = encodeGlobal({ genUuid: '0123abcd-4567-89ab-cdef-0123456789ab', poolState: 'active', master: null, configHosts: 3 });
    expect(buf.length).toBe(512);
    expect(buf.subarray(0, 4).toString('ascii')).toBe('pool');
    expect(buf.subarray(100, 104).toString('ascii')).toBe('endp');
    expect(buf.readUInt32LE(12)).toBe(2); // version
    expect(buf.readUInt32LE(16)).toBe(4096);
    expect(buf.readUInt32LE(20)).toBe(4096);
    expect(buf.readUInt32LE(24)).toBe(64);
    expect(buf.subarray(28, 60).toString('ascii')).toBe('0123abcd456789abcdef0123456789ab');
    expect(buf.readUInt32LE(60)).toBe(2); // ACTIVE
    expect(buf.subarray(64, 96).toString('ascii')).toBe('0'.repeat(32));
    expect(buf.readUInt32LE(96)).toBe(3);
    expect(buf.readUInt32LE(8)).toBe(checksum(buf, 100));
  });

  it('lays a host slot out byte for byte', () => {
    const buf = encodeHostSlot({
      sequence: 7,
      hostIndex: 33,
      hostUuid: 'ffffffff-0000-4000-8000-000000000001',
      excluded: false,
      starting: true,
      sinceLastHbReceiptMs: [5, -1],
      sinceLastSfUpdateMs: [10, 20],
      sinceXapiRestartFirstAttemptedMs: -1,
      currentLiveset: [0, 33],
      proposedLiveset: [],
      hbdomain: [1],
      sfdomain: [63],
      lockRequest: true,
      lockGrant: [2],
      smPhase: 1,
      weight: 1,
    });
    expect(buf.length).toBe(1024);
    expect(buf.subarray(0, 4).toString('ascii')).toBe('host');
    expect(buf.subarray(628, 632).toString('ascii')).toBe('endh');
    expect(buf.readUInt32LE(12)).toBe(7);
    expect(buf.readUInt32LE(16)).toBe(33);
    expect(buf.readUInt32LE(56)).toBe(1);
    expect(buf.readInt32LE(60 + 4)).toBe(-1);
    expect(buf.readInt32LE(316 + 4)).toBe(20);
    expect(buf.readUInt32LE(576)).toBe(1); // host 0
    expect(buf.readUInt32LE(580)).toBe(2); // host 33 = bit 1 of word 1
    expect(buf.readUInt32LE(604)).toBe(0x80000000); // sfdomain host 63
    expect(buf.readUInt32LE(608)).toBe(1);
  });

  fcTest.prop({
    uuid: uuidArb,
    seq: fc.nat({ max: 2 ** 32 - 1 }),
    n: fc.integer({ min: 1, max: 64 }),
    bits: fc.array(fc.integer({ min: 0, max: 63 }), { maxLength: 64 }),
  })('round-trips any slot', ({ uuid, seq, n, bits }) => {
    const set = [...new Set(bits)].sort((a, b) => a - b);
    const slot: StatefileHostSlot = {
      sequence: seq,
      hostIndex: n - 1,
      hostUuid: uuid,
      excluded: seq % 2 === 0,
      starting: false,
      sinceLastHbReceiptMs: Array.from({ length: n }, (_, j) => j * 100 - 1),
      sinceLastSfUpdateMs: Array.from({ length: n }, (_, j) => 0 - j),
      sinceXapiRestartFirstAttemptedMs: -1,
      currentLiveset: set,
      proposedLiveset: set,
      hbdomain: set,
      sfdomain: [],
      lockRequest: false,
      lockGrant: set,
      smPhase: 11,
      weight: 1,
    };
    const d = decodeHostSlot(encodeHostSlot(slot), n);
    expect(d).toEqual({ ok: true, value: slot });
  });

  fcTest.prop({ flip: fc.integer({ min: 12, max: 627 }), bit: fc.integer({ min: 0, max: 7 }) })(
    'rejects a torn slot by its checksum',
    ({ flip, bit }) => {
      const buf = encodeHostSlot({
        sequence: 1,
        hostIndex: 0,
        hostUuid: 'ffffffff-0000-4000-8000-000000000001',
        excluded: false,
        starting: false,
        sinceLastHbReceiptMs: [0],
        sinceLastSfUpdateMs: [0],
        sinceXapiRestartFirstAttemptedMs: 0,
        currentLiveset: [0],
        proposedLiveset: [0],
        hbdomain: [0],
        sfdomain: [0],
        lockRequest: false,
        lockGrant: [],
        smPhase: 1,
        weight: 1,
      });
      buf[flip] = buf[flip]! ^ (1 << bit);
      expect(decodeHostSlot(buf, 1)).toMatchObject({ ok: false, error: { kind: 'bad_checksum' } });
    },
  );

  it('rejects a wrong signature and a wrong version', () => {
    const g = encodeGlobal({ genUuid: '0123abcd-4567-89ab-cdef-0123456789ab', poolState: 'init', master: null, configHosts: 1 });
    const badSig = Buffer.from(g);
    badSig.write('xool', 0, 'ascii');
    expect(decodeGlobal(badSig)).toMatchObject({ ok: false, error: { kind: 'bad_signature' } });
    const badVersion = Buffer.from(g);
    badVersion.writeUInt32LE(3, 12);
    badVersion.writeUInt32LE(checksum(badVersion, 100), 8);
    expect(decodeGlobal(badVersion)).toMatchObject({ ok: false, error: { kind: 'bad_version' } });
  });

  it('initialises a volume as ha_set_pool_state init does', () => {
    const vol = initialVolume('0123abcd-4567-89ab-cdef-0123456789ab', 3);
    expect(vol.length).toBe(4 * 1024 * 1024);
    expect(LAYOUT_BYTES).toBe(266240);
    const d = decodeStatefile(vol);
    expect(d.global).toMatchObject({ ok: true, value: { poolState: 'init', master: null, configHosts: 3 } });
    expect(d.slots).toHaveLength(3);
    for (const s of d.slots) expect(s).toMatchObject({ ok: true, value: { sequence: 0, hostUuid: null } });
    expect(vol.subarray(hostSlotOffset(63), hostSlotOffset(63) + 4).toString('ascii')).toBe('host');
  });

  fcTest.prop({ uuids: fc.uniqueArray(uuidArb, { minLength: 1, maxLength: 64 }) })(
    'orders slots by packed UUID, lowest first',
    ({ uuids }) => {
      const order = hostIndexOrder(uuids);
      expect([...order].sort()).toEqual([...uuids].sort());
      for (let i = 1; i < order.length; i++) {
        expect(order[i - 1]!.replace(/-/g, '') < order[i]!.replace(/-/g, '')).toBe(true);
      }
    },
  );
});
