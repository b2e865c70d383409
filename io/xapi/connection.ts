/**
 * The one place that talks to a pool: Xen Orchestra's `xen-api` client, kept connected to whichever
 * host is master, with the pool's records mirrored through its `event.from` long poll (no polling of
 * get_all_records), address failover and bounded backoff. Never throws from the background loop:
 * errors become state (`status`, `lastError`) and counters.
 *
 * Failover: the client follows HOST_IS_SLAVE by itself at login; when the current address stops
 * answering (the master died, a network cut), the next candidate is tried — the configured addresses,
 * then every management address of every host seen in the pool.
 */
import { EventEmitter } from 'node:events';
import type { XapiObject } from 'xen-api';
import type { Logger } from 'pino';
import { buildSnapshot, type PoolSnapshot, type RecordsByClass } from '../../core/model/snapshot.ts';
import { errorCodeLabel } from './error-codes.ts';
import { DEFAULT_LIMITS, type ConnectionLimits } from './limits.ts';

export { DEFAULT_LIMITS, type ConnectionLimits };
import { GuardedXapi } from './guarded-client.ts';
import { fetchHeartbeatVdis } from './heartbeat-vdis.ts';

/**
 * A URL as it may be shown and logged: without userinfo. (The config refuses credentials in URLs; the
 * client gets them from passwordFile/passwordEnv, so a URL never needs any.)
 */
export function withoutCredentials(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}

/**
 * Classes mirrored from the pool through event.from. VDIs are not mirrored (a pool has thousands);
 * the few on the heartbeat SR are fetched by query after a connect and when an SR or the pool changes.
 */
export const WATCHED_CLASSES = ['pool', 'host', 'host_metrics', 'PIF', 'PBD', 'SR'] as const;

export interface ConnectionOptions {
  name: string;
  /** Configured XAPI URLs, e.g. http://10.0.0.1 or https://xs1.example:443. */
  urls: string[];
  user: string;
  password: string;
  allowUnauthorized: boolean;
  callTimeoutMs: number;
  /** How often VMs and VBDs are fetched for the capacity figures (they are not mirrored); 0 = never. */
  vmRefreshMs: number;
  /** Backoff between failed rounds over every candidate. */
  retryMinMs: number;
  retryMaxMs: number;
  limits: ConnectionLimits;
  log: Logger;
}

/** The answers read record by record are bounded by their count, their record size and time; this is a backstop. */
export const MAX_STREAMED_ANSWER_BYTES = 2 ** 30;
/** event.from long-polls for 60 s (xen-api waits 66 s): twice that without an answer is a stuck session. */
const EVENT_SILENCE_MS = 150_000;

