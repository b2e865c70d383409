/** Where the exporter listens: `host:port` or `[ipv6]:port`, checked (the config's listen and --listen). */
import { isIPv4, isIPv6 } from 'node:net';

/** A DNS host name (RFC 1123): dot-separated labels of letters, digits and inner hyphens. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * A listen address, `host:port` (an IPv4 address or a host name) or `[ipv6]:port` (`[::1]:9945`),
 * as `server.listen(port, host)` takes it (IPv6 without its brackets). One parser for the config's
 * `listen` and the exporter's `--listen` (it imports nothing heavy, so the CLI checks the flag without
 * loading the config module). An empty host (`:9945`) is refused:
 * Node would listen on every interface, which should be written, `0.0.0.0:9945` or `[::]:9945`.
 * Throws an Error saying what is wrong.
 */
export function parseListen(value: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(value);
  let host: string;
  let port: string | undefined;
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2];
    if (!isIPv6(host)) throw new Error(`${JSON.stringify(host)} in brackets is not an IPv6 address`);
  } else {
    const colon = value.lastIndexOf(':');
    if (colon < 0 || value.startsWith('[')) throw new Error(`expected host:port or [ipv6]:port, got ${JSON.stringify(value)}`);
    host = value.slice(0, colon);
    port = value.slice(colon + 1);
    if (host.includes(':'))
      throw new Error(`an IPv6 address goes in brackets, the port after them (as [::1]:9945), got ${JSON.stringify(value)}`);
  }
  if (port === undefined) throw new Error(`expected host:port or [ipv6]:port, got ${JSON.stringify(value)}`);
  if (!/^\d{1,5}$/.test(port)) throw new Error(`port must be a number 0..65535, got ${JSON.stringify(port)}`);
  if (Number(port) > 65535) throw new Error(`port must be 0..65535, got ${port}`);
  if (host === '') {
    throw new Error(`no host in ${JSON.stringify(value)}: to listen on every interface say so, 0.0.0.0:${port} or [::]:${port}`);
  }
  if (!bracketed && !isIPv4(host) && (!HOST_NAME.test(host) || /^[\d.]+$/.test(host))) {
    throw new Error(`${JSON.stringify(host)} is not an IPv4 address, a host name or an [IPv6] address`);
  }
  return { host, port: Number(port) };
}
