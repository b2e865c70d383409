/**
 * YAML text validated with zod (pure: reading the file is io/config-file.ts), with errors that name the
 * key path and its line.
 *
 * Bounded, for a hostile or unlucky file: at most MAX_CONFIG_BYTES of text, nested at most MAX_DEPTH
 * levels, at most MAX_ALIASES aliases (no "billion laughs"), only the tags of YAML 1.2's core schema
 * (no `!!js/function`, `!!binary`, `!custom`…), and work linear in the size of the text: duplicate keys
 * are found with one hash per map (yaml's own check compares each key with every earlier one), and an
 * error lists at most MAX_LISTED_ISSUES issues, each located by one walk down its path.
 */
import { Composer, isAlias, isMap, isPair, isScalar, isSeq, Lexer, LineCounter, Parser, type CST, type Document, type Node } from 'yaml';
import type { z } from 'zod';

export class ConfigError extends Error {}

/** A config is a few kilobytes; a longer text is refused before it is parsed. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Nesting (maps, sequences, flow collections) a config never needs (it has about seven levels). */
export const MAX_DEPTH = 64;
/** `*alias` references in one document: a few to share a block, never an expansion. */
export const MAX_ALIASES = 64;
/** Issues listed in one error; the others are counted. */
export const MAX_LISTED_ISSUES = 20;
/** A message is cut to this length in a list (a zod message may quote every unknown key). */
const MAX_MESSAGE_CHARS = 300;

/** The tags of YAML 1.2's core schema (and `!`, the non-specific tag): anything else is refused. */
const CORE_TAGS = new Set(['!', ...['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`)]);

/** "1 MiB", "64 MiB", "4 KiB" or "123 bytes". */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

function cut(message: string): string {
  return message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS)}…` : message;
}

/**
 * The first MAX_LISTED_ISSUES issues, each made into its line by `line` (only those listed are:
 * locating an issue walks the document), then how many more there are.
 */
function listed<T>(issues: readonly T[], line: (issue: T) => string): string[] {
  const lines = issues.slice(0, MAX_LISTED_ISSUES).map(line);
  if (issues.length > lines.length) lines.push(`… and ${issues.length - lines.length} more`);
  return lines;
}

/** Lexes and parses to CST tokens, refusing a nesting deeper than MAX_DEPTH as soon as it is reached. */
function parseCst(text: string, counter: LineCounter, source: string): CST.Token[] {
  const lexer = new Lexer();
  const parser = new Parser(counter.addNewLine);
  const tokens: CST.Token[] = [];
  counter.addNewLine(0);
  for (const lexeme of lexer.lex(text)) {
    for (const t of parser.next(lexeme)) tokens.push(t);
    // The parser's stack holds the collections open at this point (plus the document): without this
    // bound yaml's parser slows down quadratically with the depth, and its composer overflows the call stack.
    if (parser.stack.length > MAX_DEPTH) {
      throw new ConfigError(`${source}: nested more than ${MAX_DEPTH} levels deep (line ${counter.linePos(parser.offset).line})`);
    }
  }
  for (const t of parser.end()) tokens.push(t);
  return tokens;
}

interface Located {
  line: number | undefined;
  message: string;
}

/**
 * One pass over the document, without recursion: refuses a tag outside the core schema, a duplicate
 * key (two keys of one map that become the same property: `1` and `"1"` do), and more than
 * MAX_ALIASES aliases.
 */
function checkStructure(doc: Document.Parsed, counter: LineCounter): Located[] {
  const issues: Located[] = [];
  const lineOf = (n: Node | null | undefined) => (n?.range ? counter.linePos(n.range[0]).line : undefined);
  let aliases = 0;
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const n = stack.pop();
    if (isAlias(n)) {
      aliases += 1;
      if (aliases === MAX_ALIASES + 1) issues.push({ line: lineOf(n), message: `more than ${MAX_ALIASES} aliases (*name)` });
      continue;
    }
    if (!isScalar(n) && !isMap(n) && !isSeq(n)) continue;
    if (n.tag !== undefined && !CORE_TAGS.has(n.tag)) {
      issues.push({
        line: lineOf(n),
        message: cut(`tag ${n.tag} is not allowed (only YAML's core schema: strings, numbers, booleans, null, maps, sequences)`),
      });
    }
    if (isMap(n)) {
      const seen = new Map<string, Node>();
      for (const pair of n.items) {
        const key = pair.key as Node | null;
        if (!isScalar(key)) continue;
        const name = String(key.value);
        const first = seen.get(name);
        if (first)
          issues.push({ line: lineOf(key), message: cut(`duplicate key ${JSON.stringify(name)} (first on line ${lineOf(first)})`) });
        else seen.set(name, key);
      }
      // Children pushed last first: they are visited in document order.
      for (let i = n.items.length - 1; i >= 0; i--) stack.push(n.items[i]!.value, n.items[i]!.key);
    } else if (isSeq(n)) {
      for (let i = n.items.length - 1; i >= 0; i--) {
        const item = n.items[i];
        stack.push(isPair(item) ? item.value : item);
      }
    }
  }
  return issues;
}

