/** YAML text validated with zod (pure: reading the file is io/config-file.ts), with errors that name the key path and its line. */
import { isMap, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import type { z } from 'zod';

export class ConfigError extends Error {}

function lineOf(doc: ReturnType<typeof parseDocument>, counter: LineCounter, path: readonly PropertyKey[]): number | undefined {
  let node: Node | null | undefined = doc.contents;
  let found = node;
  for (const key of path) {
    if (isMap(node)) node = node.get(key, true);
    else if (isSeq(node)) node = node.get(Number(key), true);
    else break;
    if (node) found = node;
  }
  const start = found?.range?.[0];
  return start === undefined ? undefined : counter.linePos(start).line;
}

/** Parses YAML text and validates it; throws ConfigError listing every issue with its line. */
export function parseYaml<S extends z.ZodType>(schema: S, text: string, source: string): z.output<S> {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: true });
  if (doc.errors.length > 0) throw new ConfigError(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
  const r = schema.safeParse(doc.toJS());
  if (r.success) return r.data;
  // An unknown key is reported at the key itself, with its own line.
  const issues = r.error.issues.flatMap((iss) =>
    iss.code === 'unrecognized_keys' ? iss.keys.map((k) => ({ path: [...iss.path, k], message: iss.message })) : [iss],
  );
  const lines = issues.map((iss) => {
    const line = lineOf(doc, counter, iss.path);
    return `  ${iss.path.map(String).join('.') || '(top)'}${line ? ` (line ${line})` : ''}: ${iss.message}`;
  });
  throw new ConfigError(`${source} is invalid:\n${lines.join('\n')}`);
}
