/**
 * Each probe through its real I/O, driven as the sampler drives it: a round with `report` and
 * `observe` bound to the probe (its path filled in, only its declared series accepted), collected here
 * into arrays. TCP against real listeners on 127.0.0.1 (and refused loopback addresses), the statefile
 * probe against real files (written with the core codec, or by the simulator), the XAPI probes against
 * snapshots built from pool records. Expected values come from the inputs (the addresses listening,
 * the slots written, the records), never from the probes' own code.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import {
  createProbes,
  PROBES,
  probesConfig,
  type ConfiguredProbe,
  type ProbeRound,
  type StorageHeartbeatKind,
  type XenhaHeartbeatView,
} from '../../plugins/probes/index.ts';
import type { EvidenceSource, PathName } from '../../core/classify/state-machine.ts';
import { buildSnapshot, type PoolSnapshot } from '../../core/model/snapshot.ts';
import { emptyHostSlot, encodeHostSlot, hostSlotOffset, initialVolume, type StatefileHostSlot } from '../../core/statefile/layout.ts';
import { buildPool } from '../../simulator/build.ts';
import { generatePoolSpec, parsePoolSpecYaml, type PoolSpec } from '../../simulator/pool-spec.ts';
import { applyFault } from '../../simulator/faults.ts';
import type { XapiDatabase } from '../../simulator/xapi/database.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { PASSWORD, readSlots, startTestSim } from '../helpers/sim.ts';
import { EXPORTER_PASSWORD_ENV, fastPoolConfig, metricValue } from '../helpers/exporter.ts';
import { waitFor } from '../helpers/wait.ts';
import { preflight, type PreflightResult } from '../../core/preflight.ts';
import { PoolSampler } from '../../exporter/sampler.ts';
import { createRegistry } from '../../exporter/metrics.ts';

const log = pino({ level: 'silent' });

// ------------------------------------------------------------------ the harness

interface Got {
  host: string;
  home: string;
  up: boolean | null;
  detail: string;
  latencySeconds: number | null;
  path: PathName;
  source: EvidenceSource;
  ageMs: number | null;
}

interface Observed {
  series: string;
  host: string;
  value: number;
  labels: Readonly<Record<string, string>>;
}

/** One probe made from its config, as the exporter makes it. */
function probe(config: Record<string, unknown>): ConfiguredProbe {
  const all = createProbes(probesConfig.parse(config), { log });
  expect(all).toHaveLength(1);
  return all[0]!;
}

/** One round of one probe, as the sampler runs it; what it reported, and what it observed. */
async function runRound(
  p: ConfiguredProbe,
  r: { snapshot: PoolSnapshot; xapiConnected?: boolean; xapiUrl?: string; now?: number; timeoutMs?: number },
): Promise<{ samples: Got[]; series: Observed[]; heartbeats: StorageHeartbeatKind[]; xenhaViews: XenhaHeartbeatView[] }> {
  const samples: Got[] = [];
  const series: Observed[] = [];
  const undeclared: string[] = [];
  const heartbeats: StorageHeartbeatKind[] = [];
  const xenhaViews: XenhaHeartbeatView[] = [];
  const ac = new AbortController();
  const timeoutMs = r.timeoutMs ?? 5000;
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  let open = true;
  const round: ProbeRound = {
    snapshot: r.snapshot,
    xapiConnected: r.xapiConnected ?? true,
    xapiUrl: new URL(r.xapiUrl ?? 'http://127.0.0.1:1'),
    now: r.now ?? 0,
    timeoutMs,
    signal: ac.signal,
    report(host, home, up, detail, extra) {
      if (!open) throw new Error(`${p.name} reported after its round ended`);
      samples.push({
        host,
        home,
        up,
        detail,
        latencySeconds: extra?.latencySeconds ?? null,
        path: extra?.path ?? p.path,
        source: extra?.source ?? p.source,
        // As the sampler fills it: an up sample without an age shows life now.
        ageMs: extra?.ageMs !== undefined ? extra.ageMs : up === true ? 0 : null,
      });
    },
    storageHeartbeatRead(read) {
      heartbeats.push(read.kind);
      if (read.kind === 'xenha-heartbeat') xenhaViews.push(read.hosts);
    },
    observe(key, host, value, labels = {}) {
      const def = p.series[key];
      if (!def) undeclared.push(key);
      else series.push({ series: key, host, value, labels });
    },
  };
  try {
    await p.probe.sample(round);
  } finally {
    open = false;
    clearTimeout(timer);
    ac.abort();
  }
  expect(undeclared, `${p.name} observed series it does not declare`).toEqual([]);
  return { samples, series, heartbeats, xenhaViews };
}

const CLASSES = ['pool', 'host', 'host_metrics', 'PIF', 'PBD', 'SR', 'VDI', 'VM', 'VBD'] as const;

/** Copies of every record the snapshot reads, as `<class>.get_all_records` answers. */
function recordsOf(db: XapiDatabase): Record<(typeof CLASSES)[number], Record<string, Record<string, unknown>>> {
  return Object.fromEntries(
    CLASSES.map((cls) => [cls, Object.fromEntries(db.refs(cls).map((r) => [r, db.get(cls, r) as Record<string, unknown>]))]),
  ) as never;
}

const snapshotOf = (records: ReturnType<typeof recordsOf>): PoolSnapshot => buildSnapshot(records);

/** The sample of one host on one home (exactly one). */
function sampleOf(samples: readonly Got[], host: string, home: string): Got {
  const found = samples.filter((s) => s.host === host && s.home === home);
  expect(found, `samples of ${host} on home ${home}`).toHaveLength(1);
  return found[0]!;
}

// ------------------------------------------------------------------ network-tcp

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
});

/** A TCP listener on 127.77.0.1 (closed after the test); counts the connections it accepted. */
async function listen(): Promise<{ port: number; accepted: () => number }> {
  let n = 0;
  const s = createServer((sock) => {
    n++;
    sock.destroy();
  });
  servers.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.77.0.1', () => resolve());
  });
  return { port: (s.address() as AddressInfo).port, accepted: () => n };
}

