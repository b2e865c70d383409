/**
 * `xenha campaign`: the seeded safety campaign (campaign/, docs/campaign.md). Plays random fault stories
 * through xenha's real decision code on the simulated pool's injected clock, checks each against the
 * ground truth, and prints the table; on a violation, the story's seed and JSON and the command that
 * replays it. `--replay SEED|FILE` plays one story and prints what happened in it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Command, Option } from '@commander-js/extra-typings';
import { intArg } from './args.ts';

export function registerCampaign(program: Command): void {
  program
    .command('campaign')
    .description('play random fault stories through the real decision pipeline on a simulated clock; check every safety promise')
    .addOption(new Option('--stories <n>', 'how many stories').argParser(intArg(1, 1_000_000)).default(200))
    .addOption(
      new Option('--seed <n>', "the campaign's seed (story i plays with its own seed, printed on a violation)")
        .argParser(intArg(0, 2 ** 32 - 1))
        .default(1),
    )
    .addOption(new Option('--workers <n>', 'worker threads').argParser(intArg(1, 64)).default(1))
    .option('--replay <seed-or-file>', "play one story again: a story's seed, or a JSON file holding the story")
    .option('--json', 'print the report (or the replayed story) as JSON')
    .action(async (o) => {
      const { formatTable, parseStory, runCampaign } = await import('../campaign/campaign.ts');
      const { generateStory } = await import('../campaign/story.ts');
      if (o.replay !== undefined) {
        const story = /^\d+$/.test(o.replay)
          ? generateStory(Number(o.replay))
          : existsSync(o.replay)
            ? parseStory(readFileSync(o.replay, 'utf8'))
            : (() => {
                throw new Error(`--replay ${o.replay}: neither a story seed nor a story file`);
              })();
        const { playStory } = await import('../campaign/world.ts');
        const { judge } = await import('../campaign/checks.ts');
        const world = await playStory(story);
        const verdict = judge(world);
        if (o.json) process.stdout.write(`${JSON.stringify({ story, verdict, journal: world.journal }, null, 2)}\n`);
        else {
          const { formatReplay } = await import('../campaign/replay.ts');
          process.stdout.write(formatReplay(world, verdict));
        }
        if (verdict.violations.length > 0) process.exitCode = 1;
        return;
      }
      const report = await runCampaign({
        stories: o.stories,
        seed: o.seed,
        workers: o.workers,
        onResult: (r) => {
          for (const v of r.violations) process.stderr.write(`VIOLATION seed ${r.seed} (${r.kinds.join(', ')}): ${v.check}: ${v.detail}\n`);
        },
      });
      if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else process.stdout.write(`${formatTable(report)}\n`);
      if (report.violations.length > 0) {
        const seeds = [...new Set(report.violations.map((v) => v.seed))];
        process.stderr.write(
          `${report.violations.length} violation(s) in ${seeds.length} stor${seeds.length === 1 ? 'y' : 'ies'}; replay one with: ${seeds
            .slice(0, 10)
            .map((s) => `xenha campaign --replay ${s}`)
            .join(' | ')}\n`,
        );
        process.exitCode = 1;
      }
    });
}
