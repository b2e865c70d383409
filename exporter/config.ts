/**
 * The exporter's config file (YAML, validated with zod; errors name the key and the line).
 * See docs/exporter.md for every key. Credentials come from an environment variable or a file, never
 * inline: a read-only XAPI account is enough.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseYaml, ConfigError } from '../core/config/yaml.ts';
import { loadYamlFile } from '../io/config-file.ts';
import { DEFAULT_PROBES, PROBES, probesConfig, probesOnPath, type ProbeName } from '../plugins/probes/index.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Node's timers take at most 2^31 − 1 ms; a longer delay silently becomes 1 ms. */
const MAX_DURATION_MS = 2 ** 31 - 1;

/** A duration: "500ms", "1s", "2m", or a number of seconds. Out: milliseconds (at most ~24 days). */
export const duration = z
  .union(
    [
      z
        .number()
        .nonnegative()
        .transform((s) => Math.round(s * 1000)),
      z
        .string()
        .regex(/^\d+(\.\d+)?(ms|s|m|h)$/)
        .transform((v) => {
          const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v)!;
          return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
        }),
    ],
    { error: 'expected a duration like "500ms", "1s", "2m", or a number of seconds' },
  )
  .refine((ms) => ms <= MAX_DURATION_MS, { error: 'at most 24 days (2^31 − 1 ms)' });

const timing = z
  .strictObject({
    sampleInterval: duration.default(1000),
    probeTimeout: duration.default(800),
    xapiTimeout: duration.default(10_000),
    deadAfter: duration.default(30_000),
    flapWindow: duration.default(60_000),
    flapThreshold: z.number().int().min(2).default(6),
    confirmSamples: z.number().int().min(1).max(10).default(2),
    /** How often VMs are fetched for the capacity figures (failures tolerable); 0 turns them off. */
    capacityInterval: duration.default(30_000),
  })
  .refine((t) => t.probeTimeout < t.sampleInterval, { error: 'probeTimeout must be shorter than sampleInterval', path: ['probeTimeout'] })
  .refine((t) => t.sampleInterval >= 100, { error: 'sampleInterval must be at least 100ms', path: ['sampleInterval'] })
  .refine((t) => t.probeTimeout >= 50, { error: 'probeTimeout must be at least 50ms', path: ['probeTimeout'] })
  .refine((t) => t.xapiTimeout >= 500, { error: 'xapiTimeout must be at least 500ms', path: ['xapiTimeout'] })
  .refine((t) => t.capacityInterval === 0 || t.capacityInterval >= 100, {
    error: 'capacityInterval must be 0 (off) or at least 100ms',
    path: ['capacityInterval'],
  });

const pool = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "." and "-" only (it becomes a label value)'),
    /** Every address the exporter may reach XAPI on, so it finds the master after a master change. */
    urls: z.array(z.url({ protocol: /^https?$/ })).min(1),
    user: z.string().min(1).default('root'),
    passwordEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
    passwordFile: z.string().min(1).optional(),
    allowUnauthorized: z.boolean().default(false),
    probes: probesConfig.default(DEFAULT_PROBES).superRefine((probes, ctx) => {
      // Never dead on one path's word: without a probe on each path no host could ever be called dead.
      const enabled = (Object.keys(probes) as ProbeName[]).filter((n) => probes[n] !== undefined);
      for (const path of ['network', 'storage'] as const) {
        if (!enabled.some((n) => PROBES[n].path === path)) {
          ctx.addIssue({
            code: 'custom',
            path: [],
            message: `no ${path} probe enabled: enable at least one probe per path (${probesOnPath(path).join(', ')})`,
          });
        }
      }
    }),
    timing: timing.prefault({}),
  })
  .superRefine((p, ctx) => {
    if ((p.passwordEnv === undefined) === (p.passwordFile === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['passwordEnv'],
        message: 'set exactly one of passwordEnv and passwordFile (no inline passwords)',
      });
    }
  });

export const exporterConfig = z
  .strictObject({
    listen: z
      .string()
      .regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port')
      .refine((l) => Number(l.slice(l.lastIndexOf(':') + 1)) <= 65535, { error: 'port must be 0..65535' })
      .default('127.0.0.1:9945'),
    pools: z.array(pool).min(1),
  })
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.pools.forEach((p, i) => {
      if (seen.has(p.name)) ctx.addIssue({ code: 'custom', path: ['pools', i, 'name'], message: `duplicate pool name ${p.name}` });
      seen.add(p.name);
    });
  });

export type ExporterConfig = z.output<typeof exporterConfig>;
export type PoolConfig = ExporterConfig['pools'][number];

export function parseExporterConfig(text: string, source = 'config'): ExporterConfig {
  return parseYaml(exporterConfig, text, source);
}

export function loadExporterConfig(path: string): ExporterConfig {
  return loadYamlFile(exporterConfig, path);
}

/** The pool's password from its environment variable or file; a clear error when neither gives one. */
export function resolvePassword(p: PoolConfig, env: NodeJS.ProcessEnv = process.env): string {
  if (p.passwordEnv !== undefined) {
    const v = env[p.passwordEnv];
    if (v === undefined || v === '') throw new ConfigError(`pool ${p.name}: environment variable ${p.passwordEnv} is not set`);
    return v;
  }
  try {
    return readFileSync(p.passwordFile!, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new ConfigError(`pool ${p.name}: cannot read passwordFile ${p.passwordFile}: ${(e as Error).message}`);
  }
}
