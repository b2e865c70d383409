/** A one-shot pool snapshot over XAPI (for the CLI): login, every class xenha reads, logout. */
import { createClient } from 'xen-api';
import { buildSnapshot, type PoolSnapshot } from '../../core/model/snapshot.ts';
import { fetchHeartbeatVdis } from './heartbeat-vdis.ts';

export async function fetchPoolSnapshot(
  url: string,
  user: string,
  password: string,
  opts: { allowUnauthorized?: boolean; timeoutMs?: number } = {},
): Promise<PoolSnapshot> {
  const x = createClient({
    url,
    auth: { user, password },
    readOnly: true,
    watchEvents: false,
    allowUnauthorized: opts.allowUnauthorized ?? false,
    callTimeout: opts.timeoutMs ?? 30_000,
  });
  try {
    await x.connect();
    const classes = ['pool', 'host', 'host_metrics', 'PIF', 'PBD', 'SR', 'VM', 'VBD'] as const;
    const records: Record<string, Record<string, unknown>> = {};
    await Promise.all(
      classes.map(async (c) => {
        records[c] = await x.call<Record<string, unknown>>(`${c}.get_all_records`);
      }),
    );
    const pool = Object.values(records.pool ?? {})[0] as { ha_statefiles?: string[] } | undefined;
    records.VDI = await fetchHeartbeatVdis((m, ...a) => x.call(m, ...a), pool?.ha_statefiles);
    return buildSnapshot(records);
  } finally {
    await x.disconnect().catch(() => {});
  }
}
