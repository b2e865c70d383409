/**
 * The CLI registers its subcommands with commander alone: at the top of cli/*.ts a file may load only
 * commander, Node's built-ins, its sibling cli files and the dependency-free fence policy; everything
 * else (zod, pino, xen-api, express, the exporter, the simulator, the planner) is imported inside the
 * action that needs it, or as a type. `xenha --help` then starts in little more than node itself
 * (BENCHMARKS.md). And the version it prints is package.json's.
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importsOf, tsFilesUnder } from '../helpers/imports.ts';
import { packageVersion } from '../../cli/version.ts';

const ROOT = join(import.meta.dirname, '../..');
const ALLOWED = (spec: string) =>
  spec === '@commander-js/extra-typings' ||
  spec.startsWith('node:') ||
  /^\.\/[a-z-]+\.ts$/.test(spec) ||
  spec === '../core/planner/fence-policy.ts' ||
  spec === '../exporter/listen.ts';

describe('the CLI loads a subcommand only when it runs', () => {
  const files = tsFilesUnder(join(ROOT, 'cli'));

  it.each(files.map((f) => [relative(ROOT, f), f]))('%s loads nothing heavy when it registers', (_name, file) => {
    const eager = importsOf(readFileSync(file, 'utf8')).filter((i) => !i.typeOnly && !i.dynamic);
    for (const { spec } of eager) expect(ALLOWED(spec), `${spec} is imported at the top of ${file}`).toBe(true);
  });

  it('the fence policy it loads imports nothing, the listen parser only Node', () => {
    expect(importsOf(readFileSync(join(ROOT, 'core/planner/fence-policy.ts'), 'utf8'))).toEqual([]);
    expect(importsOf(readFileSync(join(ROOT, 'exporter/listen.ts'), 'utf8')).map((i) => i.spec)).toEqual(['node:net']);
  });

  it("the version is package.json's", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(packageVersion()).toBe(pkg.version);
  });
});
