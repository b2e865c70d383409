/** Starts the exporter: one sampler per pool, the metrics registry, the HTTP server. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { ExporterConfig } from './config.ts';
import { parseListen } from './listen.ts';
import { createRegistry } from './metrics.ts';
import { guardProcess, type ProcessGuard } from './process-guard.ts';
import { PoolSampler } from './sampler.ts';
import { exporterApp } from './server.ts';

export interface RunningExporter {
  samplers: PoolSampler[];
  url: string;
  stop(): Promise<void>;
}

export interface ExporterOptions {
  /** Keep running through an uncaught exception or unhandled rejection (the CLI's process; not in tests). */
  guardProcess?: boolean;
}

export async function startExporter(config: ExporterConfig, log: Logger, options: ExporterOptions = {}): Promise<RunningExporter> {
  const now = () => performance.now();
  const guard: ProcessGuard | undefined = options.guardProcess ? guardProcess(log) : undefined;
  const samplers = config.pools.map((p) => new PoolSampler(p, log.child({ pool: p.name }), now));
  const reg = createRegistry(samplers, now, true, guard);
  const server: Server = createServer(exporterApp(samplers, reg, now));
  const { host, port } = parseListen(config.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  for (const s of samplers) s.start();
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  log.info({ url, pools: config.pools.map((p) => p.name) }, 'exporter listening');
  return {
    samplers,
    url,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Promise.all(samplers.map((s) => s.stop()));
      guard?.dispose();
    },
  };
}
