#!/usr/bin/env -S node --max-semi-space-size=2 --optimize-for-size
// The xenha CLI. TypeScript sources run through tsx's loader, so there is no build step to forget.
// The V8 flags keep the exporter's resident memory flat: its probes make short-lived garbage (a TCP
// socket per host and home each second), which V8's defaults let pile up to ~100 MiB before a full
// collection (BENCHMARKS.md). Pass them too when starting this file with `node` directly.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
