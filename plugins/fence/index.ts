/**
 * Every fence plugin xenha has, by the name a config uses: one explicit map. Adding a plugin is one
 * file and one line here; nothing else names a plugin. A host's fence config is derived from the map:
 *
 *   fence:
 *     levels:
 *       - plugin: fence-agent
 *         options: { agent: /usr/sbin/fence_ipmilan, args: { ip: 10.0.0.5, username: admin, lanplus: 1 }, passwordFile: /etc/xenha/bmc-01 }
 *       - plugin: manual
 */
import { z } from 'zod';
import type { FenceDevice, FenceDeps, FencePluginDefinition, FenceTarget } from './contract.ts';
import type { FenceLevel } from './fence.ts';
import { fenceAgent } from './fence-agent.ts';
import { manual } from './manual.ts';

export const FENCE_PLUGINS = {
  'fence-agent': fenceAgent,
  manual,
} as const;

export type FencePluginName = keyof typeof FENCE_PLUGINS;
export const FENCE_PLUGIN_NAMES = Object.keys(FENCE_PLUGINS).sort() as FencePluginName[];

type OptionsSchema<K extends FencePluginName> = (typeof FENCE_PLUGINS)[K]['options'];
/** The definitions with each one's own options type kept apart (no union of them). */
const DEFINITIONS: { [K in FencePluginName]: FencePluginDefinition<OptionsSchema<K>> } = FENCE_PLUGINS;

/** One level's config: `plugin:` names the plugin, `options:` are its own (omitted or null: its defaults). */
type LevelSchema<K extends FencePluginName> = z.ZodObject<
  { plugin: z.ZodLiteral<K>; options: z.ZodPreprocess<OptionsSchema<K>> },
  z.core.$strict
>;
type AnyLevelSchema = { [K in FencePluginName]: LevelSchema<K> }[FencePluginName];

function levelSchema<K extends FencePluginName>(name: K): LevelSchema<K> {
  return z.strictObject({ plugin: z.literal(name), options: z.preprocess((v) => v ?? {}, DEFINITIONS[name].options) });
}

const levelSchemas = Object.values(
  Object.fromEntries(FENCE_PLUGIN_NAMES.map((n) => [n, levelSchema(n)])) as { [K in FencePluginName]: LevelSchema<K> },
);

/** One level of a host's fencing topology, discriminated on `plugin`. */
export const fenceLevelConfig = z.discriminatedUnion('plugin', levelSchemas as [AnyLevelSchema, ...AnyLevelSchema[]], {
  error: (iss) =>
    iss.code === 'invalid_union' && iss.note === 'No matching discriminator'
      ? `unknown fence plugin (available: ${FENCE_PLUGIN_NAMES.join(', ')})`
      : undefined,
});
export type FenceLevelConfig = z.output<typeof fenceLevelConfig>;

/** A host's fencing: its levels (1 to 4), tried in order until one proves the host off. */
export const fenceConfig = z.strictObject({
  levels: z.array(fenceLevelConfig).min(1, 'at least one fence level').max(4, 'at most 4 fence levels'),
});
export type FenceConfig = z.output<typeof fenceConfig>;

/** A level's config for one plugin (the config's union, seen one plugin at a time). */
type LevelOf<K extends FencePluginName> = { plugin: K; options: z.output<OptionsSchema<K>> };

/** The device one configured level describes, for one host. */
export function createFenceDevice<K extends FencePluginName>(level: LevelOf<K>, target: FenceTarget, deps: FenceDeps): FenceDevice {
  return DEFINITIONS[level.plugin].create(level.options, target, deps);
}

/** A host's levels, ready for fenceHost. */
export function createFenceLevels(config: FenceConfig, target: FenceTarget, deps: FenceDeps): FenceLevel[] {
  return config.levels.map((level) => ({ plugin: level.plugin, device: createFenceDevice(level, target, deps) }));
}

export type {
  ActionAnswer,
  FenceAcks,
  FenceDeps,
  FenceDevice,
  FenceOutcome,
  FencePluginDefinition,
  FenceTarget,
  FencedOutcome,
  PowerState,
  StatusAnswer,
} from './contract.ts';
export { FENCED_OUTCOMES, defineFencePlugin, isFenced } from './contract.ts';
export { DEFAULT_POLL_MS, DEFAULT_POWER_TIMEOUT_MS, fenceHost, sleepFor } from './fence.ts';
export type { FenceAttempt, FenceHostOptions, FenceLevel, FenceResult } from './fence.ts';
