/**
 * XAPI records as xenha uses them, with XAPI's own field names and types (ocaml/idl/datamodel_*.ml).
 * One source of truth: the simulator stores these records, the exporter validates what a pool answers
 * with the same schemas. Schemas are loose (a real XAPI record has many more fields; they are kept,
 * not rejected), and every field xenha reads is required and typed.
 *
 * Wire types: XAPI `int` is int64 — JSON-RPC sends a number, XML-RPC a string — so ints accept both and
 * come out as numbers. Refs are `OpaqueRef:<uuid>`, the null ref `OpaqueRef:NULL`.
 */
import { z } from 'zod';

export const NULL_REF = 'OpaqueRef:NULL';

export const xapiRef = z.string().regex(/^OpaqueRef:/, 'expected an OpaqueRef');
export const xapiInt = z.union([
  z.number().int(),
  z
    .string()
    .regex(/^-?\d+$/)
    .transform(Number),
]);
export const stringMap = z.record(z.string(), z.string());

export const poolRecord = z.looseObject({
  uuid: z.string(),
  name_label: z.string(),
  master: xapiRef,
  ha_enabled: z.boolean(),
  ha_configuration: stringMap,
  ha_statefiles: z.array(z.string()),
  ha_host_failures_to_tolerate: xapiInt,
  ha_plan_exists_for: xapiInt,
  ha_allow_overcommit: z.boolean(),
  ha_overcommitted: z.boolean(),
  ha_cluster_stack: z.string(),
  other_config: stringMap,
});

export const hostRecord = z.looseObject({
  uuid: z.string(),
  name_label: z.string(),
  address: z.string(),
  enabled: z.boolean(),
  memory_overhead: xapiInt,
  metrics: xapiRef,
  ha_statefiles: z.array(z.string()),
  ha_network_peers: z.array(z.string()),
  /** Licence restrictions; `restrict_pool_attached_storage`-style keys, HA is `restrict_ha` = "false" when licensed. */
  license_params: stringMap,
  edition: z.string(),
  PIFs: z.array(xapiRef),
  PBDs: z.array(xapiRef),
  resident_VMs: z.array(xapiRef),
  power_on_mode: z.string(),
  power_on_config: stringMap,
  other_config: stringMap,
});

export const hostMetricsRecord = z.looseObject({
  uuid: z.string(),
  live: z.boolean(),
  memory_total: xapiInt,
  memory_free: xapiInt,
});

export const vmPowerState = z.enum(['Halted', 'Paused', 'Running', 'Suspended']);
export const haRestartPriority = z.enum(['restart', 'best-effort', '']);

export const vmRecord = z.looseObject({
  uuid: z.string(),
  name_label: z.string(),
  power_state: vmPowerState,
  resident_on: xapiRef,
  affinity: xapiRef,
  ha_restart_priority: haRestartPriority,
  ha_always_run: z.boolean(),
  order: xapiInt,
  start_delay: xapiInt,
  memory_static_max: xapiInt,
  memory_static_min: xapiInt,
  memory_dynamic_max: xapiInt,
  memory_dynamic_min: xapiInt,
  memory_overhead: xapiInt,
  is_control_domain: z.boolean(),
  is_a_template: z.boolean(),
  is_a_snapshot: z.boolean(),
  VBDs: z.array(xapiRef),
  other_config: stringMap,
});

export const srRecord = z.looseObject({
  uuid: z.string(),
  name_label: z.string(),
  type: z.string(),
  shared: z.boolean(),
  PBDs: z.array(xapiRef),
  VDIs: z.array(xapiRef),
  physical_size: xapiInt,
  sm_config: stringMap,
  other_config: stringMap,
});

export const pbdRecord = z.looseObject({
  uuid: z.string(),
  host: xapiRef,
  SR: xapiRef,
  currently_attached: z.boolean(),
  device_config: stringMap,
  other_config: stringMap,
});

export const vdiRecord = z.looseObject({
  uuid: z.string(),
  name_label: z.string(),
  SR: xapiRef,
  virtual_size: xapiInt,
  type: z.string(),
  sharable: z.boolean(),
  other_config: stringMap,
});

export const vbdRecord = z.looseObject({
  uuid: z.string(),
  VM: xapiRef,
  VDI: xapiRef,
  currently_attached: z.boolean(),
});

export const pifRecord = z.looseObject({
  uuid: z.string(),
  device: z.string(),
  host: xapiRef,
  network: xapiRef,
  management: z.boolean(),
  ip_configuration_mode: z.enum(['None', 'DHCP', 'Static']),
  IP: z.string(),
  netmask: z.string(),
  gateway: z.string(),
  currently_attached: z.boolean(),
  other_config: stringMap,
});

export const networkRecord = z.looseObject({
  uuid: z.string(),
  name_label: z.string(),
  PIFs: z.array(xapiRef),
  bridge: z.string(),
  other_config: stringMap,
});

export type PoolRecord = z.output<typeof poolRecord>;
export type HostRecord = z.output<typeof hostRecord>;
export type HostMetricsRecord = z.output<typeof hostMetricsRecord>;
export type VmRecord = z.output<typeof vmRecord>;
export type SrRecord = z.output<typeof srRecord>;
export type PbdRecord = z.output<typeof pbdRecord>;
export type VdiRecord = z.output<typeof vdiRecord>;
export type PifRecord = z.output<typeof pifRecord>;
export type VbdRecord = z.output<typeof vbdRecord>;
export type NetworkRecord = z.output<typeof networkRecord>;
export type VmPowerState = z.output<typeof vmPowerState>;
export type HaRestartPriority = z.output<typeof haRestartPriority>;

/** The record schema of each class xenha reads, by XAPI class name. */
export const recordSchemas = {
  pool: poolRecord,
  host: hostRecord,
  host_metrics: hostMetricsRecord,
  VM: vmRecord,
  SR: srRecord,
  PBD: pbdRecord,
  VDI: vdiRecord,
  PIF: pifRecord,
  VBD: vbdRecord,
  network: networkRecord,
} as const;

export type XapiClass = keyof typeof recordSchemas;
