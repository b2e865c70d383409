/**
 * A fake XAPI in front of a simulator: it forwards every request to the simulator's master and
 * answers as it is told, per shape — malformed answers the client would dereference, garbage, HTML,
 * HTTP 500, resets, hangs, slowloris and endless bodies, a 50 MB answer, 100,000 hosts. Only on
 * 127.0.0.1; every socket it holds is closed when the shape changes or the harness stops.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Simulator } from '../../simulator/simulator.ts';

export const SHAPES = [
  'pass',
  'events-null',
  'no-valid-ref-counts',
  'snapshot-not-object',
  'pool-without-other-config',
  'garbage',
  'html',
  'http-500',
  'reset',
  'hang',
  'slowloris',
  'endless',
  'huge',
  'many-hosts',
  'del-event',
  'bad-uuid',
  'dollar-field',
  'unasked-class',
] as const;
export type Shape = (typeof SHAPES)[number];

type Json = Record<string, unknown>;

export class HostileXapi {
  shape: Shape = 'pass';
  /** PIF refs seen in answers passed through (a real record to delete). */
  private readonly pifRefs: string[] = [];
  /** Requests answered with the current shape (not passed through untouched). */
  shaped = 0;
  private server: Server | undefined;
  private readonly held = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  url = '';

  constructor(private readonly target: string) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  /** Changes the shape; every connection held by the previous one (hangs, trickles, streams) is closed. */
  set(shape: Shape): void {
    this.shape = shape;
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    for (const s of this.held) s.destroy();
    this.held.clear();
  }

  async stop(): Promise<void> {
    this.set('pass');
    if (!this.server) return;
    await new Promise<void>((resolve) => {
      this.server!.close(() => resolve());
      this.server!.closeAllConnections();
    });
  }

  private hold(res: ServerResponse): void {
    const s = res.socket!;
    this.held.add(s);
    s.once('close', () => this.held.delete(s));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const isJson = (req.url ?? '/').startsWith('/jsonrpc');
    let method = '';
    if (isJson) {
      try {
        const m = (JSON.parse(body.toString()) as Json).method;
        method = typeof m === 'string' ? m : '';
      } catch {
        method = '';
      }
    }
    const shape = this.shape;
    // Shapes that do not need the real answer.
    switch (shape) {
      case 'garbage':
        this.shaped++;
        res.writeHead(200, { 'content-type': 'application/json' }).end('@@@ this is not JSON {');
        return;
      case 'html':
        this.shaped++;
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>502 Bad Gateway</body></html>');
        return;
      case 'http-500':
        this.shaped++;
        res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
        return;
      case 'reset':
        this.shaped++;
        req.socket.destroy();
        return;
      case 'hang':
        this.shaped++;
        this.hold(res);
        return;
      case 'slowloris': {
        this.shaped++;
        this.hold(res);
        res.writeHead(200, { 'content-type': 'application/json' });
        const t = setInterval(() => res.write(' '), 500);
        this.timers.add(t);
        res.once('close', () => clearInterval(t));
        return;
      }
      case 'endless': {
        this.shaped++;
        this.hold(res);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"jsonrpc":"2.0","id":0,"result":"');
        const chunk = 'a'.repeat(64 * 1024);
        const pump = () => {
          while (this.shape === 'endless' && !res.destroyed && res.write(chunk));
        };
        res.on('drain', pump);
        pump();
        return;
      }
      case 'huge': {
        this.shaped++;
        // About 50 MB of valid JSON-RPC: a result of 50 strings of 1 MB.
        res.writeHead(200, { 'content-type': 'application/json' });
        const mb = `"${'b'.repeat(2 ** 20)}"`;
        res.end(`{"jsonrpc":"2.0","id":0,"result":[${Array.from({ length: 50 }, () => mb).join(',')}]}`);
        return;
      }
    }
    // Shapes that edit the real answer.
    const upstream = await fetch(new URL(req.url ?? '/', this.target), {
      method: req.method,
      headers: { 'content-type': req.headers['content-type'] ?? 'text/xml' },
      body: req.method === 'POST' ? body : undefined,
    });
    let text = await upstream.text();
    if (method === 'PIF.get_all_records' && upstream.ok) {
      const result = (JSON.parse(text) as Json).result;
      if (result && typeof result === 'object') this.pifRefs.push(...Object.keys(result));
    }
    // The shape when the answer comes back (a long poll started before the shape changed ends after).
    const now = this.shape;
    const edited = isJson && now !== 'pass' ? this.edit(now, method, text) : null;
    if (edited !== null) {
      this.shaped++;
      text = edited;
    }
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'text/plain' }).end(text);
  }

  /** The answer edited for a shape, or null when the shape does not touch this method. */
  private edit(shape: Shape, method: string, text: string): string | null {
    const msg = JSON.parse(text) as Json;
    const result = msg.result as Json | undefined;
    if (result === undefined) return null;
    const events = method === 'event.from' ? (result.events as Json[]) : null;
    switch (shape) {
      case 'events-null':
        if (!events) return null;
        result.events = null;
        break;
      case 'no-valid-ref-counts':
        if (!events) return null;
        delete result.valid_ref_counts;
        break;
      case 'snapshot-not-object':
        if (!events) return null;
        events.push({ id: '0', timestamp: '0.0', class: 'host', operation: 'mod', ref: 'OpaqueRef:hostile', snapshot: 42 });
        break;
      case 'pool-without-other-config':
        if (method === 'pool.get_all_records') {
          for (const r of Object.values(result)) delete (r as Json).other_config;
        } else if (events) {
          const pool = Object.values(events).find((e) => e.class === 'pool');
          events.push({
            ...(pool ?? { id: '0', timestamp: '0.0', class: 'pool', ref: 'OpaqueRef:hostile-pool' }),
            operation: 'mod',
            snapshot: { uuid: 'x' },
          });
        } else return null;
        break;
      case 'del-event': {
        // A record deleted (a VLAN's PIF destroyed): legitimate, and the client's collection reports it without an object.
        if (!events) return null;
        events.push({ id: '0', timestamp: '0.0', class: 'PIF', operation: 'del', ref: this.pifRefs.at(-1) ?? 'OpaqueRef:hostile-pif' });
        break;
      }
      case 'bad-uuid':
        if (!events) return null;
        events.push({ id: '0', timestamp: '0.0', class: 'host', operation: 'mod', ref: 'OpaqueRef:hostile', snapshot: { uuid: 42 } });
        break;
      case 'dollar-field':
        if (!events) return null;
        events.push({
          id: '0',
          timestamp: '0.0',
          class: 'host',
          operation: 'mod',
          ref: 'OpaqueRef:hostile',
          snapshot: { uuid: 'x', $ref: 'y' },
        });
        break;
      case 'unasked-class':
        if (!events) return null;
        events.push({ id: '0', timestamp: '0.0', class: 'VM', operation: 'add', ref: 'OpaqueRef:hostile-vm', snapshot: { uuid: 'vm' } });
        break;
      case 'many-hosts': {
        const many = (n: number) =>
          Array.from({ length: n }, (_, i) => [`OpaqueRef:h${i}`, { uuid: `h${i}`, name_label: `h${i}` }] as const);
        if (method === 'host.get_all_records') {
          msg.result = Object.fromEntries(many(100_000));
        } else if (events) {
          for (const [ref, snapshot] of many(100_000))
            events.push({ id: '0', timestamp: '0.0', class: 'host', operation: 'add', ref, snapshot });
        } else return null;
        break;
      }
      default:
        return null;
    }
    return JSON.stringify(msg);
  }
}

/**
 * A pool of an exporter config (YAML) watching a simulator through `url` (the fake XAPI, or the
 * simulator itself) with every probe; `timing` is a flow map, or none for the defaults.
 */
export function poolYaml(name: string, sim: Simulator, url: string, passwordEnv: string, timing?: string): string {
  const info = sim.info();
  return [
    `  - name: ${name}`,
    `    urls: ["${url}"]`,
    `    passwordEnv: ${passwordEnv}`,
    '    probes:',
    `      network-tcp: { port: ${info.port} }`,
    '      network-xapi:',
    '      storage-xapi:',
    '      storage-statefile:',
    `        devices: [{ home: "0", path: "${info.statefile}" }]`,
    '        readMode: buffered',
    ...(timing ? [`    timing: ${timing}`] : []),
  ].join('\n');
}
