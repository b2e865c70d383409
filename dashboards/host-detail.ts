/**
 * xenha — host detail: one host of one pool. Its state now and over time, how long it has been in it,
 * every probe on every path and home, probe latency, how old each path's last sign of life is against
 * the dead-after in force, flaps and transitions, and the share of the time range spent in each state.
 */
import {
  BarGaugeDisplayMode,
  BigValueColorMode,
  BigValueGraphMode,
  BigValueTextMode,
  GraphDrawStyle,
  VisibilityMode,
  VizOrientation,
} from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, DashboardCursorSync, RowBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as BarGaugePanel } from '@grafana/grafana-foundation-sdk/bargauge';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as StateTimelinePanel } from '@grafana/grafana-foundation-sdk/statetimeline';
import { PanelBuilder as StatusHistoryPanel } from '@grafana/grafana-foundation-sdk/statushistory';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import {
  DATASOURCE,
  STATE_MAPPINGS,
  UP_DOWN,
  datasourceVariable,
  finish,
  lastValue,
  prom,
  queryVariable,
  stateCodeExpr,
  type DashboardDefinition,
} from './common.ts';

// One pool and one host (single-value variables): exact matches.
const POOL = 'pool="$pool"';
const HOST = 'pool="$pool",host="$host"';

const stat = (title: string, description: string) =>
  new StatPanel()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .span(6)
    .height(5)
    .unit('none')
    .reduceOptions(lastValue())
    .graphMode(BigValueGraphMode.None);