/** A port nothing listens on: listened on, then closed. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.77.0.1', () => resolve()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('network-tcp', () => {
  // Two hosts with two management homes each, from the simulator's pool builder: host i answers on
  // 127.77.0.(1+i) (home 0) and 127.77.1.(1+i) (home 1), addresses no other test's simulator uses.
  const spec = parsePoolSpecYaml('hosts: [{name: a, memory: 64GiB}, {name: b, memory: 64GiB}]');

  it('is up with a latency where a listener accepts, down with ECONNREFUSED elsewhere, one sample per home', async () => {
    const server = await listen();
    const snapshot = snapshotOf(recordsOf(buildPool(spec, '127.77.0.1').db));
    expect(snapshot.hosts.map((h) => h.homes)).toEqual([
      ['127.77.0.1', '127.77.1.1'],
      ['127.77.0.2', '127.77.1.2'],
    ]);
    const p = probe({ 'network-tcp': {} });
    // The port comes from the XAPI URL when the probe has none of its own.
    const { samples, series } = await runRound(p, { snapshot, xapiUrl: `http://127.77.0.1:${server.port}` });
    expect(samples).toHaveLength(4);
    expect(series).toEqual([]);
    for (const h of snapshot.hosts) {
      h.homes.forEach((addr, i) => {
        const s = sampleOf(samples, h.uuid, String(i));
        expect(s.path).toBe('network');
        if (addr === '127.77.0.1') {
          // The only address with a listener.
          expect(s.up).toBe(true);
          expect(s.detail).toBe(`connected to 127.77.0.1:${server.port}`);
          expect(typeof s.latencySeconds).toBe('number');
          expect(s.latencySeconds!).toBeGreaterThanOrEqual(0);
          expect(s.latencySeconds!).toBeLessThan(5);
        } else {
          expect(s.up).toBe(false);
          expect(s.detail).toBe(`ECONNREFUSED ${addr}:${server.port}`);
          expect(s.latencySeconds).toBeNull();
        }
      });
    }
    expect(server.accepted()).toBeGreaterThanOrEqual(1);
  });

  it("a closed port is down with ECONNREFUSED on every home; the probe's own port wins over the URL's", async () => {
    const closed = await closedPort();
    const snapshot = snapshotOf(recordsOf(buildPool({ ...spec, hosts: spec.hosts.slice(0, 1) }, '127.77.0.1').db));
    const host = snapshot.hosts[0]!;
    const down = await runRound(probe({ 'network-tcp': {} }), { snapshot, xapiUrl: `http://127.77.0.1:${closed}` });
    expect(down.samples.map((s) => [s.host, s.home, s.up, s.latencySeconds]).sort()).toEqual([
      [host.uuid, '0', false, null],
      [host.uuid, '1', false, null],
    ]);
    for (const s of down.samples) expect(s.detail).toMatch(new RegExp(`^ECONNREFUSED 127\\.77\\.[01]\\.1:${closed}$`));

    const server = await listen();
    const up = await runRound(probe({ 'network-tcp': { port: server.port } }), { snapshot, xapiUrl: `http://127.77.0.1:${closed}` });
    expect(sampleOf(up.samples, host.uuid, '0')).toMatchObject({ up: true, detail: `connected to 127.77.0.1:${server.port}` });
    expect(sampleOf(up.samples, host.uuid, '1')).toMatchObject({ up: false, detail: `ECONNREFUSED 127.77.1.1:${server.port}` });
    expect(server.accepted()).toBe(1);
  });
});

// ------------------------------------------------------------------ storage-statefile

const dirs: string[] = [];
const sims: Simulator[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'xenha-probes-'));
  dirs.push(d);
  return d;
}

/**
 * What the probe should say, worked out from what was written: per host, when its slot was first
 * read and when a read last saw its sequence change.
 */
class SlotModel {
  private first = new Map<string, number>();
  private changed = new Map<string, number>();
  private seq = new Map<string, number>();

  constructor(
    private readonly timeoutMs: number,
    private readonly peerTimeoutMs: number,
  ) {}

  /** Records one read at `now` of the slots (host → slot) as they are on disk. */
  read(now: number, slots: ReadonlyMap<string, StatefileHostSlot>): void {
    for (const [host, s] of slots) {
      if (!this.first.has(host)) this.first.set(host, now);
      else if (this.seq.get(host) !== s.sequence) this.changed.set(host, now);
      this.seq.set(host, s.sequence);
    }
  }

  age(host: string, now: number): number {
    const c = this.changed.get(host);
    return c === undefined ? Infinity : now - c;
  }

  up(host: string, now: number): boolean | null {
    if (this.age(host, now) < this.timeoutMs) return true;
    return now - this.first.get(host)! >= this.timeoutMs ? false : null;
  }

  /** The sample's age: the life an up slot shows, how long a down one has been still (since first read if never changing). */
  sampleAge(host: string, now: number): number | null {
    const up = this.up(host, now);
    if (up === null) return null;
    const age = this.age(host, now);
    return Number.isFinite(age) ? age : now - this.first.get(host)!;
  }

  /** How long ago the freshest live peer heard `host` (its ms plus its slot's age), or null. */
  peersAge(host: string, index: number, now: number, slots: ReadonlyMap<string, StatefileHostSlot>): number | null {
    const ages = [...slots]
      .filter(([h]) => h !== host && this.up(h, now) === true)
      .flatMap(([h, s]) => {
        const ms = s.sinceLastHbReceiptMs[index];
        return ms !== undefined && ms >= 0 ? [ms + this.age(h, now)] : [];
      });
    return ages.length > 0 ? Math.min(...ages) : null;
  }

  /**
   * The peers' word on `host`: null without a live peer slot, else whether one of them heard it
   * less than the peer timeout ago (its ms at the host's index, plus its own slot's age).
   */
  peers(host: string, index: number, now: number, slots: ReadonlyMap<string, StatefileHostSlot>): boolean | null {
    const live = [...slots].filter(([h]) => h !== host && this.up(h, now) === true);
    if (live.length === 0) return null;
    return live.some(([h, s]) => {
      const ms = s.sinceLastHbReceiptMs[index];
      return ms !== undefined && ms >= 0 && ms + this.age(h, now) < this.peerTimeoutMs;
    });
  }
}

/** What one host's daemon writes in xenha-heartbeat's file (the test's fault is in these). */
interface XenhaWriter {
  sequence: number;
  /** Per home, the hosts (UUIDs) it heard. */
  heard: string[][];
  keyId: string;
}

