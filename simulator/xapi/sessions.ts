/**
 * xapi's sessions, on the simulated pool's clock: created at login, checked (and their `last_active`
 * refreshed) on every call, destroyed at logout, and garbage-collected as xapi's DB GC does.
 *
 * Followed from xapi-project/xen-api:
 * - ocaml/xapi/xapi_session.ml `login_no_password_common_create_session`: a login writes a Session
 *   row with `last_active = now` and its `originator` (login_with_password's fourth argument, ""
 *   when left out); `slave_local_login_with_password` does not: it adds the session to the host's own
 *   table (ocaml/xapi/xapi_local_session.ml), which no GC reads and which only that host consults.
 * - ocaml/xapi/session_check.ml `check`: a session not in the table answers `SESSION_INVALID [ref]`;
 *   a valid one gets `last_active = now` only when its `last_active` is more than
 *   `threshold_last_active` (600 s, ocaml/xapi/xapi_globs.ml) old, so a busy session's `last_active`
 *   lags its last call by up to ten minutes. A session that is not a pool login, used on a host that is
 *   not the master, answers `HOST_IS_SLAVE [master address]` (Non_master_login_on_slave).
 * - ocaml/xapi/db_gc.ml: the GC thread runs `single_pass` every `db_GC_TIMER` = 30 s, which calls
 *   ocaml/xapi/db_gc_util.ml `timeout_sessions`: sessions are grouped (root or no user name: by
 *   originator; root with no originator: the "external" group, capped at `max_sessions` = 2 ×
 *   `max_tasks` = 400; other user names: by user name, 500); in each group, a session whose
 *   `last_active` is `inactive_session_timeout` (24 h) old or more is destroyed, and of the others all
 *   but the `limit` most recently active are destroyed (`max_sessions_per_originator` = 500). Sessions
 *   with unfinished tasks are spared; the simulator has no tasks.
 * So a session is not refused the moment it turns 24 h idle, nor the moment the 501st login of its
 * originator happens: it is destroyed at the next GC pass, and answers SESSION_INVALID from then on.
 */
import { randomUUID } from 'node:crypto';

export interface SessionPolicy {
  /** Xapi_globs.inactive_session_timeout: 86400 s. */
  idleTimeoutMs: number;
  /** Xapi_globs.max_sessions_per_originator (and max_sessions_per_user_name): 500. */
  maxPerOriginator: number;
  /** Xapi_globs.max_sessions = max_tasks × 2 = 400: root sessions that name no originator. */
  maxWithoutOriginator: number;
  /** Db_gc.db_GC_TIMER: 30 s between GC passes. */
  gcIntervalMs: number;
  /** Xapi_globs.threshold_last_active: 600 s; a call refreshes last_active only when it is older than this. */
  lastActiveRefreshMs: number;
}

/** xapi's own figures (ocaml/xapi/xapi_globs.ml, ocaml/xapi/db_gc.ml). */
export const XAPI_SESSION_POLICY: Readonly<SessionPolicy> = Object.freeze({
  idleTimeoutMs: 86_400_000,
  maxPerOriginator: 500,
  maxWithoutOriginator: 400,
  gcIntervalMs: 30_000,
  lastActiveRefreshMs: 600_000,
});

export interface SessionRecord {
  readonly ref: string;
  readonly user: string;
  readonly originator: string;
  readonly created: number;
  lastActive: number;
  /** The host ref whose local table holds it (slave_local_login_with_password), or null for a pool-wide session. */
  readonly localTo: string | null;
}

export type SessionCheck = { ok: true; session: SessionRecord } | { ok: false; reason: 'invalid' | 'not-on-this-host' };

export class SessionTable {
  private readonly sessions = new Map<string, SessionRecord>();
  private lastGc: number;
  readonly policy: Readonly<SessionPolicy>;

