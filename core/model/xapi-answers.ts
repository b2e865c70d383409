/**
 * The shape of every XAPI answer the client's own machinery relies on, checked before the answer
 * reaches it (a malformed one must be an error of that call, never an exception inside the client's
 * event loop). Records themselves are checked field by field later (xapi-records.ts, snapshot.ts);
 * here only what the client dereferences: a record is an object, the pool's other_config is an
 * object, an event has a class, an operation, a ref and (unless deleted) an object snapshot, and
 * event.from's answer has its events, token and valid_ref_counts. Pure.
 */
import { z } from 'zod';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** XAPI records have tens of fields (a VM about a hundred); the client copies every field name to every record of a class. */
export const MAX_FIELDS = 1000;
/**
 * What the client can keep as a record: an object whose uuid (its key in the client's collection) is a
 * string, with a bounded number of fields, none named like the client's own (`$ref`, `$type`, …) or `__proto__`.
 */
function recordProblem(v: unknown): string | null {
  if (!isObject(v)) return 'expected an object';
  if (v.uuid !== undefined && typeof v.uuid !== 'string') return 'a record whose uuid is not a string';
  const keys = Object.keys(v);
  if (keys.length > MAX_FIELDS) return `a record with ${keys.length} fields (more than ${MAX_FIELDS})`;
  if (keys.some((k) => k.startsWith('$') || k === '__proto__')) return 'a record with a field named $… or __proto__';
  return null;
}
/** A record, passed through as it is (not copied: answers can be large). */
const anObject = z.custom<Record<string, unknown>>((v) => recordProblem(v) === null, {
  error: (iss) => recordProblem(iss.input) ?? 'expected a record',
});
const poolRecord = anObject.refine((r) => isObject(r.other_config), { error: 'a pool record without an other_config map' });

const event = z
  .looseObject({
    class: z.string().min(1),
    operation: z.enum(['add', 'mod', 'del']),
    ref: z.string().min(1),
    snapshot: z.unknown().optional(),
  })
  .superRefine((e, ctx) => {
    if (e.operation === 'del') return;
    if (!isObject(e.snapshot))
      ctx.addIssue({ code: 'custom', path: ['snapshot'], message: `an ${e.operation} event without an object snapshot` });
    else if (recordProblem(e.snapshot) !== null) ctx.addIssue({ code: 'custom', path: ['snapshot'], message: recordProblem(e.snapshot)! });
    else if (e.class.toLowerCase() === 'pool' && !isObject(e.snapshot.other_config)) {
      ctx.addIssue({ code: 'custom', path: ['snapshot', 'other_config'], message: 'a pool record without an other_config map' });
    }
  });

const eventFrom = z.looseObject({
  events: z.array(event),
  valid_ref_counts: z.record(z.string(), z.number()),
  token: z.string().min(1),
});

const string = z.string().min(1);
const refs = z.array(z.string());

/** The schema of a method's answer, or null for a method whose answer the client does not look into. */
export function answerSchema(method: string): z.ZodType | null {
  switch (method) {
    case 'session.login_with_password':
    case 'session.slave_local_login_with_password':
    case 'event.inject':
      return string;
    case 'system.listMethods':
      return z.array(z.string());
    case 'event.from':
      return eventFrom;
    case 'pool.get_all_records':
      // The client takes the pool from the first record: there must be one.
      return z.record(z.string(), poolRecord).refine((m) => Object.keys(m).length > 0, { error: 'no pool record' });
  }
  if (/^\w+\.get_all_records(_where)?$/.test(method)) return z.record(z.string(), method.startsWith('pool.') ? poolRecord : anObject);
  if (/^\w+\.get_all$/.test(method)) return refs;
  return null;
}

/** How many records one answer may bring: hosts (and their metrics) at most maxHosts, any class at most maxRecords. */
export interface AnswerLimits {
  maxHosts: number;
  maxRecords: number;
}

const PER_HOST_CLASSES = new Set(['host', 'host_metrics']);

function countProblem(method: string, answer: unknown, limits: AnswerLimits, args: readonly unknown[]): string | null {
  const cls = method.slice(0, method.indexOf('.'));
  const limitOf = (c: string) => (PER_HOST_CLASSES.has(c.toLowerCase()) ? limits.maxHosts : limits.maxRecords);
  if (/\.get_all_records(_where)?$/.test(method) && typeof answer === 'object' && answer !== null) {
    const n = Object.keys(answer).length;
    return n > limitOf(cls) ? `${n} ${cls} records, more than the limit (${limitOf(cls)})` : null;
  }
  if (method === 'event.from') {
    // event.from(session, classes, token, timeout): an event of a class not asked for would only grow the mirror.
    const asked = Array.isArray(args[1]) ? new Set((args[1] as unknown[]).map((c) => String(c).toLowerCase())) : null;
    const counts = new Map<string, number>();
    for (const e of (answer as { events: { class: string }[] }).events) {
      if (asked && !asked.has('*') && !asked.has(e.class.toLowerCase())) return `an event of class ${e.class.slice(0, 64)}, not asked for`;
      counts.set(e.class, (counts.get(e.class) ?? 0) + 1);
    }
    for (const [c, n] of counts) if (n > limitOf(c)) return `${n} ${c} events in one answer, more than the limit (${limitOf(c)})`;
  }
  return null;
}

export interface AnswerProblem {
  code: 'INVALID_ANSWER' | 'TOO_MANY_RECORDS';
  detail: string;
}

/** What is wrong with a method's answer (the first few issues), or null when it has the shape and size. */
export function answerProblem(method: string, answer: unknown, limits: AnswerLimits, args: readonly unknown[] = []): AnswerProblem | null {
  const schema = answerSchema(method);
  if (!schema) return null;
  const r = schema.safeParse(answer);
  if (r.success) {
    const count = countProblem(method, answer, limits, args);
    return count === null ? null : { code: 'TOO_MANY_RECORDS', detail: count };
  }
  const shown = r.error.issues.slice(0, 3).map((i) => `${i.path.map(String).join('.') || '(answer)'}: ${i.message}`);
  const more = r.error.issues.length - shown.length;
  return { code: 'INVALID_ANSWER', detail: `${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}` };
}