/** Writes xenha-heartbeat's file as the daemons would: each host's slot at the rank of its UUID; a host not listed writes nothing. */
function writeXenhaFile(path: string, uuids: readonly string[], writers: ReadonlyMap<string, XenhaWriter>, intervalMs: number): void {
  const index = ranks(uuids);
  const vol = initialVolume('0123abcd-4567-89ab-cdef-0123456789ab', uuids.length, undefined, 'xenha');
  for (const [uuid, w] of writers) {
    const i = index.get(uuid)!;
    encodeHostSlot(
      {
        ...emptyHostSlot(i, 'xenha'),
        sequence: w.sequence,
        hostUuid: uuid,
        weight: 1,
        sinceLastHbReceiptMs: uuids.map(() => 0),
        sinceLastSfUpdateMs: uuids.map(() => 0),
        xenha: { writtenAtMs: 1_700_000_000_000, intervalMs, homes: w.heard.map((h) => h.map((u) => index.get(u)!)), keyId: w.keyId },
      },
      'xenha',
    ).copy(vol, hostSlotOffset(i));
  }
  writeFileSync(path, vol);
}

/** The three xenha-heartbeat checks of a preflight, by name. */
const xenhaChecks = (results: readonly PreflightResult[]) =>
  Object.fromEntries(results.filter((r) => r.check.startsWith('xenha_heartbeat_')).map((r) => [r.check, { ok: r.ok, reason: r.reason }]));

/** Slot index of each host UUID: the rank of its UUID without dashes, lower-cased, lowest first. */
function ranks(uuids: readonly string[]): Map<string, number> {
  const key = (u: string) => u.replace(/-/g, '').toLowerCase();
  const sorted = [...uuids].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return new Map(sorted.map((u, i) => [u, i]));
}