  constructor(
    private readonly now: () => number,
    policy: Partial<SessionPolicy> = {},
  ) {
    this.policy = { ...XAPI_SESSION_POLICY, ...policy };
    for (const [k, v] of Object.entries(this.policy)) {
      if (!(typeof v === 'number' && v >= 0 && !Number.isNaN(v)))
        throw new Error(`session policy ${k}: expected a non-negative number, got ${String(v)}`);
    }
    if (this.policy.gcIntervalMs <= 0) throw new Error('session policy gcIntervalMs: must be positive');
    this.lastGc = now();
  }

  /** A new session; `localTo` (a host ref) for the emergency login a host keeps to itself. */
  create(user: string, originator: string, localTo: string | null = null): string {
    const ref = `OpaqueRef:${randomUUID()}`;
    const t = this.now();
    this.sessions.set(ref, { ref, user, originator, created: t, lastActive: t, localTo });
    return ref;
  }

  /**
   * Session_check.check on host `hostRef` (`isMaster`: whether it is the master): a local session is
   * valid only on its own host; a pool-wide one refreshes its last_active (past the threshold). A
   * pool-wide session used on a slave is reported as such: the caller answers HOST_IS_SLAVE.
   */
  check(ref: string, hostRef: string, isMaster: boolean): SessionCheck {
    const s = this.sessions.get(ref);
    if (!s) return { ok: false, reason: 'invalid' };
    if (s.localTo !== null) return s.localTo === hostRef ? { ok: true, session: s } : { ok: false, reason: 'invalid' };
    if (!isMaster) return { ok: false, reason: 'not-on-this-host' };
    const t = this.now();
    if (t > s.lastActive + this.policy.lastActiveRefreshMs) s.lastActive = t;
    return { ok: true, session: s };
  }

  get(ref: string): Readonly<SessionRecord> | undefined {
    return this.sessions.get(ref);
  }

  has(ref: string): boolean {
    return this.sessions.has(ref);
  }

  destroy(ref: string): boolean {
    return this.sessions.delete(ref);
  }

  /** Every session gone at once (as when xapi restarts: the Session table is not persisted). */
  clear(): void {
    this.sessions.clear();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Runs a GC pass when one is due (every gcIntervalMs on the pool clock, as xapi's db_gc thread). */
  maybeGc(now = this.now()): string[] {
    if (now - this.lastGc < this.policy.gcIntervalMs) return [];
    this.lastGc = now;
    return this.gc(now);
  }

  /** One pass of db_gc_util.ml timeout_sessions; returns the refs destroyed. */
  gc(now = this.now()): string[] {
    const groups = new Map<string, { limit: number; members: SessionRecord[] }>();
    for (const s of this.sessions.values()) {
      if (s.localTo !== null) continue; // local sessions live outside the database
      const rootish = s.user === '' || s.user === 'root';
      const [key, limit] =
        rootish && s.originator === ''
          ? ['external', this.policy.maxWithoutOriginator]
          : rootish
            ? [`originator:${s.originator}`, this.policy.maxPerOriginator]
            : [`username:${s.user}`, this.policy.maxPerOriginator];
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { limit, members: [] }));
      g.members.push(s);
    }
    const destroyed: string[] = [];
    const threshold = now - this.policy.idleTimeoutMs;
    for (const { limit, members } of groups.values()) {
      const young = members.filter((s) => s.lastActive > threshold);
      for (const s of members) if (s.lastActive <= threshold) destroyed.push(s.ref);
      if (young.length > limit) {
        // sort_and_split: most recently active first; those past the limit go. Among equals (the
        // simulator's clock can stand still between logins) the newer login is kept, the older goes.
        const byRecent = young.map((s, i) => [s, i] as const).sort(([a, i], [b, j]) => b.lastActive - a.lastActive || j - i);
        for (const [s] of byRecent.slice(limit)) destroyed.push(s.ref);
      }
    }
    for (const ref of destroyed) this.sessions.delete(ref);
    return destroyed;
  }
}
