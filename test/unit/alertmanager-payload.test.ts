/**
 * Alertmanager's webhook payload (v4) as remediation/alertmanager.ts reads it, and the webhook's bearer
 * token (remediation/token.ts): loading, permissions, constant-time matching.
 *
 * The fixtures in test/fixtures/alertmanager are byte for byte what Alertmanager 0.2x's webhook
 * notifier writes (notify/webhook/webhook.go: template.Data's fields, then version, groupKey,
 * truncatedAlerts; Go's encoding/json: map keys sorted, &<> escaped, a trailing newline):
 * - grouped-firing.json: one group (alertname, pool) of three firing alerts, endsAt unset;
 * - repeated.json: the same group sent again, by the second Alertmanager of an HA pair (only
 *   externalURL differs: same fingerprints and startsAt, which is what the intake deduplicates on);
 * - resolved.json: two of them resolved, endsAt set;
 * - truncated.json: max_alerts 2 on a group of five (truncatedAlerts 3).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import {
  alertmanagerPayload,
  alertTargets,
  alertTimeMs,
  GO_ZERO_TIME,
  isUnsetTime,
  PAYLOAD_LIMITS,
  type AlertmanagerPayload,
} from '../../remediation/alertmanager.ts';
import { loadToken, MAX_TOKEN_BYTES, tokenMatches, TokenError, tokenSourceSchema } from '../../remediation/token.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/alertmanager');
const fixtureText = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const fixture = (name: string): AlertmanagerPayload => JSON.parse(fixtureText(name)) as AlertmanagerPayload;
const clone = <T>(v: T): T => structuredClone(v);

/** The issues of a refused payload, as "path: message". */
function issues(v: unknown): string[] {
  const r = alertmanagerPayload.safeParse(v);
  expect(r.success, 'expected the payload to be refused').toBe(false);
  return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('the fixtures', () => {
  const names = readdirSync(FIXTURES).filter((n) => n.endsWith('.json'));

  it('are the four cases, each as Go encodes it', () => {
    expect(names.sort()).toEqual(['grouped-firing.json', 'repeated.json', 'resolved.json', 'truncated.json']);
    for (const n of names) {
      const text = fixtureText(n);
      expect(text.endsWith('}\n'), n).toBe(true);
      expect(text.split('\n')).toHaveLength(2);
      // Go's HTML-safe escapes: no raw & < > anywhere.
      expect(text, n).not.toMatch(/[&<>]/);
      // Field order: template.Data's, then Message's own.
      expect(Object.keys(JSON.parse(text) as object), n).toEqual([
        'receiver',
        'status',
        'alerts',
        'groupLabels',
        'commonLabels',
        'commonAnnotations',
        'externalURL',
        'version',
        'groupKey',
        'truncatedAlerts',
      ]);
    }
  });

  it.each(['grouped-firing.json', 'repeated.json', 'resolved.json', 'truncated.json'])(
    '%s is a valid v4 payload, unchanged by parsing',
    (n) => {
      const raw = fixture(n);
      const r = alertmanagerPayload.safeParse(raw);
      expect(r.success, r.success ? '' : JSON.stringify(r.error.issues)).toBe(true);
      expect(r.data).toEqual(raw);
    },
  );

  it('a repeat carries the same keys (fingerprint, startsAt, status) as the first send', () => {
    const keys = (p: AlertmanagerPayload) => alertTargets(p).map((t) => [t.fingerprint, t.startsAt, t.status]);
    expect(keys(fixture('repeated.json'))).toEqual(keys(fixture('grouped-firing.json')));
    expect(fixture('repeated.json').groupKey).toBe(fixture('grouped-firing.json').groupKey);
  });
});

describe('alertmanagerPayload', () => {
  const base = fixture('grouped-firing.json');

  it('ignores the keys it does not know, at the top and in alerts', () => {
    const p = { ...clone(base), newField: { nested: [1, 2] }, telemetry: null } as Record<string, unknown>;
    (p.alerts as Record<string, unknown>[])[0]!.silencedBy = ['x'];
    const r = alertmanagerPayload.parse(p);
    expect(r).toEqual(base);
  });

  it('refuses another version, with a message that names the one it reads', () => {
    for (const version of ['3', '5', 4, null, undefined]) {
      const p = { ...clone(base), version };
      expect(issues(p)).toEqual([
        version === undefined
          ? 'version: version is missing'
          : 'version: version must be "4" (the only Alertmanager webhook payload version xenha reads)',
      ]);
    }
  });

  it('refuses a status other than firing or resolved, at the top and in an alert', () => {
    const p = clone(base) as unknown as { status: string; alerts: { status: unknown }[] };
    p.status = 'FIRING';
    p.alerts[1]!.status = 'pending';
    expect(issues(p)).toEqual(['status: status must be "firing" or "resolved"', 'alerts.1.status: status must be "firing" or "resolved"']);
  });

  it('refuses timestamps that are not RFC 3339 as Go prints them, and an unset startsAt', () => {
    const bad = [
      '2024-05-14 09:12:41Z',
      '2024-05-14T09:12:41',
      '2024-02-30T00:00:00Z',
      '2024-05-14T24:00:00Z',
      '2024-05-14t09:12:41z',
      '1715677961',
      '',
    ];
    for (const s of bad) {
      const p = clone(base);
      p.alerts[0]!.startsAt = s;
      expect(issues(p)).toEqual([
        `alerts.0.startsAt: startsAt must be an RFC 3339 timestamp such as "2024-05-01T12:00:00.123Z" (0001-01-01T00:00:00Z for unset), not ${JSON.stringify(s)}`,
      ]);
    }
    const p = clone(base) as unknown as { alerts: Record<string, unknown>[] };
    p.alerts[0]!.endsAt = 1715677961000;
    p.alerts[1]!.startsAt = GO_ZERO_TIME;
    delete p.alerts[2]!.endsAt;
    expect(issues(p)).toEqual([
      'alerts.0.endsAt: endsAt must be an RFC 3339 timestamp string',
      'alerts.1.startsAt: startsAt is unset (Alertmanager always sets it)',
      'alerts.2.endsAt: endsAt is missing',
    ]);
  });

  it('refuses label maps that are not maps of strings, or too large', () => {
    const p = clone(base) as unknown as Record<string, unknown> & { alerts: Record<string, unknown>[] };
    p.groupLabels = ['alertname'];
    p.commonLabels = Object.fromEntries(Array.from({ length: PAYLOAD_LIMITS.labels + 1 }, (_, i) => [`l${i}`, 'v']));
    p.alerts[0]!.labels = { pool: 7 };
    p.alerts[1]!.labels = { host: 'x'.repeat(PAYLOAD_LIMITS.labelValueBytes + 1) };
    p.alerts[2]!.labels = JSON.parse('{"__proto__": "x"}');
    p.commonAnnotations = null;
    expect(issues(p)).toEqual([
      'groupLabels: groupLabels must be an object of strings',
      `commonLabels: commonLabels has ${PAYLOAD_LIMITS.labels + 1} entries, more than ${PAYLOAD_LIMITS.labels}`,
      'commonAnnotations: commonAnnotations must be an object of strings',
      'alerts.0.labels.pool: labels values must be strings',
      `alerts.1.labels.host: a value in labels is longer than ${PAYLOAD_LIMITS.labelValueBytes} bytes`,
      'alerts.2.labels: labels may not have a name "__proto__"',
    ]);
  });

  it('counts label values in UTF-8 bytes', () => {
    const p = clone(base);
    p.alerts[0]!.labels.host = 'é'.repeat(PAYLOAD_LIMITS.labelValueBytes / 2);
    expect(alertmanagerPayload.safeParse(p).success).toBe(true);
    p.alerts[0]!.labels.host += 'é';
    expect(issues(p)).toEqual([`alerts.0.labels.host: a value in labels is longer than ${PAYLOAD_LIMITS.labelValueBytes} bytes`]);
  });

  it('refuses a bad fingerprint, truncatedAlerts, groupKey and alert list', () => {
    const p = clone(base) as unknown as Record<string, unknown> & { alerts: Record<string, unknown>[] };
    p.alerts[0]!.fingerprint = 'C3D4A19BE1F20A77';
    p.alerts[1]!.fingerprint = 42;
    p.truncatedAlerts = -1;
    p.groupKey = '';
    expect(issues(p)).toEqual([
      'groupKey: groupKey is empty',
      'truncatedAlerts: truncatedAlerts may not be negative',
      'alerts.0.fingerprint: fingerprint must be 16 lowercase hex digits, as Alertmanager prints it',
      'alerts.1.fingerprint: fingerprint must be a string',
    ]);
    expect(issues({ ...clone(base), alerts: [] })).toEqual(['alerts: alerts is empty (Alertmanager never notifies without an alert)']);
    expect(issues({ ...clone(base), alerts: Array.from({ length: PAYLOAD_LIMITS.alerts + 1 }, () => base.alerts[0]) })).toEqual([
      `alerts: more than ${PAYLOAD_LIMITS.alerts} alerts in one notification`,
    ]);
    expect(issues({ ...clone(base), alerts: [null, 'x'] })).toEqual([
      'alerts.0: an alert must be an object',
      'alerts.1: an alert must be an object',
    ]);
    expect(issues({ ...clone(base), truncatedAlerts: 1.5 })).toEqual(['truncatedAlerts: truncatedAlerts must be a whole number']);
  });

  it('refuses what is not an object, and says which fields are missing', () => {
    for (const v of [null, [], 'x', 4, true]) expect(issues(v)).toEqual([': the payload must be a JSON object']);
    expect(issues({})).toEqual([
      'version: version is missing',
      'groupKey: groupKey is missing',
      'truncatedAlerts: truncatedAlerts is missing',
      'status: status is missing',
      'receiver: receiver is missing',
      'groupLabels: groupLabels is missing',
      'commonLabels: commonLabels is missing',
      'commonAnnotations: commonAnnotations is missing',
      'externalURL: externalURL is missing',
      'alerts: alerts is missing',
    ]);
  });

  // A payload Alertmanager could send: any labels within the bounds, any two statuses, any RFC 3339 time.
  const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,20}$/).filter((k) => k !== '__proto__');
  const labelMap = fc.dictionary(labelName, fc.string({ maxLength: 40 }), { maxKeys: 10 });
  const time = fc
    .date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
    .map((d) => d.toISOString());
  const alert = fc.record({
    status: fc.constantFrom('firing', 'resolved'),
    labels: labelMap,
    annotations: labelMap,
    startsAt: time.filter((t) => !isUnsetTime(t)),
    endsAt: fc.oneof(fc.constant(GO_ZERO_TIME), time),
    generatorURL: fc.webUrl(),
    fingerprint: fc.stringMatching(/^[0-9a-f]{16}$/),
  });
  test.prop([
    fc.record({
      version: fc.constant('4'),
      groupKey: fc.string({ minLength: 1, maxLength: 80 }),
      truncatedAlerts: fc.nat(),
      status: fc.constantFrom('firing', 'resolved'),
      receiver: fc.string({ maxLength: 40 }),
      groupLabels: labelMap,
      commonLabels: labelMap,
      commonAnnotations: labelMap,
      externalURL: fc.webUrl(),
      alerts: fc.array(alert, { minLength: 1, maxLength: 5 }),
    }),
  ])('accepts every payload within the bounds, unchanged', (p) => {
    expect(alertmanagerPayload.parse(JSON.parse(JSON.stringify(p)))).toEqual(p);
  });
});

