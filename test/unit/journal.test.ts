/** remediation/journal.ts: replay, seq, group commit, torn and corrupt files, limits, and a write that really fails. */
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal, JournalError, MAX_RECORD_BYTES, type JournalRecord } from '../../remediation/journal.ts';

let dir: string;
const journals: Journal[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xenha-journal-'));
});
afterEach(async () => {
  await Promise.allSettled(journals.splice(0).map((j) => j.close()));
  rmSync(dir, { recursive: true, force: true });
});

const AT = '2030-01-02T03:04:05.678Z';
const clock = () => new Date(AT);

async function openJournal(path: string, options: Parameters<typeof Journal.open>[1] = {}) {
  const opened = await Journal.open(path, { clock, ...options });
  journals.push(opened.journal);
  return opened;
}

/** A pino logger whose lines are collected. */
function capturedLog() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/** The file read independently of the journal: each complete line parsed. */
function linesOf(path: string): unknown[] {
  const text = readFileSync(path, 'utf8');
  expect(text === '' || text.endsWith('\n'), 'the file ends with a newline').toBe(true);
  return text
    .split('\n')
    .slice(0, -1)
    .map((l) => JSON.parse(l) as unknown);
}

const rec = (seq: number, type = 'note', extra: Record<string, unknown> = {}) => JSON.stringify({ seq, at: AT, type, ...extra });

