/** `xenha explain --pool P --host H`: why a host is in its state, from a running exporter. */
import { Command, Option } from '@commander-js/extra-typings';
import type { Explanation } from '../exporter/explain.ts';
import { checkHttpUrl } from './args.ts';

export function registerExplain(program: Command): void {
  program
    .command('explain')
    .description('print why a host is in its state: the last samples per path and home, the timings, the rule that decided')
    .requiredOption('--pool <name>', 'pool name as in the exporter config')
    .requiredOption('--host <name>', 'host name_label or UUID')
    .addOption(new Option('--exporter <url>', 'the exporter').env('XENHA_EXPORTER').default('http://127.0.0.1:9945'))
    .option('--json', 'print the explanation as JSON')
    .action(async (o) => {
      const url = new URL('/api/v1/explain', checkHttpUrl('--exporter', o.exporter));
      url.searchParams.set('pool', o.pool);
      url.searchParams.set('host', o.host);
      let res: Response;
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      } catch (e) {
        throw new Error(
          `cannot reach the exporter at ${o.exporter}: ${(e as Error).cause ? String((e as Error).cause) : (e as Error).message}`,
          { cause: e },
        );
      }
      const body = (await res.json().catch(() => ({}))) as Explanation & { error?: string };
      if (!res.ok) throw new Error(body.error ?? `exporter answered ${res.status}`);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
        return;
      }
      const { formatExplanation } = await import('../exporter/explain.ts');
      process.stdout.write(formatExplanation(body));
    });
}
