/**
 * Heartbeat-daemon cost benchmark: what xenha-heartbeat (heartbeat/xenha-heartbeat.py) costs one host of a
 * 64-host pool. A config lists 64 hosts (home 0 on 127.0.41.x, home 1 on 127.0.42.x, x = 1..64, UDP port
 * 6961) with the documented timing (intervalMs 2000, peerWindowMs 8000) and one shared heartbeat file in a
 * temp dir; 8 of the 64 daemons run. Each running daemon sends to all 63 peers on both homes and reads the
 * whole file every interval whether or not the peers run, which is the per-host cost measured here.
 *
 * After a warm-up, over the measuring window, per daemon from /proc/<pid>/{stat,status,io}: CPU (utime +
 * stime, all threads) as a share of one core, VmRSS (max over 6 samples), file I/O per interval
 * (read_bytes/write_bytes and rchar/wchar deltas); UDP packets per interval from the `stopped:` counters
 * line the daemon logs on SIGTERM. Every daemon is stopped in a finally (SIGTERM, SIGKILL after 5 s) and
 * the temp dir removed; loopback only.
 *
 * Environment (for development; the published figures use the defaults):
 *   XENHA_BENCH_HEARTBEAT_SECONDS  measuring window in seconds (default 60)
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LAYOUT_BYTES } from '../core/statefile/layout.ts';
import { machine, tree, writeSection } from './report.ts';

const DAEMON = join(import.meta.dirname, '../heartbeat/xenha-heartbeat.py');
const PYTHON = 'python3';
const POOL = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
const HOSTS = 64;
const RUNNING = 8;
const PORT = 6961;
const SUBNETS = [41, 42] as const;
/** As docs/heartbeat.md's example configuration. */
const INTERVAL_MS = 2000;
const WINDOW_MS = 8000;
const WARMUP_MS = 10_000;
const MEASURE_MS = (() => {
  const v = process.env.XENHA_BENCH_HEARTBEAT_SECONDS;
  if (v === undefined || v.trim() === '') return 60_000;
  const s = Number(v);
  if (!Number.isInteger(s) || s <= 0) throw new Error(`XENHA_BENCH_HEARTBEAT_SECONDS must be a positive integer: ${v}`);
  return s * 1000;
})();
const RSS_SAMPLES = 6;
const KILL_AFTER_MS = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function clockTicks(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

interface HostDef {
  uuid: string;
  homes: string[];
}

/** UUIDs in increasing order, so host i is slot i (slots are the rank of the UUID). */
const hosts: HostDef[] = Array.from({ length: HOSTS }, (_, i) => ({
  uuid: `${(i + 1).toString(16).padStart(8, '0')}-0000-4000-8000-${(i + 1).toString(16).padStart(12, '0')}`,
  homes: SUBNETS.map((s) => `127.0.${s}.${i + 1}`),
}));
/** The running daemons: spread over the slots. */
const running = Array.from({ length: RUNNING }, (_, k) => k * (HOSTS / RUNNING));

interface Daemon {
  slot: number;
  proc: ChildProcess;
  log: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  startedAt: number;
}

interface ProcSample {
  ticks: number;
  rssKiB: number;
  io: Record<string, number>;
}

function sample(pid: number): ProcSample {
  // The fields after the command (which may hold spaces) start after the last ')': state is field 3.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]); // utime (14), stime (15)
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
  const io = Object.fromEntries(
    readFileSync(`/proc/${pid}/io`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(':').map((x) => x.trim()))
      .map(([k, v]) => [k!, Number(v)]),
  );
  return { ticks, rssKiB: rss ? Number(rss[1]) : NaN, io };
}

function start(dir: string, slot: number, file: string, secretFile: string): Daemon {
  const cfgPath = join(dir, `host${slot}.json`);
  const cfg = {
    pool: POOL,
    host: hosts[slot]!.uuid,
    hosts,
    file,
    port: PORT,
    intervalMs: INTERVAL_MS,
    peerWindowMs: WINDOW_MS,
    secretFile,
  };
  writeFileSync(cfgPath, JSON.stringify(cfg));
  const proc = spawn(PYTHON, [DAEMON, '--config', cfgPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  proc.on('error', () => {}); // reported by `exited` / the missing pid
  return { slot, proc, log: () => log, exited, startedAt: performance.now() };
}

/** SIGTERM, then SIGKILL after 5 s. Returns whether it needed SIGKILL. */
async function stop(d: Daemon): Promise<boolean> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null || d.proc.pid === undefined) return false;
  d.proc.kill('SIGTERM');
  const timedOut = await Promise.race([d.exited.then(() => false), sleep(KILL_AFTER_MS).then(() => true)]);
  if (timedOut) {
    d.proc.kill('SIGKILL');
    await d.exited;
  }
  return timedOut;
}

/** The counters of a daemon's "stopped:" line (logged at exit). */
function stoppedCounters(log: string): Record<string, number> | undefined {
  const line = log.split('\n').find((l) => l.includes('stopped: slot='));
  if (line === undefined) return undefined;
  return Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

interface Result {
  slot: number;
  cpuPct: number;
  rssMiB: number;
  readBytes: number;
  writeBytes: number;
  rchar: number;
  wchar: number;
  syscr: number;
  syscw: number;
  packets: number;
  rounds: number;
  counters: Record<string, number>;
}

export async function benchHeartbeat(): Promise<void> {
  const v = spawnSync(PYTHON, ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0 || !/^Python 3\./.test(`${v.stdout}${v.stderr}`))
    throw new Error(
      `${PYTHON} is missing or not Python 3 (${v.error?.message ?? `${v.stdout}${v.stderr}`.trim()}): the heartbeat benchmark runs the daemon under Python 3 (apt-get install python3)`,
    );
  const pyVersion = `${v.stdout}${v.stderr}`.trim();
  const hz = clockTicks();
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'xenha-bench-hb-'));
  const daemons: Daemon[] = [];
  const problems: string[] = [];
  const results: Result[] = [];
  const perInterval = MEASURE_MS / INTERVAL_MS;
  let buffered = false;
  try {
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, 'pool-secret-for-bench\n', { mode: 0o600 });
    chmodSync(secretFile, 0o600);
    const file = join(dir, 'pool.hb');
    writeFileSync(file, Buffer.alloc(LAYOUT_BYTES));
    for (const slot of running) daemons.push(start(dir, slot, file, secretFile));
    await sleep(WARMUP_MS);
    for (const d of daemons) {
      if (d.proc.exitCode !== null || d.proc.signalCode !== null || d.proc.pid === undefined)
        throw new Error(`the daemon of slot ${d.slot} exited during the warm-up:\n${d.log()}`);
    }
    const pids = daemons.map((d) => d.proc.pid!);
    const first = pids.map(sample);
    const t0 = performance.now();
    const rss = pids.map((_, i) => [first[i]!.rssKiB]);
    let last = first;
    for (let s = 1; s < RSS_SAMPLES; s++) {
      await sleep(t0 + (s * MEASURE_MS) / (RSS_SAMPLES - 1) - performance.now());
      last = pids.map(sample);
      last.forEach((x, i) => rss[i]!.push(x.rssKiB));
    }
    const wallS = (performance.now() - t0) / 1000;
    // Stopped here, in order, so each one's counters are read now (the finally below finds them stopped).
    const stoppedAt = performance.now();
    const killed = await Promise.all(daemons.map(stop));
    for (const [i, d] of daemons.entries()) {
      const a = first[i]!;
      const b = last[i]!;
      const { code, signal } = await d.exited;
      if (killed[i]) problems.push(`slot ${d.slot}: did not stop within ${KILL_AFTER_MS / 1000} s of SIGTERM (killed)`);
      else if (code !== 0) problems.push(`slot ${d.slot}: exited ${code ?? signal} on SIGTERM`);
      if (d.log().includes('refuses O_DIRECT')) buffered = true;
      const c = stoppedCounters(d.log());
      if (!c) {
        problems.push(`slot ${d.slot}: no "stopped:" line in its log`);
        continue;
      }
      const peers = (HOSTS - 1) * SUBNETS.length;
      const rounds = c.sent! / peers;
      const lifetimeRounds = (stoppedAt - d.startedAt) / INTERVAL_MS;
      if (!Number.isInteger(rounds)) problems.push(`slot ${d.slot}: sent=${c.sent} is not a multiple of ${peers}`);
      else if (Math.abs(rounds - lifetimeRounds) > 2)
        problems.push(
          `slot ${d.slot}: ${rounds} send rounds in ${(lifetimeRounds * INTERVAL_MS) / 1000} s (expected about one every ${INTERVAL_MS} ms)`,
        );
      if (c.send_errors !== 0 || c.write_errors !== 0)
        problems.push(`slot ${d.slot}: send_errors=${c.send_errors} write_errors=${c.write_errors}`);
      const io = (k: string) => ((b.io[k] ?? NaN) - (a.io[k] ?? NaN)) / perInterval;
      results.push({
        slot: d.slot,
        cpuPct: ((b.ticks - a.ticks) / hz / wallS) * 100,
        rssMiB: Math.max(...rss[i]!) / 1024,
        readBytes: io('read_bytes'),
        writeBytes: io('write_bytes'),
        rchar: io('rchar'),
        wchar: io('wchar'),
        syscr: io('syscr'),
        syscw: io('syscw'),
        packets: c.sent! / rounds,
        rounds,
        counters: c,
      });
      process.stdout.write(
        `slot ${d.slot}: cpu ${(((b.ticks - a.ticks) / hz / wallS) * 100).toFixed(2)} %, rss ${(Math.max(...rss[i]!) / 1024).toFixed(1)} MiB, ` +
          `read_bytes ${io('read_bytes').toFixed(0)}/interval, write_bytes ${io('write_bytes').toFixed(0)}/interval, ` +
          `rchar ${io('rchar').toFixed(0)}, wchar ${io('wchar').toFixed(0)}, syscr ${io('syscr').toFixed(1)}, syscw ${io('syscw').toFixed(1)}; ` +
          `counters ${Object.entries(c)
            .filter(([k]) => k !== 'heard')
            .map(([k, x]) => `${k}=${x}`)
            .join(' ')}\n`,
      );
    }
  } finally {
    await Promise.all(daemons.map(stop));
    rmSync(dir, { recursive: true, force: true });
  }
  const realS = (performance.now() - started) / 1000;
  const row = (what: string, unit: string, xs: number[], digits: number) =>
    `| ${what} | ${median(xs).toFixed(digits)}${unit} | ${Math.max(...xs).toFixed(digits)}${unit} | no goal set; for the record |`;
  const kib = (xs: number[]) => xs.map((x) => x / 1024);
  const rows =
    results.length === 0
      ? []
      : [
          `| per daemon (${results.length} daemons) | median | max | goal |`,
          '|---|---|---|---|',
          row(
            'CPU, share of one core',
            ' %',
            results.map((r) => r.cpuPct),
            2,
          ),
          row(
            'RSS (VmRSS, max of 6 samples)',
            ' MiB',
            results.map((r) => r.rssMiB),
            1,
          ),
          row(
            'UDP packets sent per interval',
            '',
            results.map((r) => r.packets),
            0,
          ),
          row('file read_bytes per interval (block layer)', ' KiB', kib(results.map((r) => r.readBytes)), 1),
          row('file write_bytes per interval (block layer)', ' KiB', kib(results.map((r) => r.writeBytes)), 1),
          row('rchar per interval (bytes read by syscalls)', ' KiB', kib(results.map((r) => r.rchar)), 1),
          row('wchar per interval (bytes written by syscalls)', ' KiB', kib(results.map((r) => r.wchar)), 1),
          row(
            'read syscalls per interval (syscr)',
            '',
            results.map((r) => r.syscr),
            1,
          ),
          row(
            'write syscalls per interval (syscw)',
            '',
            results.map((r) => r.syscw),
            1,
          ),
        ];
  const received = (RUNNING - 1) * SUBNETS.length;
  const body = [
    '## Heartbeat daemon',
    '',
    `Command: \`npm run bench -- heartbeat\` · ${machine()}, ${pyVersion} · ${new Date().toISOString().slice(0, 10)} · ${tree()} · ${realS.toFixed(0)} s of real time`,
    '',
    `What \`heartbeat/xenha-heartbeat.py\` costs one host of a ${HOSTS}-host pool. One config lists ${HOSTS} hosts, each with two`,
    `homes on loopback (127.0.${SUBNETS[0]}.x and 127.0.${SUBNETS[1]}.x, x = 1..${HOSTS}), UDP port ${PORT}, the documented default-like`,
    `timing (\`intervalMs\` ${INTERVAL_MS}, \`peerWindowMs\` ${WINDOW_MS}, as docs/heartbeat.md's example) and one shared heartbeat file`,
    `in a temp dir (${LAYOUT_BYTES} bytes, pre-sized with zeros). ${RUNNING} of the ${HOSTS} daemons run (slots ${running.join(', ')}), the others are`,
    `configured but not running: each running daemon still sends to all ${HOSTS - 1} peers on both homes and reads the whole`,
    'file every interval, which is the per-host cost. It receives only from the running peers, though',
    `(${received} packets per interval instead of ${(HOSTS - 1) * SUBNETS.length} in a full pool), so the receive and HMAC-check side is understated.`,
    `Measured over ${MEASURE_MS / 1000} s after a ${WARMUP_MS / 1000} s warm-up, per daemon, from /proc/<pid>/stat, status and io (all threads):`,
    'CPU is utime + stime over the window divided by wall time; file I/O per interval is the counter delta divided',
    `by the ${perInterval} intervals (read_bytes/write_bytes count what reached the block layer; rchar/wchar every read/write`,
    "syscall's bytes; UDP sends go through sendto and count in neither); UDP packets per interval are the `sent` counter of the daemon's",
    '`stopped:` line on SIGTERM divided by its send rounds (checked: a whole number of rounds, one per interval since start).',
    `The temp dir is ${tmpdir()}; the daemon ${buffered ? 'found O_DIRECT refused there and wrote buffered with O_DSYNC' : 'opened the file with O_DIRECT there (reads and writes reach the block layer)'}.`,
    `CPU resolution: one clock tick (1/${hz} s) over the window, ${(100 / hz / (MEASURE_MS / 1000)).toFixed(3)} % of a core.`,
    '',
    ...rows,
    '',
    ...(problems.length > 0 ? ['**FAILED**:', '', ...problems.map((p) => `- ${p}`), ''] : []),
  ].join('\n');
  writeSection('heartbeat', body);
  process.stdout.write(`${body}\n`);
  if (problems.length > 0) throw new Error(`heartbeat benchmark failed:\n${problems.map((x) => `  ${x}`).join('\n')}`);
}
