/**
 * The guided tour (loop/tour.ts), briefly: not a whole tour (the loop's end-to-end tests check what the
 * tour shows), but (a) a loop without Prometheus and Alertmanager gets the clear error and the install
 * hint, and (b) on a real loop the network-only phase prints its timeline in order, with elapsed-time
 * prefixes, and an abort as the storage-only phase starts ends the tour at once: no storage fault is
 * applied and nothing was fenced. Free ports, each loop on its own loopback addresses, every wait
 * bounded, every loop stopped.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { INSTALL_HINT } from '../../loop/binaries.ts';
import { FENCE_DUMMY, FREE_LOOP_PORTS, startLoop, type RunningLoop } from '../../loop/loop.ts';
import { runTour, TOUR_PHASES, type TourPhase } from '../../loop/tour.ts';
import { requireFile } from '../helpers/sim.ts';

let loop: RunningLoop | undefined;

afterEach(async () => {
  await loop?.stop();
  loop = undefined;
});

/** The index of the first line matching each pattern, in that order (each after the one before). */
function inOrder(lines: string[], patterns: RegExp[]): number[] {
  const at: number[] = [];
  let from = 0;
  for (const p of patterns) {
    const i = lines.findIndex((l, k) => k >= from && p.test(l));
    expect(i, `a line matching ${p} after line ${from}:\n${lines.join('\n')}`).toBeGreaterThanOrEqual(0);
    at.push(i);
    from = i + 1;
  }
  return at;
}

describe('the tour (runTour)', () => {
  it('without Prometheus and Alertmanager: says what to install and throws', async () => {
    loop = await startLoop({ ports: FREE_LOOP_PORTS, addressBase: '127.0.116.1', hosts: 3, vms: 6, prometheus: false });
    const lines: string[] = [];
    const phases: TourPhase[] = [];
    await expect(runTour(loop, (l) => lines.push(l), new AbortController().signal, { onPhase: (p) => phases.push(p) })).rejects.toThrow(
      /needs Prometheus and Alertmanager/,
    );
    expect(lines.join('\n')).toContain(INSTALL_HINT);
    expect(phases).toEqual([]);
    // Nothing was done to the pool.
    expect(loop.sim.pool.eventLog().filter((e) => e.kind === 'fault')).toEqual([]);
  });

  it('network-only prints its timeline in order; an abort at storage-only returns at once, nothing fenced', async () => {
    requireFile('/usr/bin/prometheus', 'apt-get install prometheus');
    requireFile('/usr/bin/prometheus-alertmanager', 'apt-get install prometheus-alertmanager');
    requireFile(FENCE_DUMMY, 'apt-get install fence-agents');
    loop = await startLoop({
      ports: FREE_LOOP_PORTS,
      addressBase: '127.0.112.1',
      hosts: 4,
      vms: 20,
      quietPeriod: '0s',
      heartbeat: { intervalMs: 250, peerWindowMs: 1000 },
      // A 5 s flap window: at this pace a cut and its heal change the path's verdict several times within
      // seconds, and the default 60 s window would hold the healed host `flapping` past the phase's bound.
      exporterTiming: { sampleInterval: '250ms', probeTimeout: '200ms', deadAfter: '5s', flapWindow: '5s' },
    });
    const l = loop;
    expect(l.missing).toEqual([]);
    const lines: string[] = [];
    const phases: TourPhase[] = [];
    const abort = new AbortController();
    let abortedAt = 0;
    await runTour(l, (line) => lines.push(line), abort.signal, {
      waitForWarnings: false,
      phaseTimeoutMs: 30_000,
      onPhase: (p, at) => {
        expect(Math.abs(Date.now() - at)).toBeLessThan(5000);
        phases.push(p);
        if (p === 'storage-only') {
          abortedAt = Date.now();
          abort.abort();
        }
      },
    });
    const returnedAt = Date.now();
    const text = lines.join('\n');
    expect(phases).toEqual(TOUR_PHASES.slice(0, 2));
    // Promptly: not after the phase's own waits (30 s here).
    expect(returnedAt - abortedAt, text).toBeLessThan(5000);

    // Every line carries the seconds since the tour began, never decreasing.
    const elapsed = lines.map((line) => {
      const m = /^\[\s*(\d+\.\d) s\] \S/.exec(line);
      expect(m, line).not.toBeNull();
      return Number(m![1]);
    });
    expect([...elapsed].sort((a, b) => a - b)).toEqual(elapsed);

    // The network-only phase, in order: its host cut, seen network_isolated, the warning pending,
    // nothing fenced, healed, healthy; then the storage-only phase starts and the tour stops there.
    const [, fault] = inOrder(lines, [
      /── 1\/5 network-only: host-\d+/,
      /fault: network-down host-\d+/,
      /exporter: host-\d+ .*→ network_isolated/,
      /Prometheus: XenhaHostOnePathDown\{host-\d+, state=network_isolated\} pending/,
      /nothing fenced: .*XenhaHostDead never pending or firing, 0 plan\(s\)/,
      /fault: heal host-\d+/,
      // Healthy again after the heal, from network_isolated or through degraded (one home back before the other).
      /exporter: host-\d+ (network_isolated|degraded) → healthy/,
      /── 2\/5 storage-only/,
      /the tour stopped \(aborted\)/,
    ]);
    const host = /network-down (host-\d+)/.exec(lines[fault!]!)![1]!;
    expect(host).not.toBe(l.sim.pool.master.built.name);
    expect(text).toMatch(new RegExp(`exporter: ${host} .*→ network_isolated`));
    expect(text).not.toMatch(/XenhaHostDead\{/);
    expect(text).not.toContain('storage-down');

    // Nothing fenced: no power change, every power file still on, no plan; only the network fault and its heal.
    expect(l.sim.pool.eventLog().filter((e) => e.kind === 'power')).toEqual([]);
    for (const h of l.sim.info().hosts) expect(readFileSync(h.powerFile, 'utf8').trim(), h.name).toBe('on');
    expect(l.remediation.state.plans.size).toBe(0);
    expect(
      l.sim.pool
        .eventLog()
        .filter((e) => e.kind === 'fault' || e.kind === 'heal')
        .map((e) => [e.kind, e.host, e.detail.fault ?? null]),
    ).toEqual([
      ['fault', host, 'network-down'],
      ['heal', host, null],
    ]);
  }, 60_000);
});
