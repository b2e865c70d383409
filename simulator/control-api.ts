/**
 * The simulator's control API (express, on 127.0.0.1, its own port):
 *   GET  /state              pool, hosts, paths per home, listeners, faults
 *   GET  /events?since=N     the fault / power / path / master event log
 *   GET  /calls              XAPI calls answered, by method
 *   POST /faults             inject a fault: {"kind": "network-down", "host": "host-02", "homes": [0]}
 * Bodies are validated with zod; a bad one gets 400 with the reason, an unknown host 404.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { applyFault, faultRequest } from './faults.ts';
import type { Simulator } from './simulator.ts';

export function controlApp(sim: Simulator): express.Express {
  const app = express();
  app.use(express.json({ limit: '64kb' }));

  app.get('/state', (_req, res) => {
    res.json(sim.state());
  });

  app.get('/events', (req, res) => {
    const since = z.coerce.number().int().min(0).default(0).safeParse(req.query.since);
    if (!since.success) {
      res.status(400).json({ error: 'since must be a non-negative integer' });
      return;
    }
    res.json({ events: sim.pool.eventLog(since.data) });
  });

  app.get('/calls', (_req, res) => {
    res.json({ calls: Object.fromEntries(sim.shared.callCounts) });
  });

  app.post('/faults', async (req, res) => {
    const parsed = faultRequest.safeParse(req.body);
    if (!parsed.success) {
      res.status(400).json({ error: z.prettifyError(parsed.error) });
      return;
    }
    let event;
    try {
      event = applyFault(sim.pool, parsed.data);
    } catch (e) {
      const msg = (e as Error).message;
      res.status(msg.startsWith('no host') ? 404 : 400).json({ error: msg });
      return;
    }
    await sim.settle();
    res.json({ ok: true, event });
  });

  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });
  app.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    res.status(err.status ?? 500).json({ error: err.type ?? err.message });
  });
  return app;
}
