/**
 * The exporter's HTTP server (express): /metrics, /-/healthy, /-/ready, and a small JSON API for
 * `xenha explain` and people (/api/v1/state, /api/v1/explain?pool=P&host=H).
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { explainHost } from './explain.ts';
import type { PoolSampler } from './sampler.ts';

export function exporterApp(samplers: readonly PoolSampler[], reg: Registry, now: () => number): express.Express {
  const app = express();
  app.disable('x-powered-by');

  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', reg.contentType).send(await reg.metrics());
  });
  app.get('/-/healthy', (_req, res) => {
    res.type('text/plain').send('OK\n');
  });
  app.get('/-/ready', (_req, res) => {
    const waiting = samplers.filter((s) => !s.ready).map((s) => s.config.name);
    if (waiting.length === 0) res.type('text/plain').send('ready\n');
    else
      res
        .status(503)
        .type('text/plain')
        .send(`waiting for the first sample of: ${waiting.join(', ')}\n`);
  });
  app.get('/api/v1/state', (_req, res) => {
    res.json({
      pools: samplers.map((s) => ({
        pool: s.config.name,
        xapi: { status: s.connection.status, url: s.connection.currentUrl, lastError: s.connection.lastError },
        observerIsolated: s.state.memory?.observerIsolated ?? null,
        deadAfter: { seconds: s.state.deadAfter.ms / 1000, source: s.state.deadAfter.source, reason: s.state.deadAfter.reason },
        storageHeartbeat: s.state.storageHeartbeat && { ok: s.state.storageHeartbeat.ok, reason: s.state.storageHeartbeat.reason },
        master: s.state.snapshot?.hosts.find((h) => h.ref === s.state.snapshot?.masterRef)?.name ?? null,
        hosts: (s.state.snapshot?.hosts ?? []).map((h) => {
          const m = s.state.memory?.hosts[h.uuid];
          return {
            name: h.name,
            uuid: h.uuid,
            state: m?.state ?? null,
            rule: m?.rule ?? null,
            reason: m?.reason ?? null,
            network: m?.network ?? null,
            storage: m?.storage ?? null,
          };
        }),
        preflight: s.state.preflight,
        recentChanges: s.changes.slice(-50),
      })),
    });
  });
  const explainQuery = z.object({ pool: z.string().min(1), host: z.string().min(1) });
  app.get('/api/v1/explain', (req, res) => {
    const q = explainQuery.safeParse(req.query);
    if (!q.success) {
      res.status(400).json({ error: 'query parameters pool and host are required' });
      return;
    }
    const s = samplers.find((x) => x.config.name === q.data.pool);
    if (!s) {
      res.status(404).json({ error: `no pool ${q.data.pool} (pools: ${samplers.map((x) => x.config.name).join(', ')})` });
      return;
    }
    const e = explainHost(s, q.data.host, now());
    if (!e) {
      res.status(404).json({
        error: `no classified host ${q.data.host} in pool ${q.data.pool} (hosts: ${(s.state.snapshot?.hosts ?? []).map((h) => h.name).join(', ') || 'none yet'})`,
      });
      return;
    }
    res.json(e);
  });
  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });
  app.use((err: Error & { status?: number }, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    res.status(err.status ?? 500).json({ error: err.message });
  });
  return app;
}
