/**
 * Prometheus and Alertmanager on this machine: found in PATH, as Debian installs them (`prometheus`,
 * and `prometheus-alertmanager`) or as upstream's tarballs name them (`alertmanager`).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

export const INSTALL_HINT = 'apt-get install prometheus prometheus-alertmanager';

/** Debian's fence_dummy (fence-agents): powers a simulated host through its power file. */
export const FENCE_DUMMY = '/usr/sbin/fence_dummy';

/** What `missing` says of each. */
export const MISSING = {
  prometheus: `prometheus: not found in PATH (Debian: ${INSTALL_HINT})`,
  alertmanager: `prometheus-alertmanager (or alertmanager): not found in PATH (Debian: ${INSTALL_HINT})`,
} as const;

/** The first of `names` that is an executable file in one of PATH's directories, else undefined. */
export function findInPath(names: readonly string[], path: string = process.env.PATH ?? ''): string | undefined {
  const dirs = path.split(delimiter).filter((d) => d !== '' && isAbsolute(d));
  for (const name of names)
    for (const dir of dirs) {
      const file = join(dir, name);
      try {
        if (!statSync(file).isFile()) continue;
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // not there, or not executable: the next one
      }
    }
  return undefined;
}

export function findPrometheus(path?: string): string | undefined {
  return findInPath(['prometheus'], path);
}

/** Debian's `prometheus-alertmanager` first, then upstream's `alertmanager`. */
export function findAlertmanager(path?: string): string | undefined {
  return findInPath(['prometheus-alertmanager', 'alertmanager'], path);
}

export interface LoopBinaries {
  prometheus: string | undefined;
  alertmanager: string | undefined;
  /** One line per binary not found, with how to install it. */
  missing: string[];
}

export function findLoopBinaries(path?: string): LoopBinaries {
  const prometheus = findPrometheus(path);
  const alertmanager = findAlertmanager(path);
  const missing = [...(prometheus ? [] : [MISSING.prometheus]), ...(alertmanager ? [] : [MISSING.alertmanager])];
  return { prometheus, alertmanager, missing };
}
