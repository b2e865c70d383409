/**
 * `npm run bench -- campaign`: the seeded safety campaign at scale — 10 000 stories (XENHA_BENCH_CAMPAIGN_STORIES)
 * through the compiled code (dist/, as `xenha campaign` runs it) on two worker threads (the machine's two
 * cores), and its table into BENCHMARKS.md with the command, the machine, the time taken.
 */
import { cpus } from 'node:os';
import { positiveInt } from './util.ts';
import { machine, tree, writeSection } from './report.ts';

export async function benchCampaign(): Promise<void> {
  const stories = positiveInt('XENHA_BENCH_CAMPAIGN_STORIES', 10_000);
  const seed = positiveInt('XENHA_BENCH_CAMPAIGN_SEED', 1);
  const workers = Math.max(1, Math.min(cpus().length, 8));
  // The compiled campaign, as the CLI runs it (npm run bench builds first).
  const url = new URL('../dist/campaign/campaign.js', import.meta.url).href;
  const { runCampaign, formatTable } = (await import(url)) as typeof import('../campaign/campaign.ts');
  let done = 0;
  const report = await runCampaign({
    stories,
    seed,
    workers,
    onResult: (r) => {
      done++;
      if (done % 500 === 0) process.stdout.write(`  ${done}/${stories}\n`);
      for (const v of r.violations) process.stdout.write(`  VIOLATION seed ${r.seed}: ${v.check}: ${v.detail}\n`);
    },
  });
  const table = formatTable(report);
  process.stdout.write(`${table}\n`);
  const violations =
    report.violations.length === 0
      ? 'No violation.'
      : `${report.violations.length} violation(s); replay each with \`xenha campaign --replay SEED\`:\n\n${report.violations
          .slice(0, 20)
          .map((v) => `- seed ${v.seed}: ${v.check}: ${v.detail}`)
          .join('\n')}`;
  writeSection(
    'campaign',
    `## The safety campaign: ${stories} seeded fault stories

\`npm run bench -- campaign\` (\`XENHA_BENCH_CAMPAIGN_STORIES=${stories}\`, seed ${seed}; the same as
\`xenha campaign --stories ${stories} --seed ${seed} --workers ${workers}\`), ${workers} worker threads, compiled code;
${machine()}; ${tree()}; ${new Date().toISOString().slice(0, 10)}.

Each story: a random pool (2–16 hosts, HA on or off with xenha-heartbeat), random timeouts, one or two
kinds of fault, played through the real sampler, probes, classification, webhook intake, journal,
re-check, gates, planner, executor and fence levels on the simulator's injected clock, and checked
against the ground truth (docs/campaign.md). Times are *beyond dead-after*: what xenha adds to the wait
the pool's timeout imposes. "Held to the 5 s bound": the recoveries no story condition excuses (a
failing fence device, slow XAPI, late or out-of-order notifications, a gate that held it, a service
restart, a dead master, observer isolation); their figure leaves out the fence device's own time from
its off to the power cut (0 to 1 s per story), which the device spends, not xenha.

${table}

${violations}`,
  );
}
