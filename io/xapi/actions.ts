/**
 * XAPI calls that act on a pool (remediation), over plain JSON-RPC with undici: a session with the
 * actions account on the master, found through the configured addresses (a slave answers
 * HOST_IS_SLAVE with the master's address, which is followed), re-opened once on SESSION_INVALID; and
 * the emergency calls a slave answers itself with a local session (`session.slave_local_login_with_password`),
 * for a master transition when the master is dead. Every answer's envelope is checked with zod; an XAPI
 * failure is an XapiCallError carrying xapi's error code and parameters, as xapi returns them.
 */
import { Agent, fetch } from 'undici';
import { z } from 'zod';

export class XapiCallError extends Error {
  constructor(
    readonly method: string,
    /** xapi's error code (HOST_OFFLINE, VM_BAD_POWER_STATE, …), or a transport code (ECONNREFUSED, TIMEOUT, BAD_ANSWER). */
    readonly code: string,
    readonly params: string[] = [],
  ) {
    super(`${method}: ${code}${params.length > 0 ? ` ${JSON.stringify(params)}` : ''}`);
  }
}

const envelope = z.union([
  z.object({ result: z.unknown() }).refine((e) => e.result !== undefined, 'no result'),
  z.object({ error: z.object({ message: z.string(), data: z.array(z.unknown()).optional() }) }),
]);

/** The largest answer an action call takes (record reads included): a few megabytes at most. */
const MAX_ANSWER_BYTES = 16 * 2 ** 20;

export interface XapiActionsOptions {
  /** Every address XAPI may be reached on (the pool config's urls). */
  urls: readonly string[];
  user: string;
  password: string;
  timeoutMs: number;
  /** Accept a self-signed certificate (XAPI's default one), as the pool config's allowUnauthorized says. */
  allowUnauthorized?: boolean;
  /**
   * One JSON-RPC call to the host at `url`: the answer's result, or a thrown XapiCallError (xapi's error
   * or a transport code). Default: HTTP. The safety campaign calls its in-process simulated pool.
   */
  transport?: (url: string, method: string, params: unknown[]) => Promise<unknown>;
}

export class XapiActions {
  private session: { url: string; id: string } | null = null;
  /** The URL that last answered as master (tried first). */
  private masterUrl: string | null = null;

  private readonly dispatcher: Agent;

  constructor(private readonly o: XapiActionsOptions) {
    this.dispatcher = new Agent({ connect: { rejectUnauthorized: o.allowUnauthorized !== true } });
  }

  /** A host's XAPI URL from its address, with the scheme and port of the configured URLs. */
  urlFor(address: string): string {
    const u = new URL(this.o.urls[0]!);
    u.hostname = address.includes(':') ? `[${address}]` : address;
    return u.origin;
  }

  private async rpc(url: string, method: string, params: unknown[]): Promise<unknown> {
    if (this.o.transport) return this.o.transport(url, method, params);
    let res;
    try {
      res = await fetch(new URL('/jsonrpc', url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
        signal: AbortSignal.timeout(this.o.timeoutMs),
        dispatcher: this.dispatcher,
      });
    } catch (e) {
      const err = e as { name?: string; code?: string; cause?: { code?: string } };
      throw new XapiCallError(method, err.name === 'TimeoutError' ? 'TIMEOUT' : (err.cause?.code ?? err.code ?? 'FETCH_FAILED'));
    }
    const len = Number(res.headers.get('content-length') ?? 0);
    if (len > MAX_ANSWER_BYTES) {
      await res.body?.cancel();
      throw new XapiCallError(method, 'BAD_ANSWER', [`answer of ${len} bytes`]);
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      throw new XapiCallError(method, 'BAD_ANSWER', [`HTTP ${res.status}, not JSON`]);
    }
    const e = envelope.safeParse(body);
    if (!e.success) throw new XapiCallError(method, 'BAD_ANSWER', ['not a JSON-RPC answer']);
    // xapi's JSON-RPC error: the code in `message`, its parameters in `data` (api_server.ml).
    if ('error' in e.data) throw new XapiCallError(method, e.data.error.message, (e.data.error.data ?? []).map(String));
    return e.data.result;
  }