describe('open and replay', () => {
  it('creates the file and its directory (0700), and replays what was appended, in order', async () => {
    const path = join(dir, 'state/remediation/journal.jsonl');
    const { journal, records } = await openJournal(path);
    expect(records).toEqual([]);
    expect(statSync(join(dir, 'state')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'state/remediation')).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const a = await journal.append({ host: 'h1', type: 'decision', action: 'fence', reasons: ['network', 'storage'] });
    const b = await journal.append({ type: 'outcome', host: 'h1', ok: true, detail: { agent: 'ipmi', ms: 1234 } });
    const c = await journal.append({ type: 'note', text: 'line\nbreak and "quotes" and ünïcödé' });
    expect(a).toEqual({ seq: 1, at: AT, type: 'decision', host: 'h1', action: 'fence', reasons: ['network', 'storage'] });
    expect([b.seq, c.seq]).toEqual([2, 3]);
    expect(journal.stats()).toEqual({ records: 3, batches: 3, bytes: readFileSync(path).length });
    await journal.close();
    expect(linesOf(path)).toEqual([a, b, c]);
    // The journal's fields lead each line, type third.
    expect(readFileSync(path, 'utf8')).toMatch(new RegExp(`^\\{"seq":1,"at":"${AT}","type":"decision","host":"h1",`));
    const again = await openJournal(path);
    expect(again.records).toEqual([a, b, c]);
    expect(again.journal.stats()).toEqual({ records: 0, batches: 0, bytes: 0 });
  });

  it('continues the seq after a reopen', async () => {
    const path = join(dir, 'j.jsonl');
    const first = await openJournal(path);
    for (let i = 0; i < 3; i++) await first.journal.append({ type: 'tick', i });
    await first.journal.close();
    const second = await openJournal(path);
    expect(second.records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect((await second.journal.append({ type: 'tick', i: 3 })).seq).toBe(4);
    await second.journal.close();
    const third = await openJournal(path);
    expect(third.records.map((r) => [r.seq, r.i])).toEqual([
      [1, 0],
      [2, 1],
      [3, 2],
      [4, 3],
    ]);
    expect((await third.journal.append({ type: 'tick' })).seq).toBe(5);
  });

  it('stamps `at` from the injected clock', async () => {
    let t = Date.parse('2031-05-06T07:08:09.000Z');
    const { journal } = await openJournal(join(dir, 'j.jsonl'), { clock: () => new Date((t += 1000)) });
    expect((await journal.append({ type: 'a' })).at).toBe('2031-05-06T07:08:10.000Z');
    expect((await journal.append({ type: 'b' })).at).toBe('2031-05-06T07:08:11.000Z');
  });

  it('refuses a second open of the same path in this process, and allows it once closed', async () => {
    const path = join(dir, 'j.jsonl');
    const { journal } = await openJournal(path);
    await expect(Journal.open(join(dir, '.', 'j.jsonl'))).rejects.toMatchObject({ code: 'BUSY' });
    await journal.close();
    await openJournal(path);
  });
});

describe('group commit', () => {
  it('writes 1000 concurrent appends in far fewer batches, each on disk in call order when its promise resolves', async () => {
    const path = join(dir, 'j.jsonl');
    const fsyncs: { seconds: number; records: number }[] = [];
    const { journal } = await openJournal(path, { onFsync: (seconds, records) => fsyncs.push({ seconds, records }) });
    let cache: { size: number; lines: unknown[] } = { size: -1, lines: [] };
    const onDisk = () => {
      const size = statSync(path).size;
      if (size !== cache.size) cache = { size, lines: linesOf(path) };
      return cache.lines;
    };
    let acknowledged = 0;
    const check = (r: JournalRecord) => {
      acknowledged++;
      // Acknowledged only after its batch's fsync returned…
      expect(acknowledged).toBeLessThanOrEqual(fsyncs.reduce((s, f) => s + f.records, 0));
      // …and by then it is in the file, after every record appended before it.
      const lines = onDisk();
      expect(lines.length).toBeGreaterThanOrEqual(r.seq);
      expect(lines[r.seq - 1]).toEqual(r);
      expect(lines.slice(0, r.seq).map((l) => (l as JournalRecord).seq)).toEqual(Array.from({ length: r.seq }, (_, i) => i + 1));
      return r;
    };
    // A burst: 1000 appends called at once.
    const burst = await Promise.all(Array.from({ length: 1000 }, (_, i) => journal.append({ type: 'burst', i }).then(check)));
    expect(burst.map((r) => [r.seq, r.i])).toEqual(Array.from({ length: 1000 }, (_, i) => [i + 1, i]));
    // Concurrent appenders: 50 workers, each appending 20 records one after the other.
    const worker = async (w: number) => {
      const mine: JournalRecord[] = [];
      for (let k = 0; k < 20; k++) mine.push(await journal.append({ type: 'worker', w, k }).then(check));
      return mine;
    };
    const perWorker = await Promise.all(Array.from({ length: 50 }, (_, w) => worker(w)));
    for (const mine of perWorker) {
      const seqs = mine.map((r) => r.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
    const { records, batches, bytes } = journal.stats();
    expect(records).toBe(2000);
    expect(batches).toBe(fsyncs.length);
    expect(batches).toBeLessThan(records / 10);
    expect(fsyncs.reduce((s, f) => s + f.records, 0)).toBe(2000);
    expect(fsyncs.every((f) => f.seconds >= 0 && f.records > 0)).toBe(true);
    expect(bytes).toBe(statSync(path).size);
    const lines = linesOf(path) as JournalRecord[];
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    expect(lines.slice(0, 1000)).toEqual(burst);
  });

  it('maxBatchDelayMs: a batch that starts from idle waits for company', async () => {
    const { journal } = await openJournal(join(dir, 'j.jsonl'), { maxBatchDelayMs: 300 });
    const first = journal.append({ type: 'a' });
    await new Promise((r) => setTimeout(r, 20));
    const second = journal.append({ type: 'b' });
    await Promise.all([first, second]);
    expect(journal.stats()).toMatchObject({ records: 2, batches: 1 });
  });

  it('the file is open O_APPEND | O_DSYNC: each batch write returns once durable (read from /proc/self/fdinfo)', async () => {
    const path = join(dir, 'j.jsonl');
    const { journal } = await openJournal(path);
    await journal.append({ type: 'a' });
    const fds = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false; // closed meanwhile
      }
    });
    expect(fds, 'one descriptor open on the journal').toHaveLength(1);
    const flags = Number.parseInt(/^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fds[0]}`, 'utf8'))![1]!, 8);
    // Linux's values (include/uapi/asm-generic/fcntl.h), not Node's constants: an independent reading.
    const O_APPEND = 0o2000;
    const O_DSYNC = 0o10000;
    expect(flags & O_APPEND, 'O_APPEND').toBe(O_APPEND);
    expect(flags & O_DSYNC, 'O_DSYNC').toBe(O_DSYNC);
  });

  it('close() waits for the queued appends, then refuses new ones', async () => {
    const path = join(dir, 'j.jsonl');
    const { journal } = await openJournal(path);
    const pending = Array.from({ length: 10 }, (_, i) => journal.append({ type: 'late', i }));
    const closed = journal.close();
    await expect(journal.append({ type: 'after' })).rejects.toMatchObject({ code: 'CLOSED' });
    await closed;
    expect((await Promise.all(pending)).map((r) => r.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(linesOf(path)).toHaveLength(10);
  });
});

describe('torn and corrupt files', () => {
  it('cuts a torn last line (no newline), logs the bytes cut, and appends after it cleanly', async () => {
    const path = join(dir, 'j.jsonl');
    const torn = '{"seq":3,"at":"2030-01-02T03:04:05.678Z","type":"deci';
    writeFileSync(path, `${rec(1)}\n${rec(2)}\n${torn}`);
    const { log, lines } = capturedLog();
    const { journal, records } = await openJournal(path, { log });
    expect(records.map((r) => r.seq)).toEqual([1, 2]);
    expect(lines).toEqual([expect.objectContaining({ level: 40, bytes: Buffer.byteLength(torn), line: 3 })]);
    expect(lines[0]!.msg).toContain(`${Buffer.byteLength(torn)} bytes`);
    expect(readFileSync(path, 'utf8')).toBe(`${rec(1)}\n${rec(2)}\n`);
    expect((await journal.append({ type: 'after' })).seq).toBe(3);
    expect((linesOf(path) as JournalRecord[]).map((r) => [r.seq, r.type])).toEqual([
      [1, 'note'],
      [2, 'note'],
      [3, 'after'],
    ]);
  });

  it('cuts a last line that is complete JSON but lacks its newline (its write never finished)', async () => {
    const path = join(dir, 'j.jsonl');
    writeFileSync(path, `${rec(1)}\n${rec(2)}`);
    const { journal, records } = await openJournal(path);
    expect(records.map((r) => r.seq)).toEqual([1]);
    expect((await journal.append({ type: 'after' })).seq).toBe(2);
    expect(linesOf(path)).toHaveLength(2);
  });

  it('cuts a newline-terminated last line that is not JSON (blocks a crash left as zeros)', async () => {
    const path = join(dir, 'j.jsonl');
    writeFileSync(path, Buffer.concat([Buffer.from(`${rec(1)}\n`), Buffer.alloc(37), Buffer.from('\n')]));
    const { log, lines } = capturedLog();
    const { records } = await openJournal(path, { log });
    expect(records.map((r) => r.seq)).toEqual([1]);
    expect(lines).toEqual([expect.objectContaining({ level: 40, bytes: 38, line: 2 })]);
    expect(readFileSync(path, 'utf8')).toBe(`${rec(1)}\n`);
  });

  it('an empty file is an empty journal', async () => {
    const path = join(dir, 'j.jsonl');
    writeFileSync(path, '');
    const { journal, records } = await openJournal(path);
    expect(records).toEqual([]);
    expect((await journal.append({ type: 'first' })).seq).toBe(1);
  });

  it.each([
    ['not JSON', `${rec(1)}\n{"seq":2,"at":"x","ty\n${rec(3)}\n`, 2, /line 2 .*is not JSON/],
    ['an empty line', `${rec(1)}\n\n${rec(2)}\n`, 2, /line 2 .*is not JSON/],
    ['not an object', `${rec(1)}\n${rec(2)}\n[1,2]\n${rec(3)}\n`, 3, /line 3 .*not a JSON object/],
    ['a record without a type', `${rec(1)}\n{"seq":2,"at":"${AT}"}\n`, 2, /line 2 .*type is not a non-empty string/],
    ['a seq that skips', `${rec(1)}\n${rec(2)}\n${rec(4)}\n`, 3, /line 3 .*seq 4 does not follow seq 2/],
    ['a seq that repeats', `${rec(1)}\n${rec(1)}\n`, 2, /line 2 .*seq 1 does not follow seq 1/],
    ['a seq of 0', `${rec(0)}\n`, 1, /line 1 .*seq is not a positive integer/],
  ])(
    'refuses to open a file with %s before its end, naming the line, and leaves the file as it was',
    async (_what, text, line, message) => {
      const path = join(dir, 'j.jsonl');
      writeFileSync(path, text);
      const err = await Journal.open(path).then(
        (o) => {
          journals.push(o.journal);
          throw new Error('opened');
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(JournalError);
      expect(err).toMatchObject({ code: 'CORRUPT', line });
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toContain(path);
      expect(readFileSync(path, 'utf8')).toBe(text);
      // The refused open left nothing behind: fixing the file lets it open.
      writeFileSync(path, `${rec(1)}\n`);
      expect((await openJournal(path)).records).toHaveLength(1);
    },
  );
});

describe('limits and invalid records', () => {
  it(`accepts a record of exactly ${MAX_RECORD_BYTES} bytes serialised and refuses one byte more, without using a seq`, async () => {
    const path = join(dir, 'j.jsonl');
    const { journal } = await openJournal(path);
    const base = Buffer.byteLength(JSON.stringify({ seq: 1, at: AT, type: 'big', pad: '' }));
    const exact = await journal.append({ type: 'big', pad: 'x'.repeat(MAX_RECORD_BYTES - base) });
    expect(exact.seq).toBe(1);
    const err = await journal.append({ type: 'big', pad: 'x'.repeat(MAX_RECORD_BYTES - base + 1) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TOO_LARGE' });
    expect((err as Error).message).toMatch(/refused a big record of 1048577 bytes serialised \(at most 1048576/);
    const huge = await journal.append({ type: 'big', pad: 'ü'.repeat(MAX_RECORD_BYTES) }).catch((e: unknown) => e);
    expect(huge).toMatchObject({ code: 'TOO_LARGE' });
    // The journal goes on, and no seq was used by the refused records.
    expect((await journal.append({ type: 'small' })).seq).toBe(2);
    expect((linesOf(path) as JournalRecord[]).map((r) => r.seq)).toEqual([1, 2]);
  });

  it('refuses data without a type, with its own seq or at, or that does not serialise; no seq is used', async () => {
    const { journal } = await openJournal(join(dir, 'j.jsonl'));
    const circular: Record<string, unknown> = { type: 'loop' };
    circular.self = circular;
    const bad: unknown[] = [
      { type: '' },
      { type: 7 },
      null,
      { type: 'x', seq: 9 },
      { type: 'x', at: 'now' },
      circular,
      { type: 'n', n: 1n },
    ];
    for (const data of bad) await expect(journal.append(data as { type: string })).rejects.toMatchObject({ code: 'INVALID' });
    expect((await journal.append({ type: 'ok' })).seq).toBe(1);
  });
});

describe('a write that fails', () => {
  /** The journal's own descriptor, found in /proc/self/fd by the file it points to. */
  function fdOf(path: string): number {
    const fds = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false;
      }
    });
    expect(fds, `one descriptor open on ${path}`).toHaveLength(1);
    return Number(fds[0]);
  }

  it.runIf(existsSync('/proc/self/fd'))('rejects every append of the failed batch and every append after it, until reopened', async () => {
    const path = join(dir, 'j.jsonl');
    const { log, lines } = capturedLog();
    const { journal } = await openJournal(path, { log });
    await journal.append({ type: 'before' });
    // Pull the descriptor from under the journal and put a read-only one on its number (the lowest
    // free one), so the journal's next write really fails (EBADF) and cannot land in another file.
    const fd = fdOf(path);
    closeSync(fd);
    const readOnly = openSync(join(import.meta.dirname, 'journal.test.ts'), 'r');
    expect(readOnly, 'the read-only file took the same descriptor number').toBe(fd);
    const batch = Array.from({ length: 5 }, (_, i) => journal.append({ type: 'doomed', i }).catch((e: unknown) => e));
    const errors = await Promise.all(batch);
    for (const e of errors) {
      expect(e).toBeInstanceOf(JournalError);
      expect(e).toMatchObject({ code: 'FAILED', cause: expect.objectContaining({ code: 'EBADF' }) });
      expect((e as Error).message).toMatch(/refuses every append until it is reopened/);
    }
    await expect(journal.append({ type: 'later' })).rejects.toMatchObject({ code: 'FAILED' });
    expect(lines.filter((l) => l.level === 50)).toEqual([expect.objectContaining({ path, rejected: 5, firstSeq: 2 })]);
    expect(journal.stats()).toEqual({ records: 1, batches: 1, bytes: Buffer.byteLength(`${rec(1, 'before')}\n`) });
    // Closing closes the descriptor number it holds (the read-only stand-in, here).
    await journal.close();
    journals.splice(journals.indexOf(journal), 1);
    // Reopened, it goes on after what reached the disk.
    const again = await openJournal(path);
    expect(again.records.map((r) => r.type)).toEqual(['before']);
    expect((await again.journal.append({ type: 'after reopen' })).seq).toBe(2);
  });
});
