/**
 * network-tcp: the monitor connects to every management address (home) of every host, with a
 * timeout. Observer-side evidence: a refused or timed-out connect says the monitor cannot reach the
 * host there, which may be the monitor's own fault (see observer isolation).
 */
import { connect } from 'node:net';
import { z } from 'zod';
import { defineProbe, type TcpConnectResult } from './contract.ts';

export type { TcpConnectResult } from './contract.ts';

export function tcpConnect(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<TcpConnectResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const finish = (up: boolean, detail: string) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve({ up, seconds: (performance.now() - started) / 1000, detail });
    };
    const onAbort = () => finish(false, 'aborted');
    const timer = setTimeout(() => finish(false, `timeout after ${timeoutMs} ms`), timeoutMs);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => finish(true, `connected to ${host}:${port}`));
    socket.once('error', (e: NodeJS.ErrnoException) => finish(false, `${e.code ?? e.message} ${host}:${port}`));
  });
}

export const networkTcp = defineProbe({
  name: 'network-tcp',
  path: 'network',
  observerSide: true,
  source: 'monitor',
  enabledByDefault: true,
  description: 'TCP connect from the monitor to each management address of each host',
  options: z.strictObject({
    /** Port to connect to; default: the XAPI URL's port (443 for https, 80 for http). */
    port: z.number().int().min(1).max(65535).optional(),
  }),
  series: {},
  create(o, deps) {
    const connect = deps.io?.tcpConnect ?? tcpConnect;
    return {
      async sample(round) {
        const url = round.xapiUrl;
        const port = o.port ?? Number(url.port || (url.protocol === 'https:' ? 443 : 80));
        await Promise.all(
          round.snapshot.hosts.map(async (h) => {
            const results = await Promise.all(h.homes.map((addr) => connect(addr, port, round.timeoutMs, round.signal)));
            // Reported in home order, so that reasons built from the samples read the same each round.
            results.forEach((r, i) => round.report(h.uuid, String(i), r.up, r.detail, { latencySeconds: r.up ? r.seconds : null }));
          }),
        );
      },
    };
  },
});
