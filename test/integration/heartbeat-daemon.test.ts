/**
 * xenha-heartbeat (heartbeat/xenha-heartbeat.py), the host-side daemon for pools without XenServer HA, run as
 * real processes on loopback: one daemon per host, home 0 on 127.0.31.x and home 1 on 127.0.32.x (the
 * unwritable-file pool on 127.0.33.x / 127.0.34.x), one temp heartbeat file, a 100 ms interval and a 400 ms
 * peer window. The file is read back with the TypeScript decoder the exporter uses (decodeStatefile 'xenha').
 * Every daemon started is killed in afterAll even when a test fails. Set XENHA_HEARTBEAT_PYTHON to run the
 * daemons under another interpreter (e.g. a real Python 3.6).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeStatefile, LAYOUT_BYTES, type DecodedStatefile, type XenhaHostSlot } from '../../core/statefile/layout.ts';
import { run } from '../helpers/run.ts';
import { waitFor } from '../helpers/wait.ts';

const DAEMON = join(import.meta.dirname, '../../heartbeat/xenha-heartbeat.py');
/** Runs the daemons; the 3.6 grammar check needs ast's feature_version (Python ≥ 3.8): always python3. */
const PYTHON = process.env.XENHA_HEARTBEAT_PYTHON ?? 'python3';
const CHECKER = 'python3';
const POOL = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
const INTERVAL_MS = 100;
const WINDOW_MS = 400;
const SECRET = 'pool-secret-for-tests\n';

/** Top-level modules of Python 3.6's standard library the daemon may import (a subset is enough: anything else fails). */
const PY36_STDLIB = new Set(
  (
    'abc argparse array ast asyncio atexit base64 binascii bisect builtins calendar codecs collections configparser contextlib copy ' +
    'csv ctypes datetime decimal difflib enum errno fcntl fnmatch functools gc getopt getpass glob grp gzip hashlib heapq hmac ' +
    'io ipaddress itertools json logging math mmap operator os pathlib platform pwd queue random re resource secrets select ' +
    'selectors shlex shutil signal socket socketserver stat string struct subprocess sys syslog tempfile textwrap threading time ' +
    'traceback types typing uuid warnings weakref zlib __future__'
  ).split(' '),
);
/** `from __future__ import x` features that exist in Python 3.6. */
const PY36_FUTURE = new Set([
  'nested_scopes',
  'generators',
  'division',
  'absolute_import',
  'with_statement',
  'print_function',
  'unicode_literals',
  'generator_stop',
]);

const procs = new Set<ChildProcess>();
let dir: string;

beforeAll(async () => {
  for (const py of new Set([PYTHON, CHECKER])) {
    const v = await run(py, ['--version']).catch((e: Error) => {
      throw new Error(`${py} is missing (${e.message}): the heartbeat daemon tests need Python 3 (apt-get install python3)`);
    });
    if (v.code !== 0 || !/^Python 3\./.test(v.stdout + v.stderr)) throw new Error(`${py} is not Python 3: ${v.stdout}${v.stderr}`);
  }
  dir = mkdtempSync(join(tmpdir(), 'xenha-hb-'));
});

