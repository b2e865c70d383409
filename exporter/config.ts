/**
 * The exporter's config file (YAML, validated with zod; errors name the key and the line).
 * See docs/exporter.md for every key. Credentials come from an environment variable or a file, never
 * inline (not in a URL either): a read-only XAPI account is enough.
 */
import { closeSync, constants, fstatSync, openSync, statSync } from 'node:fs';
import { z } from 'zod';
import { parseListen } from './listen.ts';
import { DEFAULT_LIMITS } from '../io/xapi/limits.ts';
import { parseYaml, ConfigError, formatBytes } from '../core/config/yaml.ts';
import { loadYamlFile, readFdBounded } from '../io/config-file.ts';
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

/** "2s", "500ms": a duration in milliseconds as a config writes it. */
function showMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

const UNIT_BYTES: Record<string, number> = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30 };

/** A size: "512KiB", "8MiB", or a number of bytes. Out: bytes. */
export const size = z.union(
  [
    z.number().int().positive(),
    z
      .string()
      .regex(/^\d+(B|KiB|MiB|GiB)$/)
      .transform((v) => {
        const m = /^(\d+)(B|KiB|MiB|GiB)$/.exec(v)!;
        return Number(m[1]) * UNIT_BYTES[m[2]!]!;
      }),
  ],
  { error: 'expected a size like "512KiB", "8MiB", or a number of bytes' },
);

/** What one pool may send: beyond these its answers are refused (an error, counted), never taken. */
const limits = z.strictObject({
  /** The largest XAPI answer read whole (the mirror's classes, queries); VMs and VBDs are read as they stream. */
  maxAnswerBytes: size
    .default(DEFAULT_LIMITS.maxAnswerBytes)
    .refine((b) => b >= 2 ** 20 && b <= 2 ** 30, { error: 'between 1MiB and 1GiB' }),
  /** XenServer and XCP-ng pools hold at most 64 hosts. */
  maxHosts: z.number().int().min(1).max(1000).default(DEFAULT_LIMITS.maxHosts),
  /** VM or VBD records (and records of any class in one answer). */
  maxRecords: z.number().int().min(1000).max(10_000_000).default(DEFAULT_LIMITS.maxRecords),
});

const timing = z
  .strictObject({
    sampleInterval: duration.default(1000),
    probeTimeout: duration.default(800),
    xapiTimeout: duration.default(10_000),
    /** No evidence of life for this long (both paths down now) → dead. Default: the pool's HA timeout T (30 s with HA off). */
    deadAfter: duration.optional(),
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
  })
  .superRefine((t, ctx) => {
    // A verdict needs confirmSamples rounds, and a host is dead once both paths have been down for
    // deadAfter *and* suspect is confirmed: shorter than the confirmation, deadAfter would do nothing
    // (dead at the very round suspect is confirmed, never shown suspect). So at least one round more.
    const confirmation = t.sampleInterval * t.confirmSamples;
    if (t.deadAfter !== undefined && t.deadAfter < confirmation) {
      ctx.addIssue({
        code: 'custom',
        path: ['deadAfter'],
        message: `deadAfter must be at least sampleInterval × confirmSamples (${showMs(t.sampleInterval)} × ${t.confirmSamples} = ${showMs(confirmation)}), so that a host is suspect for a round before it is dead`,
      });
    }
    // The raw verdict changes at most once a round: a window shorter than flapThreshold rounds could
    // never hold flapThreshold changes, and flapping would never be seen.
    const flaps = t.sampleInterval * t.flapThreshold;
    if (t.flapWindow < flaps) {
      ctx.addIssue({
        code: 'custom',
        path: ['flapWindow'],
        message: `flapWindow must be at least sampleInterval × flapThreshold (${showMs(t.sampleInterval)} × ${t.flapThreshold} = ${showMs(flaps)}): the verdict changes at most once a round`,
      });
    }
  });

/** An XAPI URL: http(s), and no credentials in it (they would be shown wherever the URL is). */
const xapiUrl = z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).superRefine((u, ctx) => {
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    return; // reported by z.url
  }
  if (parsed.username !== '' || parsed.password !== '') {
    // The URL itself is not quoted: it holds a password.
    ctx.addIssue({
      code: 'custom',
      message:
        'credentials in a URL are refused (the URL is shown in logs and /api/v1/state): put the user in `user` and the password in passwordFile or passwordEnv',
    });
  }
});

