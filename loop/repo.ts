/**
 * Where the repository's own files are, from loop/ (the sources, through tsx) or dist/loop/ (the
 * compiled CLI): the deploy/ examples the loop renders, the alert rules Prometheus loads, the
 * dashboards' JSON.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The checkout's root: the directory holding deploy/prometheus.yml, one or two levels up. */
export const REPO_ROOT: string =
  ['..', '../..'].map((d) => join(import.meta.dirname, d)).find((d) => existsSync(join(d, 'deploy', 'prometheus.yml'))) ??
  join(import.meta.dirname, '..');

export const PROMETHEUS_TEMPLATE = join(REPO_ROOT, 'deploy', 'prometheus.yml');
export const ALERTMANAGER_TEMPLATE = join(REPO_ROOT, 'deploy', 'alertmanager.yml');

/** Every alerts/*.rules.yml of the checkout, absolute and sorted (none when there is no alerts/ yet). */
export function alertRuleFiles(root: string = REPO_ROOT): string[] {
  const dir = join(root, 'alerts');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.rules.yml'))
    .sort()
    .map((f) => join(dir, f));
}

/** The directory of the Grafana dashboards' JSON: dashboards/json when it exists, else dashboards/. */
export function dashboardsDir(root: string = REPO_ROOT): string {
  const json = join(root, 'dashboards', 'json');
  return existsSync(json) ? json : join(root, 'dashboards');
}
