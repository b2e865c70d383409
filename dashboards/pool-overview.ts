/**
 * xenha — pool overview: every pool at a glance (XAPI, storage heartbeat, observer isolation, master),
 * every host's state and every host × path × probe × home, what the pool can absorb against what HA
 * is configured for, the preflight checks, and the false positives averted.
 */
import {
  BigValueColorMode,
  BigValueGraphMode,
  BigValueTextMode,
  GraphDrawStyle,
  LineInterpolation,
  TableCellDisplayMode,
  VisibilityMode,
} from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardBuilder,
  DashboardCursorSync,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as StateTimelinePanel } from '@grafana/grafana-foundation-sdk/statetimeline';
import { PanelBuilder as StatusHistoryPanel } from '@grafana/grafana-foundation-sdk/statushistory';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import {
  DATASOURCE,
  HIDDEN_COLUMNS,
  STATE_MAPPINGS,
  UP_DOWN,
  datasourceVariable,
  finish,
  lastValue,
  prom,
  queryVariable,
  stateCodeExpr,
  valueMap,
  type DashboardDefinition,
} from './common.ts';

const POOL = 'pool=~"$pool"';
const HOSTS = 'pool=~"$pool",host=~"$host"';

const stat = (title: string, description: string) =>
  new StatPanel()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .span(4)
    .height(4)
    .unit('none')
    .reduceOptions(lastValue())
    .graphMode(BigValueGraphMode.None)
    .textMode(BigValueTextMode.ValueAndName);