describe('alertTimeMs', () => {
  it('reads Go RFC3339Nano in any zone, and says unset for the zero time', () => {
    expect(alertTimeMs('2024-05-14T09:12:41Z')).toBe(Date.UTC(2024, 4, 14, 9, 12, 41));
    expect(alertTimeMs('2024-05-14T09:12:41.529318764Z')).toBe(Date.UTC(2024, 4, 14, 9, 12, 41, 529));
    expect(alertTimeMs('2024-05-14T11:12:41.5+02:00')).toBe(Date.UTC(2024, 4, 14, 9, 12, 41, 500));
    expect(alertTimeMs('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29));
    expect(alertTimeMs(GO_ZERO_TIME)).toBe(-62135596800000);
    expect(isUnsetTime(GO_ZERO_TIME)).toBe(true);
    expect(isUnsetTime('2024-05-14T09:12:41Z')).toBe(false);
    // The zero time in other zones is the same instant, written in year 1 or year 0.
    expect(isUnsetTime('0001-01-01T01:00:00+01:00')).toBe(true);
    expect(isUnsetTime('0000-12-31T23:00:00-01:00')).toBe(true);
    expect(isUnsetTime('0001-01-01T00:00:01Z')).toBe(false);
    for (const s of [
      '2023-02-29T00:00:00Z',
      '2024-05-14T09:60:00Z',
      '2024-05-14T09:12:60Z',
      '2024-13-01T00:00:00Z',
      '2024-05-14T09:12:41+24:00',
    ])
      expect(alertTimeMs(s), s).toBeUndefined();
  });

  test.prop([fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true })])(
    'agrees with Date on every ISO time',
    (d) => {
      expect(alertTimeMs(d.toISOString())).toBe(d.getTime());
    },
  );
});

