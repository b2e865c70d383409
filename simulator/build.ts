/**
 * Turns a pool spec into XAPI records: the pool, hosts with their metrics, two management PIFs each
 * (the two network homes), dom0s, the heartbeat SR with its statefile and redo-log VDIs, a shared VM SR,
 * one local SR per host, and the VMs with their disks.
 */
import { XapiDatabase, type XapiRecordData } from './xapi/database.ts';
import { NULL_REF } from '../core/model/xapi-records.ts';
import { vmMemoryOverhead, type PoolSpec } from './pool-spec.ts';
import { randomUUID } from 'node:crypto';

/** Every class the simulator serves (get_all_records, events). `task` is served empty. */
export const SIM_CLASSES = ['pool', 'host', 'host_metrics', 'VM', 'VBD', 'VDI', 'SR', 'PBD', 'PIF', 'network', 'task'] as const;

/** Network homes per host: two management interfaces, as the product watches multi-homed paths. */
export const NETWORK_HOMES = 2;
/** Storage homes per host: two multipath legs to the heartbeat SR. */
export const STORAGE_HOMES = 2;

export interface BuiltHost {
  name: string;
  uuid: string;
  ref: string;
  metricsRef: string;
  dom0Ref: string;
  /** Home 0 is host.address (the management PIF), home 1 a second PIF xapi also listens on. */
  addresses: [string, string];
  heartbeatPbdRef: string;
  localSrRef: string;
}

export interface BuiltPool {
  db: XapiDatabase;
  poolRef: string;
  poolUuid: string;
  hosts: BuiltHost[];
  heartbeatSrRef: string;
  statefileVdiRef: string;
  redoLogVdiRef: string;
  /** SCSI id of the heartbeat LUN, the key of PBD.other_config["mpath-<id>"]. */
  heartbeatScsiId: string;
  haGenerationUuid: string;
}

/** The two loopback addresses of host `index`: A.B.C.(D+index) and A.B.(C+1).(D+index). */
export function hostAddresses(base: string, index: number): [string, string] {
  const parts = base.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255) || parts[0] !== 127) {
    throw new Error(`address base must be an IPv4 loopback address (127.x.y.z), got ${base}`);
  }
  const [a, b, c, d] = parts as [number, number, number, number];
  if (d + index > 254 || c + 1 > 255) throw new Error(`address base ${base} leaves no room for host ${index + 1}`);
  return [`${a}.${b}.${c}.${d + index}`, `${a}.${b}.${c + 1}.${d + index}`];
}

const MiB = 2 ** 20;