describe('storage-statefile', () => {
  const spec: PoolSpec = generatePoolSpec({ hosts: 3, vms: 0, seed: 5 });
  const T = 1000;
  const P = 600;

  it("reads a statefile written with the core codec: slots advancing, stalled, never moving; the peers' word; its series", async () => {
    const snapshot = snapshotOf(recordsOf(buildPool(spec, '127.0.0.1').db));
    const uuids = snapshot.hosts.map((h) => h.uuid);
    const index = ranks(uuids);
    const byIndex = [...index.keys()]; // host UUID by slot index
    const file = join(tempDir(), 'statefile.img');
    const gen = '0123abcd-4567-89ab-cdef-0123456789ab';

    // Per round: each host's sequence, the ms since it heard each peer (by index), its hbdomain and sfdomain.
    const rounds: { now: number; seq: number[]; hb: number[][] }[] = [
      {
        now: 10_000,
        seq: [5, 5, 5],
        hb: [
          [0, 100, 200],
          [150, 0, 700],
          [0, 0, 0],
        ],
      },
      {
        now: 10_400,
        seq: [6, 6, 5],
        hb: [
          [0, 100, 200],
          [150, 0, 700],
          [0, 0, 0],
        ],
      },
      {
        now: 11_000,
        seq: [7, 6, 5],
        hb: [
          [0, 100, 700],
          [150, 0, 700],
          [0, 0, 0],
        ],
      },
      {
        now: 11_400,
        seq: [7, 6, 5],
        hb: [
          [0, 100, 700],
          [150, 0, 700],
          [0, 0, 0],
        ],
      },
    ];
    const hbdomain = [[0, 1, 2], [0, 1], [2]];
    const sfdomain = [[0, 1], [0, 1, 2], []];
    const p = probe({
      'storage-statefile': {
        devices: [{ home: 'lun-a', path: file }],
        readMode: 'buffered',
        stallAfterMs: T,
        peerHeartbeatTimeoutMs: P,
      },
    });
    const model = new SlotModel(T, P);
    const seen = { up: 0, down: 0, unknown: 0, peersUp: 0, peersDown: 0, peersUnknown: 0 };
    for (const r of rounds) {
      const vol = initialVolume(gen, 3);
      const slots = new Map<string, StatefileHostSlot>();
      byIndex.forEach((uuid, i) => {
        const s: StatefileHostSlot = {
          sequence: r.seq[i]!,
          hostIndex: i,
          hostUuid: uuid,
          excluded: false,
          starting: false,
          sinceLastHbReceiptMs: r.hb[i]!,
          sinceLastSfUpdateMs: [0, 0, 0],
          sinceXapiRestartFirstAttemptedMs: -1,
          currentLiveset: hbdomain[i]!,
          proposedLiveset: hbdomain[i]!,
          hbdomain: hbdomain[i]!,
          sfdomain: sfdomain[i]!,
          lockRequest: false,
          lockGrant: [],
          smPhase: 1,
          weight: 1,
        };
        slots.set(uuid, s);
        encodeHostSlot(s).copy(vol, hostSlotOffset(i));
      });
      writeFileSync(file, vol);
      model.read(r.now, slots);

      const { samples, series } = await runRound(p, { snapshot, now: r.now });
      expect(samples).toHaveLength(2 * uuids.length);
      for (const h of uuids) {
        const want = model.up(h, r.now);
        const s = sampleOf(samples, h, 'lun-a');
        expect(s, `${h} at ${r.now}`).toMatchObject({ up: want, path: 'storage', source: 'statefile', ageMs: model.sampleAge(h, r.now) });
        expect(s.detail).toContain(`sequence ${slots.get(h)!.sequence}`);
        if (want === true) expect(s.latencySeconds).toBeGreaterThanOrEqual(0);
        else expect(s.latencySeconds).toBeNull();
        seen[want === true ? 'up' : want === false ? 'down' : 'unknown']++;

        const peers = model.peers(h, index.get(h)!, r.now, slots);
        expect(sampleOf(samples, h, 'peers'), `peers of ${h} at ${r.now}`).toMatchObject({
          up: peers,
          path: 'network',
          latencySeconds: null,
          source: 'statefile',
          ageMs: peers === null ? null : model.peersAge(h, index.get(h)!, r.now, slots),
        });
        seen[peers === true ? 'peersUp' : peers === false ? 'peersDown' : 'peersUnknown']++;
      }
      // Its declared series: the sequence as written, and how many peers the slot says it sees.
      const expected = byIndex.flatMap((h, i): Observed[] => [
        { series: 'sequence', host: h, value: r.seq[i]!, labels: {} },
        { series: 'peers', host: h, value: hbdomain[i]!.length, labels: { domain: 'network' } },
        { series: 'peers', host: h, value: sfdomain[i]!.length, labels: { domain: 'storage' } },
      ]);
      const key = (o: Observed) => `${o.series}/${o.host}/${JSON.stringify(o.labels)}`;
      expect([...series].sort((a, b) => key(a).localeCompare(key(b)))).toEqual(expected.sort((a, b) => key(a).localeCompare(key(b))));
    }
    // The rounds cover every verdict, so none of the checks above is vacuous.
    expect(
      Object.values(seen).every((n) => n > 0),
      JSON.stringify(seen),
    ).toBe(true);
  });

  it('a device it cannot read says "cannot tell" on that home, every host; the other device still answers', async () => {
    const snapshot = snapshotOf(recordsOf(buildPool(spec, '127.0.0.1').db));
    const dir = tempDir();
    const good = join(dir, 'statefile.img');
    const missing = join(dir, 'no-such-statefile.img');
    const index = ranks(snapshot.hosts.map((h) => h.uuid));
    const vol = initialVolume('0123abcd-4567-89ab-cdef-0123456789ab', 3);
    for (const [uuid, i] of index) {
      encodeHostSlot({
        ...emptyHostSlot(i),
        sequence: 1,
        hostUuid: uuid,
        sinceLastHbReceiptMs: [0, 0, 0],
        sinceLastSfUpdateMs: [0, 0, 0],
        sinceXapiRestartFirstAttemptedMs: -1,
        smPhase: 1,
        weight: 1,
      }).copy(vol, hostSlotOffset(i));
    }
    writeFileSync(good, vol);

    const onlyMissing = await runRound(
      probe({ 'storage-statefile': { devices: [{ home: '0', path: missing }], readMode: 'buffered', stallAfterMs: T } }),
      { snapshot },
    );
    const onHome = onlyMissing.samples.filter((s) => s.home === '0');
    expect(onHome.map((s) => s.host).sort()).toEqual(snapshot.hosts.map((h) => h.uuid).sort());
    for (const s of onHome) {
      expect(s.up).toBeNull();
      expect(s.detail).toContain(`cannot read ${missing}`);
      expect(s.detail).toContain('ENOENT');
    }
    // No slot read: no series, and no peer to vouch for anyone.
    expect(onlyMissing.series).toEqual([]);
    for (const s of onlyMissing.samples.filter((x) => x.home === 'peers')) expect(s.up).toBeNull();

    const both = probe({
      'storage-statefile': {
        devices: [
          { home: 'a', path: good },
          { home: 'b', path: missing },
        ],
        readMode: 'buffered',
        stallAfterMs: T,
      },
    });
    await runRound(both, { snapshot, now: 0 });
    // Rewritten with every sequence advanced, read T / 2 later: up on the readable device only.
    for (const [uuid, i] of index) {
      encodeHostSlot({
        ...emptyHostSlot(i),
        sequence: 2,
        hostUuid: uuid,
        sinceLastHbReceiptMs: [0, 0, 0],
        sinceLastSfUpdateMs: [0, 0, 0],
        sinceXapiRestartFirstAttemptedMs: -1,
        smPhase: 1,
        weight: 1,
      }).copy(vol, hostSlotOffset(i));
    }
    writeFileSync(good, vol);
    const r = await runRound(both, { snapshot, now: T / 2 });
    for (const h of snapshot.hosts) {
      expect(sampleOf(r.samples, h.uuid, 'a').up).toBe(true);
      expect(sampleOf(r.samples, h.uuid, 'b')).toMatchObject({ up: null, detail: expect.stringContaining('cannot read') });
    }
  });

  it('with HA off says "cannot tell" for every host on every home, whatever the file holds', async () => {
    const snapshot = snapshotOf(recordsOf(buildPool({ ...spec, haEnabled: false }, '127.0.0.1').db));
    const file = join(tempDir(), 'statefile.img');
    const vol = initialVolume('0123abcd-4567-89ab-cdef-0123456789ab', 3);
    // Slots as an HA pool had written them: with HA off no xhad writes, so they say nothing now.
    for (const [uuid, i] of ranks(snapshot.hosts.map((h) => h.uuid)))
      encodeHostSlot({ ...emptyHostSlot(i), sequence: 9, hostUuid: uuid, smPhase: 1, weight: 1 }).copy(vol, hostSlotOffset(i));
    writeFileSync(file, vol);
    const p = probe({ 'storage-statefile': { devices: [{ home: '0', path: file }], readMode: 'buffered', stallAfterMs: T } });
    for (const now of [0, 10 * T]) {
      const { samples, series } = await runRound(p, { snapshot, now });
      expect(samples).toHaveLength(2 * snapshot.hosts.length);
      for (const x of samples) expect(x).toMatchObject({ up: null, detail: expect.stringMatching(/^HA is off/) });
      expect(series).toEqual([]);
    }
    // And no storage heartbeat is said to be read.
    expect((await runRound(p, { snapshot, now: 20 * T })).heartbeats).toEqual([]);
  });

  it("with HA off reads xenha-heartbeat's file (its own signature) as a storage heartbeat, stalled after 3 of the intervals its slots say", async () => {
    const snapshot = snapshotOf(recordsOf(buildPool({ ...spec, haEnabled: false }, '127.0.0.1').db));
    const file = join(tempDir(), 'heartbeat.img');
    const INTERVAL = 500; // what the daemon says it writes at: stalled after 3 × 500 ms
    const index = ranks(snapshot.hosts.map((h) => h.uuid));
    const write = (seqOf: (uuid: string) => number, at: number) => {
      const vol = initialVolume('0123abcd-4567-89ab-cdef-0123456789ab', 3, undefined, 'xenha');
      for (const [uuid, i] of index)
        encodeHostSlot(
          {
            ...emptyHostSlot(i, 'xenha'),
            sequence: seqOf(uuid),
            hostUuid: uuid,
            weight: 1,
            sinceLastHbReceiptMs: [0, 0, 0],
            sinceLastSfUpdateMs: [0, 0, 0],
            xenha: {
              writtenAtMs: at,
              intervalMs: INTERVAL,
              homes: [
                [0, 1, 2],
                [0, 1, 2],
              ],
              keyId: '00112233aabbccdd',
            },
          },
          'xenha',
        ).copy(vol, hostSlotOffset(i));
      writeFileSync(file, vol);
    };
    const [first, second] = [...index.keys()];
    const p = probe({ 'storage-statefile': { devices: [{ home: '0', path: file }], readMode: 'buffered' } });
    write(() => 1, 0);
    const r0 = await runRound(p, { snapshot, now: 0 });
    expect(r0.heartbeats).toEqual(['xenha-heartbeat']);
    // Every host advances at 400 ms; then only the first one: the second is still 3 intervals later.
    write(() => 2, 400);
    expect(sampleOf((await runRound(p, { snapshot, now: 400 })).samples, second!, '0').up).toBe(true);
    write((u) => (u === first ? 3 : 2), 1800);
    const late = await runRound(p, { snapshot, now: 400 + 3 * INTERVAL });
    expect(sampleOf(late.samples, first!, '0')).toMatchObject({ up: true, source: 'statefile' });
    expect(sampleOf(late.samples, second!, '0')).toMatchObject({
      up: false,
      ageMs: 3 * INTERVAL,
      detail: expect.stringContaining('stalled after 1.5 s'),
    });
    // The peers' word on the network path, read from the slots as for xhad's statefile.
    expect(sampleOf(late.samples, second!, 'peers')).toMatchObject({ up: true, path: 'network' });
    expect(late.heartbeats).toEqual(['xenha-heartbeat']);
  });

  it("summarises xenha-heartbeat's file for the preflight: who writes, who hears whom on which home, one pool secret", async () => {
    const snapshot = snapshotOf(recordsOf(buildPool({ ...spec, haEnabled: false }, '127.0.0.1').db));
    const file = join(tempDir(), 'heartbeat.img');
    const INTERVAL = 500; // stalled after 3 × 500 ms
    const [h1, h2, h3] = snapshot.hosts;
    const uuids = snapshot.hosts.map((h) => h.uuid);
    const [K1, K2] = ['00112233aabbccdd', '99887766aabbccdd'];
    // The fault: h3's daemon writes once, then stops; h1 does not hear h2 on home 1.
    const writers = (seq: number, h3seq: number, keyOf: (u: string) => string = () => K1) =>
      new Map(
        snapshot.hosts.map((h) => [
          h.uuid,
          {
            sequence: h === h3 ? h3seq : seq,
            heard: [uuids, h === h1 ? uuids.filter((u) => u !== h2!.uuid) : uuids],
            keyId: keyOf(h.uuid),
          },
        ]),
      );
    const p = probe({ 'storage-statefile': { devices: [{ home: '0', path: file }], readMode: 'buffered' } });
    const MONITOR = { storageHeartbeatProbes: ['storage-statefile'] };
    const checksAt = async (now: number) => {
      const r = await runRound(p, { snapshot, now });
      expect(r.heartbeats).toEqual(['xenha-heartbeat']);
      expect(r.xenhaViews).toHaveLength(1);
      return {
        view: r.xenhaViews[0]!,
        checks: xenhaChecks(preflight(snapshot, MONITOR, { kind: 'xenha-heartbeat', hosts: r.xenhaViews[0]! })),
      };
    };
    writeXenhaFile(file, uuids, writers(1, 1), INTERVAL);
    const first = await checksAt(0);
    // First sight: nobody is seen advancing yet, so nobody is compared.
    for (const u of uuids) expect(first.view[u]).toMatchObject({ writing: false, homes: 2, keyId: K1 });
    expect(first.checks.xenha_heartbeat_written_all_hosts).toEqual({
      ok: false,
      reason: `not writing xenha-heartbeat's file: ${snapshot.hosts.map((h) => `${h.name} (not seen advancing yet: watched for less than the stall window)`).join(', ')}`,
    });
    writeXenhaFile(file, uuids, writers(2, 1), INTERVAL);
    await checksAt(400);
    writeXenhaFile(file, uuids, writers(3, 1), INTERVAL);
    // 1.6 s after h3's slot was first read unchanged: stalled (after 1.5 s), for 1.6 s.
    const late = await checksAt(1600);
    expect(late.view[h1!.uuid]).toEqual({
      writing: true,
      homes: 2,
      heardOnHome: [uuids, uuids.filter((u) => u !== h2!.uuid)].map((home) =>
        [...home].sort((a, b) => ranks(uuids).get(a)! - ranks(uuids).get(b)!),
      ),
      keyId: K1,
    });
    expect(late.view[h3!.uuid]).toMatchObject({ writing: false, stalledForMs: 1600 });
    expect(late.checks).toEqual({
      xenha_heartbeat_written_all_hosts: { ok: false, reason: `not writing xenha-heartbeat's file: ${h3!.name} (stalled for 1.6 s)` },
      xenha_heartbeat_heard_all_homes: { ok: false, reason: `${h1!.name} does not hear ${h2!.name} on home 1` },
      xenha_heartbeat_secret_consistent: { ok: true, reason: 'one pool secret (key id 00112233…) on the 2 writing host(s)' },
    });
    // h3 writes again, with another secret: h3 alone in its group.
    writeXenhaFile(
      file,
      uuids,
      writers(4, 2, (u) => (u === h3!.uuid ? K2 : K1)),
      INTERVAL,
    );
    const keys = await checksAt(1800);
    expect(keys.checks.xenha_heartbeat_written_all_hosts!.ok).toBe(true);
    expect(keys.checks.xenha_heartbeat_secret_consistent).toEqual({
      ok: false,
      reason: `different pool secrets (key ids): ${h1!.name}, ${h2!.name}: 00112233…; ${h3!.name}: 99887766…`,
    });
  });

  it("the sampler hands xenha-heartbeat's summary to the preflight: its checks reach the pool's state and the metric", async () => {
    process.env[EXPORTER_PASSWORD_ENV] = PASSWORD;
    const sim = await startTestSim({ spec: { ...generatePoolSpec({ hosts: 3, vms: 0, seed: 12 }), haEnabled: false }, autoTick: false });
    sims.push(sim);
    const file = join(tempDir(), 'heartbeat.img');
    const INTERVAL = 500;
    let t = 10_000;
    const p = probe({ 'storage-statefile': { devices: [{ home: '0', path: file }], readMode: 'buffered' } });
    // Rounds driven by the test (never started): a probe timeout no busy machine reaches.
    const timing = {
      sampleInterval: '10s',
      probeTimeout: '5s',
      xapiTimeout: '2s',
      deadAfter: '30s',
      flapWindow: '60s',
      flapThreshold: 6,
      confirmSamples: 2,
      capacityInterval: '500ms',
    };
    const s = new PoolSampler(fastPoolConfig(sim, { timing }), log, () => t, [p]);
    try {
      s.connection.start();
      const snapshot = await waitFor('the first pool snapshot', () => s.connection.snapshot() ?? undefined);
      expect(snapshot.haEnabled).toBe(false);
      const [h1, h2, h3] = snapshot.hosts;
      const uuids = snapshot.hosts.map((h) => h.uuid);
      // The fault: h2 stops writing after its first slot; h3 does not hear h1 on home 0.
      const writers = (seq: number) =>
        new Map(
          snapshot.hosts.map((h) => [
            h.uuid,
            { sequence: h === h2 ? 1 : seq, heard: [h === h3 ? uuids.filter((u) => u !== h1!.uuid) : uuids], keyId: '0123456789abcdef' },
          ]),
        );
      // The preflight of a round is computed from what the probe read the round before.
      writeXenhaFile(file, uuids, writers(1), INTERVAL);
      await s.round();
      expect(xenhaChecks(s.state.preflight).xenha_heartbeat_written_all_hosts).toEqual({
        ok: true,
        reason: 'does not apply: no xenha-heartbeat file read (see storage_heartbeat)',
      });
      t += 400;
      writeXenhaFile(file, uuids, writers(2), INTERVAL);
      await s.round();
      t += 1600;
      writeXenhaFile(file, uuids, writers(3), INTERVAL);
      await s.round(); // h2 first read 2.0 s ago, never changed: stalled
      t += 100;
      await s.round();
      expect(s.state.storageHeartbeat).toMatchObject({ ok: true });
      expect(xenhaChecks(s.state.preflight)).toEqual({
        xenha_heartbeat_written_all_hosts: { ok: false, reason: `not writing xenha-heartbeat's file: ${h2!.name} (stalled for 2.0 s)` },
        xenha_heartbeat_heard_all_homes: { ok: false, reason: `${h3!.name} does not hear ${h1!.name} on home 0` },
        xenha_heartbeat_secret_consistent: { ok: true, reason: 'one pool secret (key id 01234567…) on the 2 writing host(s)' },
      });
      const text = await createRegistry([s], () => 0, false).metrics();
      const metric = (check: string) => metricValue(text, 'xenha_preflight_check', { pool: 'sim', check });
      expect(metric('xenha_heartbeat_written_all_hosts')).toBe(0);
      expect(metric('xenha_heartbeat_heard_all_homes')).toBe(0);
      expect(metric('xenha_heartbeat_secret_consistent')).toBe(1);
      expect(metric('storage_heartbeat')).toBe(1);
    } finally {
      await s.stop();
    }
  });

  it("reads the simulator's statefile: a crashed host's slot stops and goes down after the timeout, its peers stop hearing it", async () => {
    let t = 5_000_000;
    const sim = await startTestSim({ spec: generatePoolSpec({ hosts: 3, vms: 0, seed: 11 }), autoTick: false, now: () => t });
    sims.push(sim);
    const snapshot = snapshotOf(recordsOf(sim.pool.built.db));
    const path = sim.info().statefile;
    const interval = sim.pool.timing.statefileIntervalMs;
    const timeout = 4 * interval;
    const peerTimeout = 3 * interval;
    const p = probe({
      'storage-statefile': {
        devices: [{ home: '0', path }],
        readMode: 'buffered',
        stallAfterMs: timeout,
        peerHeartbeatTimeoutMs: peerTimeout,
      },
    });
    const model = new SlotModel(timeout, peerTimeout);
    const victim = sim.pool.host('host-02');
    const verdicts: { now: number; up: boolean | null; peers: boolean | null }[] = [];
    for (let round = 0; round < 24; round++) {
      if (round === 8) applyFault(sim.pool, { kind: 'host-crash', host: 'host-02' });
      t += interval / 2;
      await sim.step(t);
      const slots = new Map(
        readSlots(path)
          .filter((s) => s.hostUuid !== null)
          .map((s) => [s.hostUuid!, s]),
      );
      model.read(t, slots);
      const { samples, series } = await runRound(p, { snapshot, now: t });
      for (const h of sim.pool.hosts) {
        const uuid = h.built.uuid;
        const up = model.up(uuid, t);
        const peers = model.peers(uuid, h.slot, t, slots);
        expect(sampleOf(samples, uuid, '0').up, `${h.built.name} at round ${round}`).toBe(up);
        expect(sampleOf(samples, uuid, 'peers').up, `${h.built.name}'s peers at round ${round}`).toBe(peers);
        expect(series.find((o) => o.series === 'sequence' && o.host === uuid)?.value).toBe(slots.get(uuid)!.sequence);
        if (h === victim) verdicts.push({ now: t, up, peers });
      }
    }
    // The scenario did what it says: the victim was up and heard before the crash, down and unheard at the end.
    expect(verdicts[6]).toMatchObject({ up: true, peers: true });
    expect(verdicts.at(-1)).toMatchObject({ up: false, peers: false });
    for (const other of ['host-01', 'host-03']) expect(model.up(sim.pool.host(other).built.uuid, t)).toBe(true);
  });
});