/** The line of the node at `path`, or of its deepest ancestor present. */
function lineAt(doc: Document.Parsed, counter: LineCounter, path: readonly PropertyKey[]): number | undefined {
  let node: unknown = doc.contents;
  let found = node as Node | null;
  for (const key of path) {
    if (isMap(node)) node = node.get(key, true);
    else if (isSeq(node)) node = node.get(Number(key), true);
    else break;
    if (node) found = node as Node;
  }
  const start = found?.range?.[0];
  return start === undefined ? undefined : counter.linePos(start).line;
}

/** Parses YAML text and validates it; throws ConfigError listing the issues (the first 20) with their lines. */
export function parseYaml<S extends z.ZodType>(schema: S, text: string, source: string): z.output<S> {
  if (text.length > MAX_CONFIG_BYTES) {
    throw new ConfigError(`${source}: ${text.length} characters, over the ${formatBytes(MAX_CONFIG_BYTES)} limit of a config file`);
  }
  const counter = new LineCounter();
  const tokens = parseCst(text, counter, source);
  const docs = [...new Composer({ uniqueKeys: false, resolveKnownTags: false }).compose(tokens, true, text.length)];
  const doc = docs[0]!;
  const at = (e: { pos: [number, number] }) => {
    const p = counter.linePos(e.pos[0]);
    return ` at line ${p.line}, column ${p.col}`;
  };
  const errors: { message: string; pos: [number, number] }[] = [...doc.errors];
  if (docs.length > 1) errors.push({ message: 'more than one YAML document (---)', pos: [docs[1]!.range[0], docs[1]!.range[1]] });
  if (doc.schema.name !== 'core') {
    errors.push({ message: `YAML ${doc.directives?.yaml.version} is not supported: a config is YAML 1.2`, pos: [0, 0] });
  }
  if (errors.length > 0) throw new ConfigError(`${source}: ${listed(errors, (e) => `${cut(e.message)}${at(e)}`).join('; ')}`);
  const structure = checkStructure(doc, counter);
  if (structure.length > 0) {
    throw new ConfigError(
      `${source} is invalid:\n${listed(structure, (s) => `line ${s.line ?? '?'}: ${s.message}`)
        .map((l) => `  ${l}`)
        .join('\n')}`,
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (e) {
    throw new ConfigError(`${source}: ${(e as Error).message}`);
  }
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  // An unknown key is reported at the key itself, with its own line (and not with zod's message
  // quoting every unknown key of its map: that would grow with the square of their number).
  const issues = r.error.issues.flatMap((iss) =>
    iss.code === 'unrecognized_keys'
      ? iss.keys.map((k) => ({
          path: [...iss.path, k],
          message: iss.keys.length > 1 && /^Unrecognized keys:/.test(iss.message) ? `Unrecognized key: ${JSON.stringify(k)}` : iss.message,
        }))
      : [iss],
  );
  const lines = listed(issues, (iss) => {
    const line = lineAt(doc, counter, iss.path);
    return `${iss.path.map(String).join('.') || '(top)'}${line ? ` (line ${line})` : ''}: ${cut(iss.message)}`;
  });
  throw new ConfigError(`${source} is invalid:\n${lines.map((l) => `  ${l}`).join('\n')}`);
}
