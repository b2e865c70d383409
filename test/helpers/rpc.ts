/** A bare JSON-RPC 2.0 call, for calls no client library makes (a slave's emergency login). */
export async function jsonRpc(
  baseUrl: string,
  method: string,
  params: unknown[],
): Promise<{ result?: unknown; error?: { message: string; data: string[] } }> {
  const res = await fetch(new URL('/jsonrpc', baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.headers.get('content-type') !== 'application/json') throw new Error(`content-type ${res.headers.get('content-type')}`);
  return (await res.json()) as { result?: unknown; error?: { message: string; data: string[] } };
}
