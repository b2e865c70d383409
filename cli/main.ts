/**
 * `xenha <subcommand>`: one file per subcommand, each registering itself on the program. Registering
 * loads only commander and cli/args.ts: each subcommand imports what it needs (pino, zod, xen-api,
 * express, prom-client, the simulator, the exporter, the planner) in its action, so `xenha --help`
 * and a light subcommand start in little more than node's own start-up (BENCHMARKS.md).
 */
import { Command } from '@commander-js/extra-typings';
import { registerSimulate } from './simulate.ts';
import { registerFault } from './fault.ts';
import { registerExporter } from './exporter.ts';
import { registerExplain } from './explain.ts';
import { registerPlan } from './plan.ts';
import { registerRemediate } from './remediate.ts';
import { registerDashboards } from './dashboards.ts';
import { registerStart } from './start.ts';
import { registerCampaign } from './campaign.ts';
import { packageVersion } from './version.ts';

const program = new Command('xenha')
  .description('HA monitoring and safe auto-remediation for XenServer / XCP-ng pools')
  .showHelpAfterError()
  .version(packageVersion());

registerSimulate(program);
registerFault(program);
registerExporter(program);
registerExplain(program);
registerPlan(program);
registerRemediate(program);
registerDashboards(program);
registerStart(program);
registerCampaign(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.stderr.write(`xenha: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