function build() {
  const d = new DashboardBuilder('xenha / Pool overview')
    .uid('xenha-pool-overview')
    .description('Every host of the selected pools on both liveness paths, the pool HA capacity and requirements, false positives averted.')
    .tags(['xenha', 'xenserver', 'xcp-ng', 'ha'])
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .withVariable(datasourceVariable())
    .withVariable(queryVariable('pool', 'Pool', 'label_values(xenha_pool_hosts, pool)', { multi: true }))
    .withVariable(queryVariable('host', 'Host', 'label_values(xenha_host_state{pool=~"$pool"}, host)', { multi: true }))

    .withRow(new RowBuilder('Pools'))
    .withPanel(
      stat('XAPI up', 'The exporter holds a working XAPI session with the pool master (xenha_xapi_up).')
        .withTarget(prom(`xenha_xapi_up{${POOL}}`, '{{pool}}', 'A', { instant: true }))
        .mappings(UP_DOWN),
    )
    .withPanel(
      stat(
        'Storage heartbeat',
        'The exporter reads a storage heartbeat (HA statefile or xenha-heartbeat file). Without one there is no two-path verdict: no host is ever called dead (xenha_pool_storage_heartbeat).',
      )
        .withTarget(prom(`xenha_pool_storage_heartbeat{${POOL}}`, '{{pool}}', 'A', { instant: true }))
        .mappings(
          valueMap([
            [1, 'read', 'green'],
            [0, 'none: never dead', 'orange'],
          ]),
        ),
    )
    .withPanel(
      stat(
        'Observer isolated',
        'The evidence says the monitor itself is cut off from the pool; no host is called dead meanwhile (xenha_pool_observer_isolated).',
      )
        .withTarget(prom(`xenha_pool_observer_isolated{${POOL}}`, '{{pool}}', 'A', { instant: true }))
        .mappings(
          valueMap([
            [0, 'no', 'green'],
            [1, 'ISOLATED', 'red'],
          ]),
        ),
    )
    .withPanel(
      stat('Master', 'The pool master (xenha_pool_master_info).')
        .withTarget(prom(`xenha_pool_master_info{${POOL}} == 1`, '{{pool}}: {{host}}', 'A', { instant: true }))
        .textMode(BigValueTextMode.Name)
        .colorMode(BigValueColorMode.None),
    )
    .withPanel(
      stat('Hosts', 'Hosts in the pool (xenha_pool_hosts).')
        .withTarget(prom(`xenha_pool_hosts{${POOL}}`, '{{pool}}', 'A', { instant: true }))
        .decimals(0)
        .colorMode(BigValueColorMode.None),
    )
    .withPanel(
      stat(
        'Last sample age',
        "Seconds since the pool's last sampling round: how fresh the figures are (xenha_exporter_last_sample_age_seconds).",
      )
        .withTarget(prom(`xenha_exporter_last_sample_age_seconds{${POOL}}`, '{{pool}}', 'A', { instant: true }))
        .unit('s')
        .decimals(1)
        .thresholds(
          new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
            { value: null, color: 'green' },
            { value: 5, color: 'orange' },
            { value: 30, color: 'red' },
          ]),
        ),
    )

    .withRow(new RowBuilder('Hosts'))
    .withPanel(
      new StateTimelinePanel()
        .title('Host state')
        .description(
          'Each host classification over time (xenha_host_state): healthy, degraded, network_isolated, storage_lost, flapping, suspect, dead.',
        )
        .datasource(DATASOURCE)
        .span(24)
        .height(9)
        .withTarget(prom(stateCodeExpr(HOSTS), '{{pool}} / {{host}}'))
        .unit('none')
        .mappings(STATE_MAPPINGS)
        .showValue(VisibilityMode.Auto)
        .mergeValues(true)
        .fillOpacity(80)
        .lineWidth(0),
    )
    .withPanel(
      new StatusHistoryPanel()
        .title('Path up per host, path and home')
        .description(
          'What each probe saw of each host on each home of each path (xenha_host_path_up): up, down, or empty when the probe could not tell.',
        )
        .datasource(DATASOURCE)
        .span(24)
        .height(12)
        .withTarget(prom(`xenha_host_path_up{${HOSTS}}`, '{{host}} · {{path}} · {{probe}}/{{home}}'))
        .unit('none')
        .mappings(UP_DOWN)
        .showValue(VisibilityMode.Never)
        .fillOpacity(80)
        .lineWidth(0),
    )

    .withRow(new RowBuilder('Capacity and requirements'))
    .withPanel(
      new TimeseriesPanel()
        .title('Failures tolerable vs configured')
        .description(
          "Host failures the pool can absorb with every protected VM restarted (xenha_pool_failures_tolerable: proven lower and upper bounds, exact when computed) against the pool's configured ha_host_failures_to_tolerate. Lower below configured: overcommitted.",
        )
        .datasource(DATASOURCE)
        .span(12)
        .height(9)
        .withTarget(prom(`xenha_pool_failures_tolerable{${POOL}}`, '{{pool}} {{bound}}', 'A'))
        .withTarget(prom(`xenha_pool_ha_host_failures_to_tolerate{${POOL}}`, '{{pool}} configured', 'B'))
        .unit('none')
        .decimals(0)
        .min(0)
        .lineInterpolation(LineInterpolation.StepAfter),
    )
    .withPanel(
      new TablePanel()
        .title('Preflight checks')
        .description(
          'HA requirement checks per pool (xenha_preflight_check); the reason of a failure is in `xenha explain` and /api/v1/state.',
        )
        .datasource(DATASOURCE)
        .span(12)
        .height(9)
        .withTarget(prom(`xenha_preflight_check{${POOL}}`, '', 'A', { instant: true, table: true }))
        .withTransformation({ id: 'organize', options: { excludeByName: HIDDEN_COLUMNS, renameByName: { Value: 'result' } } })
        .unit('none')
        .overrideByName('result', [
          {
            id: 'mappings',
            value: valueMap([
              [1, 'ok', 'green'],
              [0, 'FAILED', 'red'],
            ]),
          },
          { id: 'custom.cellOptions', value: { type: TableCellDisplayMode.ColorBackground } },
        ]),
    )

    .withRow(new RowBuilder('False positives averted'))
    .withPanel(
      new StatPanel()
        .title('False positives averted in the time range')
        .description(
          'Hosts that entered network_isolated (path=network) or storage_lost (path=storage): one path alone would have called a live host dead (xenha_false_positives_averted_total).',
        )
        .datasource(DATASOURCE)
        .span(8)
        .height(8)
        .withTarget(
          prom(`sum by (pool, path) (increase(xenha_false_positives_averted_total{${POOL}}[$__range]))`, '{{pool}} {{path}}', 'A', {
            instant: true,
          }),
        )
        .unit('none')
        .decimals(0)
        .reduceOptions(lastValue())
        .colorMode(BigValueColorMode.None)
        .graphMode(BigValueGraphMode.None)
        .textMode(BigValueTextMode.ValueAndName),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('False positives averted')
        .description('Per pool and path, per interval (xenha_false_positives_averted_total).')
        .datasource(DATASOURCE)
        .span(16)
        .height(8)
        .withTarget(
          prom(`sum by (pool, path) (increase(xenha_false_positives_averted_total{${POOL}}[$__rate_interval]))`, '{{pool}} {{path}}'),
        )
        .unit('none')
        .min(0)
        .drawStyle(GraphDrawStyle.Bars)
        .fillOpacity(60),
    );
  return finish(d.build());
}

export const poolOverview: DashboardDefinition = {
  file: 'xenha-pool-overview.json',
  uid: 'xenha-pool-overview',
  title: 'xenha / Pool overview',
  build,
  keys: [
    '$pool',
    '$host',
    'XAPI up',
    'Storage heartbeat',
    'Observer isolated',
    'Master',
    'Hosts',
    'Last sample age',
    'Host state',
    'Path up per host, path and home',
    'Failures tolerable vs configured',
    'Preflight checks',
  ],
};
