/**
 * xenha's version, read from its package.json at run time: the nearest package.json named "xenha"
 * above this file, i.e. the repository's (or the installed package's) root both from cli/ when the
 * sources run through tsx and from dist/cli/ when built.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'xenha' && typeof pkg.version === 'string') return pkg.version;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json of xenha above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}
