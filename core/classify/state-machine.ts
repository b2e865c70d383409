/**
 * The host classification state machine: from the samples of both liveness paths (every home, every
 * probe) and the time, one state per host and an observer verdict per pool. Pure: data and time in,
 * data out; the exporter, the webhook, the CLI and the benchmarks run this same code.
 *
 * The rules, in order (docs/classification.md):
 * - A path is `up` when any sample of it says up, `degraded` when some home is down as well, `down`
 *   when every sample says down, `unknown` when no probe could tell (no sample or only nulls). In a
 *   pool with a storage heartbeat, an up sample whose life is dead-after old or more (xapi's lagging
 *   host_metrics.live) is set aside: it says nothing of now, and fresher sources exist.
 * - The pool is `observer_isolated` when the monitor reaches no host on the network (every
 *   observer-side sample down) while slots advance on the statefile and the hosts hear each other.
 *   Then the monitor's own network samples are set aside (they say something about the monitor),
 *   and no host is called dead.
 * - Per host: both paths down → `suspect`, then `dead` once no sample of any path, on any home, has
 *   shown life for dead-after (each sample says how old the life it shows is: a slot that last
 *   advanced 5 s ago shows life 5 s old; silence counted from no earlier than the first round the
 *   host was watched) and the current samples say both paths are down; only in a pool with a storage
 *   heartbeat (without one there is no second path to confirm a death). Network down and storage
 *   alive → `network_isolated` (what a network-only monitor would wrongly call dead); storage down
 *   and network alive → `storage_lost`; a home lost on either path, or a path without evidence next
 *   to a live one → `degraded`; else `healthy`. A path without evidence next to a dead one →
 *   `suspect`, never `dead`: one path's word is not enough.
 * - Hysteresis: a new state needs `confirmSamples` consecutive rounds saying so; a round without
 *   evidence changes nothing. Too many changes of the raw verdict within the flap window → `flapping`.
 */

export const HOST_STATES = ['healthy', 'degraded', 'network_isolated', 'storage_lost', 'suspect', 'dead', 'flapping'] as const;
export type HostState = (typeof HOST_STATES)[number];
export type PathName = 'network' | 'storage';
export type PathStatus = 'up' | 'degraded' | 'down' | 'unknown';

/**
 * Where a sample's evidence comes from (docs/classification.md):
 * - `monitor`: the exporter saw it itself this round (a TCP connect);
 * - `statefile`: a heartbeat read from the HA statefile (a slot's sequence, the peers' receipt times), with its age;
 * - `master`: a field the pool master writes from what it hears (host_metrics.live, ha_network_peers, ha_statefiles);
 * - `host`: a field the host writes about itself (its heartbeat PBD, multipath legs): frozen when it dies.
 */
export const EVIDENCE_SOURCES = ['monitor', 'statefile', 'master', 'host'] as const;
export type EvidenceSource = (typeof EVIDENCE_SOURCES)[number];

/** One probe's word on one path of one host, on one home. `up: null` = the probe could not tell. */
export interface Sample {
  probe: string;
  path: PathName;
  home: string;
  up: boolean | null;
  latencySeconds: number | null;
  detail: string;
  /**
   * The sample measures the monitor's own reach to the host (a TCP connect from the exporter), not
   * what the pool sees. Under observer isolation these are set aside.
   */
  observerSide: boolean;
  source: EvidenceSource;
  /**
   * How old the evidence is, in ms: for a sample that shows life (`up: true`), how long ago that life
   * was shown (0: this round); for a down sample, how long its source has been silent when it knows
   * (a stalled slot), else null.
   */
  ageMs: number | null;
  /**
   * For a sample that shows life: how much longer that life could have lasted unseen — until its source
   * could next have shown it (the monitor's next round, a slot's next write, a peer's next heartbeat).
   * Dead is counted from there, so that no host is called dead while it may have shown life within
   * dead-after between two looks. Absent: 0.
   */
  lifeWindowMs?: number;
}

export interface HostObservation {
  host: string;
  samples: Sample[];
}

export interface PoolObservation {
  /** Milliseconds on a monotonic clock. */
  at: number;
  hosts: HostObservation[];
  /**
   * The pool has a storage heartbeat the monitor reads (HA on and a statefile device configured).
   * Without one no host can be called dead: there is no second path to confirm the first.
   */
  storageHeartbeat: boolean;
}

export interface ClassifyPolicy {
  /** Consecutive rounds a new verdict needs before it becomes the state (≥ 1). */
  confirmSamples: number;
  /** No evidence of life on any path for this long (and both paths down now) → dead. */
  deadAfterMs: number;
  flapWindowMs: number;
  /** Raw verdict changes within the window that make a host flapping. */
  flapThreshold: number;
}

