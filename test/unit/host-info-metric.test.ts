/**
 * xenha_host_info{pool, host, host_uuid}: 1 for every host the exporter classifies, with the same host
 * label as the other host series (a shared name gets the UUID's first 8 characters), so that an alert
 * rule can carry host_uuid with `* on(pool, host) group_left(host_uuid) xenha_host_info`; the series of
 * a host that left the pool go with it. The sampler's state is filled by hand: no pool, no probe.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { classifyPool, type Sample } from '../../core/classify/state-machine.ts';
import type { HostView, PoolSnapshot } from '../../core/model/snapshot.ts';
import { exporterConfig } from '../../exporter/config.ts';
import { createRegistry } from '../../exporter/metrics.ts';
import { PoolSampler } from '../../exporter/sampler.ts';
import { metricValue } from '../helpers/exporter.ts';

const ENV = 'XENHA_TEST_HOST_INFO_PASSWORD';
const HOSTS = [
  { uuid: '5e0c4f4e-0f3b-4d62-9e0a-4a1d2f7b3c12', name: 'xcp-01' },
  { uuid: '9b2f6a51-7c1e-4f0d-8a3b-6e5d4c3b2a19', name: 'xcp-02' },
  // Two hosts with one name: each label gets its UUID's first 8 characters.
  { uuid: 'c0ffee00-1111-4222-8333-444455556666', name: 'twin' },
  { uuid: 'deadbeef-7777-4888-9999-aaaabbbbcccc', name: 'twin' },
];

function snapshot(hosts: { uuid: string; name: string }[]): PoolSnapshot {
  // Only what the registry reads of a host: its ref, UUID and name.
  const views = hosts.map((h) => ({ ref: `OpaqueRef:${h.uuid}`, uuid: h.uuid, name: h.name }) as HostView);
  return {
    ref: 'OpaqueRef:pool',
    uuid: 'pool-uuid',
    name: 'lab',
    masterRef: views[0]!.ref,
    haEnabled: true,
    haHostFailuresToTolerate: 1,
    haPlanExistsFor: 1,
    haOvercommitted: false,
    haAllowOvercommit: false,
    haTimeoutSeconds: 30,
    haTimeoutFrom: 'default',
    hosts: views,
    vms: [],
    heartbeatSr: null,
    invalid: [],
  };
}

const up = (path: 'network' | 'storage'): Sample => ({
  probe: `test-${path}`,
  path,
  home: '0',
  up: true,
  latencySeconds: 0.001,
  detail: 'test',
  observerSide: false,
  source: 'monitor',
  ageMs: 0,
});

/** One classification round of the given hosts, both paths up, into the sampler's state. */
function round(s: PoolSampler, hosts: { uuid: string; name: string }[], at: number): void {
  s.state.snapshot = snapshot(hosts);
  s.state.memory = classifyPool(s.state.memory, {
    at,
    hosts: hosts.map((h) => ({ host: h.uuid, samples: [up('network'), up('storage')] })),
    storageHeartbeat: true,
  }).next;
}

function series(text: string, name: string): Record<string, string>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`))
    .map((l) => Object.fromEntries([...l.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!])));
}

const samplers: PoolSampler[] = [];
afterEach(async () => {
  for (const s of samplers.splice(0)) await s.stop();
});

function sampler(): PoolSampler {
  process.env[ENV] = 'unused';
  const config = exporterConfig.parse({ pools: [{ name: 'lab', urls: ['http://127.0.0.1:9'], passwordEnv: ENV }] }).pools[0]!;
  // No probe and the connection never started: the test writes the state a round would.
  const s = new PoolSampler(config, pino({ level: 'silent' }), () => 0, []);
  samplers.push(s);
  return s;
}

describe('xenha_host_info', () => {
  it('is 1 for every host, labelled as the other host series, with its UUID', async () => {
    const s = sampler();
    round(s, HOSTS, 1000);
    const text = await createRegistry([s], () => 1000, false).metrics();
    expect(text).toContain('# TYPE xenha_host_info gauge');
    const labels = (h: (typeof HOSTS)[number]) => ({ pool: 'lab', host: h.name === 'twin' ? `twin (${h.uuid.slice(0, 8)})` : h.name });
    for (const h of HOSTS) {
      expect(metricValue(text, 'xenha_host_info', { ...labels(h), host_uuid: h.uuid })).toBe(1);
      expect(metricValue(text, 'xenha_host_state', { ...labels(h), state: 'healthy' })).toBe(1);
    }
    // One info series per (pool, host) of xenha_host_state: the group_left join is one-to-one per host.
    const info = series(text, 'xenha_host_info');
    expect(info).toHaveLength(HOSTS.length);
    const stateHosts = new Set(series(text, 'xenha_host_state').map((l) => `${l.pool}/${l.host}`));
    expect(new Set(info.map((l) => `${l.pool}/${l.host}`))).toEqual(stateHosts);
  });

  it('drops the series of a host that left the pool, as the other host series', async () => {
    const s = sampler();
    const reg = createRegistry([s], () => 2000, false);
    round(s, HOSTS, 1000);
    const left = HOSTS[1]!;
    round(
      s,
      HOSTS.filter((h) => h !== left),
      1100,
    );
    const text = await reg.metrics();
    expect(series(text, 'xenha_host_info').map((l) => l.host_uuid)).not.toContain(left.uuid);
    expect(series(text, 'xenha_host_state').map((l) => l.host)).not.toContain(left.name);
    expect(series(text, 'xenha_host_info')).toHaveLength(HOSTS.length - 1);
  });

  it('has no series before the first classification', async () => {
    const text = await createRegistry([sampler()], () => 0, false).metrics();
    expect(series(text, 'xenha_host_info')).toEqual([]);
  });
});