export function buildPool(spec: PoolSpec, addressBase: string): BuiltPool {
  const db = new XapiDatabase(SIM_CLASSES);
  const uuid = () => randomUUID();
  const poolUuid = spec.uuid ?? uuid();

  const mgmtNet = db.create('network', {
    uuid: uuid(),
    name_label: 'Pool-wide network associated with eth0',
    name_description: '',
    PIFs: [],
    VIFs: [],
    bridge: 'xenbr0',
    MTU: 1500,
    other_config: {},
  });
  const secondNet = db.create('network', {
    uuid: uuid(),
    name_label: 'Pool-wide network associated with eth1',
    name_description: '',
    PIFs: [],
    VIFs: [],
    bridge: 'xenbr1',
    MTU: 1500,
    other_config: {},
  });

  const heartbeatScsiId = `36${Buffer.from(poolUuid).toString('hex').slice(0, 30)}`;
  const hbSr = db.create('SR', {
    uuid: uuid(),
    name_label: spec.heartbeatSr.name,
    name_description: 'HA heartbeat SR',
    type: spec.heartbeatSr.type,
    content_type: '',
    shared: spec.heartbeatSr.shared,
    PBDs: [],
    VDIs: [],
    physical_size: 64 * 2 ** 30,
    physical_utilisation: 0,
    virtual_allocation: 0,
    sm_config: { allocation: 'thick', multipathable: 'true' },
    other_config: {},
  });
  const vdi = (name: string, sr: string, size: number, type: string): string =>
    db.create('VDI', {
      uuid: uuid(),
      name_label: name,
      name_description: '',
      SR: sr,
      virtual_size: size,
      physical_utilisation: size,
      type,
      sharable: false,
      read_only: false,
      managed: true,
      VBDs: [],
      other_config: {},
      sm_config: {},
    });
  const statefileVdi = vdi('Statefile for HA', hbSr, spec.heartbeatSr.statefileSize, 'ha_statefile');
  const redoLogVdi = vdi('Metadata for HA', hbSr, spec.heartbeatSr.metadataSize, 'redo_log');

  const sharedSr = db.create('SR', {
    uuid: uuid(),
    name_label: 'Shared VM storage',
    name_description: '',
    type: 'nfs',
    content_type: '',
    shared: true,
    PBDs: [],
    VDIs: [],
    physical_size: 16 * 2 ** 40,
    physical_utilisation: 0,
    virtual_allocation: 0,
    sm_config: {},
    other_config: {},
  });

  const poolRef = XapiDatabase.newRef();
  const hosts: BuiltHost[] = spec.hosts.map((h, i) => {
    const ref = XapiDatabase.newRef();
    const addresses = hostAddresses(addressBase, i);
    const hostUuid = h.uuid ?? uuid();
    const metricsRef = db.create('host_metrics', {
      uuid: uuid(),
      live: true,
      memory_total: h.memory,
      memory_free: h.memory,
      last_updated: '',
      other_config: {},
    });
    const pif = (device: string, network: string, ip: string, management: boolean): string => {
      const pifRef = db.create('PIF', {
        uuid: uuid(),
        device,
        host: ref,
        network,
        management,
        physical: true,
        currently_attached: true,
        ip_configuration_mode: h.ipConfiguration,
        IP: ip,
        netmask: '255.0.0.0',
        gateway: '',
        DNS: '',
        MAC: `02:00:00:00:${(i + 1).toString(16).padStart(2, '0')}:0${device.slice(-1)}`,
        MTU: 1500,
        VLAN: -1,
        disallow_unplug: !management,
        other_config: management ? {} : { management_purpose: 'xenha second management home' },
      });
      db.update('network', network, { PIFs: [...(db.peek('network', network).PIFs as string[]), pifRef] });
      return pifRef;
    };
    const pifs = [pif('eth0', mgmtNet, addresses[0], true), pif('eth1', secondNet, addresses[1], false)];
    const pbd = (sr: string, deviceConfig: Record<string, string>, otherConfig: Record<string, string> = {}): string => {
      const pbdRef = db.create('PBD', {
        uuid: uuid(),
        host: ref,
        SR: sr,
        currently_attached: true,
        device_config: deviceConfig,
        other_config: otherConfig,
      });
      db.update('SR', sr, { PBDs: [...(db.peek('SR', sr).PBDs as string[]), pbdRef] });
      return pbdRef;
    };
    const heartbeatPbdRef = pbd(
      hbSr,
      { target: '127.0.0.1', targetIQN: 'iqn.2026-11.sim.xenha:heartbeat', SCSIid: heartbeatScsiId },
      {
        multipathed: 'true',
        [`mpath-${heartbeatScsiId}`]: `[${2}, ${2}]`,
      },
    );
    const sharedPbd = pbd(sharedSr, { server: '127.0.0.1', serverpath: '/export/vms' });
    const localSrRef = db.create('SR', {
      uuid: uuid(),
      name_label: `Local storage on ${h.name}`,
      name_description: '',
      type: 'lvm',
      content_type: 'user',
      shared: false,
      PBDs: [],
      VDIs: [],
      physical_size: 2 * 2 ** 40,
      physical_utilisation: 0,
      virtual_allocation: 0,
      sm_config: {},
      other_config: {},
    });
    const localPbd = pbd(localSrRef, { device: '/dev/sda3' });
    const dom0Ref = db.create(
      'VM',
      vmRecord({
        name: `Control domain on host: ${h.name}`,
        memory: h.dom0Memory,
        residentOn: ref,
        isControlDomain: true,
        priority: '',
        alwaysRun: false,
        order: 0,
        startDelay: 0,
        uuid: uuid(),
      }),
    );
    db.create(
      'host',
      {
        uuid: hostUuid,
        name_label: h.name,
        name_description: 'Simulated XenServer host',
        hostname: h.name,
        address: addresses[0],
        enabled: true,
        memory_overhead: h.memoryOverhead,
        metrics: metricsRef,
        ha_statefiles: spec.haEnabled ? [statefileVdi] : [],
        ha_network_peers: [],
        PIFs: pifs,
        PBDs: [heartbeatPbdRef, sharedPbd, localPbd],
        resident_VMs: [dom0Ref],
        control_domain: dom0Ref,
        edition: h.haLicensed ? 'premium' : 'free',
        license_params: { restrict_ha: h.haLicensed ? 'false' : 'true', sku_type: h.haLicensed ? 'premium' : 'free' },
        software_version: { product_brand: 'XenServer', product_version: '8.4.0', xapi: '25.6' },
        API_version_major: 2,
        API_version_minor: 21,
        power_on_mode: 'IPMI',
        power_on_config: {},
        other_config: { multipathing: 'true' },
        logging: {},
        tags: [],
      },
      ref,
    );
    return { name: h.name, uuid: hostUuid, ref, metricsRef, dom0Ref, addresses, heartbeatPbdRef, localSrRef };
  });

  const hostByName = new Map(hosts.map((h) => [h.name, h]));
  for (const v of spec.vms) {
    const host = v.host === undefined ? undefined : hostByName.get(v.host)!;
    const vmRef = db.create(
      'VM',
      vmRecord({
        name: v.name,
        uuid: v.uuid ?? uuid(),
        memory: v.memory,
        residentOn: host?.ref ?? NULL_REF,
        isControlDomain: false,
        priority: v.haRestartPriority,
        alwaysRun: v.haAlwaysRun ?? v.haRestartPriority === 'restart',
        order: v.order,
        startDelay: v.startDelay,
      }),
    );
    const diskSr = v.localStorage && host ? host.localSrRef : sharedSr;
    const disk = vdi(`${v.name} disk`, diskSr, 20 * 2 ** 30, 'user');
    const vbd = db.create('VBD', {
      uuid: uuid(),
      VM: vmRef,
      VDI: disk,
      device: 'xvda',
      userdevice: '0',
      bootable: true,
      mode: 'RW',
      type: 'Disk',
      currently_attached: host !== undefined,
      other_config: {},
    });
    db.update('VM', vmRef, { VBDs: [vbd] });
    // VDI.VBDs is the set of VBDs that reference the VDI (xapi keeps it as the other end of VBD.VDI).
    db.update('VDI', disk, { VBDs: [vbd] });
    if (host) db.update('host', host.ref, { resident_VMs: [...(db.peek('host', host.ref).resident_VMs as string[]), vmRef] });
  }
  for (const [sr] of db.all('SR')) {
    db.update('SR', sr, {
      VDIs: db
        .all('VDI')
        .filter(([, r]) => r.SR === sr)
        .map(([ref]) => ref),
    });
  }

  const haGenerationUuid = uuid();
  db.create(
    'pool',
    {
      uuid: poolUuid,
      name_label: spec.name,
      name_description: 'xenha simulated pool',
      master: hosts[0]!.ref,
      default_SR: sharedSr,
      ha_enabled: spec.haEnabled,
      ha_configuration: spec.haEnabled ? { timeout: String(spec.haTimeout) } : {},
      ha_statefiles: spec.haEnabled ? [statefileVdi] : [],
      ha_host_failures_to_tolerate: spec.hostFailuresToTolerate,
      ha_plan_exists_for: spec.hostFailuresToTolerate,
      ha_allow_overcommit: spec.allowOvercommit,
      ha_overcommitted: false,
      ha_cluster_stack: spec.haEnabled ? 'xhad' : '',
      redo_log_enabled: spec.haEnabled,
      redo_log_vdi: spec.haEnabled ? redoLogVdi : NULL_REF,
      other_config: {},
      gui_config: {},
      tags: [],
    },
    poolRef,
  );
  // A pool that has been running with HA on: every host hears every other (the master's HA monitor
  // wrote these at its last pass); the simulator's own monitor refreshes them from its first pass.
  if (spec.haEnabled) for (const h of hosts) db.update('host', h.ref, { ha_network_peers: hosts.map((x) => x.uuid) });

  return {
    db,
    poolRef,
    poolUuid,
    hosts,
    heartbeatSrRef: hbSr,
    statefileVdiRef: statefileVdi,
    redoLogVdiRef: redoLogVdi,
    heartbeatScsiId,
    haGenerationUuid,
  };
}

