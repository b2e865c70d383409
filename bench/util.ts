/** Small helpers the recovery benchmarks share: an environment knob, a bounded poll, a median. */

/** A positive integer from the environment variable `name`, or `dflt` when it is unset or empty. */
export function positiveInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer: ${v}`);
  return n;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `pollMs` until it gives a value (not false, undefined or null); fails after `timeoutMs`. */
export async function until<T>(
  what: string,
  check: () => T | false | undefined | null | Promise<T | false | undefined | null>,
  timeoutMs: number,
  pollMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== false && v !== undefined && v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
