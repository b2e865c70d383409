/**
 * The VDIs of the heartbeat SR (the statefile and the metadata volume) by two queries, rather than
 * every VDI of the pool: the statefile VDIs (type ha_statefile), then every VDI on the SR of the one
 * the pool uses (or the first).
 */
type Call = <T>(method: string, ...args: unknown[]) => Promise<T>;

export async function fetchHeartbeatVdis(call: Call, poolStatefiles: readonly string[] = []): Promise<Record<string, unknown>> {
  const statefiles = await call<Record<string, { SR: string }>>('VDI.get_all_records_where', 'field "type" = "ha_statefile"');
  const chosen = poolStatefiles.find((r) => statefiles[r]) ?? Object.keys(statefiles)[0];
  const sr = chosen ? statefiles[chosen]!.SR : undefined;
  const onSr =
    sr && /^OpaqueRef:[\w-]+$/.test(sr) ? await call<Record<string, unknown>>('VDI.get_all_records_where', `field "SR" = "${sr}"`) : {};
  return { ...statefiles, ...onSr };
}
