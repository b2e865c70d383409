/**
 * The exporter end to end on a pool without HA, with xenha's own heartbeat: the real xenha-heartbeat
 * daemon (Python) runs beside each simulated host, on that host's loopback management addresses,
 * writing its slot in a shared heartbeat file that the exporter's storage-statefile probe reads. The
 * pool then has a storage heartbeat (two-path verdicts) though HA is off: a crash (the host and its
 * daemon gone) reads dead within dead-after + 2 s; a storage-only cut (the daemon's file unwritable,
 * its UDP heartbeats still sent) reads storage_lost and never dead, checked at every sampling round.
 * Real time throughout (the daemons run on the wall clock); every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { LAYOUT_BYTES } from '../../core/statefile/layout.ts';
import { startExporter, type RunningExporter } from '../../exporter/exporter.ts';
import { applyFault } from '../../simulator/faults.ts';
import { generatePoolSpec } from '../../simulator/pool-spec.ts';
import type { Simulator } from '../../simulator/simulator.ts';
import { EXPORTER_PASSWORD_ENV, fastPoolConfig, healthyOnEvidence, metricValue } from '../helpers/exporter.ts';
import { PASSWORD, startTestSim } from '../helpers/sim.ts';
import { waitFor } from '../helpers/wait.ts';

const DAEMON = join(import.meta.dirname, '../../heartbeat/xenha-heartbeat.py');
const INTERVAL_MS = 100;
const UDP_PORT = 6951;
const DEAD_AFTER_MS = 1000;

let dir: string;
let sim: Simulator;
let exporter: RunningExporter;
const daemons = new Map<string, ChildProcess>();

/** Each host's daemon writes through its own hard link to the one heartbeat file, so one host's path can fail alone. */
const linkOf = (name: string) => join(dir, `hb-${name}.img`);

function startDaemon(name: string): void {
  const proc = spawn('python3', [DAEMON, '--config', join(dir, `${name}.json`)], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.resume();
  daemons.set(name, proc);
}

async function stopDaemon(name: string, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const p = daemons.get(name);
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill(sig);
  await done;
}

const sampler = () => exporter.samplers[0]!;
const uuidOf = (name: string) => sim.pool.host(name).built.uuid;
const stateOf = (name: string) => sampler().state.memory?.hosts[uuidOf(name)]?.state;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xenha-hb-e2e-'));
  sim = await startTestSim({ spec: { ...generatePoolSpec({ hosts: 3, vms: 6, seed: 21 }), haEnabled: false } });
  const info = sim.info();
  const file = join(dir, 'heartbeat.img');
  writeFileSync(file, Buffer.alloc(LAYOUT_BYTES));
  writeFileSync(join(dir, 'secret'), 'e2e-pool-secret\n', { mode: 0o600 });
  chmodSync(join(dir, 'secret'), 0o600);
  const hosts = info.hosts.map((h) => ({ uuid: h.uuid, homes: h.addresses }));
  for (const h of info.hosts) {
    linkSync(file, linkOf(h.name));
    const config = {
      pool: info.pool.uuid,
      host: h.uuid,
      hosts,
      file: linkOf(h.name),
      port: UDP_PORT,
      intervalMs: INTERVAL_MS,
      peerWindowMs: 4 * INTERVAL_MS,
      secretFile: join(dir, 'secret'),
    };
    writeFileSync(join(dir, `${h.name}.json`), JSON.stringify(config));
    startDaemon(h.name);
  }
  process.env[EXPORTER_PASSWORD_ENV] = PASSWORD;
  // The heartbeat file read with the probe's defaults: its windows follow the interval the slots say.
  const pool = fastPoolConfig(sim, {
    probes: {
      'network-tcp': {},
      'network-xapi': {},
      'storage-xapi': {},
      'storage-statefile': { devices: [{ home: '0', path: file }], readMode: 'buffered' },
    },
  });
  exporter = await startExporter({ listen: '127.0.0.1:0', pools: [pool] }, pino({ level: 'silent' }));
}, 30_000);

afterAll(async () => {
  await Promise.all([...daemons.keys()].map((n) => stopDaemon(n, 'SIGKILL')));
  await exporter?.stop();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('an HA-off pool with xenha-heartbeat', () => {
  it('has a storage heartbeat: every host healthy on both paths, the metric and the preflight check say so', async () => {
    const names = sim.pool.hosts.map((h) => h.built.name);
    // Until the daemons have written the file, XAPI's word alone makes the hosts healthy: wait for both.
    await waitFor(
      'the heartbeat file read and every host healthy on both paths',
      () => sampler().state.storageHeartbeat?.ok === true && names.every((n) => healthyOnEvidence(sampler(), uuidOf(n))),
      { timeoutMs: 15_000 },
    );
    expect(sampler().state.storageHeartbeat).toMatchObject({ ok: true, reason: expect.stringMatching(/^xenha-heartbeat's file read/) });
    const m = await (await fetch(`${exporter.url}/metrics`)).text();
    expect(metricValue(m, 'xenha_pool_ha_enabled', { pool: 'sim' })).toBe(0);
    expect(metricValue(m, 'xenha_pool_storage_heartbeat', { pool: 'sim' })).toBe(1);
    expect(metricValue(m, 'xenha_preflight_check', { pool: 'sim', check: 'storage_heartbeat' })).toBe(1);
  });

  it('a storage-only cut (the daemon cannot write, its UDP heartbeats go on) reads storage_lost, never dead', async () => {
    const path = linkOf('host-02');
    const away = `${path}.away`;
    applyFault(sim.pool, { kind: 'storage-down', host: 'host-02' });
    renameSync(path, away);
    mkdirSync(path);
    try {
      await waitFor('host-02 storage_lost', () => stateOf('host-02') === 'storage_lost', { timeoutMs: 10_000 });
      // Held for three times dead-after, every sampling round checked.
      const from = sampler().counters.rounds;
      const rounds = Math.ceil((3 * DEAD_AFTER_MS) / sampler().config.timing.sampleInterval);
      let seen = from;
      await waitFor(
        `${rounds} rounds of storage_lost`,
        () => {
          const now = sampler().counters.rounds;
          if (now !== seen) {
            seen = now;
            expect(stateOf('host-02')).toBe('storage_lost');
          }
          return now - from >= rounds;
        },
        { timeoutMs: 20_000, intervalMs: 10 },
      );
    } finally {
      rmdirSync(path);
      renameSync(away, path);
      applyFault(sim.pool, { kind: 'heal', host: 'host-02' });
    }
    await waitFor('host-02 healthy again', () => healthyOnEvidence(sampler(), uuidOf('host-02')), { timeoutMs: 15_000 });
  });

  it('a crash (the host and its daemon gone) reads dead within dead-after + 2 s', async () => {
    const crashedAt = Date.now();
    await stopDaemon('host-03', 'SIGKILL');
    applyFault(sim.pool, { kind: 'host-crash', host: 'host-03' });
    await waitFor('host-03 dead', () => stateOf('host-03') === 'dead', { timeoutMs: DEAD_AFTER_MS + 2000, intervalMs: 20 });
    expect(Date.now() - crashedAt).toBeLessThanOrEqual(DEAD_AFTER_MS + 2000);
    expect(sampler().state.memory!.hosts[uuidOf('host-03')]!.rule).toBe('dead-after');
  });
});
