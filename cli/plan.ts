/**
 * `xenha plan` and `xenha what-if`: the planner on a snapshot file (docs/planner.md) or a live pool.
 * JSON out by default; `--format table` for people.
 */
import { Command, Option } from '@commander-js/extra-typings';
import type { Capacity } from '../core/planner/capacity.ts';
import { DEFAULT_FENCE_POLICY } from '../core/planner/fence-policy.ts';
import type { PlannerSnapshot } from '../core/planner/model.ts';
import type { RecoveryPlan } from '../core/planner/plan.ts';
import { checkHttpUrl, hostListArg, intArg } from './args.ts';

/** A snapshot file: 100,000 VMs take about 30 MB of JSON. */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;
/** JSON objects and arrays in a snapshot: one per host and per VM, and a few more. */
const MAX_INPUT_CONTAINERS = 100_000 + 64 + 16;
/** JSON values in a snapshot (counted by their separators): a VM has a dozen fields. */
const MAX_INPUT_VALUES = 16 * MAX_INPUT_CONTAINERS;

/**
 * Refuses JSON text with more objects, arrays or values than a snapshot can have, before JSON.parse
 * builds them: 64 MiB of `{},` would take JSON.parse 20 s and 2 GB. One pass, strings skipped.
 */
export function checkJsonSize(text: string): void {
  let containers = 0;
  let values = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      // A backslash escapes the next character (a quote among them).
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++containers > MAX_INPUT_CONTAINERS) {
        throw new Error(`more than ${MAX_INPUT_CONTAINERS} JSON objects and arrays (a snapshot has one per host and per VM)`);
      }
    } else if (c === 0x2c && ++values > MAX_INPUT_VALUES) {
      throw new Error(`more than ${MAX_INPUT_VALUES} JSON values (a snapshot has about a dozen per host and per VM)`);
    }
  }
}

interface SourceOptions {
  input?: string;
  pool?: string;
  user: string;
  passwordEnv: string;
  allowUnauthorized?: boolean;
  exporter?: string;
  exporterPool?: string;
}

function sourceOptions<C extends Command>(cmd: C) {
  return cmd
    .option('--input <file>', 'a planner snapshot (JSON, see docs/planner.md)')
    .option('--pool <url>', 'take the snapshot from a live pool (or the simulator) over XAPI')
    .option('--user <name>', 'with --pool: XAPI user', 'root')
    .option('--password-env <var>', 'with --pool: environment variable holding the password', 'XENHA_PASSWORD')
    .option('--allow-unauthorized', 'with --pool: accept a self-signed certificate')
    .option('--exporter <url>', "with --pool: take each host's state and observer isolation from a running exporter")
    .option('--exporter-pool <name>', "with --exporter: the pool's name in the exporter (default: its only pool)");
}

