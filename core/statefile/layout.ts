/**
 * The on-disk layout of XenServer's HA statefile (xhad, SF_VERSION 2), encoded and decoded byte for
 * byte as the daemon does (github.com/xenserver/xha include/statefile.h, lib/statefileio.c).
 * See docs/statefile.md. Pure: buffers in, data out. The simulator writes with it, the exporter's
 * storage probe reads with it, so a real pool's statefile and the simulator's are read by one code.
 *
 * A second flavour, 'xenha', is the heartbeat file of xenha's own host daemon (xenha-heartbeat) for
 * pools without XenServer HA: the same geometry and fields, its own signatures and version 1, and a
 * slot extension where xhad has its end marker (write time, interval, peers heard per management home,
 * the pool secret's key id).
 */

export const SF_VERSION = 2;
export const LENGTH_GLOBAL = 4096;
export const LENGTH_HOST_SPECIFIC = 4096;
export const MAX_HOST_NUM = 64;
/** The bytes the layout spans; the rest of the 4 MiB volume is unused. */
export const LAYOUT_BYTES = LENGTH_GLOBAL + MAX_HOST_NUM * LENGTH_HOST_SPECIFIC;
/** Smallest statefile volume XAPI accepts (global + 64 slots, rounded up to 4 MiB). */
export const STATEFILE_VOLUME_BYTES = 4 * 1024 * 1024;
/** O_DIRECT granularity: the daemon transfers only the used prefix, rounded up to this. */
export const IO_UNIT = 512;
export const GLOBAL_IO_BYTES = 512;
export const HOST_IO_BYTES = 1024;

export const SIG_SF_GLOBAL = 0x6c6f6f70; // 'loop', bytes "pool" on disk
export const SIG_END_MARKER_GLOBAL = 0x70646e65; // 'pdne', bytes "endp"
export const SIG_SF_HOST = 0x74736f68; // 'tsoh', bytes "host"
export const SIG_END_MARKER_HOST = 0x68646e65; // 'hdne', bytes "endh"

/** xenha's heartbeat file: its own magic, so neither daemon's reader ever takes the other's file. */
export const SIG_XENHA_GLOBAL = 0x67626878; // bytes "xhbg" on disk
export const SIG_END_MARKER_XENHA_GLOBAL = 0x65626878; // bytes "xhbe"
export const SIG_XENHA_HOST = 0x73626878; // bytes "xhbs"
export const SIG_END_MARKER_XENHA_HOST = 0x66626878; // bytes "xhbf"
/** Version of xenha's heartbeat file (the global section's version field). */
export const XENHA_HB_VERSION = 1;
/** Management homes a xenha slot records peers for. */
export const XENHA_MAX_HOMES = 4;
/**
 * Bytes of the pool secret's key id in a xenha slot: the first 8 bytes of HMAC-SHA256(secret,
 * "xenha-heartbeat key id v1"), so a reader checks every host has the same secret without knowing it.
 */
export const XENHA_KEY_ID_BYTES = 8;
/** The key id of a slot no daemon wrote (all zero bytes), as hex. */
export const XENHA_NO_KEY_ID = '0'.repeat(2 * XENHA_KEY_ID_BYTES);
const KEY_ID_RE = new RegExp(`^[0-9a-f]{${2 * XENHA_KEY_ID_BYTES}}$`);

/** xenha's slot extension, at xhad's end-marker offset (docs/statefile.md). */
const XENHA_WRITTEN_AT_LO = 628;
const XENHA_WRITTEN_AT_HI = 632;
const XENHA_INTERVAL = 636;
const XENHA_HOMES_COUNT = 640;
/** homes[k] at XENHA_HOMES + 8k, k < XENHA_MAX_HOMES. */
const XENHA_HOMES = 644;
const XENHA_KEY_ID = XENHA_HOMES + 8 * XENHA_MAX_HOMES; // 676
/** The xenha slot's end marker, after the key id (the checksum covers 12 up to it). */
const XENHA_SLOT_END = XENHA_KEY_ID + XENHA_KEY_ID_BYTES; // 684

/** Who wrote the file: xhad (XenServer HA's statefile) or xenha-heartbeat (xenha's heartbeat file). */
export type Flavour = 'xhad' | 'xenha';

export interface FlavourLayout {
  version: number;
  sigGlobal: number;
  endMarkerGlobal: number;
  sigHost: number;
  endMarkerHost: number;
  /** Bytes of the global section covered by the frame, end marker included. */
  globalUsed: number;
  /** Bytes of a host slot covered by the frame, end marker included. */
  hostUsed: number;
}

