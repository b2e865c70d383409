/**
 * The simulated pool's database: records by class and ref, with XAPI's event semantics.
 *
 * Like xapi's own DB, every write bumps a global generation and stamps the object with it, and
 * `event.from` answers "every object of these classes modified after generation G" (one event per
 * object, coalesced, with its current snapshot), plus deletions. A waiter sleeps until a write or its
 * timeout, so the long poll wakes on change.
 */
import { randomUUID } from 'node:crypto';
import { failure } from './errors.ts';

export type XapiValue = string | number | boolean | XapiValue[] | { [k: string]: XapiValue };
export type XapiRecordData = Record<string, XapiValue>;

interface StoredObject {
  cls: string;
  record: XapiRecordData;
  createdGen: number;
  gen: number;
}

interface Tombstone {
  cls: string;
  ref: string;
  gen: number;
}

export interface XapiEvent {
  id: string;
  timestamp: string;
  class: string;
  operation: 'add' | 'mod' | 'del';
  ref: string;
  snapshot?: XapiRecordData;
}

export interface EventBatch {
  events: XapiEvent[];
  valid_ref_counts: Record<string, number>;
  token: string;
}

const MAX_TOMBSTONES = 10_000;

/** event.from tokens look like xapi's: "<generation>,<message generation>", 20 digits each. */
export function formatToken(gen: number): string {
  return `${String(gen).padStart(20, '0')},${'0'.padStart(20, '0')}`;
}

export function parseToken(token: string): number {
  if (token === '') return 0;
  const m = /^(\d{1,20})(,\d{1,20})?$/.exec(token);
  if (!m) throw failure.tokenParseFailure(token);
  return Number(m[1]);
}

export class XapiDatabase {
  private readonly objects = new Map<string, StoredObject>();
  private readonly byClass = new Map<string, Map<string, StoredObject>>();
  private readonly uuidIndex = new Map<string, string>();
  private tombstones: Tombstone[] = [];
  /** Deletions older than this generation were trimmed: a token before it has lost events. */
  private tombstoneFloor = 0;
  private generation = 0;
  private waiters = new Set<() => void>();

  constructor(readonly classes: readonly string[]) {
    for (const c of classes) this.byClass.set(c, new Map());
  }

  get currentGeneration(): number {
    return this.generation;
  }

  private bump(): number {
    this.generation += 1;
    for (const wake of this.waiters) wake();
    this.waiters.clear();
    return this.generation;
  }

  private classMap(cls: string): Map<string, StoredObject> {
    const m = this.byClass.get(cls);
    if (!m) throw new Error(`unknown class ${cls}`);
    return m;
  }

  static newRef(): string {
    return `OpaqueRef:${randomUUID()}`;
  }

  create(cls: string, record: XapiRecordData, ref = XapiDatabase.newRef()): string {
    const gen = this.bump();
    const obj: StoredObject = { cls, record: { ...record }, createdGen: gen, gen };
    this.classMap(cls).set(ref, obj);
    this.objects.set(ref, obj);
    if (typeof record.uuid === 'string') this.uuidIndex.set(`${cls}/${record.uuid}`, ref);
    return ref;
  }

  /** Applies the fields that differ; no event when nothing changes. Returns whether anything did. */
  update(cls: string, ref: string, patch: XapiRecordData): boolean {
    const obj = this.classMap(cls).get(ref);
    if (!obj) throw failure.handleInvalid(cls, ref);
    let changed = false;
    for (const [k, v] of Object.entries(patch)) {
      if (!sameValue(obj.record[k], v)) {
        obj.record[k] = v;
        changed = true;
      }
    }
    if (changed) obj.gen = this.bump();
    return changed;
  }

  /** A modification event with no change (event.inject). */
  touch(cls: string, ref: string): void {
    const obj = this.classMap(cls).get(ref);
    if (!obj) throw failure.handleInvalid(cls, ref);
    obj.gen = this.bump();
  }

