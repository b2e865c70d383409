/** Flag parsers for commander that fail with a clear message (InvalidArgumentError). */
import { InvalidArgumentError } from '@commander-js/extra-typings';

export function intArg(min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected an integer, got ${JSON.stringify(value)}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected ${min}..${max}, got ${n}`);
    return n;
  };
}

export function intListArg(min: number, max: number) {
  const one = intArg(min, max);
  return (value: string): number[] =>
    value
      .split(',')
      .filter((s) => s.trim() !== '')
      .map((s) => one(s));
}

export function loopbackArg(value: string): string {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(value))
    throw new InvalidArgumentError(`expected a 127.x.y.z address, got ${JSON.stringify(value)}`);
  return value;
}
