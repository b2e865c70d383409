/**
 * The remediation service's journal: an append-only file of JSON lines, one record per line, each
 * `{ seq, at, type, ...data }`. Crash-safe and fast:
 *
 * - `append` resolves only once its record is on disk: written (one `write` per batch, O_APPEND) and
 *   synced as by `fdatasync` (the size is part of what it flushes, so a grown file needs no full
 *   fsync): the file is open O_DSYNC, so the write itself returns once durable (see SYNC_WRITES).
 * - Group commit: the appends that arrive while a batch is being written and synced wait in a queue
 *   and go to disk together in the next batch, one synced write for all of them; the order
 *   on disk is the order of the `append` calls (seq order). `maxBatchDelayMs` > 0 lets a batch that
 *   starts from idle wait up to that long (since its oldest record arrived) for company.
 * - A failed write (or fdatasync) rejects every append of its batch and of the queue behind it, and the
 *   journal refuses every later append until it is reopened: after a failed fsync the kernel may have
 *   dropped the dirty pages and cleared the error, so a journal that goes on would pretend. A rejected
 *   append's record may or may not be on disk (as for a crash): its outcome is unknown, not "not written".
 * - Opening replays every line in order. A torn last line (a crash mid-write: no trailing newline, or
 *   a last line that is not JSON) was never acknowledged and is cut off (the file truncated to the end
 *   of the last complete record, logged at warn) so later appends never follow garbage. Anything else
 *   that is not a valid record — bad JSON before the last line, a line that is not a record, a seq that
 *   does not follow the previous one — refuses to open, naming the line: history is never dropped
 *   silently. The seq of new records continues after the last replayed one.
 *
 * The journal does not know the record types: callers type `append`'s data and validate replayed
 * records themselves (zod). One process at a time: a second `open` of the same path in this process is
 * refused; nothing stops another process (the service is the journal's only writer).
 */
import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';

/** A record as replayed (and as returned by `append`): the journal's fields, and the caller's data. */
export type JournalRecord = { seq: number; at: string; type: string } & Record<string, unknown>;

export interface JournalOptions {
  log?: Logger;
  /**
   * How long a batch that starts from idle may wait, from its oldest record's arrival, for more records
   * to join it. Default 0: a batch is whatever queued while the previous batch was written and synced.
   */
  maxBatchDelayMs?: number;
  /** Called after each batch is durable: the seconds its synced write took, its records. */
  onFsync?: (seconds: number, records: number) => void;
  /** The time stamped on each record (`at`, ISO 8601). Default: the system clock. */
  clock?: () => Date;
}

export interface JournalStats {
  /** Records appended and acknowledged (on disk) since open; replayed records are not counted. */
  records: number;
  /** Batches written and synced since open (one synced write each). */
  batches: number;
  /** Bytes appended to the file since open. */
  bytes: number;
}

export type JournalErrorCode = 'CORRUPT' | 'TOO_LARGE' | 'INVALID' | 'FAILED' | 'CLOSED' | 'BUSY';

export class JournalError extends Error {
  override readonly name = 'JournalError';
  constructor(
    readonly code: JournalErrorCode,
    message: string,
    /** CORRUPT: the 1-based number of the line that is not a valid record. */
    readonly line?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The largest record accepted, serialised (without its newline): the journal is for small decision records. */
export const MAX_RECORD_BYTES = 1024 * 1024;
/** A batch is cut at this many bytes (at least one record), so a queue of large records is not one huge buffer. */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
const NEWLINE = 0x0a;

interface Pending {
  line: string;
  bytes: number;
  record: JournalRecord;
  queuedAt: number;
  resolve: (r: JournalRecord) => void;
  reject: (e: Error) => void;
}

/** Paths (resolved) open in this process. */
const openPaths = new Set<string>();

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Why a parsed line is not a record following `prev`, or undefined if it is one. */
function notARecord(v: unknown, prev: number | undefined): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const r = v as Record<string, unknown>;
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 1) return 'seq is not a positive integer';
  if (prev !== undefined && r.seq !== prev + 1) return `seq ${r.seq} does not follow seq ${prev}`;
  if (typeof r.at !== 'string') return 'at is not a string';
  if (typeof r.type !== 'string' || r.type === '') return 'type is not a non-empty string';
  return undefined;
}

/**
 * O_DSYNC where the platform has it: each write returns once its data, and the size that makes it
 * readable, are on disk, as write + fdatasync would, in one trip to libuv's thread pool instead of two.
 * Under load that trip is the batch's cost (each completion waits for a turn of a busy event loop), so
 * it shortens every request's wait for its batch. Without it, fdatasync after the batch's write.
 */
const SYNC_WRITES: number = constants.O_DSYNC ?? 0;

export class Journal {
  private nextSeq: number;
  private readonly queue: Pending[] = [];
  /** The batch loop while it runs (it never rejects). */
  private running: Promise<void> | undefined;
  private failure: JournalError | undefined;
  private closing: Promise<void> | undefined;
  private readonly counters: JournalStats = { records: 0, batches: 0, bytes: 0 };
  private readonly log: Logger | undefined;
  private readonly maxBatchDelayMs: number;
  private readonly onFsync: ((seconds: number, records: number) => void) | undefined;
  private readonly clock: () => Date;

