/**
 * The simulated pool's description: generated from a seed or loaded from YAML (docs/simulator.md).
 * Validated with zod; errors name the key and, for YAML files, the line.
 */
import { z } from 'zod';
import { parseYaml, ConfigError } from '../core/config/yaml.ts';
import { loadYamlFile } from '../io/config-file.ts';
import { xoroshiro128plus, unsafeUniformIntDistribution, type RandomGenerator } from 'pure-rand';

const UNITS: Record<string, number> = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };

/** A size in bytes: an integer, or a string like "16GiB" / "512 MiB". */
export const byteSize = z.union(
  [
    z.number().int().nonnegative(),
    z
      .string()
      .regex(/^\d+(\.\d+)?\s*(B|KiB|MiB|GiB|TiB)$/, 'expected bytes or a size like "16GiB"')
      .transform((s) => {
        const m = /^(\d+(?:\.\d+)?)\s*(\w+)$/.exec(s)!;
        return Math.round(Number(m[1]) * UNITS[m[2]!]!);
      }),
  ],
  { error: 'expected a size: bytes as an integer, or a string like "16GiB" (B, KiB, MiB, GiB, TiB)' },
);

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'expected a lower-case UUID');

export const hostSpec = z.strictObject({
  name: z.string().min(1),
  uuid: uuid.optional(),
  memory: byteSize,
  /** Memory Xen and the host keep for themselves (host.memory_overhead). */
  memoryOverhead: byteSize.default(512 * 2 ** 20),
  /** dom0's memory (the control domain VM). */
  dom0Memory: byteSize.default(4 * 2 ** 30),
  haLicensed: z.boolean().default(true),
  ipConfiguration: z.enum(['Static', 'DHCP']).default('Static'),
});

export const vmSpec = z.strictObject({
  name: z.string().min(1),
  uuid: uuid.optional(),
  memory: byteSize,
  /** Resident host by name; absent = Halted. */
  host: z.string().optional(),
  haRestartPriority: z.enum(['restart', 'best-effort', '']).default(''),
  haAlwaysRun: z.boolean().optional(),
  order: z.number().int().default(0),
  startDelay: z.number().int().nonnegative().default(0),
  /** The VM's disk is on its host's local SR, so it cannot start anywhere else. */
  localStorage: z.boolean().default(false),
});

export const poolSpec = z
  .strictObject({
    name: z.string().min(1).default('xenha-sim'),
    uuid: uuid.optional(),
    haEnabled: z.boolean().default(true),
    /** HA timeout T in seconds (ha_configuration.timeout); xapi derives every xhad timer from it. */
    haTimeout: z.number().int().min(10).default(30),
    hostFailuresToTolerate: z.number().int().min(0).default(1),
    allowOvercommit: z.boolean().default(false),
    heartbeatSr: z
      .strictObject({
        name: z.string().default('HA heartbeat'),
        /** SR type: lvmoiscsi, lvmohba, nfs, gfs2, and the old vendor adapters netapp / equal (NetApp, EqualLogic). */
        type: z.string().default('lvmoiscsi'),
        shared: z.boolean().default(true),
        statefileSize: byteSize.default(4 * 2 ** 20),
        metadataSize: byteSize.default(256 * 2 ** 20),
      })
      .prefault({}),
    hosts: z.array(hostSpec).min(1).max(64),
    vms: z.array(vmSpec).default([]),
  })
  .superRefine((p, ctx) => {
    const names = new Set<string>();
    p.hosts.forEach((h, i) => {
      if (names.has(h.name)) ctx.addIssue({ code: 'custom', path: ['hosts', i, 'name'], message: `duplicate host name ${h.name}` });
      names.add(h.name);
    });
    const vmNames = new Set<string>();
    p.vms.forEach((v, i) => {
      if (vmNames.has(v.name)) ctx.addIssue({ code: 'custom', path: ['vms', i, 'name'], message: `duplicate VM name ${v.name}` });
      vmNames.add(v.name);
      if (v.host !== undefined && !names.has(v.host))
        ctx.addIssue({ code: 'custom', path: ['vms', i, 'host'], message: `no host named ${v.host}` });
      if (v.localStorage && v.host === undefined)
        ctx.addIssue({ code: 'custom', path: ['vms', i, 'localStorage'], message: 'a VM on local storage needs a host' });
    });
  });

