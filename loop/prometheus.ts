/**
 * A real Prometheus for the loop: the repository's deploy/prometheus.yml rendered with the loop's
 * addresses (the exporter, the remediation service, Alertmanager), the repository's alerts/*.rules.yml
 * and the loop's intervals, run on loopback in a directory of its own (config, TSDB, log).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { findPrometheus, INSTALL_HINT } from './binaries.ts';
import { startOnPort, startServerProcess } from './process.ts';
import { alertRuleFiles, PROMETHEUS_TEMPLATE } from './repo.ts';

/** The scrape jobs deploy/prometheus.yml defines, by what they scrape. */
export const PROMETHEUS_JOBS = { exporter: 'xenha-exporter', remediation: 'xenha-remediation' } as const;

const DURATION = /^(\d+)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Prometheus duration ("1s", "500ms", "2m") in milliseconds; only the forms the loop writes. */
function durationMs(what: string, d: string): number {
  const m = DURATION.exec(d);
  if (!m || Number(m[1]) === 0) throw new Error(`${what}: expected a duration such as "1s", "500ms" or "2m", got ${JSON.stringify(d)}`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** The shorter of two durations, as written. */
const shorter = (a: string, b: string) => (durationMs('duration', a) <= durationMs('duration', b) ? a : b);

export interface PrometheusRender {
  /** `host:port` of the exporter's /metrics and of the remediation service's. */
  exporter: string;
  remediation: string;
  /** `host:port` of Alertmanager; absent: no alerting section. */
  alertmanager?: string;
  /** Every job's scrape interval (default: the template's). */
  scrapeInterval?: string;
  /** The rules' evaluation interval (default: the template's). */
  evaluationInterval?: string;
  /** Absolute paths of the rule files (default: the repository's alerts/*.rules.yml). */
  ruleFiles?: string[];
}

type Job = { job_name: string; scrape_interval?: string; scrape_timeout?: string; static_configs?: { targets: string[] }[] };
type PromConfig = {
  global?: { scrape_interval?: string; scrape_timeout?: string; evaluation_interval?: string };
  rule_files?: string[];
  alerting?: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
  scrape_configs?: Job[];
};

/** The template (deploy/prometheus.yml's text) with the loop's addresses, rule files and intervals. */
export function renderPrometheusConfig(template: string, o: PrometheusRender): string {
  const c = parse(template) as PromConfig;
  const global = (c.global ??= {});
  if (o.scrapeInterval !== undefined) {
    durationMs('scrapeInterval', o.scrapeInterval);
    global.scrape_interval = o.scrapeInterval;
    // A scrape may not time out later than the next one starts.
    global.scrape_timeout = shorter(global.scrape_timeout ?? '10s', o.scrapeInterval);
  }
  if (o.evaluationInterval !== undefined) {
    durationMs('evaluationInterval', o.evaluationInterval);
    global.evaluation_interval = o.evaluationInterval;
  }
  const targets: Record<string, string> = { [PROMETHEUS_JOBS.exporter]: o.exporter, [PROMETHEUS_JOBS.remediation]: o.remediation };
  for (const [job, target] of Object.entries(targets)) {
    const j = c.scrape_configs?.find((s) => s.job_name === job);
    if (!j) throw new Error(`the Prometheus template has no scrape job ${job} (deploy/prometheus.yml)`);
    j.static_configs = [{ targets: [target] }];
    if (o.scrapeInterval !== undefined) {
      j.scrape_interval = o.scrapeInterval;
      j.scrape_timeout = shorter(j.scrape_timeout ?? global.scrape_timeout ?? '10s', o.scrapeInterval);
    }
  }
  c.rule_files = o.ruleFiles ?? alertRuleFiles();
  if (o.alertmanager !== undefined) c.alerting = { alertmanagers: [{ static_configs: [{ targets: [o.alertmanager] }] }] };
  else delete c.alerting;
  return `# Rendered by xenha's loop (loop/prometheus.ts) from deploy/prometheus.yml.\n${stringify(c)}`;
}

export interface PrometheusOptions extends PrometheusRender {
  /** Its directory: prometheus.yml, data/, prometheus.log. Created if missing. */
  dir: string;
  /** The binary (default: `prometheus` in PATH). */
  bin?: string;
  /** Port on 127.0.0.1; 0 (default) = a free one. */
  port?: number;
  /** The template (default: the repository's deploy/prometheus.yml). */
  template?: string;
  /** More flags. */
  extraArgs?: string[];
  /** How long it may take to answer /-/ready (default 30 s). */
  startTimeoutMs?: number;
}

export interface RunningPrometheus {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  pid: number;
  configPath: string;
  logFile: string;
  dir: string;
  stop(): Promise<void>;
}

export async function startPrometheus(o: PrometheusOptions): Promise<RunningPrometheus> {
  const bin = o.bin ?? findPrometheus();
  if (!bin) throw new Error(`prometheus is not in PATH: install it (Debian: ${INSTALL_HINT})`);
  mkdirSync(join(o.dir, 'data'), { recursive: true });
  const configPath = join(o.dir, 'prometheus.yml');
  writeFileSync(configPath, renderPrometheusConfig(readFileSync(o.template ?? PROMETHEUS_TEMPLATE, 'utf8'), o));
  const logFile = join(o.dir, 'prometheus.log');
  return startOnPort(o.port ?? 0, async (port) => {
    const url = `http://127.0.0.1:${port}`;
    const proc = await startServerProcess({
      name: 'prometheus',
      bin,
      args: [
        `--config.file=${configPath}`,
        `--storage.tsdb.path=${join(o.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1d',
        ...(o.extraArgs ?? []),
      ],
      logFile,
      cwd: o.dir,
      readyUrl: `${url}/-/ready`,
      timeoutMs: o.startTimeoutMs ?? 30_000,
    });
    return { url, port, pid: proc.pid, configPath, logFile, dir: o.dir, stop: () => proc.stop() };
  });
}
