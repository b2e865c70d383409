/**
 * The fence gates' names, policy and history (no dependency at all, so the CLI can show the policy's
 * defaults in its help without loading the planner). The gates themselves: fence-gates.ts.
 */

/** Why a fence was refused: each gate of fence-gates.ts, by name (shared by the planner, the CLI and remediation). */
export const FENCE_GATES = [
  'observer-isolated',
  'quorum',
  'path-up',
  'no-path-evidence',
  'in-flight',
  'cooldown',
  'storm-concurrent',
  'storm-window',
] as const;
export type FenceGate = (typeof FENCE_GATES)[number];

export interface FencePolicy {
  /** Refuse when more than this share of the pool's hosts looks dead at once (0..1). */
  quorumFraction: number;
  /** An operator's override of the quorum gate. */
  overrideQuorum: boolean;
  maxConcurrentFences: number;
  maxFencesInWindow: number;
  fenceWindowMs: number;
  /** No new fence of a host within this long of its last one. */
  cooldownMs: number;
  /**
   * Fence a host whose paths' evidence is unknown (no `anyPathUp`: no two-path classification, e.g.
   * a snapshot taken without the exporter). Off by default: never fence on one path's word.
   */
  allowWithoutPathEvidence: boolean;
}

export const DEFAULT_FENCE_POLICY: FencePolicy = {
  quorumFraction: 0.5,
  overrideQuorum: false,
  maxConcurrentFences: 1,
  maxFencesInWindow: 3,
  fenceWindowMs: 3_600_000,
  cooldownMs: 900_000,
  allowWithoutPathEvidence: false,
};

export interface FenceHistory {
  /** Fences started (host UUID, time in ms), completed or not. */
  fences: { host: string; at: number }[];
  /** Hosts whose fence is running now. */
  inFlight: string[];
}