  /** Logs in on the master: the last master first, then every configured address; follows HOST_IS_SLAVE. */
  private async login(): Promise<{ url: string; id: string }> {
    const tried = new Set<string>();
    const queue = [...new Set([...(this.masterUrl ? [this.masterUrl] : []), ...this.o.urls.map((u) => new URL(u).origin)])];
    let last: unknown;
    while (queue.length > 0) {
      const url = queue.shift()!;
      if (tried.has(url)) continue;
      tried.add(url);
      try {
        const id = await this.rpc(url, 'session.login_with_password', [this.o.user, this.o.password, '1.0', 'xenha-remediation']);
        if (typeof id !== 'string') throw new XapiCallError('session.login_with_password', 'BAD_ANSWER', ['no session']);
        this.masterUrl = url;
        return { url, id };
      } catch (e) {
        last = e;
        if (e instanceof XapiCallError && e.code === 'HOST_IS_SLAVE' && e.params[0]) queue.unshift(this.urlFor(e.params[0]));
        else if (e instanceof XapiCallError && (e.code === 'SESSION_AUTHENTICATION_FAILED' || e.code === 'RBAC_PERMISSION_DENIED')) throw e;
      }
    }
    throw last instanceof Error ? last : new XapiCallError('session.login_with_password', 'NO_MASTER');
  }

  /** A read (or an idempotent call) on the master: tried once more after SESSION_INVALID, a lost master or a transport error. */
  call(method: string, ...params: unknown[]): Promise<unknown> {
    return this.invoke(method, params, true);
  }

  /**
   * A call that acts (VM.start_on, VM.power_state_reset): tried again only when it surely did not run
   * (the session was refused, the host answered it is a slave, the connection was refused). A timeout or
   * a connection lost after sending is not retried: the call may be running inside xapi.
   */
  act(method: string, ...params: unknown[]): Promise<unknown> {
    return this.invoke(method, params, false);
  }

  private async invoke(method: string, params: unknown[], idempotent: boolean): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      this.session ??= await this.login();
      try {
        return await this.rpc(this.session.url, method, [this.session.id, ...params]);
      } catch (e) {
        if (!(e instanceof XapiCallError) || attempt >= 1) throw e;
        const notRun = e.code === 'SESSION_INVALID' || e.code === 'HOST_IS_SLAVE' || e.code === 'ECONNREFUSED';
        const transport = /^E[A-Z]+$|^UND_ERR|^TIMEOUT$|^FETCH_FAILED$/.test(e.code);
        if (!notRun && !(idempotent && transport)) throw e;
        this.session = null;
        if (e.code !== 'SESSION_INVALID') this.masterUrl = null;
      }
    }
  }

  /** Whether the host at `address` answers as the master now (a login there succeeds, not HOST_IS_SLAVE). */
  async answersAsMaster(address: string): Promise<boolean> {
    const url = this.urlFor(address);
    try {
      const id = await this.rpc(url, 'session.login_with_password', [this.o.user, this.o.password, '1.0', 'xenha-remediation']);
      if (typeof id === 'string') await this.rpc(url, 'session.logout', [id]).catch(() => undefined);
      return typeof id === 'string';
    } catch {
      return false;
    }
  }

  /** A call a slave answers itself (emergency master transition), with a local session on that host. */
  async slaveCall(address: string, method: string, ...params: unknown[]): Promise<unknown> {
    const url = this.urlFor(address);
    const id = await this.rpc(url, 'session.slave_local_login_with_password', [this.o.user, this.o.password]);
    if (typeof id !== 'string') throw new XapiCallError('session.slave_local_login_with_password', 'BAD_ANSWER', ['no session']);
    try {
      return await this.rpc(url, method, [id, ...params]);
    } finally {
      await this.rpc(url, 'session.local_logout', [id]).catch(() => undefined);
    }
  }

  /** The master changed (a transition): forget the session so the next call finds the new one. */
  forgetMaster(): void {
    this.session = null;
    this.masterUrl = null;
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    if (s) await this.rpc(s.url, 'session.logout', [s.id]).catch(() => undefined);
    await this.dispatcher.close();
  }
}
