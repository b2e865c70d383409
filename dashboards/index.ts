/**
 * xenha's Grafana dashboards, built in code with @grafana/grafana-foundation-sdk. `xenha dashboards
 * --out DIR` writes them as JSON (checked in under dashboards/json/, provisioned from
 * deploy/grafana/); `dashboardQueries()` lists every PromQL expression they run, and `instantiate()`
 * turns one into plain PromQL for Prometheus' HTTP API (the end-to-end test runs them all).
 */
import type { DataSourceRef } from '@grafana/grafana-foundation-sdk/common';
import type { Dashboard, Panel, RowPanel, VariableModel } from '@grafana/grafana-foundation-sdk/dashboard';
import type { DashboardDefinition } from './common.ts';
import { hostDetail } from './host-detail.ts';
import { poolOverview } from './pool-overview.ts';
import { remediation } from './remediation.ts';

export type { DashboardDefinition } from './common.ts';
export { STATE_CODES } from './common.ts';

/** Every dashboard: its file name (e.g. `xenha-pool-overview.json`) and its JSON model. */
export const DASHBOARDS: readonly DashboardDefinition[] = [poolOverview, hostDetail, remediation];

/** A dashboard as written to disk: 2-space indented JSON and a trailing newline. */
export function renderDashboard(d: Pick<DashboardDefinition, 'build'>): string {
  return `${JSON.stringify(d.build(), null, 2)}\n`;
}

export interface DashboardQuery {
  /** The dashboard's uid. */
  dashboard: string;
  /** The panel's title, or `$name` for a query variable. */
  panel: string;
  expr: string;
  /** Must return data on a running simulated pool (and, for the remediation dashboard, a remediation service). */
  key: boolean;
}

/** Every PromQL expression of every panel target and every query variable, dashboard by dashboard. */
export function dashboardQueries(): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const def of DASHBOARDS) {
    const d = def.build();
    const keys = new Set(def.keys);
    const add = (panel: string, expr: string) => out.push({ dashboard: d.uid ?? def.uid, panel, expr, key: keys.has(panel) });
    for (const v of d.templating?.list ?? []) {
      if (String(v.type) !== 'query') continue;
      const q = variableQuery(v);
      if (q) add(`$${v.name}`, q);
    }
    for (const p of allPanels(d)) for (const t of panelTargets(p)) if (typeof t.expr === 'string') add(p.title ?? '', t.expr);
  }
  return out;
}

/** A query variable's query, a string or Grafana's `{ query }` object. */
function variableQuery(v: VariableModel): string | null {
  const q: unknown = v.query;
  if (typeof q === 'string') return q;
  if (q && typeof q === 'object' && typeof (q as { query?: unknown }).query === 'string') return (q as { query: string }).query;
  return null;
}

/** Every panel of a dashboard, those inside rows included (a row itself has no targets). */
export function allPanels(d: Dashboard): Panel[] {
  const out: Panel[] = [];
  const walk = (ps: (Panel | RowPanel)[] | undefined) => {
    for (const p of ps ?? []) {
      if (p.type === 'row') walk((p as RowPanel).panels);
      else out.push(p);
    }
  };
  walk(d.panels);
  return out;
}

/** A panel's targets as the dashboards write them: Prometheus queries. */
export interface PanelTarget {
  refId?: string;
  expr?: string;
  datasource?: DataSourceRef;
}
export function panelTargets(p: Panel): PanelTarget[] {
  return (p.targets ?? []) as PanelTarget[];
}

/** What Grafana's built-in variables stand for in an instantiated query (a 5-minute range, 15 s steps). */
const BUILTINS: Record<string, string> = {
  __rate_interval: '1m',
  __rate_interval_ms: '60000',
  __interval: '15s',
  __interval_ms: '15000',
  __range: '5m',
  __range_s: '300',
  __range_ms: '300000',
};

const VARIABLE = /\$\{(\w+)(?::[\w-]+)?\}|\[\[(\w+)(?::[\w-]+)?\]\]|\$(\w+)/g;
/** A regular-expression matcher's string (`=~"…"` or `!~"…"`), or a variable elsewhere. */
const REGEX_STRING_OR_VARIABLE = new RegExp(`(=~|!~)(\\s*)"((?:[^"\\\\]|\\\\.)*)"|${VARIABLE.source}`, 'g');

/** A value inside a PromQL double-quoted string. */
const quoted = (v: string) => v.replace(/[\\"]/g, (c) => `\\${c}`);
/** A value inside a regular-expression matcher's string: RE2 metacharacters escaped, then quoted. */
const regexQuoted = (v: string) => quoted(v.replace(/[\\.+*?()|[\]{}^$]/g, (c) => `\\${c}`));

/**
 * A dashboard expression as plain PromQL for Prometheus' HTTP API: `$pool`, `${pool}`, `[[pool]]`
 * (and `${pool:format}`) become the value given, regex-escaped inside `=~"…"` / `!~"…"` (as Grafana
 * does for a multi-value variable) and string-escaped elsewhere; `$__rate_interval` becomes `1m`,
 * `$__interval` `15s`, `$__range` `5m`; a variable's `label_values(selector, label)` becomes
 * `group by (label) (selector)`. An unknown variable is an error.
 */
export function instantiate(expr: string, vars: { pool: string; host: string }): string {
  const value = (name: string): string => {
    if (name in BUILTINS) return BUILTINS[name]!;
    if (name === 'pool' || name === 'host') return vars[name];
    throw new Error(`instantiate: unknown variable $${name} in ${expr}`);
  };
  const replaceIn = (s: string, escape: (v: string) => string) =>
    s.replace(VARIABLE, (_m, a?: string, b?: string, c?: string) => {
      const name = (a ?? b ?? c)!;
      // Built-in durations are never quoted; a user variable's value is.
      return name.startsWith('__') ? value(name) : escape(value(name));
    });
  const promql = expr.replace(REGEX_STRING_OR_VARIABLE, (m, op?: string, space?: string, body?: string) => {
    if (op !== undefined) return `${op}${space}"${replaceIn(body!, regexQuoted)}"`;
    return replaceIn(m, quoted);
  });
  const lv = /^\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*$/s.exec(promql);
  if (lv) return `group by (${lv[2]}) (${lv[1]})`;
  if (/^\s*(label_values|label_names|metrics|query_result)\s*\(/.test(promql))
    throw new Error(`instantiate: a Grafana variable query that is not PromQL: ${expr}`);
  return promql;
}
