/**
 * Alertmanager's webhook payload, version "4" (prometheus/alertmanager notify/webhook/webhook.go: a
 * `Message` is template.Data — receiver, status, alerts, groupLabels, commonLabels, commonAnnotations,
 * externalURL — plus version, groupKey and truncatedAlerts), and what the remediation reads from it.
 *
 * Unknown keys are ignored (stripped): Alertmanager adds fields across releases. Every field we use is
 * checked strictly — types, the two statuses, RFC 3339 timestamps as Go prints them, the 16-hex
 * fingerprint — and every map and list is bounded, so that a notification that parses is one the
 * service can hold and journal. Go's zero time "0001-01-01T00:00:00Z" is how Alertmanager says "unset"
 * (a firing alert's endsAt is always that: types.Alerts hides an end that is not reached yet).
 */
import { z } from 'zod';

/** Bounds of one notification (Alertmanager's own output stays far below them). */
export const PAYLOAD_LIMITS = {
  /** Alerts per notification (Alertmanager's `max_alerts` truncates above its own limit). */
  alerts: 1000,
  /** Entries of one label map (an alert's labels, groupLabels, commonLabels). */
  labels: 64,
  /** Bytes (UTF-8) of a label name. */
  labelNameBytes: 256,
  /** Bytes (UTF-8) of a label value. */
  labelValueBytes: 1024,
  /** Entries of one annotation map (annotations, commonAnnotations). */
  annotations: 64,
  /** Bytes (UTF-8) of an annotation value: descriptions and runbook texts are longer than labels. */
  annotationValueBytes: 16 * 1024,
  /** Bytes (UTF-8) of each other string (receiver, groupKey, URLs). */
  stringBytes: 8 * 1024,
} as const;

/** Go's zero time.Time as encoding/json prints it: Alertmanager's "unset". */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z';
/** Go's zero time in milliseconds since the epoch. */
const GO_ZERO_MS = ((): number => {
  const d = new Date(0);
  d.setUTCFullYear(1, 0, 1);
  return d.getTime();
})();

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/**
 * Milliseconds since the epoch of an RFC 3339 timestamp as Go's time.Time marshals it (RFC3339Nano:
 * "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.123456789+02:00"), sub-millisecond digits truncated;
 * undefined when it is not one (a calendar date that does not exist, second 60, lowercase T/Z, no zone).
 */
export function alertTimeMs(s: string): number | undefined {
  // Every firing alert's endsAt is Go's zero time: known without a parse.
  if (s === GO_ZERO_TIME) return GO_ZERO_MS;
  // The pattern checks the shape; the fields sit at fixed offsets (the webhook's hot path: no match array).
  if (!RFC3339.test(s)) return undefined;
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 7);
  const day = digits(s, 8, 10);
  const hour = digits(s, 11, 13);
  const minute = digits(s, 14, 16);
  const second = digits(s, 17, 19);
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  if (month < 1 || month > 12) return undefined;
  const days = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!;
  if (day < 1 || day > days || hour > 23 || minute > 59 || second > 59) return undefined;
  // After the seconds: an optional fraction (".", 1 to 9 digits), then "Z" or "±hh:mm".
  let at = 19;
  let frac = 0;
  if (s.charCodeAt(at) === 0x2e) {
    const start = ++at;
    while (at < s.length && s.charCodeAt(at) >= 0x30 && s.charCodeAt(at) <= 0x39) at++;
    // Milliseconds: the first three digits, missing ones as zeros; finer digits truncated.
    const k = Math.min(3, at - start);
    frac = digits(s, start, start + k) * 10 ** (3 - k);
  }
  let offsetMin = 0;
  if (s.charCodeAt(at) !== 0x5a) {
    const oh = digits(s, at + 1, at + 3);
    const om = digits(s, at + 4, at + 6);
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (s.charCodeAt(at) === 0x2d ? -1 : 1) * (oh * 60 + om);
  }
  // Date.UTC maps years 0–99 to 1900–1999: for those, set the full year explicitly (Go's zero time is year 1).
  let ms: number;
  if (year >= 100) ms = Date.UTC(year, month - 1, day, hour, minute, second);
  else {
    const d = new Date(0);
    d.setUTCFullYear(year, month - 1, day);
    d.setUTCHours(hour, minute, second, 0);
    ms = d.getTime();
  }
  return ms + frac - offsetMin * 60_000;
}

