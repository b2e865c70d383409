#!/usr/bin/env -S node --max-semi-space-size=2 --optimize-for-size
// The xenha CLI: runs the compiled JavaScript in dist/ (`npm run build`, which `npm ci` runs through
// `prepare`; `npm run dev -- <args>` runs the TypeScript sources through tsx instead).
// The V8 flags keep the exporter's resident memory flat: its probes make short-lived garbage (a TCP
// socket per host and home each second), which V8's defaults let pile up to ~100 MiB before a full
// collection (BENCHMARKS.md). Pass them too when starting this file with `node` directly.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('xenha: the CLI is not built (no dist/cli/main.js): run `npm run build` (or `npm ci`) in the xenha checkout\n');
  process.exit(1);
}
await import(main.href);