  private constructor(
    /** The journal's file, resolved. */
    readonly path: string,
    private readonly fh: FileHandle,
    lastSeq: number,
    options: JournalOptions,
  ) {
    this.nextSeq = lastSeq + 1;
    this.log = options.log;
    this.maxBatchDelayMs = options.maxBatchDelayMs ?? 0;
    this.onFsync = options.onFsync;
    this.clock = options.clock ?? (() => new Date());
  }

  /**
   * Opens (creating it, and its directory with mode 0700, if absent) and replays the journal at `path`.
   * Rejects with a JournalError CORRUPT naming the line if a line other than a torn last one is not a
   * valid record, BUSY if this process has it open already.
   */
  static async open(path: string, options: JournalOptions = {}): Promise<{ journal: Journal; records: JournalRecord[] }> {
    const delay = options.maxBatchDelayMs ?? 0;
    if (!Number.isFinite(delay) || delay < 0) throw new RangeError(`maxBatchDelayMs must be a finite number >= 0: ${delay}`);
    const file = resolve(path);
    if (openPaths.has(file)) throw new JournalError('BUSY', `journal ${file} is already open in this process`);
    openPaths.add(file);
    let fh: FileHandle | undefined;
    try {
      const dir = dirname(file);
      const firstMade = await mkdir(dir, { recursive: true, mode: 0o700 });
      if (firstMade !== undefined) {
        // Each directory made is an entry in its parent: sync the parents (`dir` itself is synced below).
        for (let d = dir; d !== firstMade && d !== dirname(d);) {
          d = dirname(d);
          await syncDir(d);
        }
        await syncDir(dirname(firstMade));
      }
      fh = await open(file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | SYNC_WRITES, 0o600);
      // The file's entry in its directory, made durable: now if it was just created, and on every open
      // in case a crash came between an earlier creation and its sync.
      await syncDir(dir);
      const { records, cut } = await Journal.replay(file, fh);
      if (cut) {
        await fh.truncate(cut.at);
        await fh.datasync();
        options.log?.warn(
          { path: file, bytes: cut.bytes, line: cut.line, offset: cut.at },
          `journal: cut a torn last line (${cut.bytes} bytes at line ${cut.line}, an interrupted or failed write, never acknowledged)`,
        );
      }
      const journal = new Journal(file, fh, records.at(-1)?.seq ?? 0, options);
      return { journal, records };
    } catch (e) {
      openPaths.delete(file);
      await fh?.close().catch(() => {});
      throw e;
    }
  }

  private static async replay(
    file: string,
    fh: FileHandle,
  ): Promise<{ records: JournalRecord[]; cut: { at: number; bytes: number; line: number } | undefined }> {
    const { size } = await fh.stat();
    const buf = Buffer.allocUnsafe(size);
    for (let off = 0; off < size;) {
      const { bytesRead } = await fh.read(buf, off, size - off, off);
      if (bytesRead === 0) throw new Error(`journal ${file}: the file shrank while it was read (${off} of ${size} bytes)`);
      off += bytesRead;
    }
    const records: JournalRecord[] = [];
    let start = 0;
    for (let line = 1; start < size; line++) {
      const nl = buf.indexOf(NEWLINE, start);
      // No newline: the last line is torn (its write was interrupted, so never acknowledged).
      if (nl < 0) return { records, cut: { at: start, bytes: size - start, line } };
      let v: unknown;
      try {
        v = JSON.parse(buf.toString('utf8', start, nl));
      } catch (e) {
        // Not JSON on the last line: torn too (a crash can leave its blocks unwritten, zeros, before a newline).
        if (nl + 1 === size) return { records, cut: { at: start, bytes: size - start, line } };
        throw new JournalError(
          'CORRUPT',
          `journal ${file}: line ${line} (byte ${start}) is not JSON (${(e as Error).message}) and is not the last line; ` +
            'refusing to open rather than drop the history after it: repair or move the file',
          line,
          { cause: e },
        );
      }
      const why = notARecord(v, records.at(-1)?.seq);
      if (why !== undefined)
        throw new JournalError(
          'CORRUPT',
          `journal ${file}: line ${line} (byte ${start}) is not a valid journal record (${why}); ` +
            'refusing to open rather than drop history: repair or move the file',
          line,
        );
      records.push(v as JournalRecord);
      start = nl + 1;
    }
    return { records, cut: undefined };
  }

  /** No append is waiting or being written (the safety campaign waits for this before its clock moves). */
  get idle(): boolean {
    return this.running === undefined && this.queue.length === 0;
  }