export const FLAVOURS: Readonly<Record<Flavour, Readonly<FlavourLayout>>> = {
  xhad: {
    version: SF_VERSION,
    sigGlobal: SIG_SF_GLOBAL,
    endMarkerGlobal: SIG_END_MARKER_GLOBAL,
    sigHost: SIG_SF_HOST,
    endMarkerHost: SIG_END_MARKER_HOST,
    globalUsed: 104,
    hostUsed: 632,
  },
  xenha: {
    version: XENHA_HB_VERSION,
    sigGlobal: SIG_XENHA_GLOBAL,
    endMarkerGlobal: SIG_END_MARKER_XENHA_GLOBAL,
    sigHost: SIG_XENHA_HOST,
    endMarkerHost: SIG_END_MARKER_XENHA_HOST,
    globalUsed: 104,
    hostUsed: XENHA_SLOT_END + 4,
  },
};

export const POOL_STATES = ['none', 'init', 'active', 'invalid'] as const;
export type PoolState = (typeof POOL_STATES)[number];

export const SM_PHASES = [
  'STARTING',
  'STARTED',
  'ABORTED',
  'FHREADY',
  'FH1',
  'FH1DONE',
  'FH2',
  'FH2DONE',
  'FH3',
  'FH3DONE',
  'FH4',
  'FH4DONE',
] as const;

const UUID_BYTES = 32;

/** (~sig) >> 3 as a logical shift of a u32. */
export function sigInv(sig: number): number {
  return (~sig >>> 0) >>> 3;
}

/** u32 wrap-around sum of LE words from offset 12 up to (excluding) the end marker. */
export function checksum(buf: Buffer, endMarkerOffset: number): number {
  let sum = 0;
  for (let off = 12; off < endMarkerOffset; off += 4) sum = (sum + buf.readUInt32LE(off)) >>> 0;
  return sum;
}

/** MTC_UUID: the 36-char UUID without dashes, 32 ASCII bytes, no NUL. */
export function packUuid(uuid: string): Buffer {
  const packed = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(packed) && !/^0{32}$/.test(packed)) {
    throw new Error(`not a UUID: ${JSON.stringify(uuid)}`);
  }
  return Buffer.from(packed, 'ascii');
}

/** Inverse of packUuid; all-zero bytes (a slot never written by a daemon) give null. */
export function unpackUuid(bytes: Buffer): string | null {
  if (bytes.every((b) => b === 0)) return null;
  const s = bytes.toString('ascii').toLowerCase();
  if (/^0{32}$/.test(s)) return null;
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/**
 * Slot index of each host: rank of its packed UUID in the configured host list sorted with strncmp
 * (byte order), index 0 = lowest UUID. xhad compares UUIDs case-insensitively, so lower-case first.
 */
export function hostIndexOrder(hostUuids: readonly string[]): string[] {
  const packed = hostUuids.map((u) => u.replace(/-/g, '').toLowerCase());
  return [...hostUuids]
    .map((u, i) => ({ u, p: packed[i]! }))
    .sort((a, b) => (a.p < b.p ? -1 : a.p > b.p ? 1 : 0))
    .map((x) => x.u);
}

/** MTC_HOSTMAP: 64 bits as two LE u32 words, host i = bit (i % 32) of word (i / 32). */
function writeHostmap(buf: Buffer, off: number, hosts: readonly number[]): void {
  let lo = 0;
  let hi = 0;
  for (const i of hosts) {
    if (!Number.isInteger(i) || i < 0 || i >= MAX_HOST_NUM) throw new Error(`host index out of range: ${i}`);
    if (i < 32) lo = (lo | (1 << i)) >>> 0;
    else hi = (hi | (1 << (i - 32))) >>> 0;
  }
  buf.writeUInt32LE(lo, off);
  buf.writeUInt32LE(hi, off + 4);
}

function readHostmap(buf: Buffer, off: number): number[] {
  const out: number[] = [];
  const lo = buf.readUInt32LE(off);
  const hi = buf.readUInt32LE(off + 4);
  for (let i = 0; i < 32; i++) if ((lo >>> i) & 1) out.push(i);
  for (let i = 0; i < 32; i++) if ((hi >>> i) & 1) out.push(32 + i);
  return out;
}

export interface StatefileGlobal {
  /** Pool HA generation UUID. */
  genUuid: string;
  poolState: PoolState;
  /** Master host UUID, null while the lock has never been taken (32 ASCII '0'). */
  master: string | null;
  configHosts: number;
}

export interface StatefileHostSlot {
  sequence: number;
  hostIndex: number;
  hostUuid: string | null;
  excluded: boolean;
  starting: boolean;
  /** ms since the owner last received a network heartbeat from host j; -1 = never. Length = config hosts. */
  sinceLastHbReceiptMs: number[];
  /** ms since the owner saw host j's sequence change on the statefile; -1 = never. */
  sinceLastSfUpdateMs: number[];
  sinceXapiRestartFirstAttemptedMs: number;
  currentLiveset: number[];
  proposedLiveset: number[];
  /** Hosts the owner hears on the network heartbeat. */
  hbdomain: number[];
  /** Hosts the owner sees alive on the statefile. */
  sfdomain: number[];
  lockRequest: boolean;
  lockGrant: number[];
  smPhase: number;
  weight: number;
}

/** What xenha's heartbeat daemon adds to a slot, where xhad has its end marker. */
export interface XenhaSlotExtension {
  /** When the slot was written, ms since the Unix epoch (u64 on disk). */
  writtenAtMs: number;
  /** The daemon's write interval, ms. */
  intervalMs: number;
  /** homes[k] = slot indexes heard on management home k within the daemon's peer window; at most 4 homes. */
  homes: number[][];
  /**
   * The pool secret's key id, 16 lower-case hex characters (8 bytes on disk): equal on two slots when
   * their daemons have the same secret. One-way and truncated: it reveals nothing usable to forge a packet.
   */
  keyId: string;
}

/** A slot of xenha's heartbeat file: xhad's fields plus the extension. */
export interface XenhaHostSlot extends StatefileHostSlot {
  xenha: XenhaSlotExtension;
}

export type DecodeError =
  | { kind: 'bad_signature'; detail: string }
  | { kind: 'bad_checksum'; detail: string }
  | { kind: 'bad_version'; detail: string }
  | { kind: 'short_read'; detail: string };

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: DecodeError };

