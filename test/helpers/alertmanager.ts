/** Alertmanager webhook notifications (version 4) as Alertmanager sends them, for tests. */
import { createHash } from 'node:crypto';

export interface AlertSpec {
  labels: Record<string, string>;
  status?: 'firing' | 'resolved';
  startsAt?: string;
}

/** Alertmanager's fingerprint is a hash of the label set: any stable hash of the sorted labels does here. */
export function fingerprintOf(labels: Record<string, string>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\xff');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export function notification(
  alerts: AlertSpec[],
  groupLabels: Record<string, string> = { alertname: 'XenhaHostDead' },
): Record<string, unknown> {
  const full = alerts.map((a) => {
    const labels: Record<string, string> = { alertname: 'XenhaHostDead', severity: 'critical', ...a.labels };
    const status = a.status ?? 'firing';
    return {
      status,
      labels,
      annotations: { summary: `host ${labels.host ?? labels.host_uuid} dead on both paths` },
      startsAt: a.startsAt ?? '2026-11-28T04:00:00.000Z',
      endsAt: status === 'resolved' ? new Date().toISOString() : '0001-01-01T00:00:00Z',
      generatorURL: 'http://127.0.0.1:9090/graph?g0.expr=xenha_host_state%7Bstate%3D%22dead%22%7D+%3D%3D+1',
      fingerprint: fingerprintOf(labels),
    };
  });
  const common = Object.fromEntries(Object.entries(full[0]?.labels ?? {}).filter(([k, v]) => full.every((a) => a.labels[k] === v)));
  return {
    receiver: 'xenha-remediation',
    status: full.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    alerts: full,
    groupLabels,
    commonLabels: common,
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:9093',
    version: '4',
    groupKey: `{}/{severity="critical"}:${JSON.stringify(groupLabels)}`,
    truncatedAlerts: 0,
  };
}
