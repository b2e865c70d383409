/**
 * core/ is pure: it imports only zod, yaml and other files of core/ (no Node built-in, no client, no
 * logger, no server), so the exporter, the CLI, the simulator and the coming remediation service can
 * all run the same decisions on data and time they pass in.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importsOf, tsFilesUnder } from '../helpers/imports.ts';

const ROOT = join(import.meta.dirname, '../..');
const CORE = join(ROOT, 'core');
const ALLOWED_PACKAGES = new Set(['zod', 'yaml']);

describe('core/ is pure', () => {
  const files = tsFilesUnder(CORE);

  it('finds the core sources', () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
  });

  it('the import scanner sees every kind of import', () => {
    const text = `import { a } from 'node:fs';\nimport type { B } from './b.ts';\nexport { c } from '../c.ts';\nconst d = await import('pino');\nimport 'side-effect';`;
    expect(importsOf(text)).toEqual([
      { spec: 'node:fs', typeOnly: false, dynamic: false },
      { spec: './b.ts', typeOnly: true, dynamic: false },
      { spec: '../c.ts', typeOnly: false, dynamic: false },
      { spec: 'pino', typeOnly: false, dynamic: true },
      { spec: 'side-effect', typeOnly: false, dynamic: false },
    ]);
  });

  it.each(files.map((f) => [relative(ROOT, f), f]))('%s imports nothing but core/, zod and yaml', (_name, file) => {
    for (const { spec } of importsOf(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) expect(relative(CORE, resolve(dirname(file), spec)), `${spec} leaves core/`).not.toMatch(/^\.\./);
      else expect(ALLOWED_PACKAGES.has(spec), `${spec} is not allowed in core/`).toBe(true);
    }
  });
});