export const DEFAULT_POLICY: ClassifyPolicy = { confirmSamples: 2, deadAfterMs: 30_000, flapWindowMs: 60_000, flapThreshold: 6 };

/**
 * The rule that decided a host's state (docs/classification.md): shared by the exporter, explain and
 * the planner, so a reason is always one of these.
 */
export const CLASSIFY_RULES = [
  'initial',
  'no-evidence',
  'both-paths-down',
  'one-path-down-other-unknown',
  'network-down-storage-alive',
  'storage-down-network-alive',
  'both-paths-up',
  'home-lost',
  'path-without-evidence',
  'flapping',
  'dead-after',
  'observer-isolated',
  'no-storage-heartbeat',
] as const;
export type ClassifyRule = (typeof CLASSIFY_RULES)[number];

/** What the samples of one round say, before hysteresis. `none` = no evidence at all. */
export type RawVerdict = Exclude<HostState, 'dead' | 'flapping'> | 'none';

export interface Decision {
  state: HostState;
  rule: ClassifyRule;
  reason: string;
}

export interface HostMemory {
  host: string;
  state: HostState;
  rule: ClassifyRule;
  reason: string;
  /** When the current state began. */
  since: number;
  /** The verdict waiting for confirmation and how many consecutive rounds said it. */
  pending: { verdict: RawVerdict; count: number } | null;
  /** Start of the current run of rounds with both paths down; null when a path was up since. */
  bothDownSince: number | null;
  /**
   * When each path last showed life: the newest (round time − age) of its up samples, over every
   * round (the heartbeat age). Dead is counted from the newer of the two.
   */
  lastLife: { network: number | null; storage: number | null };
  /** Per path, the latest its life could have lasted unseen (lastLife plus the source's life window): dead is counted from the newer. */
  lifeBound: { network: number | null; storage: number | null };
  /**
   * The first round any sample of this host could tell (null: none yet). Silence is never counted
   * from before it: the monitor cannot vouch for a time it was not watching, whatever old life a
   * lagging sample dates.
   */
  watchedSince: number | null;
  /** Times of raw verdict changes within the flap window. */
  rawChanges: number[];
  lastRaw: RawVerdict;
  lastRawDecision: Decision;
  network: PathStatus;
  storage: PathStatus;
  /** The samples of the last round that had any. */
  lastSamples: Sample[];
  lastSampleAt: number | null;
  transitions: number;
}

export interface PoolMemory {
  at: number;
  observerIsolated: boolean;
  observerReason: string;
  /** Rounds in a row without the isolation evidence, to clear it with hysteresis. */
  observerClearCount: number;
  hosts: Record<string, HostMemory>;
}

export interface StateChange {
  host: string;
  from: HostState | null;
  to: HostState;
  rule: ClassifyRule;
  reason: string;
  at: number;
}

/**
 * An up sample whose life is at least `staleAfterMs` old says nothing about now: in a pool with a
 * storage heartbeat, fresher sources exist on both paths (the statefile's slots and peers, the
 * monitor's own connects), and a lagging word (xapi's host_metrics.live holds a host live for up to
 * T + 38 s after it died) must not hold a dead host alive. It is set aside for the verdict; the life
 * it shows still counts, dated by its age.
 */
export function isStale(s: Sample, staleAfterMs: number | null): boolean {
  return staleAfterMs !== null && s.up === true && (s.ageMs ?? 0) >= staleAfterMs;
}

export function assessPath(
  samples: readonly Sample[],
  path: PathName,
  ignoreObserverSide: boolean,
  staleAfterMs: number | null = null,
): { status: PathStatus; up: Sample[]; down: Sample[] } {
  const known = samples.filter(
    (s) => s.path === path && s.up !== null && !(ignoreObserverSide && s.observerSide) && !isStale(s, staleAfterMs),
  );
  const up = known.filter((s) => s.up === true);
  const down = known.filter((s) => s.up === false);
  if (known.length === 0) return { status: 'unknown', up, down };
  if (up.length === 0) return { status: 'down', up, down };
  return { status: down.length > 0 ? 'degraded' : 'up', up, down };
}

function names(samples: readonly Sample[]): string {
  return samples.map((s) => `${s.probe}[${s.home}]`).join(', ');
}

