/**
 * `xenha remediate`: the remediation service. Starts from its journal (replayed and validated: the
 * state, the fence history, the plans to resume), watches every pool itself (a PoolSampler per pool:
 * the exporter's probes and classification from its own vantage point), and serves:
 *
 *   POST /webhook/alertmanager      Alertmanager's webhook (bearer token)
 *   GET  /api/v1/plans              every plan, each step's state, timing and reason
 *   GET  /api/v1/plans/:id
 *   POST /api/v1/plans/:id/ack      `xenha ack` (bearer token)
 *   GET  /api/v1/incidents
 *   GET  /metrics                   its own metrics
 *   GET  /healthz
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Logger } from 'pino';
import { resolvePassword, type PoolConfig } from '../exporter/config.ts';
import { parseListen } from '../exporter/listen.ts';
import { PoolSampler } from '../exporter/sampler.ts';
import { XapiActions } from '../io/xapi/actions.ts';
import type { RemediationConfig } from './config.ts';
import { Journal } from './journal.ts';
import { createRemediationMetrics, resultLabel } from './metrics.ts';
import { PoolActions } from './pool-actions.ts';
import { journalRecord } from './records.ts';
import { AckError, Remediator, type PoolRuntime } from './remediator.ts';
import { apply, emptyState, type Plan, type RemediationState } from './state.ts';
import { loadToken, tokenMatches } from './token.ts';
import { jsonErrorHandler, jsonNotFound, mountWebhook } from './webhook.ts';

export interface RunningRemediation {
  url: string;
  state: RemediationState;
  samplers: PoolSampler[];
  remediator: Remediator;
  stop(): Promise<void>;
}

export interface RemediationOptions {
  /** Monotonic clock for the quiet period (tests). */
  monotonic?: () => number;
  env?: NodeJS.ProcessEnv;
  /** Fault injection for the crash-safety test (see RemediatorOptions.crashAt). */
  crashAt?: { seq: number; when: 'before' | 'after' };
}

/** The journal's records replayed into a state; a record that does not parse stops the start, naming it. */
export function replay(records: readonly Record<string, unknown>[]): RemediationState {
  const state = emptyState();
  for (const raw of records) {
    const r = journalRecord.safeParse(raw);
    if (!r.success)
      throw new Error(
        `journal record seq ${String(raw.seq)} (type ${String(raw.type)}) is not one this version writes: ${r.error.issues[0]?.message ?? 'invalid'} at ${r.error.issues[0]?.path.join('.') ?? ''}`,
      );
    apply(state, r.data);
  }
  return state;
}

