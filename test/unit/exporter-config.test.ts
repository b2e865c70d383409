import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExporterConfig, probeOptions, resolvePassword } from '../../exporter/config.ts';

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
    expect(probeOptions(p)).toEqual([
      { name: 'network-tcp', options: { port: 443 } },
      { name: 'storage-statefile', options: { devices: [{ home: 'a', path: '/dev/disk/by-id/dm-uuid-mpath-36001' }], readMode: 'auto', peerHeartbeatTimeoutMs: 10_000 } },
    ]);
  });

  it('enables network-tcp, network-xapi and storage-xapi when no probe is named', () => {
    const c = parseExporterConfig('pools: [{name: a, urls: ["http://127.0.0.1"], passwordEnv: P}]');
    expect(Object.keys(c.pools[0]!.probes)).toEqual(['network-tcp', 'network-xapi', 'storage-xapi']);
  });

  it('names the bad key and its line', () => {
    const bad = good.replace('deadAfter: 1m', 'deadAfter: soon').replace('port: 443', 'port: 70000');
    expect(() => parseExporterConfig(bad, 'x.yaml')).toThrow(/pools\.0\.timing\.deadAfter \(line 14\): expected a duration/);
    expect(() => parseExporterConfig(bad, 'x.yaml')).toThrow(/pools\.0\.probes\.network-tcp\.port \(line 8\): Too big/);
  });

  it('refuses inline passwords, two sources, unknown probes and a timeout longer than the interval', () => {
    expect(() => parseExporterConfig('pools: [{name: a, urls: ["http://h"], password: x}]')).toThrow(/password/);
    expect(() => parseExporterConfig('pools: [{name: a, urls: ["http://h"], passwordEnv: A, passwordFile: /f}]')).toThrow(/exactly one of passwordEnv and passwordFile/);
    expect(() => parseExporterConfig('pools: [{name: a, urls: ["http://h"], passwordEnv: A, probes: {icmp: {}}}]')).toThrow(/unknown probe "icmp"/);
    expect(() => parseExporterConfig('pools: [{name: a, urls: ["http://h"], passwordEnv: A, timing: {sampleInterval: 1s, probeTimeout: 2s}}]')).toThrow(/probeTimeout must be shorter than sampleInterval/);
    expect(() => parseExporterConfig('pools: [{name: "a b", urls: ["http://h"], passwordEnv: A}]')).toThrow(/label value/);
    expect(() => parseExporterConfig('pools: [{name: a, urls: ["ftp://h"], passwordEnv: A}]')).toThrow(/urls/);
  });

  it('refuses values that would misbehave at run time', () => {
    const pool = (extra: string) => `pools: [{name: a, urls: ["http://h"], passwordEnv: A${extra}}]`;
    expect(() => parseExporterConfig(pool(', timing: {sampleInterval: 720h}'))).toThrow(/at most 24 days/);
    expect(() => parseExporterConfig(pool(', timing: {probeTimeout: 0}'))).toThrow(/probeTimeout must be at least 50ms/);
    expect(() => parseExporterConfig(pool(', timing: {xapiTimeout: 0}'))).toThrow(/xapiTimeout must be at least 500ms/);
    expect(() => parseExporterConfig(`listen: 127.0.0.1:99999\n${pool('')}`)).toThrow(/port must be 0..65535/);
    expect(() => parseExporterConfig(pool(', probes: {network-tcp: {}}'))).toThrow(/no storage probe enabled/);
    expect(() => parseExporterConfig(pool(', probes: {network-tcp: {}, storage-statefile: {devices: [{home: a, path: /x}, {home: a, path: /y}]}}'))).toThrow(/each device needs its own home/);
  });

  it('reads the password from the environment or a file, with clear errors', () => {
    const c = parseExporterConfig('pools: [{name: a, urls: ["http://h"], passwordEnv: XENHA_PW}]');
    expect(resolvePassword(c.pools[0]!, { XENHA_PW: 's3cret' })).toBe('s3cret');
    expect(() => resolvePassword(c.pools[0]!, {})).toThrow('pool a: environment variable XENHA_PW is not set');
    const dir = mkdtempSync(join(tmpdir(), 'xenha-pw-'));
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    const f = parseExporterConfig(`pools: [{name: b, urls: ["http://h"], passwordFile: ${join(dir, 'pw')}}]`);
    expect(resolvePassword(f.pools[0]!)).toBe('from-file');
    const missing = parseExporterConfig('pools: [{name: c, urls: ["http://h"], passwordFile: /nonexistent/pw}]');
    expect(() => resolvePassword(missing.pools[0]!)).toThrow(/pool c: cannot read passwordFile \/nonexistent\/pw/);
  });
});
