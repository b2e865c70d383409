/**
 * What the executor reads and does on a pool, by UUID, through XapiActions (the actions account): the
 * pool's state as it is now (read before every step: nothing is done twice) and the few calls a
 * recovery makes. XAPI answers are checked with zod; a call's failure is xapi's own error
 * (XapiCallError with its code), which each step handles as real xapi returns it.
 */
import { z } from 'zod';
import { XapiCallError, type XapiActions } from '../io/xapi/actions.ts';

const ref = z.string();
const hostRec = z.looseObject({ uuid: z.string(), name_label: z.string(), address: z.string(), enabled: z.boolean(), metrics: ref });
const metricsRec = z.looseObject({ live: z.boolean() });
const vmRec = z.looseObject({
  uuid: z.string(),
  name_label: z.string(),
  power_state: z.enum(['Halted', 'Paused', 'Running', 'Suspended']),
  resident_on: ref,
  VBDs: z.array(ref),
  is_control_domain: z.boolean(),
});
const vbdRec = z.looseObject({ VM: ref, VDI: ref, type: z.string(), currently_attached: z.boolean() });

const NULL_REF = 'OpaqueRef:NULL';

export interface HostNow {
  ref: string;
  uuid: string;
  name: string;
  address: string;
  live: boolean;
  enabled: boolean;
}

export interface VmNow {
  ref: string;
  uuid: string;
  name: string;
  powerState: z.output<typeof vmRec>['power_state'];
  /** Host UUID, null when not resident. */
  residentOn: string | null;
  /** Live hosts (UUIDs) where another running VM has one of this VM's disks attached (empty when not asked). */
  disksInUseOn: string[];
}

function parse<T extends z.ZodType>(schema: T, method: string, value: unknown): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new XapiCallError(method, 'BAD_ANSWER', [r.error.issues[0]?.message ?? 'wrong shape']);
  return r.data;
}

/** The XAPI calls the actions make: XapiActions over HTTP, or the safety campaign's in-process pool. */
export type XapiCalls = Pick<XapiActions, 'call' | 'act' | 'slaveCall' | 'forgetMaster' | 'answersAsMaster' | 'close'>;

export class PoolActions {
  constructor(readonly xapi: XapiCalls) {}

  /** Every host with its liveness as the master's database says now. */
  async hosts(): Promise<Map<string, HostNow>> {
    const hosts = parse(z.record(z.string(), hostRec), 'host.get_all_records', await this.xapi.call('host.get_all_records'));
    const metrics = parse(
      z.record(z.string(), metricsRec),
      'host_metrics.get_all_records',
      await this.xapi.call('host_metrics.get_all_records'),
    );
    const out = new Map<string, HostNow>();
    for (const [r, h] of Object.entries(hosts))
      out.set(h.uuid, {
        ref: r,
        uuid: h.uuid,
        name: h.name_label,
        address: h.address,
        live: metrics[h.metrics]?.live === true,
        enabled: h.enabled,
      });
    return out;
  }

  /** The master's host UUID. */
  async master(): Promise<string> {
    const pools = parse(z.array(ref), 'pool.get_all', await this.xapi.call('pool.get_all'));
    const m = parse(ref, 'pool.get_master', await this.xapi.call('pool.get_master', pools[0]));
    return parse(z.string(), 'host.get_uuid', await this.xapi.call('host.get_uuid', m));
  }

  async vmRef(uuid: string): Promise<string | null> {
    try {
      return parse(ref, 'VM.get_by_uuid', await this.xapi.call('VM.get_by_uuid', uuid));
    } catch (e) {
      if (e instanceof XapiCallError && e.code === 'UUID_INVALID') return null;
      throw e;
    }
  }

  /**
   * The VM as it is now, and — when `disks` (before a start) — where else its disks are in use: that
   * takes a few calls per disk, which a reset does not need.
   */
  async vm(uuid: string, hosts: Map<string, HostNow>, disks = true): Promise<VmNow | null> {
    const r = await this.vmRef(uuid);
    if (r === null) return null;
    const v = parse(vmRec, 'VM.get_record', await this.xapi.call('VM.get_record', r));
    const hostByRef = new Map([...hosts.values()].map((h) => [h.ref, h]));
    const inUse = new Set<string>();
    for (const vbdRef of disks ? v.VBDs : []) {
      const vbd = parse(vbdRec, 'VBD.get_record', await this.xapi.call('VBD.get_record', vbdRef));
      if (vbd.type === 'CD' || vbd.VDI === NULL_REF) continue;
      const others = parse(z.array(ref), 'VDI.get_VBDs', await this.xapi.call('VDI.get_VBDs', vbd.VDI));
      for (const o of others) {
        if (o === vbdRef) continue;
        const ov = parse(vbdRec, 'VBD.get_record', await this.xapi.call('VBD.get_record', o));
        if (!ov.currently_attached || ov.VM === r) continue;
        const other = parse(vmRec, 'VM.get_record', await this.xapi.call('VM.get_record', ov.VM));
        const h = hostByRef.get(other.resident_on);
        if (other.power_state !== 'Halted' && h?.live) inUse.add(h.uuid);
      }
    }
    return {
      ref: r,
      uuid: v.uuid,
      name: v.name_label,
      powerState: v.power_state,
      residentOn: v.resident_on === NULL_REF ? null : (hostByRef.get(v.resident_on)?.uuid ?? null),
      disksInUseOn: [...inUse],
    };
  }

  async resetPowerState(vmRef: string): Promise<void> {
    await this.xapi.act('VM.power_state_reset', vmRef);
  }

  async startOn(vmRef: string, hostRef: string): Promise<void> {
    await this.xapi.act('VM.start_on', vmRef, hostRef, false, false);
  }

  /** On the chosen slave itself: it becomes the master (HA off only; xapi refuses with HA on). */
  async transitionToMaster(address: string): Promise<void> {
    await this.xapi.slaveCall(address, 'pool.emergency_transition_to_master');
    this.xapi.forgetMaster();
  }

  /** On another slave: follow the new master at `masterAddress`. */
  async resetMaster(slaveAddress: string, masterAddress: string): Promise<void> {
    await this.xapi.slaveCall(slaveAddress, 'pool.emergency_reset_master', masterAddress);
  }
}