  remove(cls: string, ref: string): void {
    const obj = this.classMap(cls).get(ref);
    if (!obj) throw failure.handleInvalid(cls, ref);
    this.classMap(cls).delete(ref);
    this.objects.delete(ref);
    if (typeof obj.record.uuid === 'string') this.uuidIndex.delete(`${cls}/${obj.record.uuid}`);
    this.tombstones.push({ cls, ref, gen: this.bump() });
    if (this.tombstones.length > MAX_TOMBSTONES) {
      const dropped = this.tombstones.splice(0, this.tombstones.length - MAX_TOMBSTONES);
      this.tombstoneFloor = dropped[dropped.length - 1]!.gen;
    }
  }

  /** A copy of the record; HANDLE_INVALID when the ref is not of this class. */
  get(cls: string, ref: string): XapiRecordData {
    const obj = this.classMap(cls).get(ref);
    if (!obj) throw failure.handleInvalid(cls, ref);
    return structuredClone(obj.record);
  }

  /** The live record, for the simulator's own reads; never hand it out on the wire. */
  peek(cls: string, ref: string): Readonly<XapiRecordData> {
    const obj = this.classMap(cls).get(ref);
    if (!obj) throw failure.handleInvalid(cls, ref);
    return obj.record;
  }

  has(cls: string, ref: string): boolean {
    return this.classMap(cls).has(ref);
  }

  refs(cls: string): string[] {
    return [...this.classMap(cls).keys()];
  }

  all(cls: string): [string, XapiRecordData][] {
    return [...this.classMap(cls).entries()].map(([ref, o]) => [ref, o.record]);
  }

  byUuid(cls: string, uuid: string): string {
    const ref = this.uuidIndex.get(`${cls}/${uuid}`);
    if (!ref) throw failure.uuidInvalid(cls, uuid);
    return ref;
  }

  /** Events for objects of `classes` (lower-case names, or "*") modified after generation `since`. */
  eventsSince(classes: readonly string[], since: number): EventBatch {
    if (since < this.tombstoneFloor) throw failure.eventsLost();
    const wanted = this.resolveClasses(classes);
    const events: XapiEvent[] = [];
    const timestamp = '0.0'; // what xapi's event.from sends
    for (const cls of wanted) {
      for (const [ref, obj] of this.classMap(cls)) {
        if (obj.gen > since) {
          events.push({
            id: String(obj.gen),
            timestamp,
            class: cls.toLowerCase(),
            operation: obj.createdGen > since ? 'add' : 'mod',
            ref,
            snapshot: structuredClone(obj.record),
          });
        }
      }
    }
    for (const t of this.tombstones) {
      if (t.gen > since && wanted.includes(t.cls)) {
        events.push({ id: String(t.gen), timestamp, class: t.cls.toLowerCase(), operation: 'del', ref: t.ref });
      }
    }
    events.sort((a, b) => Number(a.id) - Number(b.id));
    const valid_ref_counts: Record<string, number> = {};
    // xapi counts every table, whatever classes were asked for.
    for (const cls of this.classes) valid_ref_counts[cls.toLowerCase()] = this.classMap(cls).size;
    return { events, valid_ref_counts, token: formatToken(this.generation) };
  }

  /** Class names as event.from takes them: case-insensitive, "*" for all, unknown ones ignored. */
  resolveClasses(classes: readonly string[]): string[] {
    if (classes.includes('*')) return [...this.classes];
    const lc = new Set(classes.map((c) => c.toLowerCase()));
    return this.classes.filter((c) => lc.has(c.toLowerCase()));
  }

  /**
   * The long poll: events after `since`, waiting until there are some, the timeout passes or the
   * signal aborts (the client went away). Returns an empty batch on timeout, as xapi does.
   */
  async waitForEvents(classes: readonly string[], since: number, timeoutMs: number, signal?: AbortSignal): Promise<EventBatch> {
    const deadline = Date.now() + Math.max(0, timeoutMs);
    for (;;) {
      const batch = this.eventsSince(classes, since);
      if (batch.events.length > 0) return batch;
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted) return batch;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
      // Only generations after `since` matter; the next eventsSince re-checks the classes.
    }
  }
}

function sameValue(a: XapiValue | undefined, b: XapiValue): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
