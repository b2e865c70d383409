/**
 * xenha — remediation: the `xenha remediate` service. Its mode per pool, the plans in its journal by
 * state and those waiting for a person, the steps it ran by kind and result, its refusals by gate, how
 * long steps, plans and journal fsyncs take, and its webhook's requests and duplicate alerts.
 *
 * Most of the service's series carry no pool label (one service, one journal); only the mode,
 * refusals and duplicates are per pool, and only those follow the `pool` variable.
 */
import {
  BarGaugeDisplayMode,
  BigValueColorMode,
  BigValueGraphMode,
  BigValueTextMode,
  GraphDrawStyle,
  StackingConfigBuilder,
  StackingMode,
  VizOrientation,
} from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardBuilder,
  DashboardCursorSync,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as BarGaugePanel } from '@grafana/grafana-foundation-sdk/bargauge';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import {
  DATASOURCE,
  HIDDEN_COLUMNS,
  datasourceVariable,
  finish,
  lastValue,
  prom,
  queryVariable,
  type DashboardDefinition,
} from './common.ts';

const POOL = 'pool=~"$pool"';

const counts = (title: string, description: string) =>
  new TimeseriesPanel()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .span(12)
    .height(8)
    .unit('none')
    .min(0)
    .drawStyle(GraphDrawStyle.Bars)
    .fillOpacity(60)
    .stacking(new StackingConfigBuilder().mode(StackingMode.Normal));

/** p50 and p95 of a histogram, per `by` label (or overall). */
const quantiles = (title: string, description: string, metric: string, by: string | null) => {
  const labels = by ? `${by}, le` : 'le';
  const legend = (q: string) => (by ? `${q} {{${by}}}` : q);
  return new TimeseriesPanel()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .span(8)
    .height(8)
    .withTarget(prom(`histogram_quantile(0.5, sum by (${labels}) (rate(${metric}_bucket[$__rate_interval])))`, legend('p50'), 'A'))
    .withTarget(prom(`histogram_quantile(0.95, sum by (${labels}) (rate(${metric}_bucket[$__rate_interval])))`, legend('p95'), 'B'))
    .unit('s')
    .min(0);
};

/** A count that needs a person when above 0: a big number, green at 0, red from 1. */
const redAboveZero = (title: string, description: string, target: ReturnType<typeof prom>) =>
  new StatPanel()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .span(4)
    .height(6)
    .withTarget(target)
    .unit('none')
    .decimals(0)
    .reduceOptions(lastValue())
    .graphMode(BigValueGraphMode.None)
    .textMode(BigValueTextMode.Value)
    .thresholds(
      new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
        { value: null, color: 'green' },
        { value: 1, color: 'red' },
      ]),
    );

