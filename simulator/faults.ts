/**
 * Fault requests, as the control API and `xenha fault` take them, validated with zod, and how each
 * one acts on the simulated pool. Every applied fault is recorded in the pool's event log.
 */
import { z } from 'zod';
import { NETWORK_HOMES, STORAGE_HOMES } from './build.ts';
import type { SimEvent, SimulatedPool } from './pool.ts';

const host = z.string().min(1).describe('host name_label or UUID');

const homes = z.array(z.number().int()).optional().describe('homes to cut (default: every home of the path)');

/**
 * Homes of one path: at least one, each in 0..count-1 (repeats count once). Left out, the fault takes
 * every home of the path; an empty list is refused, never read as "every home".
 */
function checkHomes(list: readonly number[] | undefined, path: 'network' | 'storage', ctx: z.RefinementCtx): void {
  if (list === undefined) return;
  const count = path === 'network' ? NETWORK_HOMES : STORAGE_HOMES;
  if (list.length === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['homes'],
      message: `an empty home list: name at least one ${path} home (0..${count - 1}), or leave homes out to cut every one`,
    });
  }
  list.forEach((h, i) => {
    if (h < 0 || h >= count) {
      ctx.addIssue({
        code: 'custom',
        path: ['homes', i],
        message: `home ${h} out of range 0..${count - 1}: a host has ${count} ${path} homes`,
      });
    }
  });
}

export const faultRequest = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('host-crash'), host }),
  z.strictObject({ kind: z.literal('master-crash') }),
  z.strictObject({ kind: z.literal('network-down'), host, homes }).superRefine((f, ctx) => checkHomes(f.homes, 'network', ctx)),
  z.strictObject({ kind: z.literal('storage-down'), host, homes }).superRefine((f, ctx) => checkHomes(f.homes, 'storage', ctx)),
  z
    .strictObject({
      kind: z.literal('flap'),
      host,
      path: z.enum(['network', 'storage']),
      periodMs: z.number().int().positive(),
      homes,
    })
    .superRefine((f, ctx) => checkHomes(f.homes, f.path, ctx)),
  z.strictObject({ kind: z.literal('slow-xapi'), host: host.optional(), latencyMs: z.number().int().min(0).max(600_000) }),
  z.strictObject({ kind: z.literal('observer-isolation') }),
  z.strictObject({ kind: z.literal('heal'), host: host.optional() }),
]);

export type FaultRequest = z.output<typeof faultRequest>;

/** Applies a validated fault; throws an Error with a clear message on an unknown host or bad home. */
export function applyFault(pool: SimulatedPool, f: FaultRequest): SimEvent {
  switch (f.kind) {
    case 'host-crash':
      return pool.crash(pool.host(f.host));
    case 'master-crash':
      return pool.crashMaster();
    case 'network-down':
      return pool.pathDown(pool.host(f.host), 'network', f.homes);
    case 'storage-down':
      return pool.pathDown(pool.host(f.host), 'storage', f.homes);
    case 'flap':
      return pool.flap(pool.host(f.host), f.path, f.periodMs, f.homes);
    case 'slow-xapi':
      return pool.slowXapi(f.host === undefined ? undefined : pool.host(f.host), f.latencyMs);
    case 'observer-isolation':
      return pool.isolateObserver();
    case 'heal':
      return pool.heal(f.host === undefined ? undefined : pool.host(f.host));
  }
}
