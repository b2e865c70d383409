/**
 * The campaign's injected clock: virtual milliseconds and the timers that wait on them. Nothing waits
 * on the wall clock: a story of minutes runs in milliseconds, and the same seed runs the same way.
 * Timers belong to an owner (an incarnation of the remediation service): killing the owner drops its
 * timers, as SIGKILL drops a process's, and whatever awaited them never resumes.
 */
export interface VirtualTimer {
  at: number;
  seq: number;
  owner: string;
  fn: () => void;
}

export class VirtualClock {
  private t: number;
  private seq = 0;
  private readonly timers: VirtualTimer[] = [];
  private readonly killed = new Set<string>();

  constructor(start: number) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  /** Runs fn at now + ms (after the timers already due then), unless its owner is killed first. */
  setTimeout(fn: () => void, ms: number, owner = 'world'): VirtualTimer {
    const timer = { at: this.t + Math.max(0, ms), seq: ++this.seq, owner, fn };
    if (!this.killed.has(owner)) this.timers.push(timer);
    return timer;
  }

  clearTimeout(timer: unknown): void {
    const i = this.timers.indexOf(timer as VirtualTimer);
    if (i >= 0) this.timers.splice(i, 1);
  }

  /** Waits ms of virtual time, or less when the signal fires; never rejects. */
  sleep(ms: number, signal: AbortSignal | undefined, owner = 'world'): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        this.clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = this.setTimeout(done, ms, owner);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Drops every timer of an owner, and any it sets later. */
  kill(owner: string): void {
    this.killed.add(owner);
    for (let i = this.timers.length - 1; i >= 0; i--) if (this.timers[i]!.owner === owner) this.timers.splice(i, 1);
  }

  /** Timers of an owner still to fire. */
  pending(owner: string): number {
    return this.timers.filter((t) => t.owner === owner).length;
  }

  /** When the next timer is due (Infinity: none). */
  nextAt(): number {
    let next = Infinity;
    for (const t of this.timers) if (t.at < next) next = t.at;
    return next;
  }

  /** Moves the time to `at` (never back) and returns the timers due by then, earliest first, removed. */
  advance(at: number): VirtualTimer[] {
    if (at > this.t) this.t = at;
    const due = this.timers.filter((t) => t.at <= this.t).sort((a, b) => a.at - b.at || a.seq - b.seq);
    for (const t of due) this.timers.splice(this.timers.indexOf(t), 1);
    return due;
  }
}
