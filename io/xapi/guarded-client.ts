/**
 * Xen Orchestra's `xen-api` client, guarded at its boundary. The client mirrors a pool through its
 * own event loop, which dereferences XAPI answers without checking them: one malformed answer
 * (event.from with `events: null`, a pool record without other_config, …) used to throw inside that
 * loop and end the whole process. Here every answer is checked against its shape
 * (core/model/xapi-answers.ts) before the client sees it, so a bad answer is an error of that call
 * (code INVALID_ANSWER), and every answer is bounded in size while it streams (undici's
 * maxResponseSize: code UND_ERR_RES_EXCEEDED_MAX_SIZE), so an endless body cannot grow memory.
 * Calls are counted by method (xen-api has no hook, so its `_call` is wrapped; a test guards it).
 */
import { Agent } from 'undici';
import { Xapi, type XapiOptions } from 'xen-api';
import { answerProblem, type AnswerLimits, type AnswerProblem } from '../../core/model/xapi-answers.ts';
import { vbdRecord, vdiRecord, vmRecord } from '../../core/model/xapi-records.ts';
import { NotJsonRpcError, pickFields, streamAllRecords } from './stream-records.ts';

/** A single record larger than this is refused (VM and VBD records are a few kilobytes). */
const MAX_RECORD_BYTES = 2 ** 20;

export interface GuardedXapiOptions extends XapiOptions {
  /** The largest answer accepted, in bytes; a larger one fails while it streams. */
  maxAnswerBytes: number;
  /** The largest answer streamed record by record (streamDispatcher), in bytes. */
  maxStreamedAnswerBytes: number;
  /** How many records one answer may bring. */
  recordLimits: AnswerLimits;
}

export class XapiAnswerError extends Error {
  readonly code: AnswerProblem['code'];
  constructor(
    readonly method: string,
    problem: AnswerProblem,
  ) {
    super(
      problem.code === 'INVALID_ANSWER'
        ? `${method} answered with the wrong shape: ${problem.detail}`
        : `${method} answered ${problem.detail}`,
    );
    this.code = problem.code;
  }
}

const VM_FIELDS = Object.keys(vmRecord.shape);
const VBD_FIELDS = Object.keys(vbdRecord.shape);
const VDI_FIELDS = Object.keys(vdiRecord.shape);

export class GuardedXapi extends Xapi {
  onCall: (method: string) => void = () => {};
  onInvalidAnswer: (e: XapiAnswerError) => void = () => {};
  /** The last error of a get_all_records call (the client's initial fetch swallows them). */
  lastFetchError: Error | null = null;
  /** Set when applying events to the mirror threw: the mirror can no longer be trusted. */
  onMirrorBroken: (e: unknown) => void = () => {};
  /** For answers parsed as they stream (io/xapi/stream-records.ts): same settings, a larger bound. */
  readonly streamDispatcher: Agent;
  private readonly recordLimits: AnswerLimits;

  constructor(o: GuardedXapiOptions) {
    super(o);
    this.recordLimits = o.recordLimits;
    // The client's own dispatcher has no size bound: one with the same timeouts and TLS settings, and a bound.
    const inactivity = o.httpInactivityTimeout ?? 5 * 60_000;
    const agent = (maxResponseSize: number) =>
      new Agent({
        bodyTimeout: inactivity,
        headersTimeout: inactivity,
        maxRedirections: 3,
        maxResponseSize,
        connect: { minVersion: 'TLSv1', rejectUnauthorized: !o.allowUnauthorized },
      });
    const unbounded = this._undiciDispatcher as Agent; // made by the client's constructor, never used
    void unbounded.destroy().catch(() => {});
    this._undiciDispatcher = agent(o.maxAnswerBytes);
    this.streamDispatcher = agent(o.maxStreamedAnswerBytes);
    this._setUrl(this._url);
  }

  /** The URL the client talks to now (it follows HOST_IS_SLAVE to the master), without credentials. */
  get currentUrl(): string {
    const u = this._url;
    const host = u.hostname.includes(':') && !u.hostname.startsWith('[') ? `[${u.hostname}]` : u.hostname;
    return `${u.protocol ?? 'https:'}//${host}${u.port ? `:${u.port}` : ''}`;
  }

