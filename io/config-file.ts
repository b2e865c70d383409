/** Config files from disk: read (bounded), then parsed and validated by the pure YAML + zod parser in core. */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigError, formatBytes, MAX_CONFIG_BYTES, parseYaml } from '../core/config/yaml.ts';

/** A file (or device, or pipe) that holds more than the bound given to readFileBounded. */
export class FileTooLargeError extends Error {}

const CHUNK = 64 * 1024;

/** At most `maxBytes` from an open descriptor, reading no more than `maxBytes + 1`: `over` when there was more. */
export function readFdBounded(fd: number, maxBytes: number): { data: Buffer; over: boolean } {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total <= maxBytes) {
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK, maxBytes + 1 - total));
    const n = readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) break;
    chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    total += n;
  }
  return total > maxBytes ? { data: Buffer.alloc(0), over: true } : { data: Buffer.concat(chunks, total), over: false };
}

/**
 * The content of `path`, reading at most `maxBytes + 1` bytes whatever it is: a file's size is not
 * enough to go by (/dev/zero, a FIFO and /proc files say 0). Throws FileTooLargeError past the bound,
 * naming the size when the file has one; Node's own error when it cannot be read.
 */
export function readFileBounded(path: string, maxBytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const { data, over } = readFdBounded(fd, maxBytes);
    if (!over) return data;
    const st = fstatSync(fd);
    const size = st.isFile() && st.size > maxBytes ? `${st.size} bytes` : `more than ${maxBytes} bytes`;
    throw new FileTooLargeError(`${path} is ${size}, over the limit of ${formatBytes(maxBytes)}`);
  } finally {
    closeSync(fd);
  }
}

export function loadYamlFile<S extends z.ZodType>(schema: S, path: string): z.output<S> {
  let text: string;
  try {
    text = readFileBounded(path, MAX_CONFIG_BYTES).toString('utf8');
  } catch (e) {
    if (e instanceof FileTooLargeError) throw new ConfigError(`${e.message} (a config file is a few kilobytes)`);
    throw new ConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseYaml(schema, text, path);
}