describe('alertTargets', () => {
  it('reads pool, host, host_uuid and alertname of each alert, in order', () => {
    expect(alertTargets(fixture('grouped-firing.json'))).toEqual([
      {
        fingerprint: 'c3d4a19be1f20a77',
        status: 'firing',
        startsAt: '2024-05-14T09:12:41.529Z',
        endsAt: null,
        pool: 'lab',
        host: 'host-02',
        hostUuid: '5e0c4f4e-0f3b-4d62-9e0a-4a1d2f7b3c12',
        alertname: 'XenhaHostDead',
      },
      {
        fingerprint: '1f0e9d8c7b6a5f43',
        status: 'firing',
        startsAt: '2024-05-14T09:12:41.529Z',
        endsAt: null,
        pool: 'lab',
        host: 'host-03',
        hostUuid: '9b2f6a51-7c1e-4f0d-8a3b-6e5d4c3b2a19',
        alertname: 'XenhaHostDead',
      },
      {
        fingerprint: '8e7a6b5c4d3e2f10',
        status: 'firing',
        startsAt: '2024-05-14T09:12:56.529318764Z',
        endsAt: null,
        pool: 'lab',
        host: 'host-04',
        alertname: 'XenhaHostDead',
      },
    ]);
  });

  it('gives a resolved alert its end', () => {
    expect(alertTargets(fixture('resolved.json')).map((t) => [t.status, t.endsAt])).toEqual([
      ['resolved', '2024-05-14T09:31:11.529Z'],
      ['resolved', '2024-05-14T09:31:26.529Z'],
    ]);
  });

  it('leaves out missing and empty labels (Prometheus: an empty label is no label), and reads nothing from the prototype', () => {
    const p = fixture('truncated.json');
    p.alerts[0]!.labels = { host: '', pool: 'lab', constructor: 'c' };
    p.alerts[1]!.labels = {};
    const t = alertTargets(alertmanagerPayload.parse(p));
    expect(t[0]).toEqual({
      fingerprint: 'c3d4a19be1f20a77',
      status: 'firing',
      startsAt: '2024-05-14T09:12:41.529Z',
      endsAt: null,
      pool: 'lab',
    });
    expect(Object.keys(t[1]!).sort()).toEqual(['endsAt', 'fingerprint', 'startsAt', 'status']);
    expect(fixture('truncated.json').truncatedAlerts).toBe(3);
  });
});