  /**
   * Appends `{ seq, at, type, ...data }` (in that key order) and resolves once it is on disk (its batch
   * written and synced). The seq is taken now, so the order of the calls is the order on disk.
   * Resolves with that record (the object written; a replay returns its JSON). Rejects (JournalError) if
   * the record is over MAX_RECORD_BYTES serialised (TOO_LARGE), is not serialisable, lacks a `type`,
   * or carries its own `seq` or `at` (INVALID: no seq is used), if the journal is closing (CLOSED), or
   * if its batch, or an earlier one, failed to reach the disk (FAILED: reopen to go on).
   */
  append<T extends { type: string }>(data: T): Promise<JournalRecord & T> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new JournalError('CLOSED', `journal ${this.path} is closed`));
    let record: JournalRecord;
    let line: string;
    try {
      if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new TypeError('the data is not an object');
      if (typeof data.type !== 'string' || data.type === '') throw new TypeError('type is not a non-empty string');
      if (Object.hasOwn(data, 'seq') || Object.hasOwn(data, 'at')) throw new TypeError('seq and at are the journal’s to set');
      const { type, ...rest } = data;
      record = { seq: this.nextSeq, at: this.clock().toISOString(), type, ...rest };
      line = JSON.stringify(record);
    } catch (e) {
      return Promise.reject(
        new JournalError('INVALID', `journal ${this.path}: refused a record: ${(e as Error).message}`, undefined, { cause: e }),
      );
    }
    const bytes = Buffer.byteLength(line) + 1;
    if (bytes - 1 > MAX_RECORD_BYTES)
      return Promise.reject(
        new JournalError(
          'TOO_LARGE',
          `journal ${this.path}: refused a ${data.type.slice(0, 64)} record of ${bytes - 1} bytes serialised (at most ${MAX_RECORD_BYTES}: the journal is for small decision records)`,
        ),
      );
    this.nextSeq++;
    return new Promise<JournalRecord>((resolve, reject) => {
      this.queue.push({ line: `${line}\n`, bytes, record, queuedAt: performance.now(), resolve, reject });
      this.running ??= this.run();
    }) as Promise<JournalRecord & T>;
  }

  /** Writes batches until the queue is empty or a batch fails. Never rejects. */
  private async run(): Promise<void> {
    try {
      // Let the appends of the current synchronous run join the first batch (and never finish synchronously).
      await Promise.resolve();
      while (this.queue.length > 0 && !this.failure) {
        if (this.maxBatchDelayMs > 0) {
          const wait = this.queue[0]!.queuedAt + this.maxBatchDelayMs - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        let n = 0;
        let size = 0;
        while (n < this.queue.length && (n === 0 || size + this.queue[n]!.bytes <= MAX_BATCH_BYTES)) size += this.queue[n++]!.bytes;
        const batch = this.queue.splice(0, n);
        await this.commit(batch, size);
      }
    } catch (e) {
      // commit handles its own errors; this is a bug, but the appends must not hang on it.
      this.fail(e, []);
    } finally {
      this.running = undefined;
    }
  }

  private async commit(batch: Pending[], size: number): Promise<void> {
    const buf = Buffer.from(batch.length === 1 ? batch[0]!.line : batch.map((p) => p.line).join(''));
    const t0 = performance.now();
    try {
      // O_APPEND: each write lands at the end. A short write (disk full, file size limit) is continued.
      for (let off = 0; off < buf.length;) {
        const { bytesWritten } = await this.fh.write(buf, off, buf.length - off);
        if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten} with ${buf.length - off} bytes left`);
        off += bytesWritten;
      }
      // With O_DSYNC each write returned once durable; elsewhere, one fdatasync for the batch.
      if (SYNC_WRITES === 0) await this.fh.datasync();
    } catch (e) {
      this.fail(e, batch);
      return;
    }
    const seconds = (performance.now() - t0) / 1000;
    this.counters.records += batch.length;
    this.counters.batches++;
    this.counters.bytes += size;
    try {
      this.onFsync?.(seconds, batch.length);
    } catch (e) {
      this.log?.warn({ err: e, path: this.path }, 'journal: the onFsync callback threw (ignored)');
    }
    for (const p of batch) p.resolve(p.record);
  }

  /** The journal may have lost data: reject the batch and everything queued, and every append from now on. */
  private fail(cause: unknown, batch: Pending[]): void {
    const queued = this.queue.splice(0);
    const message = cause instanceof Error ? cause.message : String(cause);
    this.failure ??= new JournalError(
      'FAILED',
      `journal ${this.path}: a batch failed to reach the disk (${message}); its appends are rejected, their records may or may not ` +
        'be on disk, and the journal refuses every append until it is reopened',
      undefined,
      { cause },
    );
    this.log?.error(
      { err: cause, path: this.path, rejected: batch.length + queued.length, firstSeq: (batch[0] ?? queued[0])?.record.seq },
      'journal: a batch failed to reach the disk; refusing appends until reopened',
    );
    for (const p of [...batch, ...queued]) p.reject(this.failure);
  }

  /** Counters since open. */
  stats(): JournalStats {
    return { ...this.counters };
  }

  /**
   * Refuses new appends, waits for the queued ones to be written (or rejected), and closes the file.
   * Rejects if closing the file fails, unless the journal had already failed (then logged at warn).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.running;
        try {
          await this.fh.close();
        } catch (e) {
          if (!this.failure) throw e;
          this.log?.warn({ err: e, path: this.path }, 'journal: closing a failed journal failed too');
        }
      } finally {
        openPaths.delete(this.path);
      }
    })();
    return this.closing;
  }
}
