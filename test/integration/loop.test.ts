/**
 * The whole loop on one machine (loop/loop.ts, `xenha start`): every part answers where the loop says,
 * Prometheus scrapes both xenha jobs and loads xenha's rules, Alertmanager carries an alert to the
 * remediation webhook with its token (the service takes it, re-checks, and refuses it: the host is
 * alive), Alertmanager restarts on its port, and stopping leaves no process and no port behind — in-process,
 * and as the compiled CLI a user runs (SIGINT → exit 0). Free ports and each loop on its own loopback
 * addresses; every wait bounded.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { FREE_LOOP_PORTS, startLoop, type RunningLoop } from '../../loop/loop.ts';
import { REMEDIATION_RECEIVER } from '../../loop/alertmanager.ts';
import { PROMETHEUS_JOBS } from '../../loop/prometheus.ts';
import { requireFile } from '../helpers/sim.ts';
import { XENHA_BIN } from '../helpers/run.ts';
import { waitFor } from '../helpers/wait.ts';

const RULES = join(import.meta.dirname, '../../alerts/xenha.rules.yml');

let loop: RunningLoop | undefined;
let cli: ChildProcess | undefined;

afterAll(async () => {
  if (cli && cli.exitCode === null && cli.signalCode === null) cli.kill('SIGKILL');
  await loop?.stop();
});

function requireBinaries(): void {
  requireFile('/usr/bin/prometheus', 'apt-get install prometheus');
  requireFile('/usr/bin/prometheus-alertmanager', 'apt-get install prometheus-alertmanager');
}

/** Running (a zombie waiting to be reaped has stopped: it counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Every process below `pid` now (children, theirs…), from /proc. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent)
      if (pp === p && alive(child)) {
        out.push(child);
        walk(child);
      }
  };
  walk(pid);
  return out;
}

/** The port can be bound on that address again. */
function free(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

const json = async <T>(url: string, init?: RequestInit): Promise<T> => {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  expect(res.status, url).toBeLessThan(300);
  return (await res.json()) as T;
};

/** Every (address, port) the loop listens on. */
function listeners(l: RunningLoop): [string, number][] {
  const port = (u: string) => Number(new URL(u).port);
  const info = l.sim.info();
  return [
    ...info.hosts.flatMap((h) => h.addresses.map((a) => [a, info.port] as [string, number])),
    ['127.0.0.1', port(l.urls.control)],
    ['127.0.0.1', port(l.urls.exporter)],
    ['127.0.0.1', port(l.urls.remediation)],
    ['127.0.0.1', port(l.urls.prometheus!)],
    ['127.0.0.1', port(l.urls.alertmanager!)],
  ];
}

type Targets = { data: { activeTargets: { labels: { job: string }; health: string; lastError: string }[] } };

/** Both xenha jobs scraped and up. */
async function jobsUp(prometheus: string): Promise<void> {
  await waitFor(
    'both xenha jobs up in Prometheus',
    async () => {
      const t = await json<Targets>(`${prometheus}/api/v1/targets`);
      const up = (job: string) => t.data.activeTargets.some((x) => x.labels.job === job && x.health === 'up');
      return up(PROMETHEUS_JOBS.exporter) && up(PROMETHEUS_JOBS.remediation);
    },
    // Prometheus hands new targets to its scrapers at most every 5 s.
    { timeoutMs: 20_000, intervalMs: 250 },
  );
}

describe('the whole loop (startLoop)', () => {
  it('answers on every URL, carries an alert from Alertmanager to the webhook, and stops without a trace', async () => {
    requireBinaries();
    loop = await startLoop({ ports: FREE_LOOP_PORTS, addressBase: '127.0.84.1', quietPeriod: '0s', heartbeat: { intervalMs: 250 } });
    const l = loop;
    expect(l.missing).toEqual([]);

    // The simulator: XAPI (a login on the master) and the control API.
    const login = await json<{ result?: string }>(`${l.urls.xapi}/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'session.login_with_password', params: ['root', 'xenha'], id: 1 }),
    });
    expect(login.result).toMatch(/^OpaqueRef:/);
    const state = await json<{ hosts: unknown[]; heartbeat?: unknown }>(`${l.urls.control}/state`);
    expect(state.hosts).toHaveLength(8);
    expect(state.heartbeat).toBeDefined();

    // The exporter: every host's state.
    const metrics = await waitFor(
      'xenha_host_state for 8 hosts',
      async () => {
        const text = await (await fetch(l.urls.metrics)).text();
        const hosts = new Set([...text.matchAll(/^xenha_host_state\{[^}]*host="([^"]+)"/gm)].map((m) => m[1]));
        return hosts.size === 8 ? text : false;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    expect(metrics).toContain('pool="sim"');

    // The remediation service.
    expect(await json(`${l.urls.remediation}/healthz`)).toEqual({ ok: true });
    expect(await json(l.urls.plans)).toEqual({ plans: [] });
    expect(l.remediationConfig.remediation.mode).toBe('enforce');

    // Prometheus: both jobs up, xenha's rules loaded, Alertmanager known.
    await jobsUp(l.urls.prometheus!);
    const rules = await json<{ data: { groups: { rules: { name: string }[] }[] } }>(`${l.urls.prometheus}/api/v1/rules`);
    const names = rules.data.groups.flatMap((g) => g.rules.map((r) => r.name));
    expect(existsSync(RULES)).toBe(true);
    expect(names).toContain('XenhaHostDead');
    const ams = await json<{ data: { activeAlertmanagers: { url: string }[] } }>(`${l.urls.prometheus}/api/v1/alertmanagers`);
    expect(ams.data.activeAlertmanagers.map((a) => new URL(a.url).host)).toEqual([new URL(l.urls.alertmanager!).host]);

    // Alertmanager: its config routes to the service's webhook.
    const status = await json<{ config: { original: string } }>(`${l.urls.alertmanager}/api/v2/status`);
    expect(status.config.original).toContain(`name: ${REMEDIATION_RECEIVER}`);
    expect(status.config.original).toContain(l.urls.webhook);

    // An alert posted to Alertmanager reaches the webhook with the token: an incident, refused (host-02 is alive).
    const host = l.sim.pool.host('host-02').built;
    const post = await fetch(`${l.urls.alertmanager}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        {
          labels: {
            alertname: 'XenhaHostDead',
            remediation: 'xenha',
            severity: 'critical',
            pool: 'sim',
            host: 'host-02',
            host_uuid: host.uuid,
          },
        },
      ]),
    });
    expect(post.status).toBe(200);
    const incident = await waitFor(
      'the incident, refused not-dead',
      () => [...l.remediation.state.incidents.values()].find((i) => i.host === host.uuid && i.refusals.some((r) => r.gate === 'not-dead')),
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    expect(incident.plan ?? null).toBeNull();
    expect(l.sim.pool.eventLog().filter((e) => e.kind === 'power')).toEqual([]);

    // Alertmanager restarts on the same port (end-to-end tests restart it mid-incident).
    const first = l.alertmanager!.pid;
    await l.alertmanager!.restart();
    expect(l.alertmanager!.pid).not.toBe(first);
    expect(alive(first)).toBe(false);
    expect((await fetch(`${l.urls.alertmanager}/-/ready`)).status).toBe(200);

    // Stop: no process, no port, no directory left.
    const pids = l.childPids();
    expect(pids.length).toBe(10); // Prometheus, Alertmanager, a heartbeat daemon per host
    const bound = listeners(l);
    await l.stop();
    await l.stop(); // idempotent
    await waitFor('every child process gone', () => pids.every((p) => !alive(p)), { timeoutMs: 5000, intervalMs: 20 });
    for (const [a, p] of bound) expect(await free(a, p), `${a}:${p} free`).toBe(true);
    expect(existsSync(l.dir)).toBe(false);
  });
});

