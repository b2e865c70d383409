/**
 * Journal benchmark: what remediation/journal.ts's group commit buys. With 1, 20 and 100 concurrent
 * appenders (each appending one record after the other, awaiting each), for a fixed time each (in
 * slices, the two modes taking turns, each slice in a fresh file in the machine's tmpdir): appends/s and
 * the p50/p99 latency of one append (call to resolution), for the journal (group commit: one write + one
 * fdatasync per batch) beside a baseline that writes and fdatasyncs every record on its own (the same
 * file handling, one record at a time, in call order).
 * Records are decision-sized (about 250 bytes of JSON a line). Every temp dir is removed in a finally.
 *
 * Environment (for development; the published figures use the defaults):
 *   XENHA_BENCH_JOURNAL_SECONDS  time per configuration in seconds (default 5)
 */
import { execFileSync } from 'node:child_process';
import { constants, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal } from '../remediation/journal.ts';
import { machine, tree, writeSection } from './report.ts';

const SECONDS = (() => {
  const v = process.env.XENHA_BENCH_JOURNAL_SECONDS;
  if (v === undefined || v.trim() === '') return 5;
  const s = Number(v);
  if (!Number.isFinite(s) || s <= 0) throw new Error(`XENHA_BENCH_JOURNAL_SECONDS must be a positive number: ${v}`);
  return s;
})();
const CONCURRENCY = [1, 20, 100] as const;
/** Each configuration's time is cut in this many slices, the two modes taking turns. */
const SLICES = 5;
const WARMUP_MS = 200;
const GROUP = 'group commit (the journal)';
const PER_RECORD = 'fdatasync per record';

/** A decision-sized record. */
const decision = (w: number, i: number) => ({
  type: 'decision',
  pool: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
  host: `${w.toString(16).padStart(8, '0')}-0000-4000-8000-000000000001`,
  action: 'fence',
  reasons: ['network: no heartbeat for 31 s', 'storage: statefile slot stale'],
  attempt: i,
});

/** One record's line, as the journal writes it (a seq of four digits). */
const RECORD_BYTES = Buffer.byteLength(`${JSON.stringify({ seq: 1000, at: new Date(0).toISOString(), ...decision(0, 0) })}\n`);

interface Appender {
  append: (data: { type: string }) => Promise<unknown>;
  close: () => Promise<void>;
  /** Write + fdatasync pairs so far, and the seconds they took. */
  fsyncs: () => { count: number; seconds: number };
}

async function groupCommit(path: string): Promise<Appender> {
  let seconds = 0;
  const { journal } = await Journal.open(path, { onFsync: (s) => (seconds += s) });
  return { append: (d) => journal.append(d), close: () => journal.close(), fsyncs: () => ({ count: journal.stats().batches, seconds }) };
}

/** The baseline: each record written and fdatasynced on its own, one after the other in call order. */
async function perRecord(path: string): Promise<Appender> {
  const fh = await open(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o600);
  let tail: Promise<unknown> = Promise.resolve();
  let seq = 0;
  let fsyncs = 0;
  let seconds = 0;
  return {
    append: (data) => {
      const record = { seq: ++seq, at: new Date().toISOString(), ...data };
      const buf = Buffer.from(`${JSON.stringify(record)}\n`);
      const done = tail.then(async () => {
        const t0 = performance.now();
        for (let off = 0; off < buf.length;) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
        await fh.datasync();
        seconds += (performance.now() - t0) / 1000;
        fsyncs++;
        return record;
      });
      tail = done;
      return done;
    },
    close: async () => {
      await tail;
      await fh.close();
    },
    fsyncs: () => ({ count: fsyncs, seconds }),
  };
}

/** What one slice measured: one mode, one concurrency, one fresh file. */
interface Slice {
  latencies: number[];
  seconds: number;
  fsyncs: number;
  commitSeconds: number;
}

