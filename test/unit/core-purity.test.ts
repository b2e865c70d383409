/**
 * core/ is pure: it imports only zod, yaml and other files of core/ (no Node built-in, no client, no
 * logger, no server), so the exporter, the CLI, the simulator and the coming remediation service can
 * all run the same decisions on data and time they pass in.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const CORE = join(ROOT, 'core');
const ALLOWED_PACKAGES = new Set(['zod', 'yaml']);

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every module specifier a file imports or re-exports, static or dynamic. */
function specifiers(text: string): string[] {
  return [...text.matchAll(/(?:^|\s)(?:import|export)\s[^'"]*?from\s*'([^']+)'|import\(\s*'([^']+)'\s*\)|^import\s*'([^']+)'/gm)].map(
    (m) => (m[1] ?? m[2] ?? m[3])!,
  );
}

describe('core/ is pure', () => {
  const files = tsFiles(CORE);

  it('finds the core sources', () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
  });

  it('the import scanner sees every kind of import', () => {
    expect(
      specifiers(
        `import { a } from 'node:fs';\nimport type { B } from './b.ts';\nexport { c } from '../c.ts';\nconst d = await import('pino');\nimport 'side-effect';`,
      ),
    ).toEqual(['node:fs', './b.ts', '../c.ts', 'pino', 'side-effect']);
  });

  it.each(files.map((f) => [relative(ROOT, f), f]))('%s imports nothing but core/, zod and yaml', (_name, file) => {
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) expect(relative(CORE, resolve(dirname(file), spec)), `${spec} leaves core/`).not.toMatch(/^\.\./);
      else expect(ALLOWED_PACKAGES.has(spec), `${spec} is not allowed in core/`).toBe(true);
    }
  });
});
