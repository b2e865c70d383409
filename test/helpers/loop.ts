/**
 * The whole loop as the end-to-end files start it: every real part (Prometheus, Alertmanager,
 * fence_dummy, the heartbeat daemons), at a fast pace — a 250 ms heartbeat and sample interval, a
 * short dead-after, a 5 s flap window (a crash and its reboot change each path's verdict several times
 * within seconds at this pace), a 1 s quiet period, Prometheus resending alerts every second.
 */
import { FREE_LOOP_PORTS, startLoop, type LoopOptions, type RunningLoop } from '../../loop/loop.ts';
import { healthyOnEvidence } from './exporter.ts';
import { FENCE_DUMMY, slotWritten } from './remediation.ts';
import { requireFile } from './sim.ts';
import { waitFor } from './wait.ts';

/** Fails, saying what to install, when a binary the whole loop needs is missing. */
export function requireLoopBinaries(): void {
  requireFile('/usr/bin/prometheus', 'apt-get install prometheus');
  requireFile('/usr/bin/prometheus-alertmanager', 'apt-get install prometheus-alertmanager');
  requireFile(FENCE_DUMMY, 'apt-get install fence-agents');
}

/** Starts the loop at the fast pace with `deadAfterMs`, `opts` on top; throws unless Prometheus and Alertmanager run. */
export async function startFastLoop(deadAfterMs: number, opts: LoopOptions): Promise<RunningLoop> {
  const loop = await startLoop({
    ports: FREE_LOOP_PORTS,
    heartbeat: { intervalMs: 250, peerWindowMs: 1000 },
    exporterTiming: {
      sampleInterval: '250ms',
      probeTimeout: '200ms',
      xapiTimeout: '2s',
      deadAfter: `${deadAfterMs}ms`,
      confirmSamples: 2,
      capacityInterval: '1s',
      flapWindow: '5s',
    },
    quietPeriod: '1s',
    prometheusArgs: ['--rules.alert.resend-delay=1s'],
    ...opts,
  });
  if (!loop.prometheus || !loop.alertmanager) {
    await loop.stop();
    throw new Error(`the loop runs without Prometheus or Alertmanager: ${loop.missing.join('; ')}`);
  }
  return loop;
}

/** GETs `url` (5 s at most) and parses its JSON; throws on a non-2xx answer. */
export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return (await res.json()) as T;
}

/**
 * Waits until every host of the loop's pool is healthy on both paths' evidence in the exporter's and
 * the service's view with its heartbeat slot written (within `evidenceMs`), then until Prometheus
 * counts them all healthy in xenha_host_state (within `prometheusMs`, polled every `prometheusPollMs`).
 */
export async function loopAllHealthy(
  loop: RunningLoop,
  timeouts: { evidenceMs: number; prometheusMs: number; prometheusPollMs: number },
): Promise<void> {
  const pool = loop.sim.pool;
  const samplers = [loop.exporter.samplers[0]!, loop.remediation.samplers[0]!];
  await waitFor(
    'every host healthy in the exporter and the service',
    () => pool.hosts.every((h) => samplers.every((s) => healthyOnEvidence(s, h.built.uuid)) && slotWritten(loop.sim, h.built.uuid)),
    { timeoutMs: timeouts.evidenceMs, intervalMs: 100 },
  );
  await waitFor(
    'Prometheus: xenha_host_state healthy for every host',
    async () => {
      const r = await getJson<{ data: { result: { value: [number, string] }[] } }>(
        `${loop.urls.prometheus}/api/v1/query?query=${encodeURIComponent('sum(xenha_host_state{state="healthy"})')}`,
      );
      return Number(r.data.result[0]?.value[1]) === pool.hosts.length;
    },
    { timeoutMs: timeouts.prometheusMs, intervalMs: timeouts.prometheusPollMs },
  );
}