/** The planner snapshot, and whether the observer is isolated, from the chosen source. */
async function load(o: SourceOptions): Promise<{ snapshot: PlannerSnapshot; observerIsolated: boolean; notes: string[] }> {
  if ((o.input === undefined) === (o.pool === undefined)) throw new Error('give exactly one of --input <file> and --pool <url>');
  const [{ z }, { fromPoolSnapshot, plannerSnapshot }, { HOST_STATES }, { FileTooLargeError, readFileBounded }] = await Promise.all([
    import('zod'),
    import('../core/planner/model.ts'),
    import('../core/classify/state-machine.ts'),
    import('../io/config-file.ts'),
  ]);
  // Checked before any connection: an http(s) URL, without credentials (shown in errors and logs).
  if (o.pool !== undefined) checkHttpUrl('--pool', o.pool);
  if (o.exporter !== undefined) checkHttpUrl('--exporter', o.exporter);
  if (o.input !== undefined) {
    let text: string;
    try {
      text = readFileBounded(o.input, MAX_INPUT_BYTES).toString('utf8');
    } catch (e) {
      if (e instanceof FileTooLargeError) throw new Error(`${e.message} (a pool snapshot is at most a few tens of MB)`, { cause: e });
      throw new Error(`cannot read ${o.input}: ${(e as Error).message}`, { cause: e });
    }
    let raw: unknown;
    try {
      checkJsonSize(text);
      raw = JSON.parse(text);
    } catch (e) {
      throw new Error(`${o.input} is not a planner snapshot: ${(e as Error).message}`, { cause: e });
    }
    const r = plannerSnapshot.safeParse(raw);
    if (!r.success) {
      // The first issues only: a snapshot of 100,000 bad VMs would list 100,000.
      const first = new z.ZodError(r.error.issues.slice(0, 20));
      const more = r.error.issues.length - first.issues.length;
      throw new Error(`${o.input} is not a valid planner snapshot:\n${z.prettifyError(first)}${more > 0 ? `\n… and ${more} more` : ''}`);
    }
    return { snapshot: r.data, observerIsolated: false, notes: [] };
  }
  const password = process.env[o.passwordEnv];
  if (!password) throw new Error(`environment variable ${o.passwordEnv} is not set (the XAPI password)`);
  const { fetchPoolSnapshot } = await import('../io/xapi/fetch-snapshot.ts');
  const snap = await fetchPoolSnapshot(o.pool!, o.user, password, { allowUnauthorized: o.allowUnauthorized });
  if (!o.exporter) {
    return {
      snapshot: fromPoolSnapshot(snap),
      observerIsolated: false,
      notes: [
        "no --exporter: host states derived from host_metrics.live (not live = dead), and no host is fenced without --allow-without-path-evidence; the exporter's two-path classification is safer",
      ],
    };
  }
  const pathStatus = z.enum(['up', 'degraded', 'down', 'unknown']);
  const exporterState = z.object({
    pools: z.array(
      z.object({
        pool: z.string(),
        observerIsolated: z.boolean().nullable(),
        hosts: z.array(
          z.object({
            uuid: z.string(),
            state: z.enum(HOST_STATES).nullable(),
            network: pathStatus.nullable(),
            storage: pathStatus.nullable(),
          }),
        ),
      }),
    ),
  });
  const res = await fetch(new URL('/api/v1/state', o.exporter), { signal: AbortSignal.timeout(10_000) });
  const state = exporterState.parse(await res.json());
  const p = o.exporterPool ? state.pools.find((x) => x.pool === o.exporterPool) : state.pools.length === 1 ? state.pools[0] : undefined;
  if (!p) throw new Error(`pick the exporter's pool with --exporter-pool (pools: ${state.pools.map((x) => x.pool).join(', ')})`);
  const alive = (s: string | null) => s === 'up' || s === 'degraded';
  const states = Object.fromEntries(
    p.hosts.flatMap((h) => (h.state ? [[h.uuid, { state: h.state, anyPathUp: alive(h.network) || alive(h.storage) }]] : [])),
  );
  return { snapshot: fromPoolSnapshot(snap, states), observerIsolated: p.observerIsolated === true, notes: [] };
}

/**
 * The UUIDs of the hosts named (by UUID or name; at least one, each once: hostListArg). A name two
 * hosts share is refused (XAPI allows it): give the UUID. So is a host named twice (name and UUID).
 */
function hostsByName(s: PlannerSnapshot, list: readonly string[]): string[] {
  const uuids = list.map((x) => {
    const byUuid = s.hosts.find((y) => y.uuid === x);
    if (byUuid) return byUuid.uuid;
    const named = s.hosts.filter((y) => y.name === x);
    if (named.length === 0) throw new Error(`no host ${JSON.stringify(x)} (hosts: ${s.hosts.map((y) => y.name).join(', ')})`);
    if (named.length > 1)
      throw new Error(`${named.length} hosts are named ${JSON.stringify(x)}: give its UUID (${named.map((y) => y.uuid).join(', ')})`);
    return named[0]!.uuid;
  });
  uuids.forEach((u, i) => {
    const j = uuids.indexOf(u);
    if (j < i) throw new Error(`${JSON.stringify(list[j])} and ${JSON.stringify(list[i])} are the same host`);
  });
  return uuids;
}

function capacityTable(s: PlannerSnapshot, c: Capacity): string[] {
  const name = (u: string) => s.hosts.find((h) => h.uuid === u)?.name ?? u;
  return [
    `pool ${s.pool.name}: failures tolerable lower ${c.lower}, upper ${c.upper}, exact ${c.exact ?? 'not computed (over budget)'}; configured ${s.pool.hostFailuresToTolerate}${c.lower < s.pool.hostFailuresToTolerate ? '  ← OVERCOMMITTED' : ''}`,
    ...(c.witness ? [`  fails with ${c.witness.hosts.map(name).join(', ') || 'no further failure'}: ${c.witness.reason}`] : []),
    ...c.reasons.map((r) => `  note: ${r}`),
  ];
}