export type PoolSpec = z.output<typeof poolSpec>;
export type PoolSpecInput = z.input<typeof poolSpec>;
export type HostSpec = PoolSpec['hosts'][number];
export type VmSpec = PoolSpec['vms'][number];

export { ConfigError as SpecError } from '../core/config/yaml.ts';

/** Parses and validates a YAML pool file. Errors name the key path and the line. */
export function parsePoolSpecYaml(text: string, source = 'pool file'): PoolSpec {
  return parseYaml(poolSpec, text, source);
}

export function loadPoolSpecFile(path: string): PoolSpec {
  return loadYamlFile(poolSpec, path);
}

// ---------------------------------------------------------------- seeded generation

export interface GenerateOptions {
  hosts: number;
  vms: number;
  seed: number;
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** A VM's memory_overhead (shadow and device model memory), about 1 % of its memory, whole MiB. */
export function vmMemoryOverhead(memory: number): number {
  return Math.ceil(memory / 100 / MiB) * MiB;
}

/** A deterministic UUID (version-4 shaped) from the generator. */
export function seededUuid(rng: RandomGenerator): string {
  const hex = Array.from({ length: 32 }, () => unsafeUniformIntDistribution(0, 15, rng).toString(16));
  hex[12] = '4';
  hex[16] = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  const s = hex.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

function pick<T>(rng: RandomGenerator, items: readonly T[]): T {
  return items[unsafeUniformIntDistribution(0, items.length - 1, rng)]!;
}

/**
 * A pool drawn from a seed: host memory from {64, 128, 256} GiB, VM sizes from 1–32 GiB (small ones
 * likelier), HA priorities restart / best-effort / none, orders 0–3, start delays 0–10 s, about one VM
 * in ten on local storage. VMs are placed first-fit in a shuffled host order within free memory;
 * a VM that fits nowhere stays Halted. The same seed gives the same pool, UUIDs included.
 */
export function generatePoolSpec({ hosts, vms, seed }: GenerateOptions): PoolSpec {
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > 64) throw new ConfigError(`--hosts must be 1..64, got ${hosts}`);
  if (!Number.isInteger(vms) || vms < 0 || vms > 10_000) throw new ConfigError(`--vms must be 0..10000, got ${vms}`);
  const rng = xoroshiro128plus(seed);
  const hostSpecs = Array.from({ length: hosts }, (_, i) => ({
    name: `host-${String(i + 1).padStart(2, '0')}`,
    uuid: seededUuid(rng),
    memory: pick(rng, [64, 128, 256]) * GiB,
  }));
  const free = new Map(hostSpecs.map((h) => [h.name, h.memory - 512 * MiB - 4 * GiB - vmMemoryOverhead(4 * GiB)]));
  const sizes = [1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 16, 32];
  const priorities = ['restart', 'restart', 'best-effort', ''] as const;
  const vmSpecs = Array.from({ length: vms }, (_, i) => {
    const memory = pick(rng, sizes) * GiB;
    const order = unsafeUniformIntDistribution(0, 3, rng);
    const startDelay = unsafeUniformIntDistribution(0, 10, rng);
    const haRestartPriority = pick(rng, priorities);
    const localStorage = unsafeUniformIntDistribution(0, 9, rng) === 0;
    const start = unsafeUniformIntDistribution(0, hosts - 1, rng);
    let host: string | undefined;
    for (let k = 0; k < hosts; k++) {
      const h = hostSpecs[(start + k) % hosts]!;
      const need = memory + vmMemoryOverhead(memory);
      if (free.get(h.name)! >= need) {
        host = h.name;
        free.set(h.name, free.get(h.name)! - need);
        break;
      }
    }
    return {
      name: `vm-${String(i + 1).padStart(4, '0')}`,
      uuid: seededUuid(rng),
      memory,
      host,
      haRestartPriority,
      order,
      startDelay,
      localStorage: localStorage && host !== undefined,
    };
  });
  return poolSpec.parse({ name: `sim-${seed}`, uuid: seededUuid(rng), hosts: hostSpecs, vms: vmSpecs });
}
