import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** What a TypeScript source imports: every module specifier, static or dynamic, and whether it is type-only. */
export interface ImportRef {
  spec: string;
  /** `import type …` / `export type …`: erased at run time. */
  typeOnly: boolean;
  /** `await import('…')`: loaded only when that code runs. */
  dynamic: boolean;
}

export function importsOf(text: string): ImportRef[] {
  const out: ImportRef[] = [];
  for (const m of text.matchAll(
    /^\s*(import|export)(\s+type)?\s[^'";]*?from\s*'([^']+)'|^\s*import\s*'([^']+)'|import\(\s*'([^']+)'\s*\)/gm,
  )) {
    if (m[3] !== undefined) out.push({ spec: m[3], typeOnly: m[2] !== undefined, dynamic: false });
    else if (m[4] !== undefined) out.push({ spec: m[4], typeOnly: false, dynamic: false });
    else out.push({ spec: m[5]!, typeOnly: false, dynamic: true });
  }
  return out;
}

/** Every .ts file under a directory. */
export function tsFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFilesUnder(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}