  protected override async _call(method: string, ...rest: unknown[]): Promise<unknown> {
    this.onCall(method);
    let answer: unknown;
    try {
      answer = await super._call(method, ...rest);
    } catch (e) {
      // The client's initial fetch swallows its errors: remembered, so that a partial mirror is refused.
      if (/\.get_all_records$/.test(method)) this.lastFetchError = e instanceof Error ? e : new Error(`${method} failed`, { cause: e });
      throw e;
    }
    const problem = answerProblem(method, answer, this.recordLimits, Array.isArray(rest[0]) ? rest[0] : []);
    if (problem !== null) {
      const e = new XapiAnswerError(method, problem);
      if (/\.get_all_records$/.test(method)) this.lastFetchError = e;
      this.onInvalidAnswer(e);
      throw e;
    }
    return answer;
  }

  /**
   * Every record of a class, a few fields of each: parsed as the answer streams over JSON-RPC (memory
   * follows what is kept, not the answer's size); through the client (bounded in bytes) when the host
   * speaks only XML-RPC or the session needs renewing.
   */
  async pickedRecords(
    method: string,
    fields: readonly string[],
    keep: (r: Record<string, unknown>) => boolean,
    timeoutMs: number,
    args: readonly unknown[] = [],
  ): Promise<Record<string, Record<string, unknown>>> {
    const sessionId = this.sessionId;
    const { maxRecords } = this.recordLimits;
    if (sessionId !== undefined) {
      this.onCall(method);
      try {
        return await streamAllRecords({
          url: this.currentUrl,
          sessionId,
          method,
          args,
          dispatcher: this.streamDispatcher,
          fields,
          keep,
          maxRecords,
          maxRecordBytes: MAX_RECORD_BYTES,
          timeoutMs,
        });
      } catch (e) {
        if (!(e instanceof NotJsonRpcError) && (e as { code?: string }).code !== 'SESSION_INVALID') throw e;
      }
    }
    const all = await this.call<Record<string, Record<string, unknown>>>(method, ...args);
    const out: Record<string, Record<string, unknown>> = {};
    let n = 0;
    for (const [ref, r] of Object.entries(all)) {
      if (++n > maxRecords) throw Object.assign(new Error(`${method}: more than ${maxRecords} records`), { code: 'TOO_MANY_RECORDS' });
      if (keep(r)) out[ref] = pickFields(r, fields);
    }
    return out;
  }

  /** The VDIs a query names, with the fields xenha reads (the heartbeat SR may hold thousands). */
  vdisWhere(expr: string, timeoutMs: number): Promise<Record<string, unknown>> {
    return this.pickedRecords('VDI.get_all_records_where', VDI_FIELDS, () => true, timeoutMs, [expr]);
  }

  /** The VMs (not templates or snapshots) and VBDs, with the fields xenha reads: the capacity figures' input. */
  async capacityRecords(timeoutMs: number): Promise<{ VM: Record<string, unknown>; VBD: Record<string, unknown> }> {
    const [VM, VBD] = await Promise.all([
      this.pickedRecords('VM.get_all_records', VM_FIELDS, (r) => !r.is_a_template && !r.is_a_snapshot, timeoutMs),
      this.pickedRecords('VBD.get_all_records', VBD_FIELDS, () => true, timeoutMs),
    ]);
    return { VM, VBD };
  }

  /**
   * Applies events to the mirror. xen-api calls this outside any try: an exception here (from its
   * collection, on a record it cannot key) would end its event loop silently and freeze the mirror.
   */
  protected override _processEvents(events: unknown[]): void {
    try {
      super._processEvents(events);
    } catch (e) {
      this.onMirrorBroken(e);
    }
  }

  /**
   * Logs the session out and waits for the answer (the client's own disconnect sends the logout
   * without waiting, so closing the sockets right after would lose it), within `timeoutMs`.
   */
  async logout(timeoutMs: number): Promise<void> {
    const id = this._sessionId; // the getter asserts a connected client
    if (id === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this._call('session.logout', [id], timeoutMs).catch(() => {}),
      new Promise((r) => (timer = setTimeout(r, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /** Closes the dispatcher's sockets at once (a long poll in flight included). */
  async destroyTransport(): Promise<void> {
    await Promise.all([(this._undiciDispatcher as Agent).destroy().catch(() => {}), this.streamDispatcher.destroy().catch(() => {})]);
  }
}