function checkFrame(buf: Buffer, sig: number, endOffset: number, endSig: number, what: string): DecodeError | null {
  if (buf.length < endOffset + 4) {
    return { kind: 'short_read', detail: `${what}: ${buf.length} bytes, need ${endOffset + 4}` };
  }
  const s = buf.readUInt32LE(0);
  const si = buf.readUInt32LE(4);
  if (s !== sig || si !== sigInv(sig)) {
    return { kind: 'bad_signature', detail: `${what}: signature 0x${s.toString(16)}/0x${si.toString(16)}` };
  }
  const stored = buf.readUInt32LE(8);
  const computed = checksum(buf, endOffset);
  if (stored !== computed) {
    return { kind: 'bad_checksum', detail: `${what}: stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)}` };
  }
  if (buf.readUInt32LE(endOffset) !== endSig) {
    return { kind: 'bad_signature', detail: `${what}: end marker 0x${buf.readUInt32LE(endOffset).toString(16)}` };
  }
  return null;
}

function seal(buf: Buffer, sig: number, endOffset: number, endSig: number): void {
  buf.writeUInt32LE(sig, 0);
  buf.writeUInt32LE(sigInv(sig), 4);
  buf.writeUInt32LE(endSig, endOffset);
  buf.writeUInt32LE(checksum(buf, endOffset), 8);
}

/** The global section as the daemon writes it: 512 bytes (the I/O prefix of its 4 KiB). */
export function encodeGlobal(g: StatefileGlobal, flavour: Flavour = 'xhad'): Buffer {
  const f = FLAVOURS[flavour];
  const buf = Buffer.alloc(GLOBAL_IO_BYTES);
  buf.writeUInt32LE(f.version, 12);
  buf.writeUInt32LE(LENGTH_GLOBAL, 16);
  buf.writeUInt32LE(LENGTH_HOST_SPECIFIC, 20);
  buf.writeUInt32LE(MAX_HOST_NUM, 24);
  packUuid(g.genUuid).copy(buf, 28);
  buf.writeUInt32LE(POOL_STATES.indexOf(g.poolState), 60);
  (g.master === null ? Buffer.from('0'.repeat(UUID_BYTES), 'ascii') : packUuid(g.master)).copy(buf, 64);
  buf.writeUInt32LE(g.configHosts, 96);
  seal(buf, f.sigGlobal, f.globalUsed - 4, f.endMarkerGlobal);
  return buf;
}

/**
 * Validates like xhad's sf_readglobal: signature, checksum, version. The caller checks gen_uuid.
 * A decoder of one flavour refuses the other's section (bad_signature).
 */
