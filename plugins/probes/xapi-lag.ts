/**
 * How stale the pool master's word on a host can be, from xapi's own timers: the XAPI probes date
 * the life a `true` shows by this bound, so that a lagging word never holds a dead host alive where
 * fresher evidence exists (docs/classification.md, "Evidence and its source").
 */
import type { PoolSnapshot } from '../../core/model/snapshot.ts';
import { faultHandlerSleepMs } from '../../core/model/ha-timeouts.ts';

/** xapi's ha_monitor_interval: the master's HA monitor refreshes live, ha_statefiles and ha_network_peers this often. */
export const XAPI_HA_MONITOR_INTERVAL_MS = 20_000;

/** xapi's host_assumed_dead_interval: without HA, a host stays live until its XAPI heartbeat is this old. */
export const XAPI_HOST_ASSUMED_DEAD_MS = 600_000;

/**
 * How long after a host's last heartbeat xhad drops it from the liveset: its timeout T, then the
 * fault handler's wait for the failed host's watchdog to have fenced it (xha daemon/sm.c, phase 4:
 * max(max(Wh, Ws) − min(T1, T2) + max(t1, t2), 10 s), with Wh = T, Ws = T + 15, T1 = T2 = T and t1,
 * t2 the heartbeat and statefile intervals): T + 18 s for T = 30 s.
 */
export function xhadDropMs(haTimeoutSeconds: number): number {
  return haTimeoutSeconds * 1000 + faultHandlerSleepMs(haTimeoutSeconds);
}

/**
 * With HA on, the master writes xhad's liveset, which keeps a host until xhadDropMs after its last
 * heartbeat, at most one monitor interval late: T + 18 s + 20 s (68 s for T = 30 s). Without HA,
 * xapi's own heartbeat: 600 s.
 */
export function masterWordLagMs(s: Pick<PoolSnapshot, 'haEnabled' | 'haTimeoutSeconds'>): number {
  return s.haEnabled ? xhadDropMs(s.haTimeoutSeconds) + XAPI_HA_MONITOR_INTERVAL_MS : XAPI_HOST_ASSUMED_DEAD_MS;
}
