/**
 * xhad's timers as xapi derives them from the pool's HA timeout T (Xapi_ha.Timeouts.derive, integer
 * seconds), and xha's fault-handler wait built on them (daemon/sm.c). One place for the exporter's
 * probes, the simulator and the benchmarks. Pure.
 */

/** The network heartbeat interval: min((T + 10) / 10, 3) s. */
export function heartbeatIntervalMs(haTimeoutSeconds: number): number {
  return Math.min(Math.floor((haTimeoutSeconds + 10) / 10), 3) * 1000;
}

/** The statefile interval, each live host rewriting its slot this often: max(2, T / 20) s. */
export function statefileIntervalMs(haTimeoutSeconds: number): number {
  return Math.max(2, Math.floor(haTimeoutSeconds / 20)) * 1000;
}

/**
 * The fault handler's phase-4 sleep before it drops a host from the liveset (xha daemon/sm.c):
 * max((max(Wh, Ws) − min(T1, T2) + max(t1, t2)) s, FH_MINIMUM_SLEEP_BEFORE_FO = 10 s), with Wh = T,
 * Ws = T + 15, T1 = T2 = T and t1, t2 the heartbeat and statefile intervals: 18 s at T = 30 s.
 * The phase 3 to 4 rendezvous it subtracts is taken as 0.
 */
export function faultHandlerSleepMs(haTimeoutSeconds: number): number {
  const T = Math.floor(haTimeoutSeconds) * 1000;
  const wh = T;
  const ws = T + 15_000;
  return Math.max(Math.max(wh, ws) - T + Math.max(heartbeatIntervalMs(haTimeoutSeconds), statefileIntervalMs(haTimeoutSeconds)), 10_000);
}
