/**
 * The XAPI calls the simulator answers, with XAPI's argument lists and error codes.
 *
 * Generic per class: get_all, get_all_records, get_record, get_by_uuid, get_by_name_label, a getter
 * per field, add_to_/remove_from_other_config. Special: session, event, system.listMethods, the HA
 * calls, VM power operations, host.power_on, the master hand-over calls.
 * Arguments are validated with zod; XAPI ints arrive as numbers (JSON-RPC) or strings (XML-RPC).
 *
 * A method name is looked up in a Map (and a getter's field in the class's field set), never as a
 * property of a plain object: `__proto__`, `constructor`, `toString` or `host.get_constructor` are
 * names like any other unknown one, answered as xapi answers them (see `dispatch`).
 */
import { z } from 'zod';
import { NULL_REF, xapiInt } from '../../core/model/xapi-records.ts';
import type { HostRuntime, SimulatedPool } from '../pool.ts';
import { formatToken, parseToken, type XapiDatabase, type XapiRecordData, type XapiValue } from './database.ts';
import { failure, XapiFailure } from './errors.ts';
import { computeMaxFailures } from './ha-planner.ts';
import type { SessionTable } from './sessions.ts';
import { SIM_CLASSES } from '../build.ts';

export interface CallContext {
  pool: SimulatedPool;
  /** The host whose listener took the request. */
  host: HostRuntime;
  password: string;
  sessions: SessionTable;
  signal: AbortSignal;
}

/** `session`: the caller's session, checked (absent for calls without one). */
type Handler = (ctx: CallContext, args: unknown[], session?: string) => XapiValue | Promise<XapiValue>;

interface MethodDef {
  /** Argument schemas after the session (or all arguments for calls without one). */
  args: z.ZodType[];
  /** Trailing arguments that may be left out. */
  optional?: number;
  /** No session argument (login, listMethods). */
  noSession?: boolean;
  /** Answered by a slave too (XAPI's emergency calls run on the host they reach). */
  onSlave?: boolean;
  run: Handler;
}

const str = z.string();
const ref = z.string();
const bool = z.boolean();
const num = z.number();
const int = xapiInt;

const NAME_LABEL_CLASSES = new Set(['pool', 'host', 'VM', 'SR', 'VDI', 'network']);

/** Looks up a record of a class, HANDLE_INVALID otherwise. */
function rec(ctx: CallContext, cls: string, r: unknown): XapiRecordData {
  return ctx.pool.built.db.peek(cls, String(r));
}

function hostRuntime(ctx: CallContext, r: string): HostRuntime {
  rec(ctx, 'host', r);
  return ctx.pool.hostByRef(r)!;
}

function liveHost(ctx: CallContext, h: HostRuntime): boolean {
  return ctx.pool.built.db.peek('host_metrics', h.built.metricsRef).live === true && ctx.pool.isUp(h);
}

function haEnabled(ctx: CallContext): boolean {
  return ctx.pool.built.db.peek('pool', ctx.pool.built.poolRef).ha_enabled === true;
}

function vmMemoryNeed(vm: XapiRecordData): number {
  return (vm.memory_static_max as number) + (vm.memory_overhead as number);
}

function assertStartable(vmRef: string, vm: XapiRecordData): void {
  // xapi_vm_lifecycle.ml check order: power state first, then templates.
  if (vm.power_state !== 'Halted') throw failure.vmBadPowerState(vmRef, 'halted', vm.power_state as string);
  if (vm.is_a_template) throw new XapiFailure('VM_IS_TEMPLATE', [vmRef, 'start']);
  if (vm.is_a_snapshot) throw new XapiFailure('VM_IS_SNAPSHOT', [vmRef, 'start']);
}