afterAll(async () => {
  await Promise.all([...procs].map((p) => stopProcess(p, 'SIGKILL')));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Daemon {
  proc: ChildProcess;
  /** Everything the daemon has logged so far. */
  log: () => string;
  exited: Promise<number | null>;
}

function startDaemon(config: string, extra: string[] = []): Daemon {
  const proc = spawn(PYTHON, [DAEMON, '--config', config, '--debug', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.add(proc);
  let log = '';
  proc.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    proc.on('exit', (code) => {
      procs.delete(proc);
      resolve(code);
    }),
  );
  return { proc, log: () => log, exited };
}

async function stopProcess(p: ChildProcess, sig: NodeJS.Signals): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill(sig);
  await done;
}

interface HostDef {
  uuid: string;
  homes: string[];
}

function hostDefs(n: number, subnets: [number, number]): HostDef[] {
  return Array.from({ length: n }, (_, i) => ({
    // Listed in reverse UUID order: the slot index is the rank of the UUID, not the position in the list.
    uuid: `${(0xf0 - 0x10 * i).toString(16)}000000-0000-4000-8000-00000000000${i + 1}`,
    homes: subnets.map((s) => `127.0.${s}.${i + 1}`),
  }));
}

/** Slot index of each host: rank of its UUID, dashes removed, lower-cased, byte order. */
const slotOf = (hosts: HostDef[], uuid: string) =>
  hosts
    .map((h) => h.uuid.replace(/-/g, ''))
    .sort()
    .indexOf(uuid.replace(/-/g, ''));

function writeConfig(name: string, hosts: HostDef[], host: HostDef, file: string, port: number, extra: object = {}): string {
  const path = join(dir, `${name}.json`);
  const cfg = {
    pool: POOL,
    host: host.uuid,
    hosts,
    file,
    port,
    intervalMs: INTERVAL_MS,
    peerWindowMs: WINDOW_MS,
    secretFile: join(dir, 'secret'),
    ...extra,
  };
  writeFileSync(path, JSON.stringify(cfg));
  return path;
}

function writeSecret(): void {
  writeFileSync(join(dir, 'secret'), SECRET, { mode: 0o600 });
  chmodSync(join(dir, 'secret'), 0o600);
}

function newHeartbeatFile(name: string): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(LAYOUT_BYTES));
  return path;
}

function readFile(path: string): DecodedStatefile<XenhaHostSlot> {
  return decodeStatefile(readFileSync(path).subarray(0, LAYOUT_BYTES), 'xenha');
}

/** The slot if it decodes (a read can meet a slot mid-write: callers poll). */
function slot(path: string, index: number): XenhaHostSlot | undefined {
  const s = readFile(path).slots[index];
  return s?.ok ? s.value : undefined;
}

const heardOn = (s: XenhaHostSlot, j: number) => s.xenha.homes.map((h) => h.includes(j));

/**
 * The pool secret's key id as docs/heartbeat.md defines it, computed here with Node's crypto: the first
 * 8 bytes of HMAC-SHA256(secret, "xenha-heartbeat key id v1"), the secret without its trailing newline.
 */
const keyIdOf = (secret: string) =>
  createHmac('sha256', secret.replace(/\r?\n$/, ''))
    .update('xenha-heartbeat key id v1')
    .digest()
    .subarray(0, 8);

/** The 8 raw bytes at offset 676 of slot `index`, read from the file without the decoder. */
const rawKeyId = (path: string, index: number) => readFileSync(path).subarray(4096 + 4096 * index + 676, 4096 + 4096 * index + 684);

// ---- the UDP packet, as docs/heartbeat.md describes it (big-endian, HMAC-SHA256 over the 88-byte head)
const HEAD_BYTES = 88;
const uuidBytes = (u: string) => Buffer.from(u.replace(/-/g, ''), 'hex');
const packetSender = (p: Buffer) => p.subarray(24, 40).toString('hex');
const packetHome = (p: Buffer) => p.readUInt8(5);

function forgePacket(opts: { home: number; sender: string; receiver: string; key: string }): Buffer {
  const head = Buffer.alloc(HEAD_BYTES);
  head.write('xhhb', 0, 'ascii');
  head.writeUInt8(1, 4);
  head.writeUInt8(opts.home, 5);
  uuidBytes(POOL).copy(head, 8);
  uuidBytes(opts.sender).copy(head, 24);
  uuidBytes(opts.receiver).copy(head, 40);
  randomBytes(16).copy(head, 56);
  head.writeBigUInt64BE(1n << 40n, 72);
  head.writeBigUInt64BE(BigInt(Date.now()), 80);
  return Buffer.concat([head, createHmac('sha256', opts.key).update(head).digest()]);
}

function udpSocket(address: string, port: number): Promise<Socket> {
  const s = createSocket('udp4');
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, address, () => resolve(s));
  });
}

