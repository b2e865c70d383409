/** Config files from disk: read, then parsed and validated by the pure YAML + zod parser in core. */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigError, parseYaml } from '../core/config/yaml.ts';

export function loadYamlFile<S extends z.ZodType>(schema: S, path: string): z.output<S> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseYaml(schema, text, path);
}