/** A VM whose disk sits on a host-local SR can only start on that host. */
function requiredLocalSr(ctx: CallContext, vm: XapiRecordData): { sr: string; host: string } | null {
  const db = ctx.pool.built.db;
  for (const vbd of vm.VBDs as string[]) {
    const vdi = db.peek('VBD', vbd).VDI as string;
    if (vdi === NULL_REF || !db.has('VDI', vdi)) continue;
    const sr = db.peek('VDI', vdi).SR as string;
    const srRec = db.peek('SR', sr);
    if (!srRec.shared) {
      const pbd = (srRec.PBDs as string[])[0];
      return { sr, host: pbd ? (db.peek('PBD', pbd).host as string) : NULL_REF };
    }
  }
  return null;
}

/** The VM's disks plugged (start) or unplugged (halt, power_state_reset: xapi's force_state_reset unplugs them). */
function setVbdsAttached(db: XapiDatabase, vm: XapiRecordData, attached: boolean): void {
  for (const vbd of vm.VBDs as string[]) if (db.has('VBD', vbd)) db.update('VBD', vbd, { currently_attached: attached });
}

function startOn(ctx: CallContext, vmRef: string, h: HostRuntime, paused: boolean): void {
  const db = ctx.pool.built.db;
  const vm = rec(ctx, 'VM', vmRef);
  assertStartable(vmRef, vm);
  if (!liveHost(ctx, h)) throw new XapiFailure('HOST_NOT_LIVE', []);
  if (db.peek('host', h.built.ref).enabled !== true) throw new XapiFailure('HOST_DISABLED', [h.built.ref]);
  const local = requiredLocalSr(ctx, vm);
  if (local && local.host !== h.built.ref) throw new XapiFailure('VM_REQUIRES_SR', [vmRef, local.sr]);
  const need = vmMemoryNeed(vm);
  const free = ctx.pool.memoryFree(h);
  if (need > free) throw new XapiFailure('HOST_NOT_ENOUGH_FREE_MEMORY', [String(need), String(free)]);
  db.update('VM', vmRef, {
    power_state: paused ? 'Paused' : 'Running',
    resident_on: h.built.ref,
    memory_target: vm.memory_dynamic_max as number,
    domid: 1,
  });
  setVbdsAttached(db, vm, true);
  db.update('host', h.built.ref, { resident_VMs: [...(db.peek('host', h.built.ref).resident_VMs as string[]), vmRef] });
  db.update('host_metrics', h.built.metricsRef, { memory_free: ctx.pool.memoryFree(h) });
  ctx.pool.record('vm', h, { action: 'start', vm: vm.name_label as string });
}

function haltVm(ctx: CallContext, vmRef: string, action: string): void {
  const db = ctx.pool.built.db;
  const vm = rec(ctx, 'VM', vmRef);
  const host = vm.resident_on as string;
  db.update('VM', vmRef, { power_state: 'Halted', resident_on: NULL_REF, memory_target: 0, domid: -1 });
  setVbdsAttached(db, vm, false);
  const h = ctx.pool.hostByRef(host);
  if (h) {
    db.update('host', host, { resident_VMs: (db.peek('host', host).resident_VMs as string[]).filter((r) => r !== vmRef) });
    db.update('host_metrics', h.built.metricsRef, { memory_free: ctx.pool.memoryFree(h) });
  }
  ctx.pool.record('vm', h, { action, vm: vm.name_label as string });
}

function poolRecalculateHa(ctx: CallContext): void {
  const db = ctx.pool.built.db;
  const p = db.peek('pool', ctx.pool.built.poolRef);
  const max = computeMaxFailures(ctx.pool);
  const want = p.ha_host_failures_to_tolerate as number;
  db.update('pool', ctx.pool.built.poolRef, { ha_overcommitted: max < want, ha_plan_exists_for: Math.min(want, max) });
}

function authenticate(ctx: CallContext, user: unknown, password: unknown): void {
  if (user !== 'root' || password !== ctx.password) throw failure.sessionAuthenticationFailed();
}