/** The verdict of one round for one host, with the rule and a reason a person can read. */
export function rawVerdict(
  samples: readonly Sample[],
  observerIsolated: boolean,
  staleAfterMs: number | null = null,
): Decision & { verdict: RawVerdict; network: PathStatus; storage: PathStatus } {
  const net = assessPath(samples, 'network', observerIsolated, staleAfterMs);
  const sto = assessPath(samples, 'storage', false, staleAfterMs);
  const base = { network: net.status, storage: sto.status };
  if (net.status === 'unknown' && sto.status === 'unknown') {
    return { ...base, verdict: 'none', state: 'healthy', rule: 'no-evidence', reason: 'no probe could tell anything this round' };
  }
  if (net.status === 'down' && sto.status === 'down') {
    return {
      ...base,
      verdict: 'suspect',
      state: 'suspect',
      rule: 'both-paths-down',
      reason: `every sample of both paths is down (${names([...net.down, ...sto.down])})`,
    };
  }
  if ((net.status === 'down' && sto.status === 'unknown') || (net.status === 'unknown' && sto.status === 'down')) {
    const [d, u] = net.status === 'down' ? ['network', 'storage'] : ['storage', 'network'];
    return {
      ...base,
      verdict: 'suspect',
      state: 'suspect',
      rule: 'one-path-down-other-unknown',
      reason: `${d} path down, no evidence on the ${u} path: never dead on one path's word`,
    };
  }
  if (net.status === 'down') {
    return {
      ...base,
      verdict: 'network_isolated',
      state: 'network_isolated',
      rule: 'network-down-storage-alive',
      reason: `network down (${names(net.down)}) while the storage path is alive (${names(sto.up)}): a network-only monitor would call it dead`,
    };
  }
  if (sto.status === 'down') {
    return {
      ...base,
      verdict: 'storage_lost',
      state: 'storage_lost',
      rule: 'storage-down-network-alive',
      reason: `storage down (${names(sto.down)}) while the network path is alive (${names(net.up)})`,
    };
  }
  if (net.status === 'up' && sto.status === 'up') {
    return { ...base, verdict: 'healthy', state: 'healthy', rule: 'both-paths-up', reason: 'both paths up on every home' };
  }
  const lost = [...net.down, ...sto.down];
  const missing = [net.status === 'unknown' ? 'network' : null, sto.status === 'unknown' ? 'storage' : null].filter(Boolean);
  return {
    ...base,
    verdict: 'degraded',
    state: 'degraded',
    rule: lost.length > 0 ? 'home-lost' : 'path-without-evidence',
    reason:
      lost.length > 0 ? `alive on both paths, but down on ${names(lost)}` : `alive, but no evidence on the ${missing.join(' and ')} path`,
  };
}

/**
 * The pool-level verdict: is the monitor itself cut off? Evidence: observer-side samples exist and
 * none is up, while some host's storage path is up and some host is heard by its peers (one-host
 * pools: storage alone).
 */
export function observerIsolation(obs: PoolObservation, staleAfterMs: number | null = null): { isolated: boolean; reason: string } {
  const all = obs.hosts.flatMap((h) => h.samples);
  const observerSide = all.filter((s) => s.observerSide && s.up !== null);
  if (observerSide.length === 0) return { isolated: false, reason: 'no observer-side samples' };
  if (observerSide.some((s) => s.up)) return { isolated: false, reason: 'the monitor reaches at least one host' };
  const storageUp = obs.hosts.filter((h) => assessPath(h.samples, 'storage', false, staleAfterMs).up.length > 0).length;
  const peerHeard = obs.hosts.filter((h) =>
    h.samples.some((s) => s.path === 'network' && !s.observerSide && s.up === true && !isStale(s, staleAfterMs)),
  ).length;
  if (storageUp > 0 && (peerHeard > 0 || obs.hosts.length === 1)) {
    return {
      isolated: true,
      reason: `the monitor reaches no host on the network, yet ${storageUp} host(s) write the statefile and ${peerHeard} are heard by their peers`,
    };
  }
  return { isolated: false, reason: 'the monitor reaches no host, and neither does anything else' };
}

function newHost(host: string, at: number): HostMemory {
  const d: Decision = { state: 'healthy', rule: 'initial', reason: 'no sample yet' };
  return {
    host,
    state: 'healthy',
    rule: 'initial',
    reason: 'no sample yet',
    since: at,
    pending: null,
    bothDownSince: null,
    rawChanges: [],
    lastRaw: 'none',
    lastRawDecision: d,
    network: 'unknown',
    storage: 'unknown',
    lastSamples: [],
    lastSampleAt: null,
    lastLife: { network: null, storage: null },
    lifeBound: { network: null, storage: null },
    watchedSince: null,
    transitions: 0,
  };
}

