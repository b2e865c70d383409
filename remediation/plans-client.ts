/** `xenha plans` and `xenha ack`: the remediation service's API, read and shown for a person. */
import { z } from 'zod';
import { loadToken, type TokenSource } from './token.ts';

const step = z.looseObject({
  index: z.number(),
  step: z.looseObject({ kind: z.string(), reason: z.string() }),
  state: z.string(),
  outcome: z.string().nullable(),
  detail: z.string(),
  startedAt: z.string().nullable(),
  seconds: z.number().nullable(),
});
const plan = z.looseObject({
  id: z.string(),
  pool: z.string(),
  hostName: z.string(),
  mode: z.string(),
  modeReason: z.string().nullable(),
  state: z.string(),
  stateReason: z.string(),
  createdAt: z.string(),
  steps: z.array(step),
  names: z.record(z.string(), z.string()),
});
type Plan = z.output<typeof plan>;

async function get(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok)
    throw new Error(
      `${url}: HTTP ${res.status}${body && typeof body === 'object' && 'message' in body ? `: ${String(body.message)}` : ''}`,
    );
  return body;
}

function target(p: Plan, s: Plan['steps'][number]): string {
  const x = s.step as Record<string, unknown>;
  const id = typeof x.vm === 'string' ? x.vm : typeof x.host === 'string' ? x.host : '';
  return id === '' ? '' : (p.names[id] ?? id);
}

export function formatPlan(p: Plan): string {
  const lines = [
    `plan ${p.id}  pool ${p.pool}  host ${p.hostName}  ${p.state} (${p.stateReason})  mode ${p.mode}${p.modeReason ? ` — ${p.modeReason}` : ''}  made ${p.createdAt}`,
  ];
  for (const s of p.steps) {
    const time = s.seconds !== null ? ` ${s.seconds.toFixed(1)} s` : '';
    lines.push(
      `  ${String(s.index + 1).padStart(3)}. ${s.state.padEnd(8)} ${s.step.kind.padEnd(22)} ${target(p, s).padEnd(20)} ${s.outcome ?? ''}${time}  ${s.detail || s.step.reason}`,
    );
  }
  return lines.join('\n');
}

export async function fetchPlans(baseUrl: string, planId: string | undefined, json: boolean): Promise<string> {
  if (planId !== undefined) {
    const body = await get(new URL(`/api/v1/plans/${encodeURIComponent(planId)}`, baseUrl).href);
    return json ? `${JSON.stringify(body)}\n` : `${formatPlan(plan.parse(body))}\n`;
  }
  const body = await get(new URL('/api/v1/plans', baseUrl).href);
  if (json) return `${JSON.stringify(body)}\n`;
  const plans = z.object({ plans: z.array(plan) }).parse(body).plans;
  return plans.length === 0 ? 'no plans\n' : `${plans.map(formatPlan).join('\n\n')}\n`;
}

/** `xenha ack` or `xenha cancel`: a person's word on a plan, with the service's bearer token. */
export async function operatorCall(
  action: 'ack' | 'cancel',
  baseUrl: string,
  planId: string,
  source: TokenSource,
  by: string,
): Promise<string> {
  const token = await loadToken(source);
  const res = await fetch(new URL(`/api/v1/plans/${encodeURIComponent(planId)}/${action}`, baseUrl), {
    method: 'POST',
    headers: { authorization: `Bearer ${token.toString('utf8')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ by }),
    signal: AbortSignal.timeout(10_000),
  });
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok)
    throw new Error(
      `ack ${planId}: HTTP ${res.status}${body && typeof body === 'object' && 'message' in body ? `: ${String(body.message)}` : ''}`,
    );
  return `${formatPlan(plan.parse(body))}\n`;
}