const pool = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "." and "-" only (it becomes a label value)'),
    /** Every address the exporter may reach XAPI on, so it finds the master after a master change. */
    urls: z.array(xapiUrl).min(1),
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
    limits: limits.prefault({}),
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

/** `host:port` or `[ipv6]:port`, as parseListen takes it (the exporter's and the remediation service's). */
export const listenAddress = z.string().superRefine((l, ctx) => {
  try {
    parseListen(l);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

export const exporterConfig = z
  .strictObject({
    /** The exporter listens where parseListen says. */
    listen: listenAddress.default('127.0.0.1:9945'),
    pools: z.array(pool).min(1),
    /** The remediation service's section (remediation/config.ts): one file for both; the exporter does not read it. */
    remediation: z.unknown().optional(),
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

/** A password file holds one password: anything bigger is not one. */
export const MAX_PASSWORD_FILE_BYTES = 4096;

/**
 * The password in a file, refused as ssh refuses a private key: the file must be a regular file that
 * grants nothing to group and others (`chmod 600`), hold at most MAX_PASSWORD_FILE_BYTES and not be
 * empty. One trailing newline is dropped. Opened without blocking (a FIFO is refused, not waited on)
 * and checked on the descriptor that is read.
 */
function readPasswordFile(pool: string, path: string): string {
  const refuse = (why: string) => new ConfigError(`pool ${pool}: passwordFile ${path} ${why}`);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new ConfigError(`pool ${pool}: cannot read passwordFile ${path}: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse('is not a regular file');
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw refuse(`has mode ${mode}: a password file must grant nothing to group and others (chmod 600 ${path})`);
    }
    let read: { data: Buffer; over: boolean };
    try {
      read = readFdBounded(fd, MAX_PASSWORD_FILE_BYTES);
    } catch (e) {
      throw new ConfigError(`pool ${pool}: cannot read passwordFile ${path}: ${(e as Error).message}`);
    }
    if (read.over) throw refuse(`is over ${formatBytes(MAX_PASSWORD_FILE_BYTES)}: it must hold the password alone`);
    const password = read.data.toString('utf8').replace(/\r?\n$/, '');
    if (password === '') throw refuse('is empty');
    return password;
  } finally {
    closeSync(fd);
  }
}

/** The pool's password from its environment variable or file; a clear error when neither gives one. */
export function resolvePassword(p: PoolConfig, env: NodeJS.ProcessEnv = process.env): string {
  if (p.passwordEnv !== undefined) {
    const v = env[p.passwordEnv];
    if (v === undefined || v === '') throw new ConfigError(`pool ${p.name}: environment variable ${p.passwordEnv} is not set`);
    return v;
  }
  return readPasswordFile(p.name, p.passwordFile!);
}

/**
 * What the config names on this machine, checked at start-up (I/O; the schema is pure): every
 * storage-statefile device exists and is a block device or a file (the simulator's statefile) this
 * process may read, and every passwordFile passes resolvePassword's checks. Throws one ConfigError
 * listing every problem, each naming its pool.
 */
export function checkConfigPaths(config: ExporterConfig): void {
  const problems: string[] = [];
  for (const p of config.pools) {
    for (const d of p.probes['storage-statefile']?.devices ?? []) {
      const where = `pool ${p.name}: storage-statefile device of home ${d.home}:`;
      try {
        const st = statSync(d.path);
        if (!st.isBlockDevice() && !st.isFile()) {
          problems.push(`${where} ${d.path} is not a block device or a file`);
          continue;
        }
        closeSync(openSync(d.path, constants.O_RDONLY | constants.O_NONBLOCK));
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        problems.push(err.code === 'ENOENT' ? `${where} ${d.path} does not exist` : `${where} cannot read ${d.path}: ${err.message}`);
      }
    }
    if (p.passwordFile !== undefined) {
      try {
        resolvePassword(p);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems.join('\n'));
}