/** Where the pool has a storage heartbeat, up samples showing life at least dead-after old are set aside. */
function staleAfter(storageHeartbeat: boolean, policy: ClassifyPolicy): number | null {
  return storageHeartbeat ? policy.deadAfterMs : null;
}

/** The newest life a path's up samples show (round time − age), or the one known before. */
function newestLife(samples: readonly Sample[], path: PathName, at: number, before: number | null, withWindow = false): number | null {
  let newest = before;
  for (const s of samples) {
    if (s.path !== path || s.up !== true) continue;
    const t = at - Math.max(0, s.ageMs ?? 0) + (withWindow ? Math.max(0, s.lifeWindowMs ?? 0) : 0);
    if (newest === null || t > newest) newest = t;
  }
  return newest;
}

/** The newer of two times, either of which may be unknown. */
function newer(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.max(a, b);
}

/** Why no host is called dead in this pool right now, or null when one may be. */
function noDeathReason(observerIsolated: boolean, storageHeartbeat: boolean): { rule: ClassifyRule; why: string } | null {
  if (observerIsolated) return { rule: 'observer-isolated', why: 'the monitor is cut off from the pool, so no host is called dead' };
  if (!storageHeartbeat)
    return {
      rule: 'no-storage-heartbeat',
      why: 'this pool has no storage heartbeat the monitor reads (HA off, or no statefile device), so no host is called dead',
    };
  return null;
}

function stepHost(
  prev: HostMemory,
  samples: readonly Sample[],
  at: number,
  observerIsolated: boolean,
  storageHeartbeat: boolean,
  policy: ClassifyPolicy,
): { next: HostMemory; change: StateChange | null } {
  const stale = staleAfter(storageHeartbeat, policy);
  const raw = rawVerdict(samples, observerIsolated, stale);
  // Dead counts every sample, the monitor's own included, even while they are set aside for the verdict.
  const bothDown = raw.network === 'down' && raw.storage === 'down' && assessPath(samples, 'network', false, stale).status === 'down';
  // Continuous evidence: any round with evidence that is not "both paths down" restarts the count.
  const bothDownSince = bothDown ? (prev.bothDownSince ?? at) : samples.some((s) => s.up !== null) ? null : prev.bothDownSince;
  // Life is life, whatever the verdict: the monitor's own samples count even while set aside.
  const lastLife = {
    network: newestLife(samples, 'network', at, prev.lastLife.network),
    storage: newestLife(samples, 'storage', at, prev.lastLife.storage),
  };
  const lifeBound = {
    network: newestLife(samples, 'network', at, prev.lifeBound.network, true),
    storage: newestLife(samples, 'storage', at, prev.lifeBound.storage, true),
  };
  const watchedSince = prev.watchedSince ?? (samples.some((s) => s.up !== null) ? at : null);
  if (raw.verdict === 'none') {
    // A round without a verdict changes no state (a dropped sample); its samples (all "cannot
    // tell", or the monitor's own set aside) replace the last ones, so no stale up/down is shown.
    return {
      next: {
        ...prev,
        network: raw.network,
        storage: raw.storage,
        bothDownSince,
        lastLife,
        lifeBound,
        watchedSince,
        lastSamples: [...samples],
      },
      change: null,
    };
  }
  const next: HostMemory = {
    ...prev,
    network: raw.network,
    storage: raw.storage,
    lastSamples: [...samples],
    lastSampleAt: at,
    lastRawDecision: { state: raw.state, rule: raw.rule, reason: raw.reason },
    lastLife,
    lifeBound,
    watchedSince,
  };
  const anyUp = [raw.network, raw.storage].some((s) => s === 'up' || s === 'degraded');
  next.bothDownSince = bothDownSince;
  next.rawChanges = prev.rawChanges.filter((t) => at - t < policy.flapWindowMs);
  if (prev.lastRaw !== 'none' && prev.lastRaw !== raw.verdict) next.rawChanges.push(at);
  // Only whether the threshold is reached matters: keep at most that many.
  if (next.rawChanges.length > policy.flapThreshold) next.rawChanges = next.rawChanges.slice(-policy.flapThreshold);
  next.lastRaw = raw.verdict;
  const count = prev.pending?.verdict === raw.verdict ? prev.pending.count + 1 : 1;
  next.pending = { verdict: raw.verdict, count };
  const noDeath = noDeathReason(observerIsolated, storageHeartbeat);

  let decision: Decision;
  // Both paths down, confirmed, overrides flapping: a host that flapped and then died must still
  // go suspect, and dead after dead-after, on time.
  const confirmedDown = raw.verdict === 'suspect' && count >= policy.confirmSamples;
  if (next.rawChanges.length >= policy.flapThreshold && !confirmedDown) {
    decision = {
      state: 'flapping',
      rule: 'flapping',
      reason: `${next.rawChanges.length} verdict changes within ${policy.flapWindowMs / 1000} s (threshold ${policy.flapThreshold})`,
    };
  } else {
    const confirmed = count >= policy.confirmSamples || prev.state === raw.verdict;
    const rawDecision: Decision = { state: raw.state, rule: raw.rule, reason: raw.reason };
    decision = confirmed ? rawDecision : { state: prev.state, rule: prev.rule, reason: prev.reason };
    // Dead ends at once, without confirmation, on any up sample or when no host may be called dead.
    if (decision.state === 'dead' && (anyUp || noDeath)) decision = rawDecision;
    // Silence is counted from the latest the life last seen on either path could have lasted unseen
    // (its source's next chance to show it), and never from before the monitor started watching the
    // host (a host it never saw alive: from its first round).
    const silentSince = newer(newer(next.lifeBound.network, next.lifeBound.storage), watchedSince);
    const silentFor = silentSince === null ? 0 : at - silentSince;
    if (bothDown && !noDeath && (confirmed || prev.state === 'dead') && silentSince !== null && silentFor >= policy.deadAfterMs) {
      decision =
        prev.state === 'dead'
          ? { state: 'dead', rule: prev.rule, reason: prev.reason }
          : {
              state: 'dead',
              rule: 'dead-after',
              reason: `no evidence of life on any path for ${(silentFor / 1000).toFixed(1)} s (dead-after ${policy.deadAfterMs / 1000} s), both paths down now: ${raw.reason}`,
            };
    }
    if (decision.state === 'suspect' && raw.verdict === 'suspect' && noDeath) {
      decision = { state: 'suspect', rule: noDeath.rule, reason: `${raw.reason}; ${noDeath.why}` };
    }
  }
  if (decision.state === prev.state) {
    next.rule = decision.rule;
    next.reason = decision.reason;
    return { next, change: null };
  }
  next.state = decision.state;
  next.rule = decision.rule;
  next.reason = decision.reason;
  next.since = at;
  next.transitions = prev.transitions + 1;
  return { next, change: { host: prev.host, from: prev.state, to: decision.state, rule: decision.rule, reason: decision.reason, at } };
}

