/** How late the pool master's word may be, from xapi's and xha's timers, worked out by hand per T. */
import { describe, expect, it } from 'vitest';
import { masterWordLagMs, xhadDropMs } from '../../plugins/probes/xapi-lag.ts';

describe("the master's lag", () => {
  // xha's fault handler waits max(max(Wh, Ws) − min(T1, T2) + max(t1, t2), 10) s, Wh = T1 = T2 = T,
  // Ws = T + 15: so 15 + max(t1, t2), with t1 = min((T + 10) / 10, 3) and t2 = max(2, T / 20) (integers).
  it.each([
    // T, t1, t2, drop = T + 15 + max(t1, t2)
    [10, 2, 2, 27],
    [30, 3, 2, 48],
    [60, 3, 3, 78],
    [120, 3, 6, 141],
  ])('T = %i s (heartbeat %i s, statefile %i s): xhad drops a silent host %i s after its last heartbeat', (t, _t1, _t2, drop) => {
    expect(xhadDropMs(t)).toBe(drop * 1000);
    // xapi's HA monitor writes the liveset every 20 s.
    expect(masterWordLagMs({ haEnabled: true, haTimeoutSeconds: t })).toBe((drop + 20) * 1000);
  });

  it("without HA, live lasts xapi's host_assumed_dead_interval (10 min)", () => {
    expect(masterWordLagMs({ haEnabled: false, haTimeoutSeconds: 30 })).toBe(600_000);
  });
});
