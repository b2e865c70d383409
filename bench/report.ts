/** Writes one benchmark's section into BENCHMARKS.md between its markers, keeping the others; and what every section names: the machine, the tree. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

const FILE = new URL('../BENCHMARKS.md', import.meta.url);

export function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
}

export function writeSection(name: string, body: string): void {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  let text = existsSync(FILE)
    ? readFileSync(FILE, 'utf8')
    : '# Benchmarks\n\nProduced by `npm run bench` (all) or `npm run bench -- <name>`; each section says its command and machine.\n';
  const section = `${begin}\n${body.trim()}\n${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + section + text.slice(j + end.length) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(FILE, text);
}

/** The tree measured: HEAD's short hash, and whether files other than BENCHMARKS.md differ from it. */
function currentTree(): string {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: join(import.meta.dirname, '..'), encoding: 'utf8' }).trim();
  try {
    const head = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no', '--', '.', ':!BENCHMARKS.md') !== '';
    return `${head}${dirty ? ' with uncommitted changes' : ''}`;
  } catch {
    return 'unknown (no git)';
  }
}

/** The tree when the bench started (this module loads with it): the code a run measures is the code it began with. */
const treeAtStart = currentTree();

/** The tree that ran, and a warning when the checkout changed during the run (a commit made meanwhile is not what ran). */
export function tree(): string {
  const now = currentTree();
  return now === treeAtStart ? `tree ${treeAtStart}` : `tree ${treeAtStart} (the checkout changed to ${now} during the run)`;
}
