/** `npm run bench [-- name …]`: runs the benchmarks and writes their figures into BENCHMARKS.md. */
import { benchCampaign } from './campaign.ts';
import { benchCli } from './cli.ts';
import { benchDetection } from './detection.ts';
import { benchExporter } from './exporter.ts';
import { benchHaOffDetection } from './ha-off-detection.ts';
import { benchHeartbeat } from './heartbeat.ts';
import { benchHostile } from './hostile.ts';
import { benchJournal } from './journal.ts';
import { benchLoop } from './loop.ts';
import { benchPlanner } from './planner.ts';
import { benchRemediation } from './remediation.ts';

const suites: Record<string, () => Promise<void>> = {
  planner: benchPlanner,
  exporter: benchExporter,
  cli: benchCli,
  hostile: benchHostile,
  detection: benchDetection,
  heartbeat: benchHeartbeat,
  'ha-off-detection': benchHaOffDetection,
  journal: benchJournal,
  remediation: benchRemediation,
  loop: benchLoop,
  campaign: benchCampaign,
};
const wanted = process.argv.slice(2).filter((a) => a !== '--');
for (const name of wanted.length > 0 ? wanted : Object.keys(suites)) {
  const run = suites[name];
  if (!run) {
    process.stderr.write(`unknown benchmark ${name} (known: ${Object.keys(suites).join(', ')})\n`);
    process.exit(2);
  }
  process.stdout.write(`== ${name}\n`);
  await run();
}