export function decodeGlobal(buf: Buffer, flavour: Flavour = 'xhad'): Decoded<StatefileGlobal> {
  const f = FLAVOURS[flavour];
  const err = checkFrame(buf, f.sigGlobal, f.globalUsed - 4, f.endMarkerGlobal, 'global section');
  if (err) return { ok: false, error: err };
  const version = buf.readUInt32LE(12);
  if (version !== f.version) {
    return { ok: false, error: { kind: 'bad_version', detail: `version ${version}, expected ${f.version}` } };
  }
  const state = POOL_STATES[buf.readUInt32LE(60)];
  if (state === undefined) {
    return { ok: false, error: { kind: 'bad_version', detail: `unknown pool_state ${buf.readUInt32LE(60)}` } };
  }
  const genUuid = unpackUuid(buf.subarray(28, 60));
  if (genUuid === null) return { ok: false, error: { kind: 'bad_version', detail: 'gen_uuid is empty' } };
  return {
    ok: true,
    value: { genUuid, poolState: state, master: unpackUuid(buf.subarray(64, 96)), configHosts: buf.readUInt32LE(96) },
  };
}

/** An all-zero slot with a valid frame, as `writestatefile setinit` leaves it. */
export function emptyHostSlot(hostIndex?: number, flavour?: 'xhad'): StatefileHostSlot;
export function emptyHostSlot(hostIndex: number, flavour: 'xenha'): XenhaHostSlot;
export function emptyHostSlot(hostIndex?: number, flavour?: Flavour): StatefileHostSlot | XenhaHostSlot;
export function emptyHostSlot(hostIndex = 0, flavour: Flavour = 'xhad'): StatefileHostSlot | XenhaHostSlot {
  const slot: StatefileHostSlot = {
    sequence: 0,
    hostIndex,
    hostUuid: null,
    excluded: false,
    starting: false,
    sinceLastHbReceiptMs: [],
    sinceLastSfUpdateMs: [],
    sinceXapiRestartFirstAttemptedMs: 0,
    currentLiveset: [],
    proposedLiveset: [],
    hbdomain: [],
    sfdomain: [],
    lockRequest: false,
    lockGrant: [],
    smPhase: 0,
    weight: 0,
  };
  return flavour === 'xenha' ? { ...slot, xenha: { writtenAtMs: 0, intervalMs: 0, homes: [], keyId: XENHA_NO_KEY_ID } } : slot;
}

/**
 * One host slot as the daemon writes it: 1024 bytes (the I/O prefix of its 4 KiB). The 'xenha'
 * flavour needs the slot's `xenha` extension; the 'xhad' flavour ignores one if present.
 */
export function encodeHostSlot(s: StatefileHostSlot, flavour?: 'xhad'): Buffer;
export function encodeHostSlot(s: XenhaHostSlot, flavour: 'xenha'): Buffer;
export function encodeHostSlot(s: StatefileHostSlot | XenhaHostSlot, flavour?: Flavour): Buffer;
export function encodeHostSlot(s: StatefileHostSlot | XenhaHostSlot, flavour: Flavour = 'xhad'): Buffer {
  const f = FLAVOURS[flavour];
  const buf = Buffer.alloc(HOST_IO_BYTES);
  if (s.sinceLastHbReceiptMs.length > MAX_HOST_NUM || s.sinceLastSfUpdateMs.length > MAX_HOST_NUM) {
    throw new Error('more than 64 hosts in a slot array');
  }
  buf.writeUInt32LE(s.sequence >>> 0, 12);
  buf.writeUInt32LE(s.hostIndex, 16);
  if (s.hostUuid !== null) packUuid(s.hostUuid).copy(buf, 20);
  buf.writeUInt32LE(s.excluded ? 1 : 0, 52);
  buf.writeUInt32LE(s.starting ? 1 : 0, 56);
  s.sinceLastHbReceiptMs.forEach((v, j) => buf.writeInt32LE(v, 60 + 4 * j));
  s.sinceLastSfUpdateMs.forEach((v, j) => buf.writeInt32LE(v, 316 + 4 * j));
  buf.writeInt32LE(s.sinceXapiRestartFirstAttemptedMs, 572);
  writeHostmap(buf, 576, s.currentLiveset);
  writeHostmap(buf, 584, s.proposedLiveset);
  writeHostmap(buf, 592, s.hbdomain);
  writeHostmap(buf, 600, s.sfdomain);
  buf.writeUInt32LE(s.lockRequest ? 1 : 0, 608);
  writeHostmap(buf, 612, s.lockGrant);
  buf.writeUInt32LE(s.smPhase, 620);
  buf.writeUInt32LE(s.weight, 624);
  if (flavour === 'xenha') {
    if (!('xenha' in s)) throw new Error('a xenha heartbeat slot needs its xenha extension');
    writeXenhaExtension(buf, s.xenha);
  }
  seal(buf, f.sigHost, f.hostUsed - 4, f.endMarkerHost);
  return buf;
}

