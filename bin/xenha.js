#!/usr/bin/env -S node --max-semi-space-size=2
// The xenha CLI. TypeScript sources run through tsx's loader, so there is no build step to forget.
// --max-semi-space-size=2: a small young generation; V8's default (16 MiB semi-spaces) costs ~40 MiB
// of resident memory for nothing in a long-running exporter (BENCHMARKS.md). Set it too when
// starting this file with `node` directly.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
