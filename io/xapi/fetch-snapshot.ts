/**
 * A one-shot pool snapshot over XAPI (for the CLI): login, every class xenha reads, logout — through
 * the guarded client, so a hostile or broken pool gives an error, not a crash or a memory blow-up.
 */
import { buildSnapshot, type PoolSnapshot } from '../../core/model/snapshot.ts';
import { MAX_STREAMED_ANSWER_BYTES } from './connection.ts';
import { DEFAULT_LIMITS } from './limits.ts';
import { GuardedXapi } from './guarded-client.ts';
import { fetchHeartbeatVdis } from './heartbeat-vdis.ts';

export async function fetchPoolSnapshot(
  url: string,
  user: string,
  password: string,
  opts: { allowUnauthorized?: boolean; timeoutMs?: number } = {},
): Promise<PoolSnapshot> {
  const x = new GuardedXapi({
    maxAnswerBytes: DEFAULT_LIMITS.maxAnswerBytes,
    maxStreamedAnswerBytes: MAX_STREAMED_ANSWER_BYTES,
    recordLimits: DEFAULT_LIMITS,
    url,
    auth: { user, password },
    readOnly: true,
    watchEvents: false,
    allowUnauthorized: opts.allowUnauthorized ?? false,
    callTimeout: opts.timeoutMs ?? 30_000,
  });
  try {
    await x.connect();
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const classes = ['pool', 'host', 'host_metrics', 'PIF', 'PBD', 'SR'] as const;
    const records: Record<string, Record<string, unknown>> = {};
    await Promise.all([
      ...classes.map(async (c) => {
        records[c] = await x.call<Record<string, unknown>>(`${c}.get_all_records`);
      }),
      x.capacityRecords(timeoutMs).then(({ VM, VBD }) => Object.assign(records, { VM, VBD })),
    ]);
    const pool = Object.values(records.pool ?? {})[0] as { ha_statefiles?: string[] } | undefined;
    records.VDI = await fetchHeartbeatVdis((expr) => x.vdisWhere(expr, timeoutMs), pool?.ha_statefiles);
    return buildSnapshot(records);
  } finally {
    await x.logout(2000);
    await x.disconnect().catch(() => {});
    await x.destroyTransport();
  }
}
