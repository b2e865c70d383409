/**
 * The planner's input: a pool snapshot as JSON (documented in docs/planner.md, published as a JSON
 * Schema generated from this zod schema, docs/schema/planner-snapshot.schema.json).
 *
 * Memory, defined once, following xapi's planner (xapi_ha_vm_failover.ml): a VM needs
 * `memory_static_max + memory_overhead` to start (its `memoryNeed`); a host offers
 * `memory_total − host memory_overhead − Σ memoryNeed of every VM resident and not Halted`
 * (its control domain included) — as if every VM used its static maximum.
 */
import { z } from 'zod';
import { HOST_STATES } from '../classify/state-machine.ts';
import type { PoolSnapshot } from '../model/snapshot.ts';

const bytes = z.number().int().nonnegative();
/** A UUID (or any host or VM id a snapshot uses): XAPI's are 36 characters. */
const id = z.string().min(1).max(128);
/** Characters of a name (a name_label: only shown, so a live pool's longer one is cut, see fromPoolSnapshot). */
export const MAX_NAME_CHARS = 1024;
const name = z.string().min(1).max(MAX_NAME_CHARS);

/** VMs in one snapshot: a large pool runs a few thousand. */
export const MAX_SNAPSHOT_VMS = 100_000;
/** Hosts in one pool: XAPI's limit. */
export const MAX_SNAPSHOT_HOSTS = 64;

export const plannerHost = z.strictObject({
  uuid: id,
  name,
  live: z.boolean(),
  enabled: z.boolean(),
  memoryTotal: bytes,
  memoryOverhead: bytes,
  /** The exporter's classification; absent = derived from `live` (live → healthy, else dead). */
  state: z.enum(HOST_STATES).optional(),
  /** Whether any sample of either path says the host is alive (a fence gate checks it again). */
  anyPathUp: z.boolean().optional(),
  /** Already powered off by a fence agent. */
  fenced: z.boolean().default(false),
});

export const plannerVm = z.strictObject({
  uuid: id,
  name,
  powerState: z.enum(['Halted', 'Paused', 'Running', 'Suspended']),
  /** Host UUID, or null when not resident. */
  residentOn: id.nullable(),
  haRestartPriority: z.enum(['restart', 'best-effort', '']),
  order: z.number().int().default(0),
  startDelay: z.number().int().nonnegative().default(0),
  memoryNeed: bytes,
  /** Host UUID the VM is tied to by a disk on a host-local SR, or null. */
  pinnedTo: id.nullable().default(null),
  isControlDomain: z.boolean().default(false),
});

export const plannerSnapshot = z
  .strictObject({
    pool: z.strictObject({
      name,
      /** UUID of the master host. */
      master: id,
      haEnabled: z.boolean(),
      /** The configured number of host failures to tolerate. */
      hostFailuresToTolerate: z.number().int().nonnegative(),
    }),
    hosts: z.array(plannerHost).min(1).max(MAX_SNAPSHOT_HOSTS),
    vms: z.array(plannerVm).max(MAX_SNAPSHOT_VMS),
  })
  .superRefine((s, ctx) => {
    // UUIDs identify hosts and VMs everywhere (placements, plan steps): two with one UUID would be
    // placed, started and counted twice. Host names may repeat (XAPI allows it): the CLI refuses an
    // ambiguous name instead.
    const uuids = new Set<string>();
    s.hosts.forEach((h, i) => {
      if (uuids.has(h.uuid)) ctx.addIssue({ code: 'custom', path: ['hosts', i, 'uuid'], message: `duplicate host UUID ${h.uuid}` });
      uuids.add(h.uuid);
    });
    const vmUuids = new Set<string>();
    s.vms.forEach((v, i) => {
      if (vmUuids.has(v.uuid)) ctx.addIssue({ code: 'custom', path: ['vms', i, 'uuid'], message: `duplicate VM UUID ${v.uuid}` });
      vmUuids.add(v.uuid);
    });
    if (!uuids.has(s.pool.master))
      ctx.addIssue({ code: 'custom', path: ['pool', 'master'], message: `no host with UUID ${s.pool.master}` });
    s.vms.forEach((v, i) => {
      if (v.residentOn !== null && !uuids.has(v.residentOn))
        ctx.addIssue({ code: 'custom', path: ['vms', i, 'residentOn'], message: `no host with UUID ${v.residentOn}` });
      if (v.pinnedTo !== null && !uuids.has(v.pinnedTo))
        ctx.addIssue({ code: 'custom', path: ['vms', i, 'pinnedTo'], message: `no host with UUID ${v.pinnedTo}` });
    });
  });