const send = (s: Socket, p: Buffer, address: string, port: number) =>
  new Promise<void>((resolve, reject) => s.send(p, port, address, (e) => (e ? reject(e) : resolve())));
const closeSocket = (s: Socket) => new Promise<void>((resolve) => s.close(() => resolve()));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The counters of a daemon's "stopped:" line (logged at exit). */
function stoppedCounters(log: string): Record<string, number> {
  const line = log.split('\n').find((l) => l.includes('stopped: slot='));
  if (line === undefined) throw new Error(`no "stopped:" line in the daemon's log:\n${log}`);
  return Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

describe('Python 3.6 compatibility', () => {
  it('parses with the 3.6 grammar and imports only modules of 3.6 standard library', async () => {
    const parsed = await run(CHECKER, ['-c', 'import ast,sys; ast.parse(open(sys.argv[1]).read(), feature_version=(3,6))', DAEMON]);
    expect(parsed.stderr).toBe('');
    expect(parsed.code).toBe(0);
    const script = [
      'import ast, json, sys',
      'tree = ast.parse(open(sys.argv[1]).read())',
      'mods, future = [], []',
      'for n in ast.walk(tree):',
      '    if isinstance(n, ast.Import): mods += [a.name.split(".")[0] for a in n.names]',
      '    if isinstance(n, ast.ImportFrom):',
      '        mods.append((n.module or "").split(".")[0])',
      '        if n.module == "__future__": future += [a.name for a in n.names]',
      'print(json.dumps({"mods": sorted(set(mods)), "future": future}))',
    ].join('\n');
    const out = await run(CHECKER, ['-c', script, DAEMON]);
    expect(out.code, out.stderr).toBe(0);
    const { mods, future } = JSON.parse(out.stdout) as { mods: string[]; future: string[] };
    expect(mods.length).toBeGreaterThan(5);
    expect(mods.filter((m) => !PY36_STDLIB.has(m))).toEqual([]);
    expect(future.filter((f) => !PY36_FUTURE.has(f))).toEqual([]);
  });
});

describe('xenha-heartbeat on a four-host loopback pool', () => {
  const PORT = 6940;
  // Host 3 (index 3 in the list) is the one whose packets the test captures before its daemon starts.
  const hosts = hostDefs(4, [31, 32]);
  let file: string;
  const daemons: Daemon[] = [];
  const captured: Buffer[] = [];
  const idx = (i: number) => slotOf(hosts, hosts[i]!.uuid);
  const crashed = 2;

  beforeAll(async () => {
    writeSecret();
    file = newHeartbeatFile('pool.hb');
    // Play host 3 on both homes and keep what host `crashed` sends it, to replay later.
    const sockets = await Promise.all(hosts[3]!.homes.map((a) => udpSocket(a, PORT)));
    sockets.forEach((s) => s.on('message', (m: Buffer) => captured.push(m)));
    for (let i = 0; i < 3; i++) daemons[i] = startDaemon(writeConfig(`host${i}`, hosts, hosts[i]!, file, PORT));
    const fromCrashed = () => captured.filter((p) => packetSender(p) === hosts[crashed]!.uuid.replace(/-/g, ''));
    await waitFor('3 packets from the host to crash on each home', () =>
      [0, 1].every((k) => fromCrashed().filter((p) => packetHome(p) === k).length >= 3),
    );
    await Promise.all(sockets.map(closeSocket));
    captured.splice(0, captured.length, ...fromCrashed());
    daemons[3] = startDaemon(writeConfig('host3', hosts, hosts[3]!, file, PORT));
  });

  it('every slot advances and hears every other host on both homes, on the network and on the file', async () => {
    const n = hosts.length;
    await waitFor(
      'every slot to hear every host on both homes and see every slot change',
      () => {
        for (let i = 0; i < n; i++) {
          const s = slot(file, idx(i));
          if (!s) return false;
          for (let j = 0; j < n; j++) {
            if (s.hbdomain.length !== n || s.sfdomain.length !== n) return false;
            if (s.xenha.homes.some((h) => h.length !== n)) return false;
            if (j !== idx(i) && (s.sinceLastHbReceiptMs[j]! < 0 || s.sinceLastSfUpdateMs[j]! < 0)) return false;
          }
        }
        return true;
      },
      { timeoutMs: 15_000 },
    );
    const before = readFile(file);
    expect(before.global).toEqual({ ok: true, value: { genUuid: POOL, poolState: 'active', master: null, configHosts: n } });
    await sleep(3 * INTERVAL_MS + 50);
    const after = readFile(file);
    for (let i = 0; i < n; i++) {
      const s0 = before.slots[idx(i)]!;
      const s1 = after.slots[idx(i)]!;
      if (!s0.ok || !s1.ok) continue; // torn mid-write: the assertions below cover the slot
      const s = s1.value;
      expect(s.hostUuid).toBe(hosts[i]!.uuid);
      expect(s.hostIndex).toBe(idx(i));
      expect((s.sequence - s0.value.sequence) >>> 0).toBeGreaterThanOrEqual(2);
      expect(s.weight).toBe(1);
      expect(s.xenha.intervalMs).toBe(INTERVAL_MS);
      expect(s.xenha.keyId).toBe(keyIdOf(SECRET).toString('hex'));
      expect(Math.abs(s.xenha.writtenAtMs - Date.now())).toBeLessThan(2000);
      expect(s.sinceLastHbReceiptMs[idx(i)]).toBe(0);
      expect(s.sinceLastSfUpdateMs[idx(i)]).toBe(0);
      for (let j = 0; j < n; j++) {
        expect(s.sinceLastHbReceiptMs[j]).toBeGreaterThanOrEqual(0);
        expect(s.sinceLastHbReceiptMs[j]).toBeLessThanOrEqual(WINDOW_MS);
        expect(s.sinceLastSfUpdateMs[j]).toBeLessThanOrEqual(WINDOW_MS);
        expect(heardOn(s, j)).toEqual([true, true]);
      }
    }
  });

  it('a crashed host stops advancing and goes unheard after the window; forged and replayed packets change nothing', async () => {
    const c = idx(crashed);
    const victim = hosts[0]!; // receives forged packets claiming to come from the crashed host
    const replayTo = hosts[3]!; // received the captured packets' originals' successors: they are stale
    const out = await udpSocket('127.0.0.1', 0);
    let forged = 0;
    let replayed = 0;
    const attack = async () => {
      for (const k of [0, 1]) {
        const p = forgePacket({ home: k, sender: hosts[crashed]!.uuid, receiver: victim.uuid, key: 'not-the-pool-secret' });
        await send(out, p, victim.homes[k]!, PORT);
        forged++;
      }
      for (const p of captured) {
        await send(out, p, replayTo.homes[packetHome(p)]!, PORT);
        replayed++;
      }
    };
    try {
      await attack(); // while the host is still alive: stale sequence numbers
      const crashedAt = Date.now();
      await stopProcess(daemons[crashed]!.proc, 'SIGKILL');
      const last = slot(file, c)?.sequence;
      // Keep forging and replaying for twice the window.
      while (Date.now() - crashedAt < 2 * WINDOW_MS + 200) {
        await attack();
        await sleep(INTERVAL_MS / 2);
      }
      expect(slot(file, c)?.sequence).toBe(last);
      await waitFor('the others to have dropped the crashed host', () =>
        [0, 1, 3].every((i) => {
          const s = slot(file, idx(i));
          return s && s.sinceLastHbReceiptMs[c]! > WINDOW_MS && s.sinceLastSfUpdateMs[c]! > WINDOW_MS;
        }),
      );
      for (const i of [0, 1, 3]) {
        const s = slot(file, idx(i))!;
        expect(s.hbdomain).not.toContain(c);
        expect(s.sfdomain).not.toContain(c);
        expect(heardOn(s, c)).toEqual([false, false]);
        for (const j of [0, 1, 3]) expect(heardOn(s, idx(j)), `slot ${idx(i)} hears slot ${idx(j)}`).toEqual([true, true]);
      }
    } finally {
      await closeSocket(out);
    }
    expect(forged).toBeGreaterThan(4);
    expect(replayed).toBeGreaterThan(10);
    // SIGTERM: each stops within one interval, exits 0, and its last line gives the drop counters.
    for (const i of [0, 1, 3]) {
      const t0 = Date.now();
      await stopProcess(daemons[i]!.proc, 'SIGTERM');
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(await daemons[i]!.exited).toBe(0);
    }
    const victimCounters = stoppedCounters(daemons[0]!.log());
    expect(victimCounters.bad_hmac).toBe(forged);
    expect(daemons[0]!.log()).toContain('dropped packet (bad_hmac)');
    const replayCounters = stoppedCounters(daemons[3]!.log());
    expect(replayCounters.replay).toBe(replayed);
    expect(daemons[3]!.log()).toContain('dropped packet (replay)');
    for (const i of [0, 1, 3]) expect(stoppedCounters(daemons[i]!.log()).write_errors).toBe(0);
  });
});

describe('xenha-heartbeat when its heartbeat file cannot be written', () => {
  it('logs the failure once, keeps sending UDP heartbeats (its peer still hears it), and writes again once it can', async () => {
    const PORT = 6941;
    writeSecret();
    const hosts = hostDefs(2, [33, 34]);
    const good = newHeartbeatFile('good.hb');
    const own = newHeartbeatFile('readonly.hb'); // the second host's file: made unwritable while it runs
    const a = startDaemon(writeConfig('ro-a', hosts, hosts[0]!, good, PORT));
    const b = startDaemon(writeConfig('ro-b', hosts, hosts[1]!, own, PORT));
    const ia = slotOf(hosts, hosts[0]!.uuid);
    const ib = slotOf(hosts, hosts[1]!.uuid);
    await waitFor('the second host to write its file', () => slot(own, ib)?.hostUuid === hosts[1]!.uuid);
    // The file's path made a directory for a while: opening it for writing fails for root too, on any
    // file system (file modes do not stop root, and chattr +i needs a file system that supports it).
    const away = `${own}.away`;
    const lock = (on: boolean) => {
      if (on) {
        renameSync(own, away);
        mkdirSync(own);
      } else {
        rmdirSync(own);
        renameSync(away, own);
      }
    };
    lock(true);
    let frozen: number | undefined;
    try {
      await waitFor('the failure in the log', () => b.log().includes('cannot open the heartbeat file'));
      frozen = slot(away, ib)!.sequence;
      // Several windows later: the peer hears it on both homes all along, on the network only.
      for (let t = 0; t < 4; t++) {
        await sleep(WINDOW_MS);
        const s = slot(good, ia);
        if (!s) continue;
        expect(heardOn(s, ib)).toEqual([true, true]);
        expect(s.hbdomain).toContain(ib);
        expect(s.sinceLastHbReceiptMs[ib]).toBeLessThanOrEqual(WINDOW_MS);
        expect(s.sinceLastSfUpdateMs[ib]).toBe(-1); // never wrote this file
        expect(s.sfdomain).toEqual([ia]);
      }
      expect(slot(away, ib)!.sequence).toBe(frozen);
      expect(b.proc.exitCode).toBeNull();
      // Logged at error once, then at debug only.
      expect(b.log().match(/error: .*cannot open the heartbeat file/g)).toHaveLength(1);
    } finally {
      lock(false);
    }
    await waitFor('the slot to advance again', () => slot(own, ib)?.sequence !== frozen && b.log().includes('writing again'));
    await Promise.all([stopProcess(a.proc, 'SIGTERM'), stopProcess(b.proc, 'SIGTERM')]);
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
    expect(stoppedCounters(b.log()).write_errors).toBeGreaterThan(3);
    expect(stoppedCounters(b.log()).sent).toBeGreaterThan(20);
  });
});

describe("xenha-heartbeat's pool secret key id", () => {
  const PORT = 6943;
  const hosts = hostDefs(2, [37, 38]);
  const writeKey = (name: string, secret: string) => {
    const path = join(dir, name);
    writeFileSync(path, secret, { mode: 0o600 });
    chmodSync(path, 0o600);
    return path;
  };
  const once = async (host: number, file: string, secretFile: string) => {
    const r = await run(
      PYTHON,
      [DAEMON, '--config', writeConfig(`key${host}`, hosts, hosts[host]!, file, PORT, { secretFile }), '--once'],
      {
        timeoutMs: 10_000,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    return r.stderr;
  };

  it('is the HMAC of the fixed label under the secret, in every slot; two secrets give two key ids', async () => {
    const file = newHeartbeatFile('keys.hb');
    const a = writeKey('key-a.secret', 'alpha-secret');
    const b = writeKey('key-b.secret', 'beta-secret\n');
    const [ia, ib] = [slotOf(hosts, hosts[0]!.uuid), slotOf(hosts, hosts[1]!.uuid)];
    const logA = await once(0, file, a);
    await once(1, file, b);
    const [expectA, expectB] = [keyIdOf('alpha-secret'), keyIdOf('beta-secret')];
    expect(expectA.equals(expectB)).toBe(false);
    // On disk, 8 raw bytes at 676; decoded, their lower-case hex.
    expect(rawKeyId(file, ia).equals(expectA)).toBe(true);
    expect(rawKeyId(file, ib).equals(expectB)).toBe(true);
    expect(slot(file, ia)?.xenha.keyId).toBe(expectA.toString('hex'));
    expect(slot(file, ib)?.xenha.keyId).toBe(expectB.toString('hex'));
    // Logged at start and by --check (the key id only, never the secret).
    expect(logA).toContain(`secret key id ${expectA.toString('hex')}`);
    expect(logA).not.toContain('alpha-secret');
    const check = await run(PYTHON, [DAEMON, '--config', join(dir, 'key1.json'), '--check']);
    expect(check.stderr).toContain(`secret key id ${expectB.toString('hex')}`);
    expect(check.stderr).not.toContain('beta-secret');
    // The same secret on the second host (its file with a trailing newline): the same key id as the first's.
    await once(1, file, writeKey('key-a2.secret', 'alpha-secret\n'));
    expect(rawKeyId(file, ib).equals(expectA)).toBe(true);
  });
});

describe('xenha-heartbeat configuration', () => {
  const hosts = hostDefs(2, [35, 36]);
  const base = () => ({
    pool: POOL,
    host: hosts[0]!.uuid,
    hosts,
    file: join(dir, 'cfg.hb'),
    port: 6942,
    intervalMs: INTERVAL_MS,
    peerWindowMs: WINDOW_MS,
    secretFile: join(dir, 'cfg.secret'),
  });
  const runWith = async (cfg: object) => {
    const path = join(dir, 'cfg.json');
    writeFileSync(path, JSON.stringify(cfg));
    return run(PYTHON, [DAEMON, '--config', path, '--once'], { timeoutMs: 10_000 });
  };

  beforeAll(() => {
    writeFileSync(join(dir, 'cfg.secret'), 'x', { mode: 0o600 });
    chmodSync(join(dir, 'cfg.secret'), 0o600);
    newHeartbeatFile('cfg.hb');
  });

  it('--once with a good config writes the slot and exits 0', async () => {
    const r = await runWith(base());
    expect(r.stderr).toContain('starting: pool');
    expect(r.code).toBe(0);
    const own = slotOf(hosts, hosts[0]!.uuid);
    expect(own).toBe(1); // hosts are listed in reverse UUID order
    const s = slot(join(dir, 'cfg.hb'), own);
    expect(s?.hostUuid).toBe(hosts[0]!.uuid);
    // Indexed by slot: itself 0, the peer never heard (--once does not wait for answers).
    expect(s?.sinceLastHbReceiptMs).toEqual([-1, 0]);
    expect(s?.sinceLastSfUpdateMs).toEqual([-1, 0]);
    expect(s?.hbdomain).toEqual([own]);
  });

  const bad: [string, () => object, RegExp][] = [
    ['missing key', () => ({ ...base(), port: undefined }), /missing config key\(s\): port/],
    ['unknown key', () => ({ ...base(), intervall: 5 }), /unknown config key\(s\): intervall/],
    ['host not in hosts', () => ({ ...base(), host: '12345678-1234-1234-1234-123456789abc' }), /is not in hosts/],
    ['not a UUID', () => ({ ...base(), pool: 'pool-1' }), /pool must be a UUID/],
    [
      'window not longer than the interval',
      () => ({ ...base(), peerWindowMs: INTERVAL_MS }),
      /peerWindowMs \(100\) must be longer than intervalMs/,
    ],
    ['port out of range', () => ({ ...base(), port: 70000 }), /port must be in 1\.\.65535/],
    [
      'five homes',
      () => ({ ...base(), hosts: [{ ...hosts[0]!, homes: ['1.1.1.1', '1.1.1.2', '1.1.1.3', '1.1.1.4', '1.1.1.5'] }, hosts[1]] }),
      /at most 4/,
    ],
    ['not an address', () => ({ ...base(), hosts: [{ ...hosts[0]!, homes: ['host-01'] }, hosts[1]] }), /is not an IP address/],
    [
      'an address twice',
      () => ({ ...base(), hosts: [hosts[0], { ...hosts[1]!, homes: hosts[0]!.homes }] }),
      /address 127\.0\.35\.1 is also hosts\[0\]\.homes\[0\]/,
    ],
    ['a host twice', () => ({ ...base(), hosts: [hosts[0], hosts[0]] }), /is listed twice/],
    ['65 hosts', () => ({ ...base(), hosts: Array.from({ length: 65 }, () => hosts[0]) }), /at most 64/],
    ['relative file', () => ({ ...base(), file: 'hb' }), /file must be an absolute path/],
  ];
  it.each(bad)('%s → exit 2 with a clear message', async (_what, cfg, message) => {
    const r = await runWith(cfg());
    expect(r.stderr).toMatch(/configuration error: /);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
  });

  it('--check validates and exits 0 without touching the file or the network', async () => {
    const path = join(dir, 'check.json');
    writeFileSync(path, JSON.stringify(base()));
    const r = await run(PYTHON, [DAEMON, '--config', path, '--check']);
    expect(r.stderr).toMatch(/config .* is valid: host .* is slot 1 of 2/);
    expect(r.code).toBe(0);
  });

  it('not JSON → exit 2', async () => {
    const path = join(dir, 'broken.json');
    writeFileSync(path, '{"pool": ');
    const r = await run(PYTHON, [DAEMON, '--config', path]);
    expect(r.stderr).toMatch(/is not valid JSON/);
    expect(r.code).toBe(2);
  });

  it('a secret file readable by group or others, empty, or over 4 KiB is refused', async () => {
    const secret = join(dir, 'cfg.secret');
    try {
      chmodSync(secret, 0o644);
      let r = await runWith(base());
      expect(r.stderr).toMatch(/secret file .* has mode 0644: it must not be accessible by group or others/);
      expect(r.stderr).not.toContain('starting');
      expect(r.code).toBe(2);
      chmodSync(secret, 0o640);
      expect((await runWith(base())).code).toBe(2);
      writeFileSync(secret, '\n');
      chmodSync(secret, 0o600);
      r = await runWith(base());
      expect(r.stderr).toMatch(/secret file .* is empty/);
      expect(r.code).toBe(2);
      writeFileSync(secret, 'x'.repeat(4097));
      r = await runWith(base());
      expect(r.stderr).toMatch(/larger than 4 KiB/);
      expect(r.code).toBe(2);
      r = await runWith({ ...base(), secretFile: join(dir, 'no-such-secret') });
      expect(r.stderr).toMatch(/cannot open secret file/);
      expect(r.code).toBe(2);
    } finally {
      writeFileSync(secret, 'x');
      chmodSync(secret, 0o600);
    }
  });
});