// ------------------------------------------------------------------ network-xapi and storage-xapi

/** What the records say, read straight from them (not through the snapshot). */
function recordView(rec: ReturnType<typeof recordsOf>) {
  const pool = Object.values(rec.pool)[0]!;
  const haEnabled = pool.ha_enabled === true;
  const statefileVdi = (pool.ha_statefiles as string[])[0] ?? Object.entries(rec.VDI).find(([, v]) => v.type === 'ha_statefile')?.[0];
  const hbSr = statefileVdi ? (rec.VDI[statefileVdi]!.SR as string) : undefined;
  const hosts = Object.entries(rec.host).map(([ref, h]) => {
    const live = rec.host_metrics[h.metrics as string]!.live as boolean;
    const pbd = Object.values(rec.PBD).find((x) => x.SR === hbSr && x.host === ref);
    const legs = pbd
      ? /^\[(\d+), (\d+)\]$/.exec(
          (pbd.other_config as Record<string, string>)[`mpath-${(pbd.device_config as Record<string, string>).SCSIid}`] ?? '',
        )
      : null;
    return {
      ref,
      uuid: h.uuid as string,
      live,
      peers: h.ha_network_peers as string[],
      statefiles: h.ha_statefiles as string[],
      pbd: pbd
        ? { attached: pbd.currently_attached as boolean, legs: legs ? { active: Number(legs[1]), total: Number(legs[2]) } : null }
        : null,
    };
  });
  return { haEnabled, master: pool.master as string, hosts };
}