interface Result {
  mode: string;
  appenders: number;
  appends: number;
  seconds: number;
  p50: number;
  p99: number;
  perFsync: number;
  /** Mean time of one batch's synced write (the baseline: one record's write + fdatasync), ms. */
  commitMs: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function slice(make: (path: string) => Promise<Appender>, appenders: number, ms: number): Promise<Slice> {
  const dir = mkdtempSync(join(tmpdir(), 'xenha-bench-journal-'));
  try {
    const a = await make(join(dir, 'journal.jsonl'));
    try {
      const latencies: number[] = [];
      let measuring = false;
      let stop = false;
      const worker = async (w: number) => {
        for (let i = 0; !stop; i++) {
          const t0 = performance.now();
          await a.append(decision(w, i));
          if (measuring) latencies.push(performance.now() - t0);
        }
      };
      const running = Promise.all(Array.from({ length: appenders }, (_, w) => worker(w)));
      await new Promise((r) => setTimeout(r, WARMUP_MS));
      const before = a.fsyncs();
      const t0 = performance.now();
      measuring = true;
      await new Promise((r) => setTimeout(r, ms));
      measuring = false;
      const seconds = (performance.now() - t0) / 1000;
      const after = a.fsyncs();
      stop = true;
      await running;
      return { latencies, seconds, fsyncs: after.count - before.count, commitSeconds: after.seconds - before.seconds };
    } finally {
      await a.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function result(mode: string, appenders: number, slices: Slice[]): Result {
  const latencies = slices.flatMap((s) => s.latencies).sort((x, y) => x - y);
  const fsyncs = slices.reduce((n, s) => n + s.fsyncs, 0);
  return {
    mode,
    appenders,
    appends: latencies.length,
    seconds: slices.reduce((n, s) => n + s.seconds, 0),
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    perFsync: latencies.length / Math.max(1, fsyncs),
    commitMs: (slices.reduce((n, s) => n + s.commitSeconds, 0) * 1000) / Math.max(1, fsyncs),
  };
}

/** The file system under the tmpdir, as df names it. */
function fileSystem(dir: string): string {
  try {
    const [, line] = execFileSync('df', ['-T', dir], { encoding: 'utf8' }).trim().split('\n');
    const [device, type] = (line ?? '').split(/\s+/);
    return `${type ?? 'unknown'} on ${device ?? 'unknown'}`;
  } catch {
    return 'file system unknown';
  }
}

/** Measures, and returns the section for BENCHMARKS.md (without writing it). */
export async function journalReport(): Promise<string> {
  const started = performance.now();
  const load = loadavg()[0]!;
  const results: Result[] = [];
  for (const appenders of CONCURRENCY) {
    // The two modes take turns, slice after slice (each going first every other time), so that a disk
    // busy with something else for a while weighs on both alike.
    const slices: Record<string, Slice[]> = { [GROUP]: [], [PER_RECORD]: [] };
    for (let k = 0; k < SLICES; k++) {
      const turns = [
        [GROUP, groupCommit],
        [PER_RECORD, perRecord],
      ] as const;
      for (const [mode, make] of k % 2 === 0 ? turns : [...turns].reverse())
        slices[mode]!.push(await slice(make, appenders, (SECONDS * 1000) / SLICES));
    }
    for (const mode of [GROUP, PER_RECORD]) {
      const r = result(mode, appenders, slices[mode]!);
      results.push(r);
      process.stdout.write(
        `${appenders} appenders, ${mode}: ${(r.appends / r.seconds).toFixed(0)} appends/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${r.perFsync.toFixed(1)} records per sync, write and sync ${r.commitMs.toFixed(2)} ms\n`,
      );
    }
  }
  const realS = (performance.now() - started) / 1000;
  const rate = (r: Result) => r.appends / r.seconds;
  const rows = results.map((r) => {
    const base = r.mode === GROUP ? results.find((b) => b.appenders === r.appenders && b.mode === PER_RECORD) : undefined;
    const gain = base ? ` (**${(rate(r) / rate(base)).toFixed(1)}×**)` : '';
    return `| ${r.appenders} | ${r.mode} | ${rate(r).toFixed(0)}${gain} | ${r.p50.toFixed(2)} ms | ${r.p99.toFixed(2)} ms | ${r.perFsync.toFixed(1)} | ${r.commitMs.toFixed(2)} ms |`;
  });
  const body = [
    '## Journal',
    '',
    `Command: \`npm run bench -- journal\` · ${machine()} · ${new Date().toISOString().slice(0, 10)} · ${tree()} · ${realS.toFixed(0)} s of real time`,
    '',
    "What remediation/journal.ts's group commit buys. N appenders each append a decision-sized record and await it before",
    `the next (${RECORD_BYTES} bytes of JSON a line), for ${SECONDS} s per configuration, in ${SLICES} slices taking turns with the`,
    `other mode's (either first by turns), each in a fresh file in ${tmpdir()} (${fileSystem(tmpdir())}) after a ${WARMUP_MS} ms warm-up; load average`,
    `${load.toFixed(2)} when it started. An append's latency runs from the call to its resolution, that is until its record`,
    'is on disk. The journal writes each batch (whatever queued while the previous batch was written and',
    'synced) with one synced write (its file is open O_DSYNC); the baseline writes and fdatasyncs every record on its own, in call order.',
    'The factor in bold is the throughput against the baseline at the same concurrency.',
    '',
    '| appenders | mode | appends/s | p50 latency | p99 latency | records per sync | write and sync, mean |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  return body;
}

export async function benchJournal(): Promise<void> {
  const body = await journalReport();
  writeSection('journal', body);
  process.stdout.write(`${body}\n`);
}
