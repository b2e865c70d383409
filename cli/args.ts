/** Flag parsers for commander that fail with a clear message (InvalidArgumentError). */
import { InvalidArgumentError } from '@commander-js/extra-typings';
import { parseListen } from '../exporter/listen.ts';

export function intArg(min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected an integer, got ${JSON.stringify(value)}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected ${min}..${max}, got ${n}`);
    return n;
  };
}

/**
 * A comma-separated list of integers in min..max, at least one. An empty value (`''`, `,,,`) is refused,
 * never read as "no list" (which would mean the default); so is an empty item (`0,,1`), a likely typo.
 * `what` names an item in the messages ("home 5 out of range 0..1").
 */
export function intListArg(min: number, max: number, what = 'item') {
  return (value: string): number[] => {
    const items = value.split(',').map((s) => s.trim());
    if (items.every((s) => s === '')) {
      throw new InvalidArgumentError(`an empty ${what} list: name at least one ${what} (${min}..${max}), or leave the option out`);
    }
    if (items.some((s) => s === '')) {
      throw new InvalidArgumentError(`an empty ${what} in ${JSON.stringify(value)}: expected a comma-separated list such as ${min},${max}`);
    }
    return items.map((s) => {
      if (!/^-?\d+$/.test(s)) throw new InvalidArgumentError(`expected an integer ${what}, got ${JSON.stringify(s)}`);
      const n = Number(s);
      if (n < min || n > max) throw new InvalidArgumentError(`${what} ${n} out of range ${min}..${max}`);
      return n;
    });
  };
}

export function loopbackArg(value: string): string {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(value))
    throw new InvalidArgumentError(`expected a 127.x.y.z address, got ${JSON.stringify(value)}`);
  return value;
}

/** `--listen <host:port>`: checked by parseListen, kept as written. */
export function listenArg(value: string): string {
  try {
    parseListen(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return value;
}

/**
 * A comma-separated list of host names or UUIDs, at least one. An empty value (`''`, `,`) is refused,
 * as is an empty item (`a,,b`) and a host named twice (a typo for another host would make the answer
 * look better than it is).
 */
export function hostListArg(value: string): string[] {
  const items = value.split(',').map((s) => s.trim());
  if (items.every((s) => s === ''))
    throw new InvalidArgumentError('no host given: name at least one host (comma-separated names or UUIDs)');
  if (items.some((s) => s === '')) throw new InvalidArgumentError(`an empty host name in ${JSON.stringify(value)}`);
  const seen = new Set<string>();
  for (const s of items) {
    if (seen.has(s)) throw new InvalidArgumentError(`host ${JSON.stringify(s)} named twice`);
    seen.add(s);
  }
  return items;
}

/**
 * An http(s) URL given to a flag, checked before any connection: a clear error that never repeats
 * what would be credentials (commander's own error would print the value as given).
 */
export function checkHttpUrl(flag: string, url: string): URL {
  const shown = JSON.stringify(url.replace(/\/\/[^/]*@/, '//…@'));
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${flag}: expected an http:// or https:// URL, got ${shown}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`${flag}: expected an http:// or https:// URL, got ${shown}`);
  if (u.username !== '' || u.password !== '')
    throw new Error(`${flag}: credentials in a URL are refused (the exporter and XAPI are reached without them)`);
  return u;
}
