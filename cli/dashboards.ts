/** `xenha dashboards --out DIR`: write the Grafana dashboards (built in dashboards/*.ts) as JSON files. */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from '@commander-js/extra-typings';

/**
 * Writes every dashboard to `dir` (created if missing) as 2-space indented JSON with a trailing
 * newline, each through a temporary file renamed into place (Grafana's file provider may read the
 * directory meanwhile); returns the paths written.
 */
export async function writeDashboards(dir: string): Promise<string[]> {
  const { DASHBOARDS, renderDashboard } = await import('../dashboards/index.ts');
  const out = resolve(dir);
  const fail = (what: string, e: unknown): never => {
    throw new Error(`cannot write the dashboards to ${out}: ${what}: ${(e as Error).message}`, { cause: e });
  };
  await mkdir(out, { recursive: true }).catch((e: unknown) => fail('cannot create the directory', e));
  const written: string[] = [];
  for (const d of DASHBOARDS) {
    const path = join(out, d.file);
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, renderDashboard(d));
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      fail(d.file, e);
    }
    written.push(path);
  }
  return written;
}

export function registerDashboards(program: Command): void {
  program
    .command('dashboards')
    .description('write the Grafana dashboards (pool overview, host detail, remediation) as JSON files, for provisioning')
    .requiredOption('--out <dir>', 'directory to write them into (created if missing; existing files of the same name are replaced)')
    .action(async (o) => {
      for (const p of await writeDashboards(o.out)) process.stdout.write(`${p}\n`);
    });
}
