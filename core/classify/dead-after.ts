/**
 * The dead-after in force for a pool: an explicit `deadAfter` in the config wins; else the pool's own
 * HA timeout T while HA is on (xhad declares a host dead when both its heartbeats are T old), else
 * 30 s. Pure: the sampler asks each round, so it follows the pool's configuration as it changes.
 */

/** Dead-after when HA is off and the config names none (xhad's own built-in T). */
export const HA_OFF_DEAD_AFTER_MS = 30_000;

export const DEAD_AFTER_SOURCES = ['config', 'pool-ha-timeout', 'ha-off-default'] as const;
export type DeadAfterSource = (typeof DEAD_AFTER_SOURCES)[number];

export interface DeadAfterInForce {
  ms: number;
  source: DeadAfterSource;
  /** Why this value, as a person reads it. */
  reason: string;
}

export interface PoolHaTimeout {
  haEnabled: boolean;
  haTimeoutSeconds: number;
  haTimeoutFrom: string;
}

/**
 * `minimumMs` is the confirmation (sample interval × confirm samples): a dead-after shorter than it
 * would do nothing, so a pool's T below it is raised to it (an explicit value was checked at load).
 */
export function deadAfterInForce(explicitMs: number | undefined, pool: PoolHaTimeout | null, minimumMs: number): DeadAfterInForce {
  if (explicitMs !== undefined) return { ms: explicitMs, source: 'config', reason: `deadAfter ${explicitMs / 1000} s set in the config` };
  if (pool === null || !pool.haEnabled) {
    const ms = Math.max(HA_OFF_DEAD_AFTER_MS, minimumMs);
    return {
      ms,
      source: 'ha-off-default',
      reason: `${pool === null ? 'the pool is not read yet' : 'HA is off'}: ${ms / 1000} s, xhad's built-in timeout (no deadAfter in the config)`,
    };
  }
  const t = pool.haTimeoutSeconds * 1000;
  const from = pool.haTimeoutFrom === 'default' ? "xapi's default" : pool.haTimeoutFrom;
  if (t < minimumMs) {
    return {
      ms: minimumMs,
      source: 'pool-ha-timeout',
      reason: `the pool's HA timeout T = ${pool.haTimeoutSeconds} s (${from}) is shorter than the confirmation (sampleInterval × confirmSamples): ${minimumMs / 1000} s`,
    };
  }
  return {
    ms: t,
    source: 'pool-ha-timeout',
    reason: `the pool's HA timeout T = ${pool.haTimeoutSeconds} s (${from}), as xhad uses it (no deadAfter in the config)`,
  };
}
