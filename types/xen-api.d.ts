// xen-api ships no types; this is the part xenha uses (vatesfr/xen-orchestra packages/xen-api).
declare module 'xen-api' {
  import { EventEmitter } from 'node:events';
  export interface XapiOptions {
    url: string;
    auth?: { user: string; password: string } | { sessionId: string };
    allowUnauthorized?: boolean;
    readOnly?: boolean;
    transport?: 'auto' | 'json-rpc' | 'xml-rpc';
    watchEvents?: boolean | string[];
    callTimeout?: number;
    httpInactivityTimeout?: number;
    debounce?: number;
    eventPollDelay?: number;
  }
  export interface XapiObject {
    $type: string;
    $ref: string;
    $id: string;
    [field: string]: unknown;
  }
  export interface XapiCollection {
    all: Record<string, XapiObject>;
    on(event: 'add' | 'update' | 'remove', listener: (objects: Record<string, XapiObject>) => void): this;
    removeListener(event: 'add' | 'update' | 'remove', listener: (objects: Record<string, XapiObject>) => void): this;
    readonly size: number;
  }
  export class Xapi extends EventEmitter {
    constructor(o: XapiOptions);
    readonly status: 'disconnected' | 'connecting' | 'connected';
    readonly pool: XapiObject;
    readonly objects: XapiCollection;
    readonly objectsFetched: Promise<void>;
    connect(): Promise<void>;
    disconnect(): Promise<void>;
    call<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
    /** Every call goes through here (not public API: xenha wraps it to count calls, guarded by a test). */
    protected _call(method: string, ...args: unknown[]): Promise<unknown>;
    /** The undici dispatcher every call uses (not public API: xenha bounds its answers). */
    protected _undiciDispatcher: unknown;
    /** The parsed URL calls go to, and the method that sets it and rebuilds the transport (not public API). */
    protected _url: { protocol?: string; hostname: string; port?: string | number };
    protected _setUrl(url: { protocol?: string; hostname: string; port?: string | number }): void;
    readonly sessionId: string | undefined;
    /** The session, read without the getter's "connected" assertion (not public API). */
    protected _sessionId: string | undefined;
    /** Applies event.from's events to the mirror (not public API: xenha contains its exceptions). */
    protected _processEvents(events: unknown[]): void;
    getAllRecords<T = Record<string, unknown>>(type: string): Promise<T[]>;
    getRecord<T = Record<string, unknown>>(type: string, ref: string): Promise<T>;
    getObject<T = XapiObject>(idOrRef: string, defaultValue?: T): T;
  }
  export function createClient(o: XapiOptions): Xapi;
}

declare module '@xen-orchestra/log/configure' {
  /** Replaces the global transport of every @xen-orchestra/log logger (a function gets each entry). */
  export function configure(
    transport: (entry: { level: number; namespace: string; message: string; time: Date; data?: unknown }) => void,
  ): void;
}
