import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExporterConfig, resolvePassword } from '../../exporter/config.ts';

const good = `
listen: 0.0.0.0:9945
pools:
  - name: prod-a
    urls: [https://10.0.0.1, https://10.0.0.2]
    passwordFile: /etc/xenha/prod-a.password
    probes:
      network-tcp: { port: 443 }
      storage-statefile:
        devices:
          - { home: a, path: /dev/disk/by-id/dm-uuid-mpath-36001 }
    timing:
      sampleInterval: 2s
      deadAfter: 1m
`;

describe('exporter config', () => {
  it('parses durations, defaults and probe options', () => {
    const c = parseExporterConfig(good);
    const p = c.pools[0]!;
    expect(p.timing).toMatchObject({ sampleInterval: 2000, deadAfter: 60_000, probeTimeout: 800, confirmSamples: 2 });
    expect(p.user).toBe('root');
    expect(p.probes).toEqual({
      'network-tcp': { port: 443 },
      'storage-statefile': {
        devices: [{ home: 'a', path: '/dev/disk/by-id/dm-uuid-mpath-36001' }],
        readMode: 'auto',
      },
    });
  });

  it("leaves deadAfter and the statefile probe's windows unset unless given: they follow the pool's HA timeout", () => {
    const c = parseExporterConfig(
      'pools: [{name: a, urls: ["http://h"], passwordEnv: P, probes: {network-tcp: {}, storage-statefile: {devices: [{home: a, path: /x}]}}}]',
    );
    const p = c.pools[0]!;
    expect(p.timing.deadAfter).toBeUndefined();
    expect(p.probes['storage-statefile']).toEqual({ devices: [{ home: 'a', path: '/x' }], readMode: 'auto' });
    const set = parseExporterConfig(
      'pools: [{name: a, urls: ["http://h"], passwordEnv: P, timing: {deadAfter: 45s}, probes: {network-tcp: {}, storage-statefile: {devices: [{home: a, path: /x}], stallAfterMs: 5000, peerHeartbeatTimeoutMs: 7000}}}]',
    ).pools[0]!;
    expect(set.timing.deadAfter).toBe(45_000);
    expect(set.probes['storage-statefile']).toMatchObject({ stallAfterMs: 5000, peerHeartbeatTimeoutMs: 7000 });
    // The option it replaces is refused by name, not silently ignored.
    expect(() =>
      parseExporterConfig(
        'pools: [{name: a, urls: ["http://h"], passwordEnv: P, probes: {network-tcp: {}, storage-statefile: {devices: [{home: a, path: /x}], statefileTimeoutMs: 5000}}}]',
      ),
    ).toThrow(/statefileTimeoutMs/);
  });

  it('enables network-tcp, network-xapi and storage-xapi when no probe is named', () => {
    const c = parseExporterConfig('pools: [{name: a, urls: ["http://127.0.0.1"], passwordEnv: P}]');
    expect(Object.keys(c.pools[0]!.probes)).toEqual(['network-tcp', 'network-xapi', 'storage-xapi']);
  });

  it('takes the limits in sizes and counts, with defaults sized for a 64-host pool', () => {
    const c = parseExporterConfig('pools: [{name: a, urls: ["http://h"], passwordEnv: P, limits: {maxAnswerBytes: 32MiB, maxHosts: 16}}]');
    expect(c.pools[0]!.limits).toEqual({ maxAnswerBytes: 32 * 2 ** 20, maxHosts: 16, maxRecords: 200_000 });
    const d = parseExporterConfig('pools: [{name: a, urls: ["http://h"], passwordEnv: P}]');
    expect(d.pools[0]!.limits).toEqual({ maxAnswerBytes: 8 * 2 ** 20, maxHosts: 64, maxRecords: 200_000 });
  });

  it('enables a probe named with no options (YAML null) with its defaults', () => {
    const c = parseExporterConfig(
      'pools: [{name: a, urls: ["http://127.0.0.1"], passwordEnv: P, probes: {network-tcp: null, storage-xapi: null}}]',
    );
    expect(c.pools[0]!.probes).toEqual({ 'network-tcp': {}, 'storage-xapi': {} });
  });
  it('reads the password from the environment or a file, with clear errors', () => {
    const c = parseExporterConfig('pools: [{name: a, urls: ["http://h"], passwordEnv: XENHA_PW}]');
    expect(resolvePassword(c.pools[0]!, { XENHA_PW: 's3cret' })).toBe('s3cret');
    expect(() => resolvePassword(c.pools[0]!, {})).toThrow('pool a: environment variable XENHA_PW is not set');
    const dir = mkdtempSync(join(tmpdir(), 'xenha-pw-'));
    writeFileSync(join(dir, 'pw'), 'from-file\n', { mode: 0o600 });
    const f = parseExporterConfig(`pools: [{name: b, urls: ["http://h"], passwordFile: ${join(dir, 'pw')}}]`);
    expect(resolvePassword(f.pools[0]!)).toBe('from-file');
    const missing = parseExporterConfig('pools: [{name: c, urls: ["http://h"], passwordFile: /nonexistent/pw}]');
    expect(() => resolvePassword(missing.pools[0]!)).toThrow(/pool c: cannot read passwordFile \/nonexistent\/pw/);
  });
});

/**
 * Every invalid config is a fixture file named for what it breaks (as blackbox_exporter's
 * config/testdata/invalid-*.yml); its first line says the error expected, as a regular expression.
 */
describe('invalid configs (test/fixtures/config/invalid-*.yml)', () => {
  const dir = join(import.meta.dirname, '../fixtures/config');
  const fixtures = readdirSync(dir)
    .filter((f) => /^invalid-.*\.yml$/.test(f))
    .sort();

  it('has a fixture for each rejection', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(50);
  });

  it.each(fixtures)('%s is refused with its reason', (file) => {
    const text = readFileSync(join(dir, file), 'utf8');
    const m = /^# error: (.+)$/m.exec(text.split('\n')[0]!);
    expect(m, `${file}: the first line must be "# error: <regular expression>"`).not.toBeNull();
    expect(() => parseExporterConfig(text, 'x.yaml')).toThrow(new RegExp(m![1]!));
  });
});