/** The samples network-xapi should give, from the records: the master's word, then the peers'. */
function expectedNetwork(rec: ReturnType<typeof recordsOf>) {
  const v = recordView(rec);
  return v.hosts.flatMap((h) => {
    const listeners = v.hosts.filter((o) => o.ref !== h.ref && o.live);
    return [
      { host: h.uuid, home: 'master', up: h.live },
      { host: h.uuid, home: 'ha-peers', up: v.haEnabled && listeners.length > 0 ? listeners.some((o) => o.peers.includes(h.uuid)) : null },
    ];
  });
}

/**
 * The samples storage-xapi should give, from the records: the master's ha_statefiles; the host's own
 * PBD and legs only while the master hears it (else cannot tell: a dead host's report is frozen).
 */
function expectedStorage(rec: ReturnType<typeof recordsOf>) {
  const v = recordView(rec);
  return v.hosts.flatMap((h) => [
    ...(v.haEnabled ? [{ host: h.uuid, home: 'statefile', up: h.statefiles.length > 0, source: 'master' }] : []),
    ...(h.pbd === null
      ? []
      : h.pbd.legs === null
        ? [{ host: h.uuid, home: 'pbd', up: h.live ? h.pbd.attached : null, source: 'host' }]
        : Array.from({ length: h.pbd.legs.total }, (_, i) => ({
            host: h.uuid,
            home: `leg-${i}`,
            up: h.live ? h.pbd!.attached && i < h.pbd!.legs!.active : null,
            source: 'host',
          }))),
  ]);
}