function writeXenhaExtension(buf: Buffer, x: XenhaSlotExtension): void {
  if (!Number.isSafeInteger(x.writtenAtMs) || x.writtenAtMs < 0) throw new Error(`writtenAtMs out of range: ${x.writtenAtMs}`);
  if (x.homes.length > XENHA_MAX_HOMES) throw new Error(`more than ${XENHA_MAX_HOMES} management homes: ${x.homes.length}`);
  if (!KEY_ID_RE.test(x.keyId))
    throw new Error(`keyId must be ${2 * XENHA_KEY_ID_BYTES} lower-case hex characters: ${JSON.stringify(x.keyId)}`);
  buf.writeUInt32LE(x.writtenAtMs % 2 ** 32, XENHA_WRITTEN_AT_LO);
  buf.writeUInt32LE(Math.floor(x.writtenAtMs / 2 ** 32), XENHA_WRITTEN_AT_HI);
  buf.writeUInt32LE(x.intervalMs, XENHA_INTERVAL);
  buf.writeUInt32LE(x.homes.length, XENHA_HOMES_COUNT);
  x.homes.forEach((home, k) => writeHostmap(buf, XENHA_HOMES + 8 * k, home));
  buf.write(x.keyId, XENHA_KEY_ID, XENHA_KEY_ID_BYTES, 'hex');
}

/** The extension of a framed xenha slot, or why it cannot be read. Homes past the count are ignored. */
function readXenhaExtension(buf: Buffer): Decoded<XenhaSlotExtension> {
  const hi = buf.readUInt32LE(XENHA_WRITTEN_AT_HI);
  if (hi >= 2 ** 21) {
    return { ok: false, error: { kind: 'bad_version', detail: `written-at high word 0x${hi.toString(16)} beyond 2^53 ms` } };
  }
  const h = buf.readUInt32LE(XENHA_HOMES_COUNT);
  if (h > XENHA_MAX_HOMES) {
    return { ok: false, error: { kind: 'bad_version', detail: `${h} management homes, at most ${XENHA_MAX_HOMES}` } };
  }
  return {
    ok: true,
    value: {
      writtenAtMs: hi * 2 ** 32 + buf.readUInt32LE(XENHA_WRITTEN_AT_LO),
      intervalMs: buf.readUInt32LE(XENHA_INTERVAL),
      homes: Array.from({ length: h }, (_, k) => readHostmap(buf, XENHA_HOMES + 8 * k)),
      keyId: buf.toString('hex', XENHA_KEY_ID, XENHA_KEY_ID + XENHA_KEY_ID_BYTES),
    },
  };
}

/**
 * Decodes one slot; the per-peer arrays are cut to `configHosts` entries (only those are written).
 * A decoder of one flavour refuses the other's slot (bad_signature).
 */
export function decodeHostSlot(buf: Buffer, configHosts: number, flavour?: 'xhad'): Decoded<StatefileHostSlot>;
export function decodeHostSlot(buf: Buffer, configHosts: number, flavour: 'xenha'): Decoded<XenhaHostSlot>;
export function decodeHostSlot(buf: Buffer, configHosts: number, flavour?: Flavour): Decoded<StatefileHostSlot | XenhaHostSlot>;
export function decodeHostSlot(buf: Buffer, configHosts: number, flavour: Flavour = 'xhad'): Decoded<StatefileHostSlot | XenhaHostSlot> {
  const f = FLAVOURS[flavour];
  const err = checkFrame(buf, f.sigHost, f.hostUsed - 4, f.endMarkerHost, 'host slot');
  if (err) return { ok: false, error: err };
  const n = Math.min(Math.max(configHosts, 0), MAX_HOST_NUM);
  const arr = (off: number) => Array.from({ length: n }, (_, j) => buf.readInt32LE(off + 4 * j));
  const value: StatefileHostSlot = {
    sequence: buf.readUInt32LE(12),
    hostIndex: buf.readUInt32LE(16),
    hostUuid: unpackUuid(buf.subarray(20, 52)),
    excluded: buf.readUInt32LE(52) === 1,
    starting: buf.readUInt32LE(56) === 1,
    sinceLastHbReceiptMs: arr(60),
    sinceLastSfUpdateMs: arr(316),
    sinceXapiRestartFirstAttemptedMs: buf.readInt32LE(572),
    currentLiveset: readHostmap(buf, 576),
    proposedLiveset: readHostmap(buf, 584),
    hbdomain: readHostmap(buf, 592),
    sfdomain: readHostmap(buf, 600),
    lockRequest: buf.readUInt32LE(608) === 1,
    lockGrant: readHostmap(buf, 612),
    smPhase: buf.readUInt32LE(620),
    weight: buf.readUInt32LE(624),
  };
  if (flavour !== 'xenha') return { ok: true, value };
  const ext = readXenhaExtension(buf);
  return ext.ok ? { ok: true, value: { ...value, xenha: ext.value } } : ext;
}