describe('tokenMatches', () => {
  const token = Buffer.from('s3cr3t-t0ken_value.~+/=');

  it('accepts exactly "Bearer <token>", the scheme in any case', () => {
    expect(tokenMatches(`Bearer ${token.toString()}`, token)).toBe(true);
    expect(tokenMatches(`bearer ${token.toString()}`, token)).toBe(true);
    expect(tokenMatches(`BEARER ${token.toString()}`, token)).toBe(true);
  });

  it('refuses a wrong token, another length, a missing or other scheme, extra spaces, no header', () => {
    const t = token.toString();
    for (const h of [
      `Bearer ${t.slice(0, -1)}x`,
      `Bearer ${t}x`,
      `Bearer ${t.slice(0, -1)}`,
      `Bearer ${t.toUpperCase()}`,
      t,
      `Basic ${t}`,
      `Token ${t}`,
      `Bearer  ${t}`,
      `Bearer ${t} `,
      `Bearer\t${t}`,
      `Bearer`,
      `Bearer `,
      '',
      undefined,
    ])
      expect(tokenMatches(h, token), JSON.stringify(h)).toBe(false);
  });

  it('matches nothing with an empty token', () => {
    expect(tokenMatches('Bearer ', Buffer.alloc(0))).toBe(false);
    expect(tokenMatches('Bearer x', Buffer.alloc(0))).toBe(false);
  });

  test.prop([fc.string({ minLength: 1, maxLength: 64 }), fc.string({ minLength: 1, maxLength: 64 })])(
    'matches exactly when the candidate is the token',
    (a, b) => {
      const tok = Buffer.from(a, 'latin1');
      expect(tokenMatches(`Bearer ${b}`, tok)).toBe(Buffer.from(b, 'latin1').equals(tok));
      expect(tokenMatches(`Bearer ${a}`, tok)).toBe(true);
    },
  );
});

