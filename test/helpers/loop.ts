/**
 * The whole loop as the end-to-end files start it: every real part (Prometheus, Alertmanager,
 * fence_dummy, the heartbeat daemons), at a fast pace — a 250 ms heartbeat and sample interval, a
 * short dead-after, a 5 s flap window (a crash and its reboot change each path's verdict several times
 * within seconds at this pace), a 1 s quiet period, Prometheus resending alerts every second.
 */
import { FREE_LOOP_PORTS, startLoop, type LoopOptions, type RunningLoop } from '../../loop/loop.ts';
import { FENCE_DUMMY } from './remediation.ts';
import { requireFile } from './sim.ts';

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