export type PlannerSnapshot = z.output<typeof plannerSnapshot>;
export type PlannerSnapshotInput = z.input<typeof plannerSnapshot>;
export type PlannerHost = PlannerSnapshot['hosts'][number];
export type PlannerVm = PlannerSnapshot['vms'][number];

export function jsonSchema(): unknown {
  return z.toJSONSchema(plannerSnapshot, { io: 'input' });
}

/** A VM that runs (and so holds memory) on its host. */
export function isResident(v: PlannerVm): boolean {
  return v.residentOn !== null && v.powerState !== 'Halted';
}

/** A VM HA restarts: priority "restart", running, not a control domain. */
export function isProtected(v: PlannerVm): boolean {
  return v.haRestartPriority === 'restart' && isResident(v) && !v.isControlDomain;
}

/** Free memory per host UUID, xapi's way (see the file comment). */
export function hostFree(s: PlannerSnapshot): Map<string, number> {
  const free = new Map(s.hosts.map((h) => [h.uuid, h.memoryTotal - h.memoryOverhead]));
  for (const v of s.vms) if (isResident(v)) free.set(v.residentOn!, (free.get(v.residentOn!) ?? 0) - v.memoryNeed);
  return free;
}

/** The host's classification, or, without one, what `live` says (live → healthy, else dead). */
export function stateOf(h: PlannerHost): NonNullable<PlannerHost['state']> {
  return h.state ?? (h.live ? 'healthy' : 'dead');
}

/** A host that can take VMs: live and enabled, and not classified dead. */
export function canHost(h: PlannerHost): boolean {
  return h.live && h.enabled && !h.fenced && h.state !== 'dead';
}

/** Converts the exporter's snapshot (refs) to the planner's (UUIDs), with the hosts' states. */
export function fromPoolSnapshot(
  s: PoolSnapshot,
  states: Record<string, { state: PlannerHost['state']; anyPathUp: boolean }> = {},
): PlannerSnapshot {
  const uuidOf = new Map(s.hosts.map((h) => [h.ref, h.uuid]));
  return plannerSnapshot.parse({
    pool: {
      name: s.name.slice(0, MAX_NAME_CHARS),
      master: uuidOf.get(s.masterRef) ?? s.hosts[0]?.uuid,
      haEnabled: s.haEnabled,
      hostFailuresToTolerate: s.haHostFailuresToTolerate,
    },
    hosts: s.hosts.map((h) => ({
      uuid: h.uuid,
      name: h.name.slice(0, MAX_NAME_CHARS),
      live: h.live ?? false,
      enabled: h.enabled,
      memoryTotal: h.memoryTotal ?? 0,
      memoryOverhead: h.memoryOverhead,
      ...(states[h.uuid] ? { state: states[h.uuid]!.state, anyPathUp: states[h.uuid]!.anyPathUp } : {}),
    })),
    vms: s.vms
      .filter((v) => v.residentOn === null || uuidOf.has(v.residentOn))
      .map((v) => ({
        uuid: v.uuid,
        name: v.name.slice(0, MAX_NAME_CHARS),
        powerState: v.powerState,
        residentOn: v.residentOn ? uuidOf.get(v.residentOn)! : null,
        haRestartPriority: v.haRestartPriority,
        order: v.order,
        startDelay: v.startDelay,
        memoryNeed: v.memoryNeed,
        pinnedTo: v.pinnedTo ? (uuidOf.get(v.pinnedTo) ?? null) : null,
        isControlDomain: v.isControlDomain,
      })),
  });
}