describe('loadToken', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xenha-token-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const file = (content: string | Buffer, mode = 0o600): string => {
    const p = join(dir, `token-${n++}`);
    writeFileSync(p, content);
    chmodSync(p, mode);
    return p;
  };

  it('reads a 0600 or 0400 file, its trailing newline trimmed', async () => {
    expect((await loadToken({ tokenFile: file('abc123\n') })).toString()).toBe('abc123');
    expect((await loadToken({ tokenFile: file('abc123\r\n', 0o400) })).toString()).toBe('abc123');
    expect((await loadToken({ tokenFile: file('abc123') })).toString()).toBe('abc123');
    const long = 'x'.repeat(MAX_TOKEN_BYTES);
    expect((await loadToken({ tokenFile: file(`${long}\n`) })).toString()).toBe(long);
  });

  it('follows a symlink and checks the file it points to', async () => {
    const target = file('abc123\n');
    const link = join(dir, 'link');
    symlinkSync(target, link);
    expect((await loadToken({ tokenFile: link })).toString()).toBe('abc123');
    chmodSync(target, 0o644);
    await expect(loadToken({ tokenFile: link })).rejects.toThrow('permissions 0644 are too open');
  });

  it('refuses a file accessible by group or others, like ssh', async () => {
    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o606, 0o610, 0o601]) {
      const p = file('abc123\n', mode);
      const m = mode.toString(8).padStart(4, '0');
      await expect(loadToken({ tokenFile: p })).rejects.toThrow(
        `token file ${p}: permissions ${m} are too open. The token file must not be accessible by group or others: chmod 600 ${p}`,
      );
    }
  });

  it('refuses an empty, oversized, missing or odd file', async () => {
    await expect(loadToken({ tokenFile: file('') })).rejects.toThrow(/is empty$/);
    await expect(loadToken({ tokenFile: file('\n\n') })).rejects.toThrow(/is empty$/);
    await expect(loadToken({ tokenFile: file('x'.repeat(MAX_TOKEN_BYTES + 1)) })).rejects.toThrow(
      `is longer than ${MAX_TOKEN_BYTES} bytes`,
    );
    await expect(loadToken({ tokenFile: file('x'.repeat(64 * 1024)) })).rejects.toThrow(`is larger than ${MAX_TOKEN_BYTES} bytes`);
    await expect(loadToken({ tokenFile: file('two words\n') })).rejects.toThrow('a character an HTTP Authorization header cannot carry');
    await expect(loadToken({ tokenFile: file('tökén\n') })).rejects.toThrow('a character an HTTP Authorization header cannot carry');
    await expect(loadToken({ tokenFile: join(dir, 'absent') })).rejects.toThrow(`token file ${join(dir, 'absent')}: no such file`);
    await expect(loadToken({ tokenFile: dir })).rejects.toThrow('is not a regular file');
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    await expect(loadToken({ tokenFile: fifo })).rejects.toThrow('is not a regular file');
    await expect(loadToken({ tokenFile: file('') })).rejects.toBeInstanceOf(TokenError);
  });

  it('reads an environment variable, refusing it unset or empty', async () => {
    expect((await loadToken({ tokenEnv: 'XENHA_T' }, { XENHA_T: 'abc' })).toString()).toBe('abc');
    await expect(loadToken({ tokenEnv: 'XENHA_T' }, {})).rejects.toThrow('environment variable XENHA_T (tokenEnv) is not set');
    await expect(loadToken({ tokenEnv: 'XENHA_T' }, { XENHA_T: '' })).rejects.toThrow('environment variable XENHA_T (tokenEnv) is empty');
  });

  it('is named in the config by file or variable, never inline', () => {
    expect(tokenSourceSchema.parse({ tokenFile: '/etc/xenha/token' })).toEqual({ tokenFile: '/etc/xenha/token' });
    expect(tokenSourceSchema.parse({ tokenEnv: 'XENHA_WEBHOOK_TOKEN' })).toEqual({ tokenEnv: 'XENHA_WEBHOOK_TOKEN' });
    const inline = tokenSourceSchema.safeParse({ token: 'abc', tokenFile: '/x' });
    expect(inline.error?.issues.map((i) => i.message)).toEqual([
      'the token is never written in the config: put it in a file (tokenFile, mode 0600) or an environment variable (tokenEnv)',
    ]);
    expect(tokenSourceSchema.safeParse({}).error?.issues.map((i) => i.message)).toEqual([
      'exactly one of tokenFile and tokenEnv is required',
    ]);
    expect(tokenSourceSchema.safeParse({ tokenFile: '/x', tokenEnv: 'Y' }).success).toBe(false);
  });
});