function build() {
  const d = new DashboardBuilder('xenha / Host detail')
    .uid('xenha-host-detail')
    .description('One host on both liveness paths: state and its history, probes per path and home, latency, heartbeat age, flaps.')
    .tags(['xenha', 'xenserver', 'xcp-ng', 'ha'])
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .withVariable(datasourceVariable())
    .withVariable(queryVariable('pool', 'Pool', 'label_values(xenha_pool_hosts, pool)', { multi: false }))
    .withVariable(queryVariable('host', 'Host', 'label_values(xenha_host_state{pool="$pool"}, host)', { multi: false }))

    .withRow(new RowBuilder('Now'))
    .withPanel(
      stat('State', 'The host classification now (xenha_host_state); `xenha explain --pool P --host H` says why.')
        .withTarget(prom(stateCodeExpr(HOST), '{{host}}', 'A', { instant: true }))
        .mappings(STATE_MAPPINGS)
        .textMode(BigValueTextMode.Value),
    )
    .withPanel(
      stat('Time in state', 'Seconds the host has been in its current state (xenha_host_state_seconds).')
        .withTarget(prom(`xenha_host_state_seconds{${HOST}}`, '{{host}}', 'A', { instant: true }))
        .unit('s')
        .colorMode(BigValueColorMode.None)
        .textMode(BigValueTextMode.Value),
    )
    .withPanel(
      stat('State transitions in the time range', 'State changes of the host (xenha_host_state_transitions_total).')
        .withTarget(prom(`sum(increase(xenha_host_state_transitions_total{${HOST}}[$__range]))`, 'transitions', 'A', { instant: true }))
        .decimals(0)
        .colorMode(BigValueColorMode.None)
        .textMode(BigValueTextMode.Value),
    )
    .withPanel(
      stat('Path flaps in the time range', "Changes of a path's status between up, degraded and down (xenha_host_path_flaps_total).")
        .withTarget(prom(`sum by (path) (increase(xenha_host_path_flaps_total{${HOST}}[$__range]))`, '{{path}}', 'A', { instant: true }))
        .decimals(0)
        .colorMode(BigValueColorMode.None)
        .textMode(BigValueTextMode.ValueAndName),
    )

    .withRow(new RowBuilder('History'))
    .withPanel(
      new StateTimelinePanel()
        .title('State history')
        .description('The host classification over time (xenha_host_state).')
        .datasource(DATASOURCE)
        .span(24)
        .height(5)
        .withTarget(prom(stateCodeExpr(HOST), '{{host}}'))
        .unit('none')
        .mappings(STATE_MAPPINGS)
        .showValue(VisibilityMode.Auto)
        .mergeValues(true)
        .fillOpacity(80)
        .lineWidth(0),
    )
    .withPanel(
      new StatusHistoryPanel()
        .title('Path up per probe and home')
        .description('What each probe saw on each home of each path (xenha_host_path_up): up, down, or empty when it could not tell.')
        .datasource(DATASOURCE)
        .span(24)
        .height(8)
        .withTarget(prom(`xenha_host_path_up{${HOST}}`, '{{path}} · {{probe}}/{{home}}'))
        .unit('none')
        .mappings(UP_DOWN)
        .showValue(VisibilityMode.Never)
        .fillOpacity(80)
        .lineWidth(0),
    )

    .withRow(new RowBuilder('Paths'))
    .withPanel(
      new TimeseriesPanel()
        .title('Probe latency per path and home')
        .description('Latency of the last successful probe of each path, probe and home (xenha_host_path_latency_seconds).')
        .datasource(DATASOURCE)
        .span(12)
        .height(9)
        .withTarget(prom(`xenha_host_path_latency_seconds{${HOST}}`, '{{path}} · {{probe}}/{{home}}'))
        .unit('s')
        .min(0),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('Heartbeat age per path')
        .description(
          'Seconds since each path last showed life, the newest life any of its samples (every probe and home) showed (xenha_host_heartbeat_age_seconds), against the dead-after in force (xenha_pool_dead_after_seconds): a host is dead once both paths are older than it.',
        )
        .datasource(DATASOURCE)
        .span(12)
        .height(9)
        .withTarget(prom(`xenha_host_heartbeat_age_seconds{${HOST}}`, '{{path}}', 'A'))
        .withTarget(prom(`xenha_pool_dead_after_seconds{${POOL}}`, 'dead after', 'B'))
        .unit('s')
        .min(0),
    )

    .withRow(new RowBuilder('Flaps and durations'))
    .withPanel(
      new TimeseriesPanel()
        .title('Path flaps')
        .description("Changes of a path's status between up, degraded and down, per interval (xenha_host_path_flaps_total).")
        .datasource(DATASOURCE)
        .span(8)
        .height(8)
        .withTarget(prom(`sum by (path) (increase(xenha_host_path_flaps_total{${HOST}}[$__rate_interval]))`, '{{path}}'))
        .unit('none')
        .min(0)
        .drawStyle(GraphDrawStyle.Bars)
        .fillOpacity(60),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('State transitions')
        .description('State changes per interval (xenha_host_state_transitions_total).')
        .datasource(DATASOURCE)
        .span(8)
        .height(8)
        .withTarget(prom(`sum(increase(xenha_host_state_transitions_total{${HOST}}[$__rate_interval]))`, 'transitions'))
        .unit('none')
        .min(0)
        .drawStyle(GraphDrawStyle.Bars)
        .fillOpacity(60),
    )
    .withPanel(
      new BarGaugePanel()
        .title('Time in each state')
        .description('Share of the time range the host spent in each state (xenha_host_state averaged over the range).')
        .datasource(DATASOURCE)
        .span(8)
        .height(8)
        .withTarget(prom(`avg_over_time(xenha_host_state{${HOST}}[$__range])`, '{{state}}', 'A', { instant: true }))
        .unit('percentunit')
        .min(0)
        .max(1)
        .decimals(1)
        .reduceOptions(lastValue())
        .displayMode(BarGaugeDisplayMode.Basic)
        .orientation(VizOrientation.Horizontal),
    );
  return finish(d.build());
}

export const hostDetail: DashboardDefinition = {
  file: 'xenha-host-detail.json',
  uid: 'xenha-host-detail',
  title: 'xenha / Host detail',
  build,
  keys: [
    '$pool',
    '$host',
    'State',
    'Time in state',
    'State history',
    'Path up per probe and home',
    'Probe latency per path and home',
    'Heartbeat age per path',
    'Time in each state',
  ],
};
