/**
 * The fence contract. A fence device powers one XenServer host off (or on) through something outside
 * the host: its BMC, a PDU, or a person. It answers three calls, each bounded in time by the device
 * itself (its plugin's options give the bound) and each giving up when its AbortSignal fires:
 *
 * - `status`: is the host's power on, off, or cannot tell;
 * - `off` / `on`: ask for the power to change; `ok` says the request was carried out as far as the
 *   device knows, never that the host is off: only a later `status` answering `off` says that
 *   (fence.ts polls for it).
 *
 * The fence plugins xenha has are listed in index.ts, one line each. Adding a plugin is one file and
 * one line there; nothing else names a plugin.
 */
import type { z } from 'zod';
import type { Logger } from 'pino';

export type PowerState = 'on' | 'off' | 'unknown';

/** A device's answer to `status`. */
export interface StatusAnswer {
  state: PowerState;
  /** What the device said (never a secret). */
  detail: string;
  /** The device could not be reached or logged into (state is then 'unknown'). */
  unreachable?: boolean;
  /** The call ran out of its time (state is then 'unknown'). */
  timedOut?: boolean;
}

/** A device's answer to `off` or `on`. */
export interface ActionAnswer {
  ok: boolean;
  /** What the device said (never a secret). */
  detail: string;
  /** The device could not be reached or logged into (ok is then false). */
  unreachable?: boolean;
  /** The call ran out of its time (ok is then false). */
  timedOut?: boolean;
}

/** One fence device for one host, made by a plugin from its options. */
export interface FenceDevice {
  /** Says which device this is in logs and records, e.g. "fence_ipmilan" (never a secret). */
  readonly label: string;
  /**
   * A person, not the device, powers the host off (the manual plugin): when such a level is not
   * confirmed off in its time, its outcome is 'awaiting-operator', not 'timeout'.
   */
  readonly operator?: boolean;
  /** How long after `off` this device's status may take to answer off (default: fenceHost's). */
  readonly powerTimeoutMs?: number;
  /** How often to ask its status meanwhile (default: fenceHost's). */
  readonly pollMs?: number;
  status(signal: AbortSignal): Promise<StatusAnswer>;
  off(signal: AbortSignal): Promise<ActionAnswer>;
  on(signal: AbortSignal): Promise<ActionAnswer>;
}

/** The host a device fences. */
export interface FenceTarget {
  pool: string;
  hostUuid: string;
  hostName: string;
}

/**
 * Operator acknowledgements, for the manual plugin: true once a person has said this host is powered
 * off (`xenha ack <plan-id>`). The caller scopes it to the current incident: an acknowledgement from
 * an earlier fence of the same host must not count.
 */
export interface FenceAcks {
  isAcknowledged(hostUuid: string): boolean | Promise<boolean>;
}

export interface FenceDeps {
  log: Logger;
  /** Needed by the manual plugin only; without it a manual level is never confirmed. */
  acks?: FenceAcks;
}

/**
 * How one level of a fence ended.
 * - confirmed-off: `off` was carried out, then `status` answered off (or `off` failed but a status
 *   asked right after answered off: a BMC that refuses to power off a host that is off);
 * - already-off: the first `status` answered off, no `off` was sent;
 * - failed: `off` failed (or the fence was aborted);
 * - unreachable: `off` failed because the device could not be reached or logged into;
 * - timeout: `off` ran out of its time, or `status` never answered off within powerTimeoutMs;
 * - awaiting-operator: an operator level (manual) not acknowledged yet.
 */
/** `cancelled`: the re-check right before an off said the host must not be fenced (it shows life again); no later level is tried. */
export type FenceOutcome = 'confirmed-off' | 'already-off' | 'failed' | 'unreachable' | 'timeout' | 'awaiting-operator' | 'cancelled';

/** The outcomes that prove the host is off: only these let its VMs start elsewhere. */
export const FENCED_OUTCOMES = ['confirmed-off', 'already-off'] as const satisfies readonly FenceOutcome[];
export type FencedOutcome = (typeof FENCED_OUTCOMES)[number];

export function isFenced(outcome: FenceOutcome): outcome is FencedOutcome {
  return outcome === 'confirmed-off' || outcome === 'already-off';
}

export interface FencePluginDefinition<O extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  /** The plugin's options in the config (a strict zod schema; `{}` must parse when it needs none). */
  options: O;
  create(options: z.output<O>, target: FenceTarget, deps: FenceDeps): FenceDevice;
}

/** Types a fence plugin definition (its options are inferred). */
export function defineFencePlugin<O extends z.ZodType>(def: FencePluginDefinition<O>): FencePluginDefinition<O> {
  return def;
}
