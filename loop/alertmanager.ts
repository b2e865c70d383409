/**
 * A real Alertmanager for the loop: the repository's deploy/alertmanager.yml rendered with the loop's
 * webhook URL and token file, run on loopback with clustering off (its gossip would otherwise listen
 * on 0.0.0.0:9094), in a directory of its own (config, data: silences and the notification log, log).
 * It can be restarted on the same port and data, as an end-to-end test does mid-incident.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { findAlertmanager, INSTALL_HINT } from './binaries.ts';
import { startOnPort, startServerProcess, type ServerProcess } from './process.ts';
import { ALERTMANAGER_TEMPLATE } from './repo.ts';

/** The receiver deploy/alertmanager.yml sends the host-dead alert to. */
export const REMEDIATION_RECEIVER = 'xenha-remediation';

export interface AlertmanagerRender {
  /** The remediation service's webhook, e.g. http://127.0.0.1:9946/webhook/alertmanager. */
  webhookUrl: string;
  /** Alertmanager's copy of the service's bearer token. */
  tokenFile: string;
  /** The xenha route's timing (default: the template's). */
  route?: { groupWait?: string; groupInterval?: string; repeatInterval?: string };
}

type Route = { receiver?: string; routes?: Route[]; group_wait?: string; group_interval?: string; repeat_interval?: string };
type AmConfig = {
  route?: Route;
  receivers?: { name: string; webhook_configs?: { url?: string; http_config?: { authorization?: { credentials_file?: string } } }[] }[];
};

/** The template (deploy/alertmanager.yml's text) with the loop's webhook URL, token file and route timing. */
export function renderAlertmanagerConfig(template: string, o: AlertmanagerRender): string {
  const c = parse(template) as AmConfig;
  const hooks = c.receivers?.find((r) => r.name === REMEDIATION_RECEIVER)?.webhook_configs;
  if (!hooks?.length)
    throw new Error(`the Alertmanager template has no webhook receiver ${REMEDIATION_RECEIVER} (deploy/alertmanager.yml)`);
  for (const h of hooks) {
    h.url = o.webhookUrl;
    ((h.http_config ??= {}).authorization ??= {}).credentials_file = o.tokenFile;
  }
  const route = c.route?.routes?.find((r) => r.receiver === REMEDIATION_RECEIVER);
  if (!route) throw new Error(`the Alertmanager template has no route to ${REMEDIATION_RECEIVER} (deploy/alertmanager.yml)`);
  if (o.route?.groupWait !== undefined) route.group_wait = o.route.groupWait;
  if (o.route?.groupInterval !== undefined) route.group_interval = o.route.groupInterval;
  if (o.route?.repeatInterval !== undefined) route.repeat_interval = o.route.repeatInterval;
  return `# Rendered by xenha's loop (loop/alertmanager.ts) from deploy/alertmanager.yml.\n${stringify(c)}`;
}

export interface AlertmanagerOptions extends AlertmanagerRender {
  /** Its directory: alertmanager.yml, data/, alertmanager.log. Created if missing. */
  dir: string;
  /** The binary (default: `prometheus-alertmanager`, else `alertmanager`, in PATH). */
  bin?: string;
  /** Port on 127.0.0.1; 0 (default) = a free one (kept across restarts). */
  port?: number;
  /** The template (default: the repository's deploy/alertmanager.yml). */
  template?: string;
  extraArgs?: string[];
  /** How long it may take to answer /-/ready (default 30 s). */
  startTimeoutMs?: number;
}

export interface RunningAlertmanager {
  /** http://127.0.0.1:<port>, the same across restarts. */
  url: string;
  port: number;
  /** The current process's pid (a restart changes it). */
  readonly pid: number;
  configPath: string;
  logFile: string;
  dir: string;
  stop(): Promise<void>;
  /**
   * Stops it, then starts it again on the same port and config, with its data (silences, the
   * notification log) or, with `wipe`, without (as a container without a volume restarts).
   */
  restart(opts?: { wipe?: boolean }): Promise<void>;
}

export async function startAlertmanager(o: AlertmanagerOptions): Promise<RunningAlertmanager> {
  const bin = o.bin ?? findAlertmanager();
  if (!bin) throw new Error(`prometheus-alertmanager (or alertmanager) is not in PATH: install it (Debian: ${INSTALL_HINT})`);
  mkdirSync(join(o.dir, 'data'), { recursive: true });
  const configPath = join(o.dir, 'alertmanager.yml');
  writeFileSync(configPath, renderAlertmanagerConfig(readFileSync(o.template ?? ALERTMANAGER_TEMPLATE, 'utf8'), o));
  const logFile = join(o.dir, 'alertmanager.log');
  const run = (port: number) =>
    startServerProcess({
      name: 'alertmanager',
      bin,
      args: [
        `--config.file=${configPath}`,
        `--storage.path=${join(o.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        // Empty: no cluster, so no gossip listener (by default on 0.0.0.0:9094).
        '--cluster.listen-address=',
        ...(o.extraArgs ?? []),
      ],
      logFile,
      cwd: o.dir,
      readyUrl: `http://127.0.0.1:${port}/-/ready`,
      timeoutMs: o.startTimeoutMs ?? 30_000,
    });
  let port = 0;
  let proc: ServerProcess = await startOnPort(o.port ?? 0, async (p) => {
    const started = await run(p);
    port = p;
    return started;
  });
  let stopped = false;
  let restarting: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get pid() {
      return proc.pid;
    },
    configPath,
    logFile,
    dir: o.dir,
    async stop() {
      stopped = true;
      await restarting?.catch(() => {});
      await proc.stop();
    },
    restart(opts = {}) {
      if (stopped) return Promise.reject(new Error('alertmanager: restart after stop'));
      if (restarting) return restarting;
      restarting = (async () => {
        try {
          await proc.stop();
          if (stopped) return;
          if (opts.wipe) {
            rmSync(join(o.dir, 'data'), { recursive: true, force: true });
            mkdirSync(join(o.dir, 'data'), { recursive: true });
          }
          proc = await run(port);
        } finally {
          restarting = undefined;
        }
      })();
      return restarting;
    },
  };
}