/** An error as it is kept and shown: bounded (a pool's error data can be large). */
function short(s: string): string {
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

export type ConnectionStatus = 'connecting' | 'connected' | 'disconnected';

export class PoolConnection extends EventEmitter {
  status: ConnectionStatus = 'disconnected';
  currentUrl: string | null = null;
  lastError: string | null = null;
  readonly calls = new Map<string, number>();
  readonly errors = new Map<string, number>();
  connects = 0;
  private client: GuardedXapi | null = null;
  private stopped = false;
  private snapshotCache: PoolSnapshot | null = null;
  private dirty = true;
  private knownAddresses: string[] = [];
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private failoverRequested = false;
  private heartbeatVdis: Record<string, unknown> = {};
  private vmRecords: { VM: Record<string, unknown>; VBD: Record<string, unknown> } | null = null;
  private vmTimer: NodeJS.Timeout | undefined;
  /** When VMs were last fetched (ms since the epoch), null before the first fetch. */
  vmsFetchedAt: number | null = null;
  /** Per client: a heartbeat-VDI fetch running, and whether another is wanted after it. */
  private readonly vdiFetches = new WeakMap<GuardedXapi, { running: boolean; again: boolean }>();
  /** Detaches the current client's collection listeners. */
  private detach: () => void = () => {};
  private connectedAt = 0;
  private lastCheck = 0;
  private checking = false;
  /** When event.from last answered (ms since the epoch). */
  private lastEventAt = 0;
  private watchdog: NodeJS.Timeout | undefined;
  /** The client being connected (login, initial fetch), closed at once by stop(). */
  private connecting: GuardedXapi | null = null;

  constructor(private readonly o: ConnectionOptions) {
    super();
    if (o.urls.length === 0) throw new Error(`pool ${o.name}: no XAPI address`);
  }

  start(): void {
    this.loop ??= this.run();
    this.watchdog ??= setInterval(() => this.watchEvents(), 30_000);
    this.watchdog.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.vmTimer);
    clearInterval(this.watchdog);
    this.wake?.();
    // A login or initial fetch in flight ends now (its sockets closed), not at its timeout.
    await this.connecting?.destroyTransport();
    await this.dropClient();
    await this.loop;
  }

  /** The latest snapshot of the pool, rebuilt lazily after events; null before the first fetch. */
  snapshot(): PoolSnapshot | null {
    if (this.status !== 'connected' && this.snapshotCache === null) return null;
    if (this.dirty && this.client && this.status === 'connected') {
      try {
        this.snapshotCache = buildSnapshot(this.records(this.client));
        this.knownAddresses = this.snapshotCache.hosts.flatMap((h) => h.homes);
      } catch (e) {
        // The last good snapshot stays; the error is counted and shown.
        const err = e as { code?: string; message?: string };
        this.count(this.errors, err.code ?? 'SNAPSHOT_FAILED');
        this.lastError = short(`snapshot: ${err.message ?? String(e)}`);
        this.o.log.warn({ err: e }, 'pool snapshot refused');
      }
      this.dirty = false;
    }
    return this.snapshotCache;
  }

  /** Asks for a reconnect through another address (e.g. the master's addresses stopped answering). */
  requestFailover(reason: string): void {
    if (this.status !== 'connected' || this.failoverRequested) return;
    this.failoverRequested = true;
    this.o.log.warn({ reason }, 'XAPI failover requested');
    void this.dropClient().then(() => this.wake?.());
  }

  private records(c: GuardedXapi): RecordsByClass {
    const out: Record<string, Record<string, unknown>> = {};
    for (const cls of WATCHED_CLASSES) out[cls] = {};
    for (const obj of Object.values(c.objects.all)) {
      const bucket = out[obj.$type];
      if (bucket) bucket[obj.$ref] = obj;
    }
    const hosts = Object.keys(out.host!).length;
    if (hosts > this.o.limits.maxHosts) {
      throw Object.assign(new Error(`the pool reports ${hosts} hosts, more than limits.maxHosts (${this.o.limits.maxHosts})`), {
        code: 'TOO_MANY_RECORDS',
      });
    }
    out.VDI = this.heartbeatVdis;
    if (this.vmRecords) {
      out.VM = this.vmRecords.VM;
      out.VBD = this.vmRecords.VBD;
    }
    return out;
  }

  /** The next VM fetch, jittered ±25 % so that many pools do not fetch (and hold the answers) at once. */
  private scheduleVmFetch(c: GuardedXapi): void {
    clearTimeout(this.vmTimer);
    if (this.client !== c || this.stopped) return;
    this.vmTimer = setTimeout(
      () => {
        if (this.client !== c || this.stopped) return;
        void this.fetchVms(c).finally(() => this.scheduleVmFetch(c));
      },
      this.o.vmRefreshMs * (0.75 + Math.random() / 2),
    );
    this.vmTimer.unref();
  }

  /**
   * Checks the session with one cheap call; fails over only if it fails at the network level or
   * times out. At most one check every 10 s.
   */
  async checkOrFailover(reason: string): Promise<void> {
    const c = this.client;
    if (!c || this.status !== 'connected' || this.checking || Date.now() - this.lastCheck < 10_000) return;
    this.checking = true;
    this.lastCheck = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        c.call('pool.get_all'),
        new Promise(
          (_, reject) =>
            (timer = setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), this.o.callTimeoutMs)),
        ),
      ]);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (this.client === c && (code === undefined || /^E[A-Z]+$|^UND_ERR/.test(code)))
        this.requestFailover(`${reason}; session check failed: ${code ?? (e as Error).message}`);
    } finally {
      clearTimeout(timer);
      this.checking = false;
    }
  }

  /**
   * Fetches VMs and VBDs now, not at the next period (the remediation service plans on fresh records).
   * Resolves true when they were fetched from the current connection.
   */
  async refreshVms(): Promise<boolean> {
    const c = this.client;
    if (!c || this.status !== 'connected') return false;
    const before = this.vmsFetchedAt;
    await this.fetchVms(c);
    const fetched = this.client === c && this.vmsFetchedAt !== before;
    // Built now, while connected: a snapshot rebuilt lazily would miss them if the master died first
    // (the service refreshes right after a plan moved VMs, and plans the next death on this view).
    if (fetched) this.snapshot();
    return fetched;
  }

  /**
   * VMs and VBDs for the capacity figures, fetched every `vmRefreshMs` rather than mirrored: a pool
   * has thousands, their records are large, and capacity does not need them to the second. Templates
   * and snapshots are dropped, and only the fields xenha reads are kept.
   */
  private async fetchVms(c: GuardedXapi): Promise<void> {
    try {
      const { VM, VBD } = await c.capacityRecords(this.o.callTimeoutMs);
      if (this.client !== c) return;
      this.vmRecords = { VM, VBD };
      this.vmsFetchedAt = Date.now();
      this.markDirty();
    } catch (e) {
      const err = e as { code?: string; message?: string };
      this.count(this.errors, err.code ?? 'VM_FETCH_FAILED');
      this.lastError = `VMs: ${err.code ?? err.message}`;
    }
  }

  /**
   * The VDIs of the heartbeat SR (statefile and metadata volumes): two queries, not a mirror of
   * every VDI. Coalesced: a change during a fetch runs one more fetch after it.
   */
  private async refreshHeartbeatVdis(c: GuardedXapi): Promise<void> {
    const state = this.vdiFetches.get(c) ?? { running: false, again: false };
    this.vdiFetches.set(c, state);
    if (state.running) {
      state.again = true;
      return;
    }
    state.running = true;
    try {
      do {
        state.again = false;
        const poolRec = Object.values(c.objects.all).find((o) => o.$type === 'pool') as { ha_statefiles?: string[] } | undefined;
        const vdis = await fetchHeartbeatVdis((expr) => c.vdisWhere(expr, this.o.callTimeoutMs), poolRec?.ha_statefiles);
        if (this.client !== c) return;
        this.heartbeatVdis = vdis;
        this.markDirty();
      } while (state.again && this.client === c);
    } catch (e) {
      if (this.client !== c) return;
      const err = e as { code?: string; message?: string };
      this.count(this.errors, err.code ?? 'VDI_FETCH_FAILED');
      this.lastError = `heartbeat VDIs: ${err.code ?? err.message}`;
    } finally {
      state.running = false;
    }
  }

  /** Configured URLs first, then known host addresses on the first URL's scheme and port. */
  candidates(): string[] {
    const first = new URL(withoutCredentials(this.o.urls[0]!));
    const extra = this.knownAddresses.map((a) => {
      const u = new URL(first.toString());
      u.hostname = a.includes(':') ? `[${a}]` : a;
      return u.toString().replace(/\/$/, '');
    });
    return [...new Set([...this.o.urls.map((u) => withoutCredentials(u).replace(/\/$/, '')), ...extra])];
  }

  private count(map: Map<string, number>, key: string): void {
    const label = map === this.errors ? errorCodeLabel(key) : key;
    map.set(label, (map.get(label) ?? 0) + 1);
  }

  private async dropClient(): Promise<void> {
    const c = this.client;
    this.client = null;
    this.detach();
    this.detach = () => {};
    clearTimeout(this.vmTimer);
    if (this.status === 'connected') this.emit('disconnected');
    this.status = 'disconnected';
    if (c) {
      c.removeAllListeners();
      // Log out (bounded), then close every socket: the event.from long poll in flight ends now, not in a minute.
      let timer: NodeJS.Timeout | undefined;
      try {
        await c.logout(2000);
        await Promise.race([c.disconnect().catch(() => {}), new Promise((r) => (timer = setTimeout(r, 1000)))]);
      } finally {
        clearTimeout(timer);
        await c.destroyTransport();
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private async tryConnect(url: string): Promise<GuardedXapi> {
    const c = new GuardedXapi({
      maxAnswerBytes: this.o.limits.maxAnswerBytes,
      maxStreamedAnswerBytes: MAX_STREAMED_ANSWER_BYTES,
      recordLimits: this.o.limits,
      url,
      auth: { user: this.o.user, password: this.o.password },
      allowUnauthorized: this.o.allowUnauthorized,
      readOnly: true,
      watchEvents: [...WATCHED_CLASSES],
      callTimeout: this.o.callTimeoutMs,
      httpInactivityTimeout: 90_000,
      eventPollDelay: 1000,
      debounce: 200,
    });
    this.connecting = c;
    c.onCall = (m) => this.count(this.calls, m);
    c.onInvalidAnswer = (e) => this.o.log.warn({ method: e.method, err: e.message }, 'XAPI answer refused');
    c.on('error', () => {});
    let timer: NodeJS.Timeout | undefined;
    try {
      await c.connect();
      await Promise.race([
        c.objectsFetched,
        new Promise(
          (_, reject) => (timer = setTimeout(() => reject(new Error('timed out fetching the pool records')), this.o.callTimeoutMs * 3)),
        ),
      ]);
      // The initial fetch swallows its errors (xen-api logs them): a mirror missing a class is no mirror.
      if (c.lastFetchError) throw c.lastFetchError;
      return c;
    } catch (e) {
      c.removeAllListeners();
      void c.disconnect().catch(() => {});
      void c.destroyTransport();
      throw e;
    } finally {
      clearTimeout(timer);
      this.connecting = null;
    }
  }

  private async run(): Promise<void> {
    let backoff = this.o.retryMinMs;
    while (!this.stopped) {
      if (this.client) {
        await this.sleep(60_000); // connected: woken by a failover or stop
        continue;
      }
      // A connection that did not last is no success: keep backing off before the next attempt.
      if (this.connectedAt > 0 && Date.now() - this.connectedAt < 30_000) {
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, this.o.retryMaxMs);
        if (this.stopped) break;
      }
      this.connectedAt = 0;
      this.status = 'connecting';
      this.failoverRequested = false;
      let connected = false;
      const list = this.candidates();
      // Start after the address that just failed, so a dead master is not retried first.
      const start = this.currentUrl ? (list.indexOf(this.currentUrl) + 1) % list.length : 0;
      for (let i = 0; i < list.length && !this.stopped; i++) {
        const url = list[(start + i) % list.length]!;
        try {
          const c = await this.tryConnect(url);
          if (this.stopped) {
            void c.disconnect().catch(() => {});
            void c.destroyTransport();
            break;
          }
          this.client = c;
          this.currentUrl = url;
          this.status = 'connected';
          this.connectedAt = Date.now();
          this.lastError = null;
          this.connects++;
          this.dirty = true;
          const onObjects = (objs: Record<string, XapiObject | undefined>) => {
            this.markDirty();
            // A removal carries no object (undefined values): only adds and updates say their class.
            if (Object.values(objs).some((o) => o?.$type === 'SR' || o?.$type === 'pool')) void this.refreshHeartbeatVdis(c);
            // The mirror grows by events too: a pool that keeps adding records is dropped, not followed.
            if (c.objects.size > this.o.limits.maxRecords) {
              this.count(this.errors, 'TOO_MANY_RECORDS');
              this.requestFailover(`the mirror holds ${c.objects.size} records, more than limits.maxRecords (${this.o.limits.maxRecords})`);
            }
          };
          const objects = c.objects;
          const kinds = ['add', 'update', 'remove'] as const;
          for (const ev of kinds) objects.on(ev, onObjects);
          this.detach = () => {
            for (const ev of kinds) objects.removeListener(ev, onObjects);
          };
          await this.refreshHeartbeatVdis(c);
          if (this.o.vmRefreshMs > 0 && this.client === c) {
            await this.fetchVms(c);
            this.scheduleVmFetch(c);
          }
          c.on('eventFetchingError', (err: { code?: string; message?: string }) => this.onEventError(err));
          c.on('eventFetchingSuccess', () => (this.lastEventAt = Date.now()));
          this.lastEventAt = Date.now();
          c.onMirrorBroken = (e) => {
            this.count(this.errors, 'MIRROR_BROKEN');
            this.o.log.warn({ err: e }, 'applying XAPI events to the mirror failed');
            this.requestFailover(`events could not be applied: ${(e as Error).message}`);
          };
          c.on('disconnected', () => this.requestFailover('client disconnected'));
          this.o.log.info({ url }, 'connected to XAPI');
          this.emit('connected', url);
          connected = true;
          break;
        } catch (e) {
          const err = e as { code?: string; message?: string };
          this.lastError = short(
            `${url}: ${err.code !== undefined && err.message && !err.message.startsWith(err.code) ? `${err.code}: ${err.message}` : (err.code ?? err.message ?? String(e))}`,
          );
          this.count(this.errors, err.code ?? 'CONNECTION_FAILED');
          this.o.log.debug({ url, err: this.lastError }, 'XAPI connect failed');
        }
      }
      if (connected) {
        backoff = this.o.retryMinMs;
        this.markDirty();
        continue;
      }
      this.status = 'disconnected';
      await this.sleep(backoff);
      backoff = Math.min(backoff * 2, this.o.retryMaxMs);
    }
    this.status = 'disconnected';
  }

  private markDirty(): void {
    this.dirty = true;
    this.emit('change');
  }

  private onEventError(err: { code?: string; message?: string }): void {
    this.count(this.errors, err.code ?? 'EVENT_FETCH_FAILED');
    this.lastError = short(`event.from: ${err.code ?? err.message ?? 'failed'}`);
    // A XAPI error (it answered) is the client's to handle; a network failure means this address is gone;
    // a refused answer means the mirror stops following the pool: reconnect (xapi_up says so meanwhile).
    if (err.code === undefined || /^E[A-Z]+$|^UND_ERR|^INVALID_ANSWER$|^TOO_MANY_RECORDS$/.test(err.code))
      this.requestFailover(this.lastError);
  }

  /** No event.from answered (each returns within its 60 s timeout) for this long: the session is stuck. */
  private watchEvents(): void {
    if (this.status === 'connected' && Date.now() - this.lastEventAt > EVENT_SILENCE_MS) {
      this.count(this.errors, 'TIMEOUT');
      this.requestFailover(`no event.from answered for ${EVENT_SILENCE_MS / 1000} s`);
    }
  }
}
