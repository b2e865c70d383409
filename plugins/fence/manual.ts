/**
 * manual: a person powers the host off and says so (`xenha ack <plan-id>`). `off` only logs that an
 * operator must power the host off; `status` answers off once the acknowledgements (deps.acks) say
 * this host's fence was acknowledged, and cannot tell before. The level waits `waitMs` for it (default
 * 0: one look, then the fence ends `awaiting-operator` and the caller fences again after the ack).
 */
import { z } from 'zod';
import { defineFencePlugin } from './contract.ts';

export const manual = defineFencePlugin({
  name: 'manual',
  description: 'an operator powers the host off and acknowledges it (xenha ack)',
  options: z.strictObject({
    /** How long a fence waits for the acknowledgement after asking for it, in ms. */
    waitMs: z.number().int().min(0).default(0),
    /** How often to look for it meanwhile, in ms (default: the fence's poll interval). */
    pollMs: z.number().int().positive().optional(),
  }),
  create(o, target, deps) {
    const host = `${target.hostName} (${target.hostUuid}) of pool ${target.pool}`;
    const fields = { pool: target.pool, host: target.hostUuid, hostName: target.hostName, plugin: 'manual' };
    return {
      label: 'operator',
      operator: true,
      powerTimeoutMs: o.waitMs,
      ...(o.pollMs === undefined ? {} : { pollMs: o.pollMs }),
      async status() {
        if (deps.acks === undefined)
          return { state: 'unknown', detail: 'no acknowledgement source: an operator fence cannot be confirmed' };
        return (await deps.acks.isAcknowledged(target.hostUuid))
          ? { state: 'off', detail: `an operator acknowledged that ${host} is powered off` }
          : { state: 'unknown', detail: `no operator acknowledgement yet that ${host} is powered off` };
      },
      async off() {
        deps.log.warn(fields, `an operator must power off ${host}, then acknowledge it (xenha ack <plan-id>)`);
        return { ok: true, detail: `operator asked to power off ${host}` };
      },
      async on() {
        deps.log.warn(fields, `an operator must power on ${host}`);
        return { ok: true, detail: `operator asked to power on ${host}` };
      },
    };
  },
});
