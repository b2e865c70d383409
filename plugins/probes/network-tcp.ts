/**
 * network-tcp: the monitor connects to every management address (home) of every host, with a
 * timeout. Observer-side evidence: a refused or timed-out connect says the monitor cannot reach the
 * host there, which may be the monitor's own fault (see observer isolation).
 */
import { connect } from 'node:net';
import { z } from 'zod';
import { registerProbe, sample, type ProbeResult } from './contract.ts';

const options = z.strictObject({
  /** Port to connect to; default: the XAPI URL's port (443 for https, 80 for http). */
  port: z.number().int().min(1).max(65535).optional(),
});

function tcpConnect(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<{ up: boolean; seconds: number; detail: string }> {
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
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => finish(true, `connected to ${host}:${port}`));
    socket.once('error', (e: NodeJS.ErrnoException) => finish(false, `${e.code ?? e.message} ${host}:${port}`));
  });
}

registerProbe({
  name: 'network-tcp',
  path: 'network',
  description: 'TCP connect from the monitor to each management address of each host',
  options,
  create(o) {
    return {
      name: 'network-tcp',
      path: 'network',
      async sample(ctx): Promise<ProbeResult> {
        const out: ProbeResult = new Map();
        if (!ctx.snapshot) return out;
        const port = o.port ?? Number(ctx.xapiUrl.port || (ctx.xapiUrl.protocol === 'https:' ? 443 : 80));
        await Promise.all(ctx.snapshot.hosts.map(async (h) => {
          const samples = await Promise.all(h.homes.map(async (addr, i) => {
            const r = await tcpConnect(addr, port, ctx.timeoutMs, ctx.signal);
            return sample('network-tcp', 'network', String(i), r.up, r.detail, r.up ? r.seconds : null, true);
          }));
          out.set(h.uuid, samples);
        }));
        return out;
      },
    };
  },
});