/** Written as an object literal for reading; looked up only through the `special` Map below. */
const specialDefs: Record<string, MethodDef> = {
  // (uname, pwd, version, originator): the last two have defaults ("1.1", ""), so they may be left out,
  // as the npm client does. The originator groups the session for xapi's cap (sessions.ts).
  'session.login_with_password': {
    noSession: true,
    args: [str, str, str, str],
    optional: 2,
    run: (ctx, [user, password, , originator]) => {
      authenticate(ctx, user, password);
      return ctx.sessions.create(String(user), typeof originator === 'string' ? originator : '');
    },
  },
  // The emergency login a slave accepts, for the calls it answers itself (emergency transition): kept in
  // the host's own table (xapi_local_session.ml), valid on that host only, never expired or capped.
  'session.slave_local_login_with_password': {
    noSession: true,
    args: [str, str],
    onSlave: true,
    run: (ctx, [user, password]) => {
      authenticate(ctx, user, password);
      return ctx.sessions.create(String(user), '', ctx.host.built.ref);
    },
  },
  // xapi_session.ml: logout destroys the Session row (a local session is not one: it stays valid),
  // local_logout the host's local entry.
  'session.logout': {
    args: [],
    onSlave: true,
    run: (ctx, _args, session) => {
      if (session && ctx.sessions.get(session)?.localTo === null) ctx.sessions.destroy(session);
      return '';
    },
  },
  'session.local_logout': {
    args: [],
    onSlave: true,
    run: (ctx, _args, session) => {
      if (session && ctx.sessions.get(session)?.localTo !== null) ctx.sessions.destroy(session);
      return '';
    },
  },
  'session.get_this_host': { args: [ref], run: (ctx) => ctx.host.built.ref },
  'system.listMethods': { noSession: true, args: [], onSlave: true, run: (ctx) => listMethods(ctx.pool.built.db) },
  'event.from': {
    args: [
      z.array(str),
      str,
      z.union([
        num,
        z
          .string()
          .regex(/^\d+(\.\d+)?$/)
          .transform(Number),
      ]),
    ],
    run: (ctx, [classes, token, timeout]) =>
      ctx.pool.built.db.waitForEvents(
        classes as string[],
        parseToken(token as string),
        Math.min(Number(timeout), 3600) * 1000,
        ctx.signal,
      ) as unknown as XapiValue,
  },
  'event.inject': {
    args: [str, ref],
    run: (ctx, [cls, r]) => {
      const db = ctx.pool.built.db;
      // The class must be the table name exactly (case-sensitive), unlike event.from's.
      if (!db.classes.includes(String(cls))) throw failure.handleInvalid(String(cls), String(r));
      db.touch(String(cls), String(r));
      return formatToken(db.currentGeneration - 1);
    },
  },
  'pool.ha_compute_max_host_failures_to_tolerate': { args: [], run: (ctx) => computeMaxFailures(ctx.pool) },
  'pool.ha_compute_hypothetical_max_host_failures_to_tolerate': {
    args: [z.record(z.string(), z.enum(['restart', 'best-effort', '']))],
    run: (ctx, [configuration]) => computeMaxFailures(ctx.pool, configuration as Record<string, string>),
  },
  'pool.ha_failover_plan_exists': { args: [int], run: (ctx, [n]) => Number(n) <= computeMaxFailures(ctx.pool) },
  'pool.set_ha_host_failures_to_tolerate': {
    args: [ref, int],
    run: (ctx, [self, value]) => {
      const db = ctx.pool.built.db;
      const p = rec(ctx, 'pool', self);
      const v = Number(value);
      if (v < 0) throw new XapiFailure('INVALID_VALUE', ['ha_host_failures_to_tolerate', String(v)]);
      if (p.ha_enabled && !p.ha_allow_overcommit && (p.ha_plan_exists_for as number) > 0 && v > computeMaxFailures(ctx.pool)) {
        throw new XapiFailure('HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN', []);
      }
      db.update('pool', String(self), { ha_host_failures_to_tolerate: v });
      poolRecalculateHa(ctx);
      return '';
    },
  },
  'pool.designate_new_master': {
    args: [ref],
    run: (ctx, [h]) => {
      const target = hostRuntime(ctx, String(h));
      if (!liveHost(ctx, target)) throw failure.hostOffline(target.built.ref);
      if (ctx.pool.masterRef === target.built.ref) return '';
      if (haEnabled(ctx)) throw new XapiFailure('HA_IS_ENABLED', []);
      ctx.pool.setMaster(target, 'designate_new_master');
      return '';
    },
  },
  'pool.emergency_transition_to_master': {
    args: [],
    onSlave: true,
    run: (ctx) => {
      // With HA armed, xhad elects the master; xapi refuses a manual transition (xapi_pool.ml).
      if (haEnabled(ctx)) throw new XapiFailure('HA_IS_ENABLED', []);
      ctx.pool.setMaster(ctx.host, 'emergency_transition_to_master');
      return '';
    },
  },
  'pool.emergency_reset_master': {
    args: [str],
    onSlave: true,
    run: (ctx, [address]) => {
      if (haEnabled(ctx)) throw new XapiFailure('HA_IS_ENABLED', []);
      const target = ctx.pool.hosts.find((x) => x.built.addresses.includes(String(address)));
      if (!target) throw new XapiFailure('HOST_CANNOT_SEE_PEER', [String(address)]);
      if (ctx.pool.masterRef !== target.built.ref) ctx.pool.setMaster(target, 'emergency_reset_master');
      return '';
    },
  },
  'host.power_on': {
    args: [ref],
    run: (ctx, [h]) => {
      const target = hostRuntime(ctx, String(h));
      if (target.power === 'on') throw new XapiFailure('HOST_IS_LIVE', [target.built.ref]);
      if (rec(ctx, 'host', h).power_on_mode === '') throw new XapiFailure('HOST_POWER_ON_MODE_DISABLED', []);
      ctx.pool.writePowerFile(target, 'on');
      return '';
    },
  },
  'VM.start': {
    args: [ref, bool, bool],
    run: (ctx, [vmRef, paused]) => {
      const vm = rec(ctx, 'VM', vmRef);
      assertStartable(String(vmRef), vm);
      const local = requiredLocalSr(ctx, vm);
      const candidates = ctx.pool.hosts
        .filter((h) => liveHost(ctx, h) && (!local || local.host === h.built.ref))
        .sort(
          (a, b) =>
            (b.built.ref === vm.affinity ? 1 : 0) - (a.built.ref === vm.affinity ? 1 : 0) ||
            ctx.pool.memoryFree(b) - ctx.pool.memoryFree(a),
        );
      const need = vmMemoryNeed(vm);
      const h = candidates.find((c) => ctx.pool.memoryFree(c) >= need);
      if (!h) throw new XapiFailure('NO_HOSTS_AVAILABLE', []);
      startOn(ctx, String(vmRef), h, paused === true);
      return '';
    },
  },
  'VM.start_on': {
    args: [ref, ref, bool, bool],
    run: (ctx, [vmRef, h, paused]) => {
      rec(ctx, 'VM', vmRef);
      startOn(ctx, String(vmRef), hostRuntime(ctx, String(h)), paused === true);
      return '';
    },
  },
  'VM.hard_shutdown': {
    args: [ref],
    run: (ctx, [vmRef]) => {
      const vm = rec(ctx, 'VM', vmRef);
      if (vm.power_state === 'Halted') throw failure.vmBadPowerState(String(vmRef), 'paused, suspended, running', 'halted');
      if (vm.is_control_domain) throw new XapiFailure('OPERATION_NOT_ALLOWED', ['This operation is not allowed on a control domain']);
      const h = ctx.pool.hostByRef(vm.resident_on as string);
      // The call is forwarded to the resident host: a dead host cannot shut its VM down.
      if (vm.power_state !== 'Suspended' && h && !liveHost(ctx, h)) throw failure.hostOffline(h.built.ref);
      haltVm(ctx, String(vmRef), 'hard_shutdown');
      return '';
    },
  },
  'VM.power_state_reset': {
    args: [ref],
    run: (ctx, [vmRef]) => {
      const vm = rec(ctx, 'VM', vmRef);
      if (vm.is_control_domain) throw new XapiFailure('CANNOT_RESET_CONTROL_DOMAIN', [String(vmRef)]);
      const h = ctx.pool.hostByRef(vm.resident_on as string);
      // Refused while the VM may really run: its host is alive (xapi_vm.ml power_state_reset).
      if ((vm.power_state === 'Running' || vm.power_state === 'Paused') && h && liveHost(ctx, h)) {
        throw new XapiFailure('HOST_IS_LIVE', [h.built.ref]);
      }
      haltVm(ctx, String(vmRef), 'power_state_reset');
      return '';
    },
  },
};
/** The special calls by name: own entries only, so no name reaches Object.prototype. */
const special: ReadonlyMap<string, MethodDef> = new Map(Object.entries(specialDefs));