function planTable(s: PlannerSnapshot, p: RecoveryPlan): string[] {
  const host = (u: string) => s.hosts.find((h) => h.uuid === u)?.name ?? u;
  const vm = (u: string) => s.vms.find((v) => v.uuid === u)?.name ?? u;
  const rows = p.steps.map((st, i) => {
    const what =
      st.kind === 'reset-power-state'
        ? `${vm(st.vm)} on ${host(st.host)}`
        : 'vm' in st
          ? `${vm(st.vm)} → ${host(st.host)}`
          : 'host' in st
            ? host(st.host)
            : st.kind === 'wait'
              ? `${st.seconds} s`
              : '';
    return `${String(i + 1).padStart(3)}  ${st.kind.padEnd(22)} ${what.padEnd(32)} ${st.reason}`;
  });
  return [
    p.steps.length === 0 ? 'no step: nothing to recover' : '  #  step                   target                           why',
    ...rows,
    ...p.fences.refused.map((r) => `  refused fence of ${host(r.host)} [${r.gate}]: ${r.reason}`),
    ...p.unplaced.map((u) => `  not restarted: ${u.name}: ${u.reason}`),
    ...(p.notRestarted.length > 0 ? [`  not restarted (no HA priority): ${p.notRestarted.map((v) => v.name).join(', ')}`] : []),
  ];
}

export function registerPlan(program: Command): void {
  sourceOptions(program.command('plan'))
    .description(
      'failures the pool can absorb, and the recovery plan for the hosts that are dead (fence, confirm, master hand-over, restarts)',
    )
    .addOption(new Option('--format <format>', 'output').choices(['json', 'table']).default('json'))
    .option('--max-concurrent-fences <n>', 'storm limit: fences in flight', intArg(0, 64), DEFAULT_FENCE_POLICY.maxConcurrentFences)
    .option('--override-quorum', "fence even when most of the pool looks dead (an operator's decision)")
    .option('--allow-without-path-evidence', "fence hosts that have no two-path classification (no --exporter): an operator's decision")
    .action(async (o) => {
      const { snapshot, observerIsolated, notes } = await load(o);
      const [{ failuresToTolerate }, { planRecovery }] = await Promise.all([
        import('../core/planner/capacity.ts'),
        import('../core/planner/plan.ts'),
      ]);
      const capacity = failuresToTolerate(snapshot);
      const plan = planRecovery(snapshot, {
        observerIsolated,
        history: { fences: [], inFlight: [] },
        now: Date.now(),
        fencePolicy: {
          ...DEFAULT_FENCE_POLICY,
          maxConcurrentFences: o.maxConcurrentFences,
          overrideQuorum: o.overrideQuorum === true,
          allowWithoutPathEvidence: o.allowWithoutPathEvidence === true,
        },
      });
      for (const n of notes) process.stderr.write(`xenha: ${n}\n`);
      process.stdout.write(
        o.format === 'table'
          ? `${[...capacityTable(snapshot, capacity), '', ...planTable(snapshot, plan)].join('\n')}\n`
          : `${JSON.stringify({ capacity, plan }, null, 2)}\n`,
      );
    });

  sourceOptions(program.command('what-if'))
    .description('can the pool survive losing these hosts now, and with which placement of their protected VMs')
    .requiredOption('--fail <hosts>', 'comma-separated host names or UUIDs (at least one, each once)', hostListArg)
    .addOption(new Option('--format <format>', 'output').choices(['json', 'table']).default('json'))
    .action(async (o) => {
      const { snapshot, notes } = await load(o);
      const { whatIf } = await import('../core/planner/capacity.ts');
      const r = whatIf(snapshot, hostsByName(snapshot, o.fail));
      for (const n of notes) process.stderr.write(`xenha: ${n}\n`);
      if (r.survives === false) process.exitCode = 3;
      if (o.format === 'json') {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      const host = (u: string) => snapshot.hosts.find((h) => h.uuid === u)?.name ?? u;
      const vm = (u: string) => snapshot.vms.find((v) => v.uuid === u)?.name ?? u;
      process.stdout.write(
        `${[
          `losing ${r.failed.map(host).join(', ')}: ${r.survives === true ? 'SURVIVES' : r.survives === false ? 'DOES NOT SURVIVE' : 'CANNOT TELL'} — ${r.reason}`,
          ...Object.entries(r.placement).map(([v, h]) => `  ${vm(v)} → ${host(h)}`),
        ].join('\n')}\n`,
      );
    });
}
