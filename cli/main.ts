/** `xenha <subcommand>`: one file per subcommand, each registering itself on the program. */
import { Command } from 'commander';
import { registerSimulate } from './simulate.ts';
import { registerFault } from './fault.ts';
import { registerExporter } from './exporter.ts';
import { registerExplain } from './explain.ts';
import { registerPlan } from './plan.ts';

const program = new Command('xenha')
  .description('HA monitoring and safe auto-remediation for XenServer / XCP-ng pools')
  .showHelpAfterError()
  .version('0.1.0');

registerSimulate(program);
registerFault(program);
registerExporter(program);
registerExplain(program);
registerPlan(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.stderr.write(`xenha: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