/** The decimal number of s's characters from `from` to `to` (digits, as the pattern has checked). */
function digits(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n = n * 10 + (s.charCodeAt(i) - 0x30);
  return n;
}

/** True when the timestamp is Go's zero time (in any zone notation): "unset". */
export function isUnsetTime(s: string): boolean {
  // Go's zero time is in year 1 in every zone (offsets are under a day): a string of another year is not it.
  return (s.startsWith('0001-') || s.startsWith('0000-')) && alertTimeMs(s) === GO_ZERO_MS;
}

/** Whether a string's UTF-8 form is at most `max` bytes (a UTF-16 unit is at most 3 bytes: short strings are not measured). */
const fitsBytes = (s: string, max: number): boolean => s.length * 3 <= max || Buffer.byteLength(s, 'utf8') <= max;

/** A type error that says "missing" for an absent field and what was expected otherwise. */
const expect = (what: string, expected: string) => ({
  error: (iss: { input?: unknown }) => (iss.input === undefined ? `${what} is missing` : `${what} must be ${expected}`),
});

const boundedString = (what: string, maxBytes: number = PAYLOAD_LIMITS.stringBytes) =>
  z.string(expect(what, 'a string')).refine((s) => fitsBytes(s, maxBytes), `${what} is longer than ${maxBytes} bytes`);

