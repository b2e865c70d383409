/**
 * Every probe xenha has, by the name a config uses: one explicit map, as blackbox_exporter's prober
 * map. Adding a probe is one file and one line here; nothing else names a probe.
 */
import { z } from 'zod';
import type { EvidenceSource, PathName } from '../../core/classify/state-machine.ts';
import type { Probe, ProbeDefinition, ProbeDeps, SeriesDefinition } from './contract.ts';
import { networkTcp } from './network-tcp.ts';
import { networkXapi } from './network-xapi.ts';
import { storageStatefile } from './storage-statefile.ts';
import { storageXapi } from './storage-xapi.ts';

export const PROBES = {
  'network-tcp': networkTcp,
  'network-xapi': networkXapi,
  'storage-xapi': storageXapi,
  'storage-statefile': storageStatefile,
} as const;

export type ProbeName = keyof typeof PROBES;
export const PROBE_NAMES = Object.keys(PROBES).sort() as ProbeName[];

type OptionsSchema<K extends ProbeName> = (typeof PROBES)[K]['options'];
type SeriesName<K extends ProbeName> = keyof (typeof PROBES)[K]['series'] & string;
/** The definitions with each one's own options and series types kept apart (no union of them). */
const DEFINITIONS: { [K in ProbeName]: ProbeDefinition<OptionsSchema<K>, SeriesName<K>> } = PROBES;

const probesShape = Object.fromEntries(PROBE_NAMES.map((n) => [n, PROBES[n].options.optional()])) as {
  [K in ProbeName]: z.ZodOptional<OptionsSchema<K>>;
};

/**
 * The `probes:` key of a pool in the config: each enabled probe by name, with its own options;
 * `name:` alone (YAML null) enables a probe with its defaults.
 */
export const probesConfig = z.preprocess(
  (v) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).map(([k, o]) => [k, o ?? {}])) : v,
  z.strictObject(probesShape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys'
        ? `unknown probe ${iss.keys.map((k) => `"${k}"`).join(', ')} (available: ${PROBE_NAMES.join(', ')})`
        : undefined,
  }),
);
export type ProbesConfig = z.output<typeof probesConfig>;

/** The probes a pool runs when its config names none. */
export const DEFAULT_PROBES: ProbesConfig = probesConfig.parse(
  Object.fromEntries(PROBE_NAMES.filter((n) => PROBES[n].enabledByDefault).map((n) => [n, {}])),
);

/** The names of the probes that watch a path. */
export function probesOnPath(path: PathName): ProbeName[] {
  return PROBE_NAMES.filter((n) => PROBES[n].path === path);
}

/** A probe made from its config, with what the sampler and the metrics need to know of it. */
export interface ConfiguredProbe {
  name: string;
  path: PathName;
  observerSide: boolean;
  source: EvidenceSource;
  storageHeartbeat: boolean;
  series: Readonly<Record<string, SeriesDefinition>>;
  probe: Probe;
}

function configure<K extends ProbeName>(name: K, options: z.output<OptionsSchema<K>>, deps: ProbeDeps): ConfiguredProbe {
  const def = DEFINITIONS[name];
  return {
    name,
    path: def.path,
    observerSide: def.observerSide,
    source: def.source,
    storageHeartbeat: def.storageHeartbeat ?? false,
    series: def.series,
    probe: def.create(options, deps),
  };
}

/** Every probe the config enables, in a stable order. */
export function createProbes(config: ProbesConfig, deps: ProbeDeps): ConfiguredProbe[] {
  return PROBE_NAMES.flatMap((name) => {
    const options = config[name];
    return options === undefined ? [] : [configure(name, options, deps)];
  });
}

export type { Probe, ProbeDefinition, ProbeDeps, ProbeIo, ProbeRound, SampleExtra, SeriesDefinition } from './contract.ts';
export type { StorageHeartbeatKind, StorageHeartbeatRead, XenhaHeartbeatView } from '../../core/preflight.ts';
