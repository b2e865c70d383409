/**
 * Fencing a host through its levels, as Pacemaker's fencing topology: the levels (BMC, then PDU, then
 * a person…) are tried in order until one proves the host off. Within a level:
 *
 * 1. `status` first: off → `already-off`, nothing sent (a BMC that refuses to power off a host that is
 *    already off must not block recovery);
 * 2. else `off`; when it fails, `status` is asked once more (off → `confirmed-off`), else the level
 *    ends `failed`, `unreachable` or `timeout` as the device said;
 * 3. else `status` is polled every pollMs until it answers off (`confirmed-off`) or powerTimeoutMs has
 *    passed since `off` returned (`timeout`; `awaiting-operator` for an operator level).
 *
 * A fence is counted done only on a `status` answering off, never on the action's exit code alone.
 * The clock and the sleep are injectable: unit tests run without waiting.
 */
import type { Logger } from 'pino';
import { isFenced, type ActionAnswer, type FenceDevice, type FenceOutcome, type StatusAnswer } from './contract.ts';

export const DEFAULT_POWER_TIMEOUT_MS = 60_000;
export const DEFAULT_POLL_MS = 1_000;

/** One level of a host's fencing topology: a device and the plugin that made it. */
export interface FenceLevel {
  plugin: string;
  device: FenceDevice;
}

/** How one level went. */
export interface FenceAttempt {
  /** The level's position in the topology, from 1. */
  level: number;
  plugin: string;
  label: string;
  outcome: FenceOutcome;
  detail: string;
  /** now() when the level started. */
  startedAtMs: number;
  durationMs: number;
  /** Whether `off` was sent (never for already-off). */
  offSent: boolean;
  /** How long the `off` call took. */
  offMs?: number;
  /** From the end of the `off` call to the status that answered off. */
  confirmMs?: number;
  /** How many `status` calls the level made. */
  statusCalls: number;
}

export interface FenceResult {
  /**
   * confirmed-off or already-off from the first level that proved the host off; else awaiting-operator
   * when an operator level is waiting for its acknowledgement; else the last level's failure.
   */
  outcome: FenceOutcome;
  detail: string;
  /** The level (from 1) the outcome comes from; 0 when no level was tried. */
  level: number;
  /** Every level tried, in order. */
  attempts: FenceAttempt[];
  durationMs: number;
  /** The signal fired: the levels after the one it interrupted were not tried. */
  aborted: boolean;
}

export interface FenceHostOptions {
  /** How long after `off` the status may take to answer off, unless the device says (default 60 s). */
  powerTimeoutMs?: number;
  /** How often to ask the status meanwhile, unless the device says (default 1 s). */
  pollMs?: number;
  /** Stops the fence: the running call is told, no further call or level is started. */
  signal?: AbortSignal;
  /** Monotonic milliseconds (default performance.now). */
  now?: () => number;
  /** Waits ms, or less when the signal fires (default a timer). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  log?: Logger;
  /**
   * Asked right before each `off` (of every level): null to send it, else why not — the fence then
   * ends `cancelled` and no later level is tried. A slow level (a hung BMC) can take minutes, and the
   * host may come back meanwhile: the caller re-checks that it is still dead.
   */
  beforeOff?: () => Promise<string | null> | string | null;
}

/** Waits ms, or until the signal fires; never rejects. */
export function sleepFor(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    if (signal.aborted) return done();
    signal.addEventListener('abort', done, { once: true });
  });
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** A device call that throws is a device that cannot tell. */
async function askStatus(device: FenceDevice, signal: AbortSignal): Promise<StatusAnswer> {
  try {
    return await device.status(signal);
  } catch (e) {
    return { state: 'unknown', detail: `status threw: ${message(e)}` };
  }
}

async function askOff(device: FenceDevice, signal: AbortSignal): Promise<ActionAnswer> {
  try {
    return await device.off(signal);
  } catch (e) {
    return { ok: false, detail: `off threw: ${message(e)}` };
  }
}

function failureOf(off: ActionAnswer): FenceOutcome {
  if (off.timedOut === true) return 'timeout';
  if (off.unreachable === true) return 'unreachable';
  return 'failed';
}

interface Context {
  now: () => number;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  signal: AbortSignal;
  powerTimeoutMs: number;
  pollMs: number;
  beforeOff: () => Promise<string | null> | string | null;
}