/**
 * xapi's Task fields (datamodel.ml), for the getters of a class the simulator serves empty: a getter
 * exists whether or not a record does (and answers HANDLE_INVALID for a ref that is not one).
 */
const STATIC_FIELDS: ReadonlyMap<string, readonly string[]> = new Map([
  [
    'task',
    [
      'uuid',
      'name_label',
      'name_description',
      'allowed_operations',
      'current_operations',
      'created',
      'finished',
      'status',
      'resident_on',
      'progress',
      'estimated_remaining_time',
      'type',
      'result',
      'error_info',
      'other_config',
      'subtask_of',
      'subtasks',
      'backtrace',
    ],
  ],
]);

const fieldCache = new WeakMap<XapiDatabase, Map<string, ReadonlySet<string>>>();

/**
 * The fields of a class: its records' own keys (every record of a class has the same ones), taken once
 * the class has a record; a getter is a method only for one of these (`host.get_constructor` is not).
 */
function classFields(db: XapiDatabase, cls: string): ReadonlySet<string> {
  let byClass = fieldCache.get(db);
  if (!byClass) fieldCache.set(db, (byClass = new Map<string, ReadonlySet<string>>()));
  const cached = byClass.get(cls);
  if (cached) return cached;
  const fields = new Set<string>(STATIC_FIELDS.get(cls));
  const records = db.all(cls);
  for (const [, r] of records) for (const k of Object.keys(r)) fields.add(k);
  if (records.length > 0 || STATIC_FIELDS.has(cls)) byClass.set(cls, fields);
  return fields;
}