export function hostSlotOffset(index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_HOST_NUM) throw new Error(`slot index out of range: ${index}`);
  return LENGTH_GLOBAL + index * LENGTH_HOST_SPECIFIC;
}

/**
 * A whole volume as `ha_set_pool_state init` leaves it: zeros, the global section in INIT with
 * master = 32 × '0', and all 64 slots framed (valid signature and checksum, sequence 0, no owner).
 * The 'xenha' flavour writes its global section ACTIVE (the only pool state xenha-heartbeat writes)
 * and its empty slots with a zero extension.
 */
export function initialVolume(
  genUuid: string,
  configHosts: number,
  volumeBytes = STATEFILE_VOLUME_BYTES,
  flavour: Flavour = 'xhad',
): Buffer {
  if (volumeBytes < LAYOUT_BYTES) throw new Error(`statefile volume too small: ${volumeBytes} < ${LAYOUT_BYTES}`);
  const vol = Buffer.alloc(volumeBytes);
  const poolState: PoolState = flavour === 'xenha' ? 'active' : 'init';
  encodeGlobal({ genUuid, poolState, master: null, configHosts }, flavour).copy(vol, 0);
  const empty = encodeHostSlot(emptyHostSlot(0, flavour), flavour);
  for (let i = 0; i < MAX_HOST_NUM; i++) empty.copy(vol, hostSlotOffset(i));
  return vol;
}

export interface DecodedStatefile<S extends StatefileHostSlot = StatefileHostSlot> {
  global: Decoded<StatefileGlobal>;
  /** Slots 0 .. configHosts-1 (nothing when the global section does not decode). */
  slots: Decoded<S>[];
}

/**
 * Decodes the layout prefix of a volume (at least the global section and the configured slots).
 * With the wrong flavour the global section fails as bad_signature (see detectFlavour).
 */
export function decodeStatefile(buf: Buffer, flavour?: 'xhad'): DecodedStatefile;
export function decodeStatefile(buf: Buffer, flavour: 'xenha'): DecodedStatefile<XenhaHostSlot>;
export function decodeStatefile(buf: Buffer, flavour?: Flavour): DecodedStatefile<StatefileHostSlot | XenhaHostSlot>;
export function decodeStatefile(buf: Buffer, flavour: Flavour = 'xhad'): DecodedStatefile<StatefileHostSlot | XenhaHostSlot> {
  const global = decodeGlobal(buf.subarray(0, GLOBAL_IO_BYTES), flavour);
  if (!global.ok) return { global, slots: [] };
  const n = Math.min(global.value.configHosts, MAX_HOST_NUM);
  const slots: Decoded<StatefileHostSlot | XenhaHostSlot>[] = [];
  for (let i = 0; i < n; i++) {
    const off = hostSlotOffset(i);
    slots.push(decodeHostSlot(buf.subarray(off, off + HOST_IO_BYTES), n, flavour));
  }
  return { global, slots };
}

/**
 * Which daemon's file this is, by the global section's signature and its inverse (not its checksum:
 * decode with the flavour found to validate the rest). null = neither, or shorter than 8 bytes.
 */
export function detectFlavour(buf: Buffer): Flavour | null {
  if (buf.length < 8) return null;
  const sig = buf.readUInt32LE(0);
  const inv = buf.readUInt32LE(4);
  for (const flavour of ['xhad', 'xenha'] as const) {
    const f = FLAVOURS[flavour];
    if (sig === f.sigGlobal && inv === sigInv(f.sigGlobal)) return flavour;
  }
  return null;
}
