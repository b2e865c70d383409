/** A host's fence config (derived from the plugin map), and how fence-agent reads an agent's output. */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { FENCE_PLUGINS, FENCE_PLUGIN_NAMES, createFenceLevels, fenceConfig } from '../../plugins/fence/index.ts';
import { saysUnreachable, summarize } from '../../plugins/fence/fence-agent.ts';

const target = { pool: 'pool-a', hostUuid: 'uuid-1', hostName: 'host-01' };
const messages = (v: unknown) => fenceConfig.safeParse(v).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];

describe('fence config', () => {
  it('every plugin of the map, and only those, is a level', () => {
    expect(FENCE_PLUGIN_NAMES).toEqual(Object.keys(FENCE_PLUGINS).sort());
    expect(messages({ levels: [{ plugin: 'fence_ipmilan', options: {} }] })).toEqual([
      'levels.0.plugin: unknown fence plugin (available: fence-agent, manual)',
    ]);
  });

  it('reads the YAML of the docs: levels in order, each with its own options and defaults', () => {
    const config = fenceConfig.parse(
      parseYaml(`
levels:
  - plugin: fence-agent
    options:
      agent: /usr/sbin/fence_ipmilan
      args: { ip: 10.0.0.11, username: xenha, lanplus: true, ipport: 623 }
      passwordFile: /etc/xenha/secrets/bmc-host-01
  - plugin: fence-agent
    options:
      agent: /usr/sbin/fence_apc_snmp
      args: { ip: 10.0.0.200, plug: 7, snmp_version: 2c }
      secretFiles: { community: /etc/xenha/secrets/pdu-community }
      powerTimeoutMs: 20000
  - plugin: manual
`),
    );
    expect(config.levels).toEqual([
      {
        plugin: 'fence-agent',
        options: {
          agent: '/usr/sbin/fence_ipmilan',
          args: { ip: '10.0.0.11', username: 'xenha', lanplus: true, ipport: 623 },
          passwordFile: '/etc/xenha/secrets/bmc-host-01',
          secretFiles: {},
          timeoutMs: 60_000,
          killGraceMs: 2_000,
          strictStatus: true,
          maxOutputBytes: 65_536,
        },
      },
      expect.objectContaining({ plugin: 'fence-agent', options: expect.objectContaining({ powerTimeoutMs: 20_000 }) }),
      { plugin: 'manual', options: { waitMs: 0 } },
    ]);
    const levels = createFenceLevels(config, target, { log: pino({ level: 'silent' }) });
    expect(levels.map((l) => [l.plugin, l.device.label, l.device.operator ?? false, l.device.powerTimeoutMs])).toEqual([
      ['fence-agent', 'fence_ipmilan 10.0.0.11', false, undefined],
      ['fence-agent', 'fence_apc_snmp 10.0.0.200 7', false, 20_000],
      ['manual', 'operator', true, 0],
    ]);
  });

  it('one to four levels', () => {
    const manual = { plugin: 'manual', options: {} };
    expect(messages({ levels: [] })).toEqual(['levels: at least one fence level']);
    expect(messages({ levels: Array(5).fill(manual) })).toEqual(['levels: at most 4 fence levels']);
    expect(messages({ levels: Array(4).fill(manual) })).toEqual([]);
  });

  it('refuses a secret inline, the action, a line break in a value, a relative agent, an unknown option', () => {
    const agent = (options: Record<string, unknown>) =>
      messages({ levels: [{ plugin: 'fence-agent', options: { agent: '/usr/sbin/fence_ipmilan', ...options } }] });
    expect(agent({ args: { password: 'hunter2' } })).toEqual([
      'levels.0.options.args.password: "password" is a secret: give it in passwordFile or secretFiles, never inline',
    ]);
    expect(agent({ args: { 'snmp-priv-passwd': 'x', community: 'private' } })).toHaveLength(2);
    expect(agent({ args: { action: 'reboot' } })).toEqual(['levels.0.options.args.action: the action is set by xenha']);
    expect(agent({ args: { ip: '10.0.0.1\naction=reboot' } })).toEqual(['levels.0.options.args.ip: a single line']);
    expect(agent({ agent: 'fence_ipmilan' })).toEqual(['levels.0.options.agent: an absolute path']);
    expect(agent({ passwordFile: 'secret.txt' })).toEqual(['levels.0.options.passwordFile: an absolute path']);
    expect(agent({ passwordFile: '/a', secretFiles: { passwd: '/b' } })).toEqual([
      'levels.0.options.secretFiles.passwd: the password is given in passwordFile already',
    ]);
    expect(agent({ secretFiles: { community: '/b' }, args: { community: 'x' } })).toContain(
      'levels.0.options.secretFiles.community: "community" is given in args too',
    );
    expect(agent({ pasword: '/a' })).toEqual([expect.stringContaining('Unrecognized key: "pasword"')]);
    expect(messages({ levels: [{ plugin: 'fence-agent' }] })).toEqual([expect.stringMatching(/^levels\.0\.options\.agent: /)]);
  });
});

describe("fence-agent's reading of an agent's output", () => {
  it("says unreachable on fencing.py's connection and login failures, not on a power that did not change", () => {
    for (const said of [
      'ERROR: Unable to connect/login to fencing device',
      'ERROR: Connection timed out',
      'ERROR: Connection lost',
      "ERROR: Failed: send_get_request: HTTPSConnectionPool(host='10.0.0.1', port=443): Max retries exceeded with url: /redfish/v1",
      'Error: Unable to establish IPMI v2 / RMCP+ session',
      'Timeout: No Response from 10.0.0.200',
    ]) {
      expect(saysUnreachable(said), said).toBe(true);
    }
    for (const said of [
      'ERROR: Failed: Timed out waiting to power OFF',
      'ERROR: Failed: Unable to obtain correct plug status or plug is not available',
    ]) {
      expect(saysUnreachable(said), said).toBe(false);
    }
  });

  it("summarizes fencing.py's doubled log lines in one line, secrets redacted", () => {
    const stderr = [
      "WARNING:root:Parse error: Ignoring unknown option 'password=hunter2'",
      '',
      'ERROR:root:Failed: Timed out waiting to power OFF',
      '',
      '2026-11-28 04:25:49,633 ERROR: Failed: Timed out waiting to power OFF',
      "2026-11-28 04:25:49,633 ERROR: Please use '-h' for usage",
    ].join('\n');
    expect(summarize('', stderr, ['hunter2'])).toBe(
      "WARNING: Parse error: Ignoring unknown option 'password=[redacted]' | ERROR: Failed: Timed out waiting to power OFF",
    );
    expect(summarize('x'.repeat(1_000), '', [], 50)).toHaveLength(50);
  });
});

describe('docs/fencing.md', () => {
  it('every `fence:` example of the docs is a valid fence config', () => {
    const text = readFileSync(new URL('../../docs/fencing.md', import.meta.url), 'utf8');
    const examples = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const yaml of examples) {
      const { fence } = parseYaml(yaml) as { fence: unknown };
      expect(messages(fence), yaml).toEqual([]);
    }
  });
});