const bare = (samples: readonly Got[]) => samples.map(({ host, home, up }) => ({ host, home, up }));
const withSource = (samples: readonly Got[]) => samples.map(({ host, home, up, source }) => ({ host, home, up, source }));
const sorted = <T extends { host: string; home: string }>(xs: T[]) =>
  [...xs].sort((a, b) => `${a.host}/${a.home}`.localeCompare(`${b.host}/${b.home}`));

describe('network-xapi and storage-xapi', () => {
  it("say what the simulator's records say after faults: a crashed host, a lost leg, a network cut", async () => {
    let t = 7_000_000;
    const sim = await startTestSim({ spec: generatePoolSpec({ hosts: 4, vms: 0, seed: 3 }), autoTick: false, now: () => t });
    sims.push(sim);
    const step = async (n: number) => {
      for (let i = 0; i < n; i++) {
        t += sim.pool.timing.tickMs;
        await sim.step(t);
      }
    };
    await step(3);
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-04' });
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-02', homes: [1] });
    applyFault(sim.pool, { kind: 'network-down', host: 'host-03' });
    // The master writes the crashed host dead only when xhad drops it from the liveset and its HA
    // monitor next runs (FAST_TIMING: a few hundred ms): step until it has, at most 100 ticks.
    const live = (name: string) => sim.pool.built.db.peek('host_metrics', sim.pool.host(name).built.metricsRef).live;
    for (let i = 0; i < 100 && live('host-04') !== false; i++) await step(1);
    const rec = recordsOf(sim.pool.built.db);
    const snapshot = snapshotOf(rec);
    const net = await runRound(probe({ 'network-xapi': {} }), { snapshot });
    const sto = await runRound(probe({ 'storage-xapi': {} }), { snapshot });
    expect(sorted(bare(net.samples))).toEqual(sorted(expectedNetwork(rec)));
    expect(sorted(withSource(sto.samples))).toEqual(sorted(expectedStorage(rec)));
    for (const s of net.samples) expect(s).toMatchObject({ path: 'network', source: 'master' });
    // A true from the master is dated by how late its word may be: with HA on, T (the pool's
    // ha_configuration.timeout), xhad's fault handler wait (15 s + the larger of its heartbeat and
    // statefile intervals, 3 s and 2 s here) and xapi's 20 s monitor interval; nothing else has an age.
    const T = Number((Object.values(rec.pool)[0]!.ha_configuration as Record<string, string>).timeout);
    expect(T).toBe(30);
    const lagMs = (T + 15 + 3 + 20) * 1000;
    for (const s of [...net.samples, ...sto.samples]) expect(s.ageMs, `${s.home} ${String(s.up)}`).toBe(s.up === true ? lagMs : null);
    for (const s of sto.samples) expect(s.path).toBe('storage');
    // The faults reached the records the probes read (so the comparison above covers them).
    const v = recordView(rec);
    const byName = (n: string) => v.hosts.find((h) => h.uuid === sim.pool.host(n).built.uuid)!;
    expect(byName('host-04').live).toBe(false);
    expect(byName('host-01').live).toBe(true);
    expect(byName('host-04').statefiles).toEqual([]);
    expect(byName('host-02').pbd?.legs).toEqual({ active: 1, total: 2 });
    // The crashed host's own report is still in the records (xapi keeps it), and counts for nothing.
    expect(byName('host-04').pbd?.attached).toBe(true);
    for (const s of sto.samples.filter((x) => x.host === byName('host-04').uuid && x.home.startsWith('leg-'))) expect(s.up).toBeNull();
    expect(net.samples.some((s) => s.up === false) && net.samples.some((s) => s.up === true)).toBe(true);
    expect(sto.samples.some((s) => s.up === false) && sto.samples.some((s) => s.up === true)).toBe(true);
  });

  it('hand-made records: HA off, a PBD without multipath, a detached PBD; and "cannot tell" without XAPI', async () => {
    const built = buildPool({ ...generatePoolSpec({ hosts: 3, vms: 0, seed: 9 }), haEnabled: false }, '127.0.0.1');
    const rec = recordsOf(built.db);
    const [h1, h2, h3] = built.hosts;
    // h1: host_metrics.live false, heartbeat PBD not multipathed and detached; h2: heartbeat PBD not
    // multipathed; h3: heartbeat PBD (multipathed) detached.
    rec.host_metrics[h1!.metricsRef]!.live = false;
    rec.PBD[h1!.heartbeatPbdRef]!.other_config = {};
    rec.PBD[h1!.heartbeatPbdRef]!.currently_attached = false;
    rec.PBD[h2!.heartbeatPbdRef]!.other_config = { multipathed: 'false' };
    rec.PBD[h3!.heartbeatPbdRef]!.currently_attached = false;
    // Peers as an HA pool would list them (HA is off here, so they must not count).
    for (const h of built.hosts) rec.host[h.ref]!.ha_network_peers = built.hosts.map((x) => x.uuid);
    const snapshot = snapshotOf(rec);
    const net = await runRound(probe({ 'network-xapi': {} }), { snapshot });
    const sto = await runRound(probe({ 'storage-xapi': {} }), { snapshot });
    expect(sorted(bare(net.samples))).toEqual(sorted(expectedNetwork(rec)));
    expect(sorted(withSource(sto.samples))).toEqual(sorted(expectedStorage(rec)));
    expect(sampleOf(net.samples, h1!.uuid, 'master').up).toBe(false);
    // Without HA, live comes from xapi's own heartbeat: true until it is 600 s old (host_assumed_dead_interval).
    expect(sampleOf(net.samples, h2!.uuid, 'master')).toMatchObject({ up: true, ageMs: 600_000 });
    for (const h of built.hosts) expect(sampleOf(net.samples, h.uuid, 'ha-peers').up).toBeNull();
    expect(sto.samples.filter((s) => s.home === 'statefile')).toEqual([]);
    expect(sampleOf(sto.samples, h2!.uuid, 'pbd').up).toBe(true);
    // h1 is not live: its detached PBD is its own last word, frozen: cannot tell.
    expect(sampleOf(sto.samples, h1!.uuid, 'pbd')).toMatchObject({
      up: null,
      detail: expect.stringMatching(/frozen while the master does not hear it/),
    });
    expect(sto.samples.filter((s) => s.host === h3!.uuid).map((s) => s.up)).toEqual([false, false]);

    // The same pool with HA on: the statefile home appears, and the peers count.
    const ha = recordsOf(built.db);
    const poolRef = Object.keys(ha.pool)[0]!;
    ha.pool[poolRef]!.ha_enabled = true;
    ha.host[h1!.ref]!.ha_statefiles = [];
    ha.host[h2!.ref]!.ha_network_peers = [h2!.uuid];
    // h1 hears itself and h2; h2 only itself; h3 is not live, its stale list (h1) must not count.
    ha.host[h1!.ref]!.ha_network_peers = [h1!.uuid, h2!.uuid];
    ha.host[h3!.ref]!.ha_network_peers = [h3!.uuid, h1!.uuid];
    ha.host_metrics[h3!.metricsRef]!.live = false;
    const haSnap = snapshotOf(ha);
    const haNet = await runRound(probe({ 'network-xapi': {} }), { snapshot: haSnap });
    const haSto = await runRound(probe({ 'storage-xapi': {} }), { snapshot: haSnap });
    expect(sorted(bare(haNet.samples))).toEqual(sorted(expectedNetwork(ha)));
    expect(sorted(withSource(haSto.samples))).toEqual(sorted(expectedStorage(ha)));
    expect(sampleOf(haSto.samples, h1!.uuid, 'statefile').up).toBe(false);
    expect(sampleOf(haNet.samples, h2!.uuid, 'ha-peers').up).toBe(true); // h1 lists h2
    expect(sampleOf(haNet.samples, h3!.uuid, 'ha-peers').up).toBe(false);
    expect(sampleOf(haNet.samples, h1!.uuid, 'ha-peers').up).toBe(false);

    // XAPI unreachable: the snapshot is stale, nothing can be told.
    const offNet = await runRound(probe({ 'network-xapi': {} }), { snapshot: haSnap, xapiConnected: false });
    const offSto = await runRound(probe({ 'storage-xapi': {} }), { snapshot: haSnap, xapiConnected: false });
    expect(sorted(bare(offNet.samples))).toEqual(
      sorted(
        built.hosts.flatMap((h) => [
          { host: h.uuid, home: 'master', up: null },
          { host: h.uuid, home: 'ha-peers', up: null },
        ]),
      ),
    );
    expect(sorted(bare(offSto.samples))).toEqual(sorted(built.hosts.map((h) => ({ host: h.uuid, home: 'statefile', up: null }))));
    for (const s of [...offNet.samples.filter((x) => x.home === 'master'), ...offSto.samples])
      expect(s.detail).toBe('XAPI unreachable: cannot tell');
  });
});