describe('xenha start (the compiled CLI)', () => {
  it('prints its URLs, runs the loop, and on SIGINT stops every process it started and exits 0', async () => {
    requireBinaries();
    const ports = ['--xapi-port', '--control-port', '--exporter-port', '--remediation-port', '--prometheus-port', '--alertmanager-port'];
    const args = ['start', '--json', '--address-base', '127.0.88.1', '--quiet-period', '0s', '--log-level', 'warn'];
    for (const p of ports) args.push(p, '0');
    const proc = spawn(process.execPath, [XENHA_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    cli = proc;
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    type Started = { urls: Record<string, string>; dir: string; missing: string[] };
    const started = await waitFor(
      'the startup line',
      () => (out.includes('\n') ? (JSON.parse(out.slice(0, out.indexOf('\n'))) as Started) : false),
      {
        timeoutMs: 30_000,
      },
    ).catch((e: Error) => {
      throw new Error(`${e.message}; stderr: ${err}`);
    });
    expect(started.missing).toEqual([]);
    expect(Object.keys(started.urls).sort()).toEqual(
      ['alertmanager', 'control', 'dashboards', 'exporter', 'metrics', 'plans', 'prometheus', 'remediation', 'webhook', 'xapi'].sort(),
    );
    expect((await fetch(started.urls.metrics!)).status).toBe(200);
    expect((await fetch(`${started.urls.alertmanager}/-/ready`)).status).toBe(200);
    await jobsUp(started.urls.prometheus!);
    const children = descendants(proc.pid!);
    // Prometheus, Alertmanager and a heartbeat daemon per host, at least.
    expect(children.length).toBeGreaterThanOrEqual(10);

    proc.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
    expect(code, `stderr: ${err}`).toBe(0);
    await waitFor('every child process gone', () => children.every((p) => !alive(p)), { timeoutMs: 5000, intervalMs: 20 });
    expect(existsSync(started.dir)).toBe(false);
  });
});
