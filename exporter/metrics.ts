/**
 * The exporter's metric families (prom-client). Every value is read from the samplers' latest state at
 * scrape time, so a scrape never waits on a pool, and series of hosts that left a pool vanish with
 * them. Names follow Prometheus conventions: `xenha_` prefix, base units, `_total` counters, bounded
 * labels (pool, host name, path, probe, home, state, check, XAPI method and error code).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { HOST_STATES, type HostMemory } from '../core/classify/state-machine.ts';
import type { SeriesDefinition } from '../plugins/probes/index.ts';
import type { ProcessGuard } from './process-guard.ts';
import type { PoolSampler } from './sampler.ts';

export function createRegistry(
  samplers: readonly PoolSampler[],
  now: () => number = () => performance.now(),
  withProcessMetrics = true,
  guard?: ProcessGuard,
): Registry {
  const reg = new Registry();
  if (withProcessMetrics) {
    collectDefaultMetrics({ register: reg });
    // prom-client names these gauges `_total`, which `promtool check metrics` rejects; they go.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      reg.removeSingleMetric(name);
  }

  // The host label is the host's name; two hosts with the same name get their UUID's first 8
  // characters appended, so neither overwrites the other's series.
  const labels = new WeakMap<object, Map<string, string>>();
  const hostName = (s: PoolSampler, uuid: string): string => {
    const snap = s.state.snapshot;
    if (!snap) return uuid;
    let m = labels.get(snap);
    if (!m) {
      const count = new Map<string, number>();
      for (const h of snap.hosts) count.set(h.name, (count.get(h.name) ?? 0) + 1);
      m = new Map(snap.hosts.map((h) => [h.uuid, count.get(h.name)! > 1 ? `${h.name} (${h.uuid.slice(0, 8)})` : h.name]));
      labels.set(snap, m);
    }
    return m.get(uuid) ?? uuid;
  };
  /**
   * Every classified host of every pool, with its pool and host label values. (Label objects are
   * built as literals by the callers: spreading a shared one makes prom-client's set() much slower.)
   */
  const forHosts = (f: (h: HostMemory, pool: string, host: string) => void) => {
    for (const s of samplers) for (const h of Object.values(s.state.memory?.hosts ?? {})) f(h, s.config.name, hostName(s, h.host));
  };

  new Gauge({
    name: 'xenha_host_path_up',
    help: 'Whether a probe saw the host alive on a path and home (1) or not (0); absent when it could not tell.',
    labelNames: ['pool', 'host', 'path', 'probe', 'home'] as const,
    registers: [reg],
    collect() {
      this.reset();
      forHosts((h, pool, host) => {
        for (const x of h.lastSamples)
          if (x.up !== null) this.set({ pool, host, path: x.path, probe: x.probe, home: x.home }, x.up ? 1 : 0);
      });
    },
  });

  new Gauge({
    name: 'xenha_host_path_latency_seconds',
    help: 'Latency of the last successful probe of a path and home.',
    labelNames: ['pool', 'host', 'path', 'probe', 'home'] as const,
    registers: [reg],
    collect() {
      this.reset();
      forHosts((h, pool, host) => {
        for (const x of h.lastSamples)
          if (x.up === true && x.latencySeconds !== null)
            this.set({ pool, host, path: x.path, probe: x.probe, home: x.home }, x.latencySeconds);
      });
    },
  });

  new Gauge({
    name: 'xenha_host_heartbeat_age_seconds',
    help: 'Seconds since the path last showed life: the newest life any of its samples shows (a statefile slot that last advanced 5 s ago shows life 5 s old).',
    labelNames: ['pool', 'host', 'path'] as const,
    registers: [reg],
    collect() {
      this.reset();
      const t = now();
      forHosts((h, pool, host) => {
        for (const path of ['network', 'storage'] as const) {
          const last = h.lastLife[path];
          if (last !== null) this.set({ pool, host, path }, Math.max(0, (t - last) / 1000));
        }
      });
    },
  });

  new Gauge({
    name: 'xenha_host_state',
    help: 'Host classification: 1 on the current state, 0 on the others.',
    labelNames: ['pool', 'host', 'state'] as const,
    registers: [reg],
    collect() {
      this.reset();
      forHosts((h, pool, host) => {
        for (const st of HOST_STATES) this.set({ pool, host, state: st }, h.state === st ? 1 : 0);
      });
    },
  });

  // The same hosts as xenha_host_state, with the XAPI UUID: alert rules join it on (pool, host) to
  // carry host_uuid (`* on(pool, host) group_left(host_uuid) xenha_host_info`), which the remediation
  // service prefers to a name (names repeat and change).
  new Gauge({
    name: 'xenha_host_info',
    help: "A host of the pool (always 1) with its XAPI UUID in host_uuid; join it on (pool, host) to carry the UUID into an alert's labels.",
    labelNames: ['pool', 'host', 'host_uuid'] as const,
    registers: [reg],
    collect() {
      this.reset();
      forHosts((h, pool, host) => this.set({ pool, host, host_uuid: h.host }, 1));
    },
  });

  new Gauge({
    name: 'xenha_host_state_seconds',
    help: 'Seconds the host has been in its current state.',
    labelNames: ['pool', 'host'] as const,
    registers: [reg],
    collect() {
      this.reset();
      const t = now();
      forHosts((h, pool, host) => this.set({ pool, host }, Math.max(0, (t - h.since) / 1000)));
    },
  });
  /** A counter per pool (and one more label), read from the samplers' own monotonic counts. */
  const poolCounter = (
    name: string,
    help: string,
    label: string | null,
    values: (s: PoolSampler) => number | Iterable<readonly [string, number]>,
  ) =>
    new Counter({
      name,
      help,
      labelNames: label ? ['pool', label] : ['pool'],
      registers: [reg],
      collect() {
        this.reset();
        for (const s of samplers) {
          const v = values(s);
          if (typeof v === 'number') this.inc({ pool: s.config.name }, v);
          else for (const [k, n] of v) this.inc({ pool: s.config.name, [label!]: k }, n);
        }
      },
    });

  poolCounter('xenha_host_state_transitions_total', 'Host state changes.', 'host', (s) =>
    [...s.counters.transitions].map(([uuid, n]) => [hostName(s, uuid), n] as const),
  );
  poolCounter(
    'xenha_false_positives_averted_total',
    'Times one path alone would have declared a live host dead (the host was alive on the other path).',
    'path',
    (s) => Object.entries(s.counters.falsePositivesAverted),
  );
  poolCounter('xenha_xapi_calls_total', 'XAPI calls made, by method.', 'method', (s) => s.connection.calls);
  poolCounter(
    'xenha_xapi_errors_total',
    'XAPI failures (connects, event fetches, queries), by error code.',
    'code',
    (s) => s.connection.errors,
  );
  poolCounter(
    'xenha_xapi_connects_total',
    'Successful XAPI connections (a new one after a master change or a lost session).',
    null,
    (s) => s.connection.connects,
  );
  poolCounter('xenha_exporter_sample_rounds_total', 'Sampling rounds run.', null, (s) => s.counters.rounds);
  poolCounter(
    'xenha_exporter_probe_errors_total',
    'Probe runs that failed outright (not a host found down).',
    'probe',
    (s) => s.counters.probeErrors,
  );

  new Counter({
    name: 'xenha_host_path_flaps_total',
    help: "Changes of a path's status between up, degraded (a home lost) and down.",
    labelNames: ['pool', 'host', 'path'] as const,
    registers: [reg],
    collect() {
      this.reset();
      for (const s of samplers) {
        for (const [key, n] of s.counters.pathFlaps) {
          const [uuid, path] = key.split('/') as [string, string];
          this.inc({ pool: s.config.name, host: hostName(s, uuid), path }, n);
        }
      }
    },
  });

  const poolGauge = (name: string, help: string, value: (s: PoolSampler) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['pool'] as const,
      registers: [reg],
      collect() {
        this.reset();
        for (const s of samplers) {
          const v = value(s);
          if (v !== null) this.set({ pool: s.config.name }, v);
        }
      },
    });

  poolGauge(
    'xenha_pool_observer_isolated',
    'Whether the evidence says the monitor itself is cut off from the pool (then no host is called dead).',
    (s) => (s.state.memory ? (s.state.memory.observerIsolated ? 1 : 0) : null),
  );
  poolGauge('xenha_xapi_up', 'Whether the exporter holds a working XAPI session with the pool master.', (s) =>
    s.connection.status === 'connected' ? 1 : 0,
  );
  poolGauge(
    'xenha_pool_storage_heartbeat',
    'Whether the exporter reads a storage heartbeat for the pool (HA on and the statefile read): without one (0) there is no two-path verdict and no host is called dead.',
    (s) => (s.state.storageHeartbeat ? (s.state.storageHeartbeat.ok ? 1 : 0) : null),
  );
  poolGauge(
    'xenha_pool_dead_after_seconds',
    "The dead-after in force: no evidence of life for this long (and both paths down) makes a host dead. The pool's HA timeout unless the config sets one.",
    (s) => s.state.deadAfter.ms / 1000,
  );
  poolGauge('xenha_pool_ha_enabled', 'pool.ha_enabled.', (s) => (s.state.snapshot ? (s.state.snapshot.haEnabled ? 1 : 0) : null));
  poolGauge(
    'xenha_pool_ha_host_failures_to_tolerate',
    'pool.ha_host_failures_to_tolerate: the configured number of host failures to tolerate.',
    (s) => s.state.snapshot?.haHostFailuresToTolerate ?? null,
  );
  poolGauge(
    'xenha_pool_ha_plan_exists_for',
    "pool.ha_plan_exists_for: host failures XAPI's planner has a plan for.",
    (s) => s.state.snapshot?.haPlanExistsFor ?? null,
  );
  poolGauge('xenha_pool_ha_overcommitted', 'pool.ha_overcommitted.', (s) =>
    s.state.snapshot ? (s.state.snapshot.haOvercommitted ? 1 : 0) : null,
  );
  poolGauge('xenha_pool_hosts', 'Hosts in the pool.', (s) => s.state.snapshot?.hosts.length ?? null);
  poolGauge('xenha_exporter_last_sample_age_seconds', "Seconds since the pool's last sampling round.", (s) =>
    s.state.lastRoundAt === null ? null : Math.max(0, (now() - s.state.lastRoundAt) / 1000),
  );
  poolGauge('xenha_exporter_sample_duration_seconds', "Duration of the pool's last sampling round.", (s) => s.state.lastRoundSeconds);
  poolGauge(
    'xenha_exporter_invalid_records',
    'XAPI records that failed validation in the last snapshot (left out).',
    (s) => s.state.snapshot?.invalid.length ?? null,
  );

  new Gauge({
    name: 'xenha_pool_failures_tolerable',
    help: 'Host failures the pool can absorb with every protected VM restarted: a proven lower bound, a proven upper bound, and the exact figure where the planner could compute it.',
    labelNames: ['pool', 'bound'] as const,
    registers: [reg],
    collect() {
      this.reset();
      for (const s of samplers) {
        const c = s.state.capacity;
        if (!c) continue;
        this.set({ pool: s.config.name, bound: 'lower' }, c.lower);
        this.set({ pool: s.config.name, bound: 'upper' }, c.upper);
        if (c.exact !== null) this.set({ pool: s.config.name, bound: 'exact' }, c.exact);
      }
    },
  });
  poolGauge(
    'xenha_pool_capacity_overcommitted',
    'Whether the failures the pool provably tolerates (lower bound) are fewer than the configured failures to tolerate.',
    (s) => (s.state.capacity && s.state.snapshot ? (s.state.capacity.lower < s.state.snapshot.haHostFailuresToTolerate ? 1 : 0) : null),
  );
  poolGauge('xenha_pool_failover_plan_exists_now', 'Whether the protected VMs of hosts already down fit on the survivors now.', (s) =>
    s.state.capacity ? (s.state.capacity.planExistsNow ? 1 : 0) : null,
  );

  new Gauge({
    name: 'xenha_pool_master_info',
    help: 'The pool master (1 on the master host).',
    labelNames: ['pool', 'host'] as const,
    registers: [reg],
    collect() {
      this.reset();
      for (const s of samplers) {
        const m = s.state.snapshot?.hosts.find((h) => h.ref === s.state.snapshot?.masterRef);
        if (m) this.set({ pool: s.config.name, host: hostName(s, m.uuid) }, 1);
      }
    },
  });

  new Gauge({
    name: 'xenha_preflight_check',
    help: 'HA requirement checks: 1 ok, 0 failed (see xenha explain or /api/v1/state for the reason).',
    labelNames: ['pool', 'check'] as const,
    registers: [reg],
    collect() {
      this.reset();
      for (const s of samplers) for (const r of s.state.preflight) this.set({ pool: s.config.name, check: r.check }, r.ok ? 1 : 0);
    },
  });

  // The series the probes declare, each its own family (a probe's own figures, e.g. statefile slots).
  const declared = new Map<string, SeriesDefinition>();
  for (const s of samplers) for (const p of s.probes) for (const d of Object.values(p.series)) declared.set(d.name, d);
  for (const d of declared.values()) {
    new Gauge({
      name: d.name,
      help: d.help,
      labelNames: ['pool', 'host', ...d.labelNames],
      registers: [reg],
      collect() {
        this.reset();
        for (const s of samplers) {
          for (const v of s.state.series.get(d.name) ?? []) {
            // Built key by key rather than spread (a spread label object makes prom-client's set() slower).
            const labels: Record<string, string> = { pool: s.config.name, host: hostName(s, v.host) };
            for (const n of d.labelNames) labels[n] = v.labels[n]!;
            this.set(labels, v.value);
          }
        }
      },
    });
  }

  if (guard) {
    new Counter({
      name: 'xenha_exporter_unhandled_errors_total',
      help: 'Uncaught exceptions and unhandled rejections the exporter kept running through (each one is a bug: please report it).',
      labelNames: ['kind'] as const,
      registers: [reg],
      collect() {
        this.reset();
        this.inc({ kind: 'uncaught_exception' }, guard.counts.uncaughtException);
        this.inc({ kind: 'unhandled_rejection' }, guard.counts.unhandledRejection);
      },
    });
  }

  return reg;
}