async function fenceLevel({ plugin, device }: FenceLevel, level: number, ctx: Context): Promise<FenceAttempt> {
  const { now, signal } = ctx;
  const startedAtMs = now();
  let statusCalls = 0;
  let offSent = false;
  const status = () => {
    statusCalls++;
    return askStatus(device, signal);
  };
  const end = (outcome: FenceOutcome, detail: string, times: { offMs?: number; confirmMs?: number } = {}): FenceAttempt => ({
    level,
    plugin,
    label: device.label,
    outcome,
    detail,
    startedAtMs,
    durationMs: now() - startedAtMs,
    offSent,
    ...times,
    statusCalls,
  });

  if (signal.aborted) return end('failed', 'aborted before the level started');
  const first = await status();
  if (first.state === 'off') return end('already-off', `status answers off before any off was sent: ${first.detail}`);
  if (signal.aborted) return end('failed', `aborted before off (status: ${first.state}: ${first.detail})`);
  const why = await ctx.beforeOff();
  if (why !== null) return end('cancelled', `no off sent: ${why}`);

  const offStart = now();
  offSent = true;
  const off = await askOff(device, signal);
  const offEnd = now();
  const offMs = offEnd - offStart;
  if (!off.ok) {
    if (signal.aborted) return end('failed', `aborted during off: ${off.detail}`, { offMs });
    // A device that refuses to power off a host that is off (or whose first status could not tell).
    const after = await status();
    if (after.state === 'off') {
      return end('confirmed-off', `off failed (${off.detail}) but status then answers off: ${after.detail}`, {
        offMs,
        confirmMs: now() - offEnd,
      });
    }
    return end(failureOf(off), `off failed: ${off.detail}`, { offMs });
  }

  const powerTimeoutMs = device.powerTimeoutMs ?? ctx.powerTimeoutMs;
  const pollMs = Math.max(1, device.pollMs ?? ctx.pollMs);
  const deadline = offEnd + powerTimeoutMs;
  for (;;) {
    if (signal.aborted) return end('failed', 'aborted while waiting for status to answer off', { offMs });
    const st = await status();
    if (st.state === 'off')
      return end('confirmed-off', `off done (${off.detail}), status answers off: ${st.detail}`, { offMs, confirmMs: now() - offEnd });
    const left = deadline - now();
    if (left <= 0) {
      const last = `last status: ${st.state}: ${st.detail}`;
      return device.operator === true
        ? end('awaiting-operator', `${off.detail}; not acknowledged within ${powerTimeoutMs} ms (${last})`, { offMs })
        : end('timeout', `off done (${off.detail}) but status did not answer off within ${powerTimeoutMs} ms (${last})`, { offMs });
    }
    await ctx.sleep(Math.min(pollMs, left), signal);
  }
}

/**
 * Fences one host through its levels, in order, until one proves it off. Never throws: a device call
 * that throws counts as a failed or unknown answer.
 */
export async function fenceHost(levels: readonly FenceLevel[], opts: FenceHostOptions = {}): Promise<FenceResult> {
  const ctx: Context = {
    now: opts.now ?? (() => performance.now()),
    sleep: opts.sleep ?? sleepFor,
    signal: opts.signal ?? new AbortController().signal,
    powerTimeoutMs: opts.powerTimeoutMs ?? DEFAULT_POWER_TIMEOUT_MS,
    pollMs: opts.pollMs ?? DEFAULT_POLL_MS,
    beforeOff: opts.beforeOff ?? (() => null),
  };
  const started = ctx.now();
  const attempts: FenceAttempt[] = [];
  const result = (a: FenceAttempt | undefined, aborted: boolean): FenceResult => ({
    outcome: a?.outcome ?? 'failed',
    detail: a === undefined ? 'no fence level to try' : `level ${a.level} (${a.plugin}: ${a.label}): ${a.detail}`,
    level: a?.level ?? 0,
    attempts,
    durationMs: ctx.now() - started,
    aborted,
  });

  for (const [i, level] of levels.entries()) {
    const a = await fenceLevel(level, i + 1, ctx);
    attempts.push(a);
    const fields = { level: a.level, plugin: a.plugin, device: a.label, outcome: a.outcome, durationMs: Math.round(a.durationMs) };
    if (isFenced(a.outcome)) {
      opts.log?.info({ ...fields, detail: a.detail }, 'fence level proved the host off');
      return result(a, false);
    }
    opts.log?.warn({ ...fields, detail: a.detail }, 'fence level did not prove the host off');
    if (a.outcome === 'cancelled') return result(a, false);
    if (ctx.signal.aborted) return result(a, true);
  }
  return result(attempts.find((a) => a.outcome === 'awaiting-operator') ?? attempts.at(-1), false);
}