interface VmArgs {
  name: string;
  uuid: string;
  memory: number;
  residentOn: string;
  isControlDomain: boolean;
  priority: '' | 'restart' | 'best-effort';
  alwaysRun: boolean;
  order: number;
  startDelay: number;
}

function vmRecord(a: VmArgs): XapiRecordData {
  const running = a.residentOn !== NULL_REF;
  return {
    uuid: a.uuid,
    name_label: a.name,
    name_description: '',
    power_state: running ? 'Running' : 'Halted',
    resident_on: a.residentOn,
    affinity: a.isControlDomain ? a.residentOn : NULL_REF,
    ha_restart_priority: a.priority,
    ha_always_run: a.alwaysRun,
    order: a.order,
    start_delay: a.startDelay,
    shutdown_delay: 0,
    memory_static_max: a.memory,
    memory_static_min: Math.min(a.memory, 512 * MiB),
    memory_dynamic_max: a.memory,
    memory_dynamic_min: a.memory,
    memory_target: running ? a.memory : 0,
    memory_overhead: vmMemoryOverhead(a.memory),
    VCPUs_max: 2,
    VCPUs_at_startup: 2,
    is_control_domain: a.isControlDomain,
    is_a_template: false,
    is_a_snapshot: false,
    domid: running ? (a.isControlDomain ? 0 : 1) : -1,
    VBDs: [],
    VIFs: [],
    allowed_operations: [],
    current_operations: {},
    blocked_operations: {},
    other_config: {},
    tags: [],
  };
}
