/**
 * What the three dashboards share: the Prometheus data source (a `datasource` variable every panel
 * and every query refers to), the pool and host variables, one query helper, value mappings, and the
 * host state encoded as a number for state timelines.
 */
import { ReduceDataOptionsBuilder, type DataSourceRef } from '@grafana/grafana-foundation-sdk/common';
import {
  DatasourceVariableBuilder,
  MappingType,
  QueryVariableBuilder,
  VariableRefresh,
  VariableSort,
  type Dashboard,
  type Panel,
  type RowPanel,
  type ValueMapping,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import { HOST_STATES, type HostState } from '../core/classify/state-machine.ts';

/** Every panel and every query reads the data source the `datasource` variable names. */
export const DATASOURCE: DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

/** What a dashboard module exports. `keys`: panel titles (and `$variable` names) whose queries return data on a running pool. */
export interface DashboardDefinition {
  /** The file name under dashboards/json/ (and in Grafana's provisioning directory). */
  file: string;
  uid: string;
  title: string;
  build(): Dashboard;
  keys: readonly string[];
}

export function datasourceVariable(): DatasourceVariableBuilder {
  return new DatasourceVariableBuilder('datasource').label('Prometheus').type('prometheus');
}

/** A query variable on the data source, refreshed when the time range changes, values sorted. */
export function queryVariable(name: string, label: string, query: string, opts: { multi: boolean }): QueryVariableBuilder {
  const v = new QueryVariableBuilder(name)
    .label(label)
    .datasource(DATASOURCE)
    .query(query)
    .definition(query)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .allowCustomValue(false);
  // "All" reads as the regular expression `.*` (Grafana regex-escapes each value of a multi-value variable).
  return opts.multi ? v.multi(true).includeAll(true).allValue('.*') : v.multi(false).includeAll(false);
}

/** A Prometheus target on the dashboard's data source. */
export function prom(expr: string, legend: string, refId = 'A', opts: { instant?: boolean; table?: boolean } = {}): DataqueryBuilder {
  const q = new DataqueryBuilder().datasource(DATASOURCE).expr(expr).refId(refId);
  if (legend) q.legendFormat(legend);
  if (opts.instant) q.instant();
  else q.range();
  if (opts.table) q.format(PromQueryFormat.Table);
  return q;
}

/** Maps numbers to a text and a colour, in order. */
export function valueMap(entries: readonly (readonly [number, string, string])[]): ValueMapping[] {
  return [
    {
      type: MappingType.ValueToText,
      options: Object.fromEntries(entries.map(([v, text, color], index) => [String(v), { text, color, index }])),
    },
  ];
}

export const UP_DOWN = valueMap([
  [1, 'up', 'green'],
  [0, 'down', 'red'],
]);

/**
 * The host states as numbers, for state timelines (`xenha_host_state` is one series per state, 1 on
 * the current one; a timeline wants one series per host). Typed by HostState: a new state must be
 * given a code and a colour here.
 */
export const STATE_CODES: Record<HostState, { code: number; color: string }> = {
  healthy: { code: 1, color: 'green' },
  degraded: { code: 2, color: 'yellow' },
  network_isolated: { code: 3, color: 'orange' },
  storage_lost: { code: 4, color: 'dark-orange' },
  flapping: { code: 5, color: 'purple' },
  suspect: { code: 6, color: 'red' },
  dead: { code: 7, color: 'dark-red' },
};

export const STATE_MAPPINGS = valueMap(HOST_STATES.map((s) => [STATE_CODES[s].code, s, STATE_CODES[s].color] as const));

/**
 * One series per host whose value is its state's code: each state's series times its code (0 on the
 * states the host is not in), and the largest per host.
 */
export function stateCodeExpr(selector: string): string {
  const terms = HOST_STATES.map((s) => `xenha_host_state{${selector},state="${s}"} * ${STATE_CODES[s].code}`);
  return `max by (pool, host) (${terms.join(' or ')})`;
}

/** Grafana hides this column list in tables built from instant queries. */
export const HIDDEN_COLUMNS = { Time: true, __name__: true, job: true, instance: true };

/** The reduction of stat and bar gauge panels: the last value, one figure per series. */
export function lastValue(): ReduceDataOptionsBuilder {
  return new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false);
}

/**
 * What the builders leave out: panel ids in order of appearance (unset, rows at 0; Grafana keys panel
 * links and `viewPanel` on them, so they are stable as long as the order is), and an annotation list
 * (the builders write `annotations: {}`, where Grafana expects `list`, to which it adds its built-in
 * "Annotations & Alerts").
 */
export function finish(d: Dashboard): Dashboard {
  d.annotations = { list: d.annotations?.list ?? [] };
  let id = 0;
  const walk = (panels: (Panel | RowPanel)[] | undefined) => {
    for (const p of panels ?? []) {
      p.id = ++id;
      if (p.type === 'row') walk((p as RowPanel).panels);
    }
  };
  walk(d.panels);
  return d;
}
