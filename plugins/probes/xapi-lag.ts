/**
 * How stale the pool master's word on a host can be, from xapi's own timers: the XAPI probes date
 * the life a `true` shows by this bound, so that a lagging word never holds a dead host alive where
 * fresher evidence exists (docs/classification.md, "Evidence and its source").
 */
import type { PoolSnapshot } from '../../core/model/snapshot.ts';

/** xapi's ha_monitor_interval: the master's HA monitor refreshes live, ha_statefiles and ha_network_peers this often. */
export const XAPI_HA_MONITOR_INTERVAL_MS = 20_000;

/** xapi's host_assumed_dead_interval: without HA, a host stays live until its XAPI heartbeat is this old. */
export const XAPI_HOST_ASSUMED_DEAD_MS = 600_000;

/**
 * With HA on, the master writes xhad's liveset, which keeps a host until T after its last heartbeat,
 * at most one monitor interval late: T + 20 s. Without HA, xapi's own heartbeat: 600 s.
 */
export function masterWordLagMs(s: Pick<PoolSnapshot, 'haEnabled' | 'haTimeoutSeconds'>): number {
  return s.haEnabled ? s.haTimeoutSeconds * 1000 + XAPI_HA_MONITOR_INTERVAL_MS : XAPI_HOST_ASSUMED_DEAD_MS;
}