/** One round for a whole pool: the previous memory, this round's samples, the time → the next memory and the changes. */
export function classifyPool(
  prev: PoolMemory | undefined,
  obs: PoolObservation,
  policy: ClassifyPolicy = DEFAULT_POLICY,
): { next: PoolMemory; changes: StateChange[] } {
  // A round in which no probe could tell anything (every sample dropped) changes nothing, pool included.
  if (prev && !obs.hosts.some((h) => h.samples.some((s) => s.up !== null))) {
    return { next: { ...prev, at: obs.at }, changes: [] };
  }
  const iso = observerIsolation(obs, staleAfter(obs.storageHeartbeat, policy));
  const wasIsolated = prev?.observerIsolated ?? false;
  // Isolation is asserted at once (the safe direction) and cleared only after confirmSamples rounds.
  const clearCount = iso.isolated ? 0 : (prev?.observerClearCount ?? 0) + 1;
  const isolated = iso.isolated || (wasIsolated && clearCount < policy.confirmSamples);
  const hosts: Record<string, HostMemory> = {};
  const changes: StateChange[] = [];
  for (const h of obs.hosts) {
    const before = prev?.hosts[h.host] ?? newHost(h.host, obs.at);
    const { next, change } = stepHost(before, h.samples, obs.at, isolated, obs.storageHeartbeat, policy);
    hosts[h.host] = next;
    if (change) changes.push(change);
  }
  // Hosts no longer in the pool are dropped with the round. None stays dead while the monitor is cut
  // off or the pool has no storage heartbeat.
  const noDeath = noDeathReason(isolated, obs.storageHeartbeat);
  if (noDeath) {
    for (const mem of Object.values(hosts)) {
      if (mem.state !== 'dead') continue;
      const { rule, why: reason } = noDeath;
      changes.push({ host: mem.host, from: 'dead', to: 'suspect', rule, reason, at: obs.at });
      hosts[mem.host] = { ...mem, state: 'suspect', rule, reason, since: obs.at, transitions: mem.transitions + 1 };
    }
  }
  return {
    next: {
      at: obs.at,
      observerIsolated: isolated,
      observerReason: isolated && !iso.isolated ? `clearing: ${iso.reason}` : iso.reason,
      observerClearCount: clearCount,
      hosts,
    },
    changes,
  };
}
