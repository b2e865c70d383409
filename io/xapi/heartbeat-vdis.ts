/**
 * The VDIs of the heartbeat SR (the statefile and the metadata volume) by two queries, rather than
 * every VDI of the pool: the statefile VDIs (type ha_statefile), then every VDI on the SR of the one
 * the pool uses (or the first). `query` runs a VDI.get_all_records_where (the heartbeat SR may be the
 * pool's main shared SR, with thousands of VDIs: it is read as it streams, a few fields kept).
 */
type Query = (expr: string) => Promise<Record<string, unknown>>;

export async function fetchHeartbeatVdis(query: Query, poolStatefiles: readonly string[] = []): Promise<Record<string, unknown>> {
  const statefiles = (await query('field "type" = "ha_statefile"')) as Record<string, { SR?: unknown }>;
  const chosen = poolStatefiles.find((r) => statefiles[r]) ?? Object.keys(statefiles)[0];
  const sr = chosen ? statefiles[chosen]!.SR : undefined;
  const onSr = typeof sr === 'string' && /^OpaqueRef:[\w-]+$/.test(sr) ? await query(`field "SR" = "${sr}"`) : {};
  return { ...statefiles, ...onSr };
}
