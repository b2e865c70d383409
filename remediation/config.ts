/**
 * The remediation service's config: the exporter's file (its pools, probes and timing: the service
 * watches each pool itself, as the exporter does) plus a `remediation:` section, validated with zod
 * (errors name the key and the line). See docs/remediation.md for every key. Secrets come from files
 * or environment variables, never inline: the webhook's bearer token, the actions account's password,
 * the fence agents' passwords.
 */
import { z } from 'zod';
import { DEFAULT_FENCE_POLICY } from '../core/planner/fence-policy.ts';
import { parseYaml } from '../core/config/yaml.ts';
import { duration, exporterConfig, listenAddress, size } from '../exporter/config.ts';
import { loadYamlFile } from '../io/config-file.ts';
import { fenceConfig } from '../plugins/fence/index.ts';
import { MODES } from './records.ts';

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');

/** The XAPI account remediation acts with: it must be allowed to start VMs and transition the master (docs). */
const actionsAccount = z
  .strictObject({
    user: z.string().min(1),
    passwordEnv: envName.optional(),
    passwordFile: z.string().min(1).optional(),
  })
  .refine((a) => (a.passwordEnv === undefined) !== (a.passwordFile === undefined), {
    error: 'set exactly one of passwordEnv and passwordFile (no inline passwords)',
    path: ['passwordEnv'],
  });

const poolRemediation = z.strictObject({
  /** The account for actions; absent: the pool's own account (which must then be allowed to act). */
  actions: actionsAccount.optional(),
  fence: z
    .strictObject({
      /** Levels for hosts not listed in `hosts`. */
      default: fenceConfig.optional(),
      /** Per host, by name_label or UUID. */
      hosts: z.record(z.string().min(1), fenceConfig).default({}),
    })
    .prefault({}),
});

const fencePolicy = z
  .strictObject({
    quorumFraction: z.number().gt(0).max(1).default(DEFAULT_FENCE_POLICY.quorumFraction),
    overrideQuorum: z.boolean().default(false),
    maxConcurrentFences: z.number().int().min(1).max(64).default(DEFAULT_FENCE_POLICY.maxConcurrentFences),
    maxFencesInWindow: z.number().int().min(1).max(1000).default(DEFAULT_FENCE_POLICY.maxFencesInWindow),
    fenceWindow: duration.default(DEFAULT_FENCE_POLICY.fenceWindowMs),
    cooldown: duration.default(DEFAULT_FENCE_POLICY.cooldownMs),
  })
  .prefault({});

export const remediationSection = z
  .strictObject({
    listen: listenAddress.default('127.0.0.1:9946'),
    /** dry-run (default): plans are made, journaled and shown; nothing is done. */
    mode: z.enum(MODES).default('dry-run'),
    /** The webhook's bearer token, from a file (chmod 600) or an environment variable; never inline. */
    tokenFile: z.string().min(1).optional(),
    tokenEnv: envName.optional(),
    /** The append-only journal (JSON lines): decisions, plans and steps; the service resumes from it. */
    journal: z.string().min(1),
    /** After start, act on nothing for this long (the service's own view of the pools forms first). */
    quietPeriod: duration.default(60_000),
    /** The largest webhook body accepted. */
    bodyLimit: size.default(2 ** 20).refine((b) => b >= 1024 && b <= 64 * 2 ** 20, { error: 'between 1KiB and 64MiB' }),
    fencePolicy,
    /** How long a fence device's status may take to answer off after `off`, and how often it is asked. */
    powerTimeout: duration.default(60_000),
    powerPoll: duration.default(1000),
    /** Per pool (by its name in `pools`): the actions account and the fence levels of its hosts. */
    pools: z.record(z.string(), poolRemediation).default({}),
  })
  .refine((r) => (r.tokenFile === undefined) !== (r.tokenEnv === undefined), {
    error: 'set exactly one of tokenFile and tokenEnv (the webhook token is never inline)',
    path: ['tokenFile'],
  })
  .refine((r) => r.powerPoll >= 100 && r.powerPoll < r.powerTimeout, {
    error: 'powerPoll must be at least 100ms and shorter than powerTimeout',
    path: ['powerPoll'],
  });

export const remediationConfig = exporterConfig.safeExtend({ remediation: remediationSection }).superRefine((c, ctx) => {
  const names = new Set(c.pools.map((p) => p.name));
  for (const name of Object.keys(c.remediation.pools))
    if (!names.has(name))
      ctx.addIssue({
        code: 'custom',
        path: ['remediation', 'pools', name],
        message: `no pool named ${name} in pools (${[...names].join(', ')})`,
      });
});

export type RemediationConfig = z.output<typeof remediationConfig>;
export type RemediationSection = RemediationConfig['remediation'];
export type PoolRemediation = z.output<typeof poolRemediation>;

export function parseRemediationConfig(text: string, source = 'config'): RemediationConfig {
  return parseYaml(remediationConfig, text, source);
}

export function loadRemediationConfig(path: string): RemediationConfig {
  return loadYamlFile(remediationConfig, path);
}