/** Field getters, record reads and map edits for every class the simulator serves. */
function generic(db: XapiDatabase, method: string): MethodDef | undefined {
  const dot = method.indexOf('.');
  if (dot < 0) return undefined;
  const cls = method.slice(0, dot);
  const op = method.slice(dot + 1);
  if (!SIM_CLASS_SET.has(cls)) return undefined;
  switch (op) {
    case 'get_all':
      return { args: [], run: (ctx) => ctx.pool.built.db.refs(cls) };
    case 'get_all_records':
      return {
        args: [],
        run: (ctx) => Object.fromEntries(ctx.pool.built.db.refs(cls).map((r) => [r, ctx.pool.built.db.get(cls, r)])),
      };
    case 'get_all_records_where':
      return {
        args: [str],
        run: (ctx, [expr]) => {
          const match = whereMatcher(cls, String(expr));
          const db = ctx.pool.built.db;
          return Object.fromEntries(
            db
              .refs(cls)
              .map((r): [string, XapiRecordData] => [r, db.get(cls, r)])
              .filter(([, rec]) => match(rec)),
          );
        },
      };
    case 'get_record':
      return { args: [ref], run: (ctx, [r]) => ctx.pool.built.db.get(cls, String(r)) };
    case 'get_by_uuid':
      return { args: [str], run: (ctx, [u]) => ctx.pool.built.db.byUuid(cls, String(u)) };
    case 'get_by_name_label':
      if (!NAME_LABEL_CLASSES.has(cls)) return undefined;
      return {
        args: [str],
        run: (ctx, [n]) =>
          ctx.pool.built.db
            .all(cls)
            .filter(([, r]) => r.name_label === n)
            .map(([r]) => r),
      };
    case 'add_to_other_config':
      if (!classFields(db, cls).has('other_config')) return undefined;
      return {
        args: [ref, str, str],
        run: (ctx, [r, key, value]) => {
          const oc = rec(ctx, cls, r).other_config as Record<string, string>;
          if (Object.hasOwn(oc, String(key))) throw failure.mapDuplicateKey(cls, 'other_config', String(r), String(key));
          // A computed key is an own data property, even `__proto__`.
          ctx.pool.built.db.update(cls, String(r), { other_config: { ...oc, [String(key)]: String(value) } });
          return '';
        },
      };
    case 'remove_from_other_config':
      if (!classFields(db, cls).has('other_config')) return undefined;
      return {
        args: [ref, str],
        run: (ctx, [r, key]) => {
          const oc = { ...(rec(ctx, cls, r).other_config as Record<string, string>) };
          delete oc[String(key)];
          ctx.pool.built.db.update(cls, String(r), { other_config: oc });
          return '';
        },
      };
    default: {
      if (!op.startsWith('get_')) return undefined;
      const field = op.slice(4);
      if (!classFields(db, cls).has(field)) return undefined;
      return {
        args: [ref],
        run: (ctx, [r]) => {
          const record = ctx.pool.built.db.peek(cls, String(r));
          return structuredClone(record[field]!);
        },
      };
    }
  }
}

