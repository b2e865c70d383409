/**
 * vitest globalSetup: the CLI tests run bin/xenha.js, which runs the compiled CLI in dist/. Rebuild
 * dist (tsc -p tsconfig.build.json) when it is missing or older than the sources, so that `npm test`
 * tests the sources as they are, without a build on every run. dist/.build-stamp marks the last
 * successful build (a build with type errors still emits, and is reported but not stamped, so it is
 * redone next run; `tsc --noEmit` is what fails on type errors).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const STAMP = join(ROOT, 'dist/.build-stamp');
const CONFIG = join(ROOT, 'tsconfig.build.json');

/** The newest modification time among the build's inputs: its configs and the .ts files it includes. */
function newestInput(): number {
  const { include } = JSON.parse(readFileSync(CONFIG, 'utf8')) as { include: string[] };
  let newest = Math.max(...[CONFIG, join(ROOT, 'tsconfig.json'), join(ROOT, 'package.json')].map((f) => statSync(f).mtimeMs));
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const dir of include) if (existsSync(join(ROOT, dir))) walk(join(ROOT, dir));
  return newest;
}

function tscPath(): string {
  return createRequire(import.meta.url).resolve('typescript/bin/tsc');
}

export default function setup(): void {
  if (existsSync(STAMP) && statSync(STAMP).mtimeMs >= newestInput()) return;
  const started = Date.now();
  const r = spawnSync(process.execPath, [tscPath(), '-p', CONFIG], { cwd: ROOT, encoding: 'utf8' });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  // tsc's exit codes: 0 built; 2 built, with type errors; anything else (1: config errors) built nothing.
  if (r.status === 0) {
    // Dated a second before the build started: a source saved while tsc ran (or within a coarse
    // file system's mtime step of its start) is newer, and rebuilt next run.
    writeFileSync(STAMP, `${new Date(started).toISOString()}\n`);
    utimesSync(STAMP, (started - 1000) / 1000, (started - 1000) / 1000);
    process.stderr.write(`global setup: built dist/ (tsc -p tsconfig.build.json) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  } else if (r.status === 2) {
    process.stderr.write(`global setup: dist/ built with type errors (not stamped; rebuilt next run):\n${output}\n`);
  } else {
    throw new Error(`global setup: tsc -p tsconfig.build.json failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}):\n${output}`);
  }
}
