/**
 * The example files in deploy/ stay valid, and agree with each other and with xenha's own defaults:
 * Prometheus scrapes the addresses the exporter and the remediation service listen on by default,
 * Alertmanager calls the service's webhook path, and the units start subcommands that exist.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exporterConfig, loadExporterConfig } from '../../exporter/config.ts';
import { parseRemediationConfig } from '../../remediation/config.ts';

const DEPLOY = join(import.meta.dirname, '../../deploy');
const yamlOf = (file: string) => parse(readFileSync(join(DEPLOY, file), 'utf8')) as Record<string, unknown>;

/** The default listen addresses of the exporter and of the remediation service, as their schemas give them. */
function defaultListens(): { exporter: string; remediation: string } {
  const pools = [{ name: 'p', urls: ['https://10.0.0.1'], passwordEnv: 'P' }];
  const remediation = parseRemediationConfig(JSON.stringify({ pools, remediation: { tokenEnv: 'T', journal: '/var/lib/xenha/j' } }));
  return { exporter: exporterConfig.parse({ pools }).listen, remediation: remediation.remediation.listen };
}

describe('deploy examples', () => {
  it('the example exporter config loads', () => {
    const c = loadExporterConfig(join(DEPLOY, 'xenha.example.yaml'));
    expect(c.pools[0]!.name).toBe('prod-a');
    expect(Object.keys(c.pools[0]!.probes).sort()).toEqual(['network-tcp', 'network-xapi', 'storage-statefile', 'storage-xapi']);
  });

  it("prometheus.yml scrapes the exporter and the remediation service where they listen by default, and reads xenha's rules", () => {
    const p = yamlOf('prometheus.yml') as {
      rule_files: string[];
      scrape_configs: { job_name: string; scrape_interval?: string; static_configs: { targets: string[] }[] }[];
      alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
    };
    const listen = defaultListens();
    const targets = Object.fromEntries(p.scrape_configs.map((j) => [j.job_name, j.static_configs.flatMap((s) => s.targets)]));
    expect(targets).toEqual({ 'xenha-exporter': [listen.exporter], 'xenha-remediation': [listen.remediation] });
    expect(p.rule_files).toEqual(['xenha.rules.yml']);
    expect(p.alerting.alertmanagers.flatMap((a) => a.static_configs.flatMap((s) => s.targets))).toEqual(['127.0.0.1:9093']);
  });

  it("alertmanager.yml sends the host-dead alert to the service's webhook with its token, at once, per host, resolved too", () => {
    const a = yamlOf('alertmanager.yml') as {
      route: { receiver: string; routes: Record<string, unknown>[] };
      receivers: { name: string; webhook_configs?: Record<string, unknown>[] }[];
    };
    const route = a.route.routes.find((r) => r.receiver === 'xenha-remediation');
    expect(route).toMatchObject({
      matchers: ['remediation="xenha"'],
      group_by: ['pool', 'host'],
      group_wait: '0s',
      continue: true,
    });
    expect(a.route.receiver).toBe('default');
    const hook = a.receivers.find((r) => r.name === 'xenha-remediation')?.webhook_configs;
    expect(hook).toEqual([
      {
        url: `http://${defaultListens().remediation}/webhook/alertmanager`,
        send_resolved: true,
        http_config: { authorization: { type: 'Bearer', credentials_file: '/etc/alertmanager/xenha-remediation.token' } },
      },
    ]);
  });

  it('the remediation config the systemd unit describes loads (secrets from its credentials directory)', () => {
    const creds = '/run/credentials/xenha-remediate.service';
    const c = parseRemediationConfig(
      JSON.stringify({
        pools: [{ name: 'prod-a', urls: ['https://10.0.0.11'], user: 'xenha-monitor', passwordEnv: 'XENHA_PROD_A_PASSWORD' }],
        remediation: {
          tokenFile: `${creds}/remediation.token`,
          journal: '/var/lib/xenha/remediation.journal',
          pools: {
            'prod-a': {
              actions: { user: 'root', passwordFile: `${creds}/prod-a.actions.password` },
              fence: {
                hosts: {
                  'xcp-a-01': {
                    levels: [
                      {
                        plugin: 'fence-agent',
                        options: { agent: '/usr/sbin/fence_ipmilan', args: { ip: '10.0.1.11' }, passwordFile: `${creds}/bmc-xcp-a-01` },
                      },
                    ],
                  },
                },
              },
            },
          },
        },
      }),
    );
    const unit = readFileSync(join(DEPLOY, 'systemd/xenha-remediate.service'), 'utf8');
    // Every secret file the config names is one the unit loads, and the journal is where it may write.
    for (const path of [c.remediation.tokenFile!, `${creds}/prod-a.actions.password`, `${creds}/bmc-xcp-a-01`]) {
      const name = path.slice(creds.length + 1);
      expect(unit).toMatch(new RegExp(`^LoadCredential=${name.replaceAll('.', '\\.')}:/etc/xenha/`, 'm'));
    }
    expect(unit).toMatch(/^ReadWritePaths=\/var\/lib\/xenha$/m);
    expect(c.remediation.journal.startsWith('/var/lib/xenha/')).toBe(true);
  });
});