/**
 * Namespaced fields, by class (ocaml/idl/datamodel*.ml `namespace ~name`): the record field
 * `name_label` of a VM is the database column `name__label` (ocaml/database/db_names.ml), and the
 * query language names columns. The pool's name_label is a plain field.
 */
const NAMESPACES: ReadonlyMap<string, readonly string[]> = new Map([
  ['host', ['name', 'memory', 'API_version']],
  ['host_metrics', ['memory']],
  ['VM', ['name', 'memory', 'VCPUs', 'actions', 'PV', 'HVM']],
  ['VBD', ['qos']],
  ['SR', ['name']],
  ['VDI', ['name']],
  ['network', ['name']],
  ['task', ['name']],
]);

/** The record field a database column holds, or undefined when the class has no such column. */
function fieldOfColumn(cls: string, column: string): string | undefined {
  const namespaces = NAMESPACES.get(cls) ?? [];
  const i = column.indexOf('__');
  if (i > 0) {
    const ns = column.slice(0, i);
    return namespaces.includes(ns) ? `${ns}_${column.slice(i + 2)}` : undefined;
  }
  // A namespaced field has no column under its record name.
  return namespaces.some((ns) => column.startsWith(`${ns}_`)) ? undefined : column;
}

/**
 * The subset of xapi's query language the simulator understands: `true`, and `field "name" = "value"`
 * terms joined by `and`, fields named by their database column (`name__label`). Anything else is
 * refused with a clear error rather than answered wrongly.
 */
function whereMatcher(cls: string, expr: string): (r: XapiRecordData) => boolean {
  if (expr.trim() === 'true' || expr.trim() === '') return () => true;
  const terms = expr.split(/\s+and\s+/i).map((t) => {
    const m = /^\s*field\s+"([^"]+)"\s*=\s*"([^"]*)"\s*$/.exec(t);
    if (!m) throw new XapiFailure('INVALID_VALUE', ['expr', expr]);
    return [m[1]!, fieldOfColumn(cls, m[1]!), m[2]!] as const;
  });
  // A field compares as its string form (xapi's query language knows strings, numbers and refs). Terms
  // are evaluated row by row, in order, stopping at the first false one (db_filter.ml eval_expr); a
  // column the row does not have fails the call as Row.find does (db_cache_types.ml: DBCache_NotFound
  // ("missing field", name, "")), which exnHelper.ml turns into INTERNAL_ERROR [missing field, name, ""].
  return (r) =>
    terms.every(([column, f, x]) => {
      if (f === undefined || !Object.hasOwn(r, f)) throw new XapiFailure('INTERNAL_ERROR', ['missing field', column, '']);
      const v = r[f];
      return (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '') === x;
    });
}

