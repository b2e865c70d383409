/** `xenha fault <kind>`: injects a fault into a running simulator through its control API. */
import { Command, Option } from '@commander-js/extra-typings';
import { intArg, intListArg } from './args.ts';

function controlOption() {
  return new Option('--control <url>', "the simulator's control API").env('XENHA_SIM_CONTROL').default('http://127.0.0.1:8481');
}

async function request(url: string, init?: RequestInit): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new Error(
      `cannot reach the simulator's control API at ${url}: ${(e as Error).cause ? String((e as Error).cause) : (e as Error).message}`,
      { cause: e },
    );
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new Error(`simulator refused (${res.status}): ${body.error ?? 'no reason given'}`);
  return body;
}

async function send(control: string, body: unknown): Promise<void> {
  // The request's schema (and zod with it) only for the faults that send one; `state` and `events` do without.
  const [{ z }, { faultRequest }] = await Promise.all([import('zod'), import('../simulator/faults.ts')]);
  const parsed = faultRequest.safeParse(body);
  if (!parsed.success) throw new Error(z.prettifyError(parsed.error));
  const out = await request(new URL('/faults', control).toString(), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(parsed.data),
  });
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/**
 * Homes per path of a simulated host (simulator/build.ts NETWORK_HOMES = STORAGE_HOMES = 2, not imported
 * here: the CLI loads the simulator only when a command runs; a unit test keeps the two equal). The
 * control API checks the same range.
 */
export const SIM_HOMES = 2;

export function registerFault(program: Command): void {
  const fault = program.command('fault').description('inject a fault into a running simulator (xenha simulate)');
  const homes = () =>
    new Option('--homes <list>', `homes to cut, e.g. 0 or 0,1 (0..${SIM_HOMES - 1}; default: every home)`).argParser(
      intListArg(0, SIM_HOMES - 1, 'home'),
    );

  fault
    .command('host-crash')
    .argument('<host>', 'host name or UUID')
    .description('the host stops: both paths down, its VMs stay "Running" in XAPI until reset')
    .addOption(controlOption())
    .action((host, o) => send(o.control, { kind: 'host-crash', host }));
  fault
    .command('master-crash')
    .description('the current master crashes')
    .addOption(controlOption())
    .action((o) => send(o.control, { kind: 'master-crash' }));
  fault
    .command('network-down')
    .argument('<host>')
    .description('cut the network (management) path on some or all homes')
    .addOption(homes())
    .addOption(controlOption())
    .action((host, o) => send(o.control, { kind: 'network-down', host, homes: o.homes }));
  fault
    .command('storage-down')
    .argument('<host>')
    .description('cut the storage path (heartbeat SR multipath legs) on some or all homes')
    .addOption(homes())
    .addOption(controlOption())
    .action((host, o) => send(o.control, { kind: 'storage-down', host, homes: o.homes }));
  fault
    .command('flap')
    .argument('<host>')
    .description('a path goes down and up: down for the first half of each period')
    .addOption(new Option('--path <path>', 'which path').choices(['network', 'storage']).makeOptionMandatory())
    .requiredOption('--period-ms <ms>', 'full down+up period', intArg(1, 3_600_000))
    .addOption(homes())
    .addOption(controlOption())
    .action((host, o) => send(o.control, { kind: 'flap', host, path: o.path, periodMs: o.periodMs, homes: o.homes }));
  fault
    .command('slow-xapi')
    .argument('[host]', 'one host, or every host when absent')
    .description('add latency to every XAPI answer')
    .requiredOption('--latency-ms <ms>', 'added latency', intArg(0, 600_000))
    .addOption(controlOption())
    .action((host, o) => send(o.control, { kind: 'slow-xapi', host, latencyMs: o.latencyMs }));
  fault
    .command('observer-isolation')
    .description('cut the monitor off the pool: no XAPI answers, while hosts still see each other and the statefile')
    .addOption(controlOption())
    .action((o) => send(o.control, { kind: 'observer-isolation' }));
  fault
    .command('heal')
    .argument('[host]', 'one host, or everything when absent')
    .description('clear faults; a crashed host reboots (power state is left to the fence agent)')
    .addOption(controlOption())
    .action((host, o) => send(o.control, { kind: 'heal', host }));
  fault
    .command('state')
    .description("print the simulator's state (hosts, paths per home, faults)")
    .addOption(controlOption())
    .action(async (o) => {
      process.stdout.write(`${JSON.stringify(await request(new URL('/state', o.control).toString()), null, 2)}\n`);
    });
  fault
    .command('events')
    .description('print the event log (faults, power, paths, master changes)')
    .option('--since <n>', 'events after this sequence number', intArg(0, Number.MAX_SAFE_INTEGER), 0)
    .addOption(controlOption())
    .action(async (o) => {
      const out = (await request(new URL(`/events?since=${o.since}`, o.control).toString())) as { events: unknown[] };
      for (const ev of out.events) process.stdout.write(`${JSON.stringify(ev)}\n`);
    });
}