/** An RFC 3339 timestamp as Go prints it; `mayBeUnset: false` also refuses Go's zero time. Parsed once. */
const timestamp = (what: string, mayBeUnset = true) =>
  z.string(expect(what, 'an RFC 3339 timestamp string')).check((ctx) => {
    const ms = alertTimeMs(ctx.value);
    if (ms === undefined)
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        message: `${what} must be an RFC 3339 timestamp such as "2024-05-01T12:00:00.123Z" (${GO_ZERO_TIME} for unset), not ${JSON.stringify(ctx.value.slice(0, 64))}`,
      });
    else if (!mayBeUnset && ms === GO_ZERO_MS)
      ctx.issues.push({ code: 'custom', input: ctx.value, message: `${what} is unset (Alertmanager always sets it)` });
  });

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A map of strings (Go's template.KV) with bounded size, names and values, checked in one pass over the
 * raw object (the webhook's hot path: a superRefine piped into z.record cost several times more). The
 * entry count and the name "__proto__" (which a JavaScript object cannot hold as a plain key) are
 * checked before anything else; the value is a fresh copy holding only the map's own entries (readers
 * look names up with Object.hasOwn).
 */
function stringMap(what: string, maxEntries: number, maxValueBytes: number) {
  return z.unknown().transform((v, ctx): Record<string, string> => {
    if (!isRecord(v)) {
      ctx.addIssue({ code: 'custom', message: v === undefined ? `${what} is missing` : `${what} must be an object of strings` });
      return z.NEVER;
    }
    const keys = Object.keys(v);
    if (keys.length > maxEntries) {
      ctx.addIssue({ code: 'custom', message: `${what} has ${keys.length} entries, more than ${maxEntries}` });
      return z.NEVER;
    }
    const out: Record<string, string> = {};
    let ok = true;
    for (const k of keys) {
      if (k === '') {
        ctx.addIssue({ code: 'custom', message: `${what} has an empty name` });
        ok = false;
      } else if (k === '__proto__') {
        ctx.addIssue({ code: 'custom', message: `${what} may not have a name "__proto__"` });
        ok = false;
      } else if (fitsBytes(k, PAYLOAD_LIMITS.labelNameBytes) === false) {
        ctx.addIssue({ code: 'custom', message: `${what} has a name longer than ${PAYLOAD_LIMITS.labelNameBytes} bytes` });
        ok = false;
      }
    }
    if (!ok) return z.NEVER;
    for (const k of keys) {
      const value = v[k];
      if (typeof value !== 'string') {
        ctx.addIssue({ code: 'custom', message: `${what} values must be strings`, path: [k] });
        ok = false;
      } else if (!fitsBytes(value, maxValueBytes)) {
        ctx.addIssue({ code: 'custom', message: `a value in ${what} is longer than ${maxValueBytes} bytes`, path: [k] });
        ok = false;
      } else out[k] = value;
    }
    return ok ? out : z.NEVER;
  });
}

const labels = (what: string) => stringMap(what, PAYLOAD_LIMITS.labels, PAYLOAD_LIMITS.labelValueBytes);
const annotations = (what: string) => stringMap(what, PAYLOAD_LIMITS.annotations, PAYLOAD_LIMITS.annotationValueBytes);

const status = (what: string) => z.enum(['firing', 'resolved'], expect(what, '"firing" or "resolved"'));

export const alertmanagerAlert = z.object(
  {
    status: status('status'),
    labels: labels('labels'),
    annotations: annotations('annotations'),
    startsAt: timestamp('startsAt', false),
    endsAt: timestamp('endsAt'),
    generatorURL: boundedString('generatorURL'),
    /** model.Fingerprint.String(): "%016x" of the label set's hash. */
    fingerprint: z
      .string(expect('fingerprint', 'a string'))
      .regex(/^[0-9a-f]{16}$/, 'fingerprint must be 16 lowercase hex digits, as Alertmanager prints it'),
  },
  expect('an alert', 'an object'),
);

export const alertmanagerPayload = z.object(
  {
    version: z.literal('4', expect('version', '"4" (the only Alertmanager webhook payload version xenha reads)')),
    groupKey: boundedString('groupKey').refine((s) => s.length > 0, 'groupKey is empty'),
    truncatedAlerts: z
      .number(expect('truncatedAlerts', 'a number'))
      .int('truncatedAlerts must be a whole number')
      .min(0, 'truncatedAlerts may not be negative'),
    status: status('status'),
    receiver: boundedString('receiver'),
    groupLabels: labels('groupLabels'),
    commonLabels: labels('commonLabels'),
    commonAnnotations: annotations('commonAnnotations'),
    externalURL: boundedString('externalURL'),
    alerts: z
      .array(alertmanagerAlert, expect('alerts', 'an array'))
      .min(1, 'alerts is empty (Alertmanager never notifies without an alert)')
      .max(PAYLOAD_LIMITS.alerts, `more than ${PAYLOAD_LIMITS.alerts} alerts in one notification`),
  },
  expect('the payload', 'a JSON object'),
);

export type AlertmanagerPayload = z.infer<typeof alertmanagerPayload>;
export type AlertmanagerAlert = z.infer<typeof alertmanagerAlert>;
export type AlertStatus = AlertmanagerAlert['status'];

/** What the remediation reads from one alert. */
export interface AlertTarget {
  fingerprint: string;
  status: AlertStatus;
  /** As sent (RFC 3339); with fingerprint, the alert's identity across Alertmanager's resends. */
  startsAt: string;
  /** As sent, or null when unset (Go's zero time: always so for a firing alert). */
  endsAt: string | null;
  /** Labels `pool`, `host`, `host_uuid`, `alertname`; absent when missing or empty (Prometheus: an empty label is no label). */
  pool?: string;
  host?: string;
  hostUuid?: string;
  alertname?: string;
}

/** The alerts of a notification as targets, in the payload's order. Pure. */
export function alertTargets(payload: AlertmanagerPayload): AlertTarget[] {
  return payload.alerts.map((a) => {
    const t: AlertTarget = {
      fingerprint: a.fingerprint,
      status: a.status,
      startsAt: a.startsAt,
      endsAt: isUnsetTime(a.endsAt) ? null : a.endsAt,
    };
    const label = (name: string): string | undefined =>
      Object.hasOwn(a.labels, name) && a.labels[name] !== '' ? a.labels[name] : undefined;
    const pool = label('pool');
    const host = label('host');
    const hostUuid = label('host_uuid');
    const alertname = label('alertname');
    if (pool !== undefined) t.pool = pool;
    if (host !== undefined) t.host = host;
    if (hostUuid !== undefined) t.hostUuid = hostUuid;
    if (alertname !== undefined) t.alertname = alertname;
    return t;
  });
}