function build() {
  const d = new DashboardBuilder('xenha / Remediation')
    .uid('xenha-remediation')
    .description('The remediation service: mode, plans, steps, refusals by gate, durations, webhook.')
    .tags(['xenha', 'xenserver', 'xcp-ng', 'ha', 'remediation'])
    .time({ from: 'now-6h', to: 'now' })
    .refresh('30s')
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .withVariable(datasourceVariable())
    .withVariable(queryVariable('pool', 'Pool', 'label_values(xenha_remediation_mode, pool)', { multi: true }))

    .withRow(new RowBuilder('Now'))
    .withPanel(
      new TablePanel()
        .title('Mode')
        .description(
          "The mode configured per pool (xenha_remediation_mode); dry_run_forced 1: the pool's own HA is on, so the service only shows plans.",
        )
        .datasource(DATASOURCE)
        .span(6)
        .height(6)
        .withTarget(prom(`xenha_remediation_mode{${POOL}} == 1`, '', 'A', { instant: true, table: true }))
        .withTransformation({ id: 'organize', options: { excludeByName: { ...HIDDEN_COLUMNS, Value: true } } })
        .unit('none'),
    )
    .withPanel(
      new BarGaugePanel()
        .title('Plans by state')
        .description('Plans in the journal, by state (xenha_remediation_plans).')
        .datasource(DATASOURCE)
        .span(6)
        .height(6)
        .withTarget(prom('xenha_remediation_plans', '{{state}}', 'A', { instant: true }))
        .unit('none')
        .decimals(0)
        .min(0)
        .reduceOptions(lastValue())
        .displayMode(BarGaugeDisplayMode.Basic)
        .orientation(VizOrientation.Horizontal),
    )
    .withPanel(
      redAboveZero(
        'Waiting for operator',
        'Plans awaiting-ack (manual mode) or needs-operator (a fence failed on every level): someone must run `xenha ack` (xenha_remediation_plans_waiting_for_operator).',
        prom('xenha_remediation_plans_waiting_for_operator', 'waiting', 'A', { instant: true }),
      ),
    )
    .withPanel(
      redAboveZero(
        'Protected VMs left unplaced',
        'Protected VMs a finished plan could not place (no room, a disk on the fenced host) that are still not running: a person must start them (xenha_remediation_protected_vms_unplaced).',
        prom(`sum(xenha_remediation_protected_vms_unplaced{${POOL}})`, 'unplaced', 'A', { instant: true }),
      ),
    )
    .withPanel(
      new StatPanel()
        .title('Duplicate alerts in the time range')
        .description('Alerts that landed on an incident already open, dropped (xenha_remediation_duplicate_alerts_total).')
        .datasource(DATASOURCE)
        .span(4)
        .height(6)
        .withTarget(
          prom(`sum by (pool) (increase(xenha_remediation_duplicate_alerts_total{${POOL}}[$__range]))`, '{{pool}}', 'A', { instant: true }),
        )
        .unit('none')
        .decimals(0)
        .reduceOptions(lastValue())
        .colorMode(BigValueColorMode.None)
        .graphMode(BigValueGraphMode.None)
        .textMode(BigValueTextMode.ValueAndName),
    )

    .withRow(new RowBuilder('Actions and refusals'))
    .withPanel(
      counts(
        'Actions by kind and result',
        'Plan steps run per interval, by step kind and outcome (xenha_remediation_actions_total).',
      ).withTarget(prom('sum by (kind, result) (increase(xenha_remediation_actions_total[$__rate_interval]))', '{{kind}} {{result}}')),
    )
    .withPanel(
      counts(
        'Refusals by gate',
        'Incidents the service would not act on, per interval, by pool and gate (xenha_remediation_refusals_total); not-dead: its own verdict is not dead, a false positive averted. An unknown pool counts under pool="(unknown)" (shown with All).',
      ).withTarget(
        prom(`sum by (pool, gate) (increase(xenha_remediation_refusals_total{${POOL}}[$__rate_interval]))`, '{{pool}} {{gate}}'),
      ),
    )

    .withRow(new RowBuilder('Durations'))
    .withPanel(
      quantiles(
        'Step duration',
        'How long a plan step takes, by kind (xenha_remediation_step_duration_seconds).',
        'xenha_remediation_step_duration_seconds',
        'kind',
      ),
    )
    .withPanel(
      quantiles(
        'Plan duration',
        'One run of a plan, from its start, resume or ack to where it stopped, by the state it stopped in (xenha_remediation_plan_duration_seconds).',
        'xenha_remediation_plan_duration_seconds',
        'state',
      ),
    )
    .withPanel(
      quantiles(
        'Journal fsync latency',
        "One journal batch's synced write (xenha_remediation_journal_fsync_seconds).",
        'xenha_remediation_journal_fsync_seconds',
        null,
      ),
    )

    .withRow(new RowBuilder('Webhook'))
    .withPanel(
      new TimeseriesPanel()
        .title('Webhook requests by status')
        .description(
          'Alertmanager webhook requests answered, by HTTP status (499: the client went away first) (xenha_remediation_webhook_requests_total).',
        )
        .datasource(DATASOURCE)
        .span(12)
        .height(8)
        .withTarget(prom('sum by (code) (rate(xenha_remediation_webhook_requests_total[$__rate_interval]))', '{{code}}'))
        .unit('reqps')
        .min(0),
    )
    .withPanel(
      new StatPanel()
        .title('Webhook requests since start')
        .description('Requests answered since the service started, by HTTP status (xenha_remediation_webhook_requests_total).')
        .datasource(DATASOURCE)
        .span(6)
        .height(8)
        .withTarget(prom('sum by (code) (xenha_remediation_webhook_requests_total)', '{{code}}', 'A', { instant: true }))
        .unit('none')
        .decimals(0)
        .reduceOptions(lastValue())
        .colorMode(BigValueColorMode.None)
        .graphMode(BigValueGraphMode.None)
        .textMode(BigValueTextMode.ValueAndName),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('Notifications journaled')
        .description('Alertmanager notifications journaled, per interval (xenha_remediation_notifications_total).')
        .datasource(DATASOURCE)
        .span(6)
        .height(8)
        .withTarget(prom('sum(increase(xenha_remediation_notifications_total[$__rate_interval]))', 'notifications'))
        .unit('none')
        .min(0)
        .drawStyle(GraphDrawStyle.Bars)
        .fillOpacity(60),
    );
  return finish(d.build());
}

export const remediation: DashboardDefinition = {
  file: 'xenha-remediation.json',
  uid: 'xenha-remediation',
  title: 'xenha / Remediation',
  build,
  keys: ['$pool', 'Mode', 'Plans by state', 'Waiting for operator', 'Webhook requests since start'],
};
