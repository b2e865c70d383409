/** The typed unions of classification rules and fence gates, and the docs that explain each one. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLASSIFY_RULES } from '../../core/classify/state-machine.ts';
import { FENCE_GATES } from '../../core/planner/fence-gates.ts';

const doc = (name: string) => readFileSync(join(import.meta.dirname, '../../docs', name), 'utf8');
/** The first column of the markdown table whose header starts with `| head |`. */
function tableKeys(text: string, head: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`| ${head} |`));
  expect(start, `a table headed "${head}"`).toBeGreaterThanOrEqual(0);
  const rows: string[] = [];
  for (const l of lines.slice(start + 2)) {
    const m = /^\| `([a-z-]+)` \|/.exec(l);
    if (!m) break;
    rows.push(m[1]!);
  }
  return rows;
}

describe('decision names', () => {
  it('docs/classification.md explains every classification rule, and no other', () => {
    expect(tableKeys(doc('classification.md'), 'rule').sort()).toEqual([...CLASSIFY_RULES].sort());
  });
  it('docs/planner.md explains every fence gate, and no other', () => {
    expect(tableKeys(doc('planner.md'), 'gate').sort()).toEqual([...FENCE_GATES].sort());
  });
});
