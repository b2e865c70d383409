/** What one pool may send before its answers are refused (the config's `limits`; no dependency, so the config can name the defaults). */
export interface ConnectionLimits {
  /** The largest XAPI answer read whole (the mirror's classes, queries), in bytes. */
  maxAnswerBytes: number;
  /** The most hosts a pool may report (XenServer's pools hold at most 64). */
  maxHosts: number;
  /** The most VM or VBD records a pool may report (read as they stream, a few fields kept of each). */
  maxRecords: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = { maxAnswerBytes: 8 * 2 ** 20, maxHosts: 64, maxRecords: 200_000 };