/** A plan as the API shows it. */
function showPlan(p: Plan) {
  return {
    ...p,
    steps: p.steps.map((s) => ({
      ...s,
      seconds: s.startedAt && s.finishedAt ? (Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000 : null,
    })),
  };
}

export async function startRemediation(config: RemediationConfig, log: Logger, opts: RemediationOptions = {}): Promise<RunningRemediation> {
  const section = config.remediation;
  const env = opts.env ?? process.env;
  const token = await loadToken(section.tokenFile !== undefined ? { tokenFile: section.tokenFile } : { tokenEnv: section.tokenEnv! }, env);
  let fsyncHook: (seconds: number) => void = () => {};
  const { journal, records } = await Journal.open(section.journal, { log, onFsync: (s) => fsyncHook(s) });
  let state: RemediationState;
  try {
    state = replay(records);
  } catch (e) {
    await journal.close();
    throw e;
  }
  log.info(
    { journal: section.journal, records: records.length, plans: state.plans.size, incidents: state.incidents.size },
    'journal replayed',
  );

  const runtimes: PoolRuntime[] = config.pools.map((p: PoolConfig) => {
    const rem = section.pools[p.name] ?? { fence: { hosts: {} } };
    const account = rem.actions;
    const password = account
      ? resolvePassword({ ...p, passwordEnv: account.passwordEnv, passwordFile: account.passwordFile }, env)
      : resolvePassword(p, env);
    const xapi = new XapiActions({
      urls: p.urls,
      user: account?.user ?? p.user,
      password,
      timeoutMs: p.timing.xapiTimeout,
      allowUnauthorized: p.allowUnauthorized,
    });
    return { config: p, remediation: rem, sampler: new PoolSampler(p, log.child({ pool: p.name })), actions: new PoolActions(xapi) };
  });
  const metrics = createRemediationMetrics(
    state,
    runtimes.map((r) => ({
      pool: r.config.name,
      mode: section.mode,
      haOn: () => r.sampler.state.snapshot?.haEnabled ?? null,
      // The freshest VM records, as the remediator plans on them (refreshed after every plan).
      vms: () => (r.sampler.connection.snapshot() ?? r.sampler.state.snapshot)?.vms ?? null,
    })),
  );
  fsyncHook = (s) => metrics.fsyncSeconds.observe(s);
  const remediator = new Remediator({
    pools: runtimes,
    section,
    journal,
    state,
    log,
    ...(opts.monotonic && { monotonic: opts.monotonic }),
    ...(opts.crashAt && { crashAt: opts.crashAt }),
    events: {
      onRefusal: (pool, gate) => metrics.refusals.inc({ pool, gate }),
      onDuplicate: (pool) => metrics.duplicates.inc({ pool }),
      onAction: (kind, result, seconds) => {
        metrics.actions.inc({ kind, result: resultLabel(result) });
        metrics.stepSeconds.observe({ kind }, seconds);
      },
      onPlanFinished: (s, seconds) => metrics.planSeconds.observe({ state: s }, seconds),
    },
  });

  const app = express();
  app.disable('x-powered-by');
  // No ETag: nothing here is cached or fetched conditionally, and hashing every answer costs the webhook's hot path.
  app.set('etag', false);
  mountWebhook(app, {
    token,
    bodyLimitBytes: section.bodyLimit,
    intake: async (payload, meta) => {
      const r = await remediator.intake(payload, meta);
      metrics.notifications.inc();
      return r;
    },
    log,
    onRequest: (status) => metrics.requests.inc({ code: String(status) }),
  });
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/metrics', async (_req, res) => {
    res.set('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get('/api/v1/plans', (_req, res) => {
    res.json({ plans: [...state.plans.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1)).map(showPlan) });
  });
  app.get('/api/v1/plans/:id', (req, res) => {
    const p = state.plans.get(req.params.id);
    if (!p) res.status(404).json({ error: 'not_found', message: `no plan ${req.params.id.slice(0, 100)}` });
    else res.json(showPlan(p));
  });
  // The service's own view: what its re-check decides on (its own classification of every host).
  app.get('/api/v1/pools', (_req, res) => {
    res.json({
      pools: runtimes.map((r) => {
        const s = r.sampler.state;
        return {
          pool: r.config.name,
          connected: s.snapshot !== null,
          haEnabled: s.snapshot?.haEnabled ?? null,
          observerIsolated: s.memory?.observerIsolated ?? null,
          hosts: (s.snapshot?.hosts ?? []).map((h) => {
            const m = s.memory?.hosts[h.uuid];
            return {
              uuid: h.uuid,
              name: h.name,
              bootTime: h.bootTime,
              state: m?.state ?? null,
              rule: m?.rule ?? null,
              reason: m?.reason ?? null,
            };
          }),
        };
      }),
    });
  });
  app.get('/api/v1/incidents', (_req, res) => {
    res.json({ incidents: [...state.incidents.values()] });
  });
  // A person's word on a plan (xenha ack, xenha cancel): the bearer token, then the remediator decides.
  const operatorRoute = (act: (id: string, by: string) => Promise<Plan>): express.RequestHandler => {
    return async (req, res) => {
      if (!tokenMatches(req.get('authorization'), token)) {
        res.set('www-authenticate', 'Bearer').status(401).json({ error: 'unauthorized', message: 'a bearer token is required' });
        return;
      }
      const body = (req.body ?? {}) as { by?: unknown };
      const by = typeof body.by === 'string' && body.by.length > 0 && body.by.length <= 100 ? body.by : 'operator';
      try {
        const p = await act(String(req.params.id), by);
        res.json(showPlan(state.plans.get(p.id) ?? p));
      } catch (e) {
        if (e instanceof AckError) res.status(e.status).json({ error: e.status === 404 ? 'not_found' : 'conflict', message: e.message });
        else throw e;
      }
    };
  };
  app.post(
    '/api/v1/plans/:id/ack',
    express.json({ limit: '4kb' }),
    operatorRoute((id, by) => remediator.ack(id, by)),
  );
  app.post(
    '/api/v1/plans/:id/cancel',
    express.json({ limit: '4kb' }),
    operatorRoute((id, by) => remediator.cancel(id, by)),
  );
  app.use(jsonNotFound);
  app.use(jsonErrorHandler);

  const server: Server = createServer(app);
  const { host, port } = parseListen(section.listen);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (e) {
    await journal.close();
    throw e;
  }
  for (const r of runtimes) r.sampler.start();
  remediator.start();
  let stopping: Promise<void> | undefined;
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  log.info({ url, mode: section.mode, pools: config.pools.map((p) => p.name) }, 'remediation service listening');
  return {
    url,
    state,
    samplers: runtimes.map((r) => r.sampler),
    remediator,
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
  };

  /** Once: the server closes, a step in progress finishes (a fence is never cut), then everything stops. */
  async function stopAll(): Promise<void> {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await remediator.stop();
    await Promise.all(runtimes.map((r) => r.sampler.stop()));
    await Promise.all(runtimes.map((r) => r.actions.xapi.close()));
    await journal.close();
  }
}