const SIM_CLASS_SET = new Set<string>(SIM_CLASSES);

const methodLists = new WeakMap<XapiDatabase, string[]>();
/** system.listMethods: every call answered, field getters included. */
export function listMethods(db: XapiDatabase): string[] {
  let list = methodLists.get(db);
  if (!list) {
    list = [...special.keys(), ...SIM_CLASSES.flatMap((c) => [`${c}.get_all`, `${c}.get_all_records`, `${c}.get_all_records_where`])];
    for (const c of SIM_CLASSES) {
      for (const op of ['get_record', 'get_by_uuid', 'get_by_name_label', 'add_to_other_config', 'remove_from_other_config']) {
        if (generic(db, `${c}.${op}`)) list.push(`${c}.${op}`);
      }
      for (const f of classFields(db, c)) list.push(`${c}.get_${f}`);
    }
    list = [...new Set(list)].sort();
    methodLists.set(db, list);
  }
  return list;
}

/** The definition of a method the simulator answers, or undefined: Map and Set lookups only. */
export function lookupMethod(db: XapiDatabase, method: string): MethodDef | undefined {
  return special.get(method) ?? generic(db, method);
}

/**
 * Session_check.check (session_check.ml) as the host that took the call: SESSION_INVALID [ref] for a
 * session that is not (or no longer) in the table, or that is another host's local session;
 * HOST_IS_SLAVE [master address] for a pool-wide session used on a slave.
 */
function checkSession(ctx: CallContext, session: unknown, isMaster: boolean): string {
  if (typeof session !== 'string') throw failure.sessionInvalid('');
  const r = ctx.sessions.check(session, ctx.host.built.ref, isMaster);
  if (r.ok) return session;
  if (r.reason === 'not-on-this-host') throw failure.hostIsSlave(ctx.pool.master.built.addresses[0]);
  throw failure.sessionInvalid(session);
}

/**
 * Runs one call as the host that took it, in xapi's order (the server code gen_server.ml generates):
 *
 * - A name not in the table: called with arguments, it is taken for a host extension call, so the first
 *   argument is checked as a session first and then xapi_extensions.ml finds no such extension; called
 *   without, it fails at once. Either way MESSAGE_METHOD_UNKNOWN [name] (server_helpers.ml
 *   unknown_rpc_failure), on both wires.
 * - A known call: the argument count (MESSAGE_PARAMETER_COUNT_MISMATCH [name, expected, received],
 *   where expected counts the arguments without defaults and received the arguments after the session;
 *   extra arguments of a call with defaults are ignored), then the argument types, then the session,
 *   then the call itself (a slave answers only its emergency calls; the others, login included, answer
 *   HOST_IS_SLAVE).
 *
 * Throws XapiFailure for every XAPI-level error.
 */
export async function dispatch(ctx: CallContext, method: string, params: unknown[]): Promise<XapiValue> {
  const def = lookupMethod(ctx.pool.built.db, method);
  const isMaster = ctx.pool.masterRef === ctx.host.built.ref;
  if (!def) {
    if (params.length > 0) checkSession(ctx, params[0], isMaster);
    throw failure.methodUnknown(method);
  }
  const first = def.noSession ? 0 : 1;
  const given = params.length - first;
  const max = def.args.length;
  const min = max - (def.optional ?? 0);
  if (given < min || (given > max && def.optional === undefined)) throw failure.parameterCountMismatch(method, min, given);
  const parsed = params.slice(first, first + max).map((a, i) => {
    const r = def.args[i]!.safeParse(a);
    if (!r.success) throw failure.fieldTypeError(`${method} argument ${i + first + 1}`);
    return r.data;
  });
  const session = def.noSession ? undefined : checkSession(ctx, params[0], isMaster);
  if (!isMaster && !def.onSlave) {
    // A slave answers every normal call, login included, with the master's address.
    throw failure.hostIsSlave(ctx.pool.master.built.addresses[0]);
  }
  return def.run(ctx, parsed, session);
}