// ------------------------------------------------------------------ the probe map

describe('createProbes and probesConfig', () => {
  const names = Object.keys(PROBES);

  it('makes the enabled probes in name order, each with its path and side', () => {
    const config = {
      'storage-xapi': null,
      'network-tcp': null,
      'storage-statefile': { devices: [{ home: '0', path: '/dev/null' }] },
      'network-xapi': {},
    };
    const all = createProbes(probesConfig.parse(config), { log });
    expect(all.map((p) => p.name)).toEqual(Object.keys(config).sort());
    for (const p of all) {
      // The path is the name's first word; only the TCP connect measures the monitor's own reach.
      expect(p.path).toBe(p.name.split('-')[0]);
      expect(p.observerSide).toBe(p.name === 'network-tcp');
      expect(typeof p.probe.sample).toBe('function');
    }
    expect(Object.keys(all.find((p) => p.name === 'storage-statefile')!.series).sort()).toEqual(['peers', 'sequence']);
    const some = createProbes(probesConfig.parse({ 'storage-xapi': {}, 'network-tcp': { port: 443 } }), { log });
    expect(some.map((p) => p.name)).toEqual(['network-tcp', 'storage-xapi']);
    expect(createProbes(probesConfig.parse({}), { log })).toEqual([]);
  });

  it("refuses an unknown probe, naming the ones there are; and a probe's unknown option", () => {
    const r = probesConfig.safeParse({ 'network-ping': {}, 'network-tcp': {} });
    expect(r.success).toBe(false);
    const message = r.error!.issues.map((i) => i.message).join('\n');
    expect(message).toContain('"network-ping"');
    expect(message).toContain(`(available: ${[...names].sort().join(', ')})`);
    expect(names).toEqual(expect.arrayContaining(['network-tcp', 'network-xapi', 'storage-statefile', 'storage-xapi']));
    expect(probesConfig.safeParse({ 'network-tcp': { prot: 443 } }).success).toBe(false);
    expect(
      probesConfig.safeParse({
        'storage-statefile': {
          devices: [
            { home: 'a', path: '/x' },
            { home: 'a', path: '/y' },
          ],
        },
      }).success,
    ).toBe(false);
  });
});
