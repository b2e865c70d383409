/**
 * Property tests of the classification state machine (fast-check, on simulated time), plus the named
 * scenarios. Each statefile sample that shows life carries an age (a slot that last advanced a while
 * ago): the properties check dead against the life the samples show, computed here from the rounds.
 */
import { describe, expect, it } from 'vitest';
import { test as fcTest, fc } from '@fast-check/vitest';
import {
  classifyPool,
  type ClassifyPolicy,
  type HostState,
  type PoolMemory,
  type PoolObservation,
  type Sample,
  type StateChange,
} from '../../core/classify/state-machine.ts';

const POLICY: ClassifyPolicy = { confirmSamples: 2, deadAfterMs: 3000, flapWindowMs: 10_000, flapThreshold: 6 };
const HOSTS = ['h1', 'h2', 'h3'];

type Word = boolean | null;
interface HostWords {
  tcp: [Word, Word];
  peers: Word;
  master: Word;
  slot: [Word, Word];
  /** Ages (ms) of the statefile's evidence: the peers' last receipt, each device's last slot change. */
  ages?: { peers: number; slot: [number, number] };
  /** Age of the master's word (xapi's live lags up to T + 20 s); 0 when left out. */
  masterAge?: number;
}

function samplesOf(w: HostWords): Sample[] {
  const s = (
    probe: string,
    path: 'network' | 'storage',
    home: string,
    up: Word,
    source: Sample['source'],
    ageMs = 0,
    observerSide = false,
  ): Sample => ({
    probe,
    path,
    home,
    up,
    latencySeconds: null,
    detail: '',
    observerSide,
    source,
    ageMs: up === true ? ageMs : null,
  });
  return [
    s('network-tcp', 'network', '0', w.tcp[0], 'monitor', 0, true),
    s('network-tcp', 'network', '1', w.tcp[1], 'monitor', 0, true),
    s('network-xapi', 'network', 'master', w.master, 'master', w.masterAge),
    s('storage-statefile', 'network', 'peers', w.peers, 'statefile', w.ages?.peers),
    s('storage-statefile', 'storage', '0', w.slot[0], 'statefile', w.ages?.slot[0]),
    s('storage-statefile', 'storage', '1', w.slot[1], 'statefile', w.ages?.slot[1]),
  ];
}

/** The newest life the words show at round time `at` (round time − age of each up sample), or null. */
function lifeShown(w: HostWords, at: number): number | null {
  const ups = [
    w.tcp[0] === true ? at : null,
    w.tcp[1] === true ? at : null,
    w.master === true ? at - (w.masterAge ?? 0) : null,
    w.peers === true ? at - (w.ages?.peers ?? 0) : null,
    w.slot[0] === true ? at - (w.ages?.slot[0] ?? 0) : null,
    w.slot[1] === true ? at - (w.ages?.slot[1] ?? 0) : null,
  ].filter((t): t is number => t !== null);
  return ups.length > 0 ? Math.max(...ups) : null;
}

const word = fc.oneof(fc.constant(true), fc.constant(false), fc.constant(null));
const age = fc.integer({ min: 0, max: 5000 });
const hostWords = fc.record({
  tcp: fc.tuple(word, word),
  peers: word,
  master: word,
  slot: fc.tuple(word, word),
  ages: fc.record({ peers: age, slot: fc.tuple(age, age) }),
});
/** Rounds with biased words: long runs of "all down" must happen for dead to be reachable. */
const allDown: HostWords = { tcp: [false, false], peers: false, master: false, slot: [false, false] };
const roundArb = fc.record({
  dt: fc.integer({ min: 100, max: 1500 }),
  hosts: fc.array(fc.oneof({ weight: 3, arbitrary: fc.constant(allDown) }, { weight: 2, arbitrary: hostWords }), {
    minLength: 3,
    maxLength: 3,
  }),
});
const runArb = fc.array(roundArb, { minLength: 1, maxLength: 60 });

type Round = { dt: number; hosts: HostWords[] };

function observe(at: number, round: Round, storageHeartbeat = true): PoolObservation {
  return { at, hosts: round.hosts.map((w, i) => ({ host: HOSTS[i]!, samples: samplesOf(w) })), storageHeartbeat };
}

function run(
  rounds: Round[],
  policy = POLICY,
  onRound?: (mem: PoolMemory, round: Round, at: number, changes: StateChange[]) => void,
  storageHeartbeat = true,
): PoolMemory | undefined {
  let mem: PoolMemory | undefined;
  let at = 0;
  for (const r of rounds) {
    at += r.dt;
    const step = classifyPool(mem, observe(at, r, storageHeartbeat), policy);
    mem = step.next;
    onRound?.(mem, r, at, step.changes);
  }
  return mem;
}

/** The words with every up sample showing life at least dead-after old turned into "cannot tell" (set aside). */
const fresh = (w: HostWords): HostWords => {
  const a = w.ages ?? { peers: 0, slot: [0, 0] };
  const keep = (x: Word, age: number): Word => (x === true && age >= POLICY.deadAfterMs ? null : x);
  return { ...w, peers: keep(w.peers, a.peers), slot: [keep(w.slot[0], a.slot[0]), keep(w.slot[1], a.slot[1])] };
};

const knownAllDown = (w: HostWords) => {
  const known = [...w.tcp, w.peers, w.master, ...w.slot].filter((x) => x !== null);
  const net = [...w.tcp, w.peers, w.master].filter((x) => x !== null);
  const sto = w.slot.filter((x) => x !== null);
  return known.length > 0 && net.length > 0 && sto.length > 0 && known.every((x) => x === false);
};

describe('classification properties', () => {
  fcTest.prop([runArb])('never dead while any sample of any path showed life within dead-after', (rounds) => {
    const life: (number | null)[] = HOSTS.map(() => null);
    run(rounds, POLICY, (mem, r, at) => {
      r.hosts.forEach((w, i) => {
        const shown = lifeShown(w, at);
        if (shown !== null) life[i] = Math.max(life[i] ?? -Infinity, shown);
        const state = mem.hosts[HOSTS[i]!]!.state;
        if (shown !== null && at - shown < POLICY.deadAfterMs) expect(state).not.toBe('dead');
        if (state === 'dead' && life[i] !== null) expect(at - life[i]!).toBeGreaterThanOrEqual(POLICY.deadAfterMs);
      });
    });
  });

  fcTest.prop([runArb])('never dead in a pool without a storage heartbeat', (rounds) => {
    run(
      rounds,
      POLICY,
      (mem) => {
        for (const h of Object.values(mem.hosts)) expect(h.state).not.toBe('dead');
      },
      false,
    );
  });

  fcTest.prop([runArb])('under observer isolation no host is dead', (rounds) => {
    run(rounds, POLICY, (mem) => {
      if (mem.observerIsolated) for (const h of Object.values(mem.hosts)) expect(h.state).not.toBe('dead');
    });
  });

  fcTest.prop([runArb])('a host becomes dead only on a round whose samples say both paths are down', (rounds) => {
    run(rounds, POLICY, (_mem, r, _at, changes) => {
      for (const c of changes) if (c.to === 'dead') expect(knownAllDown(fresh(r.hosts[HOSTS.indexOf(c.host)]!))).toBe(true);
    });
  });

  it('without a storage heartbeat a stale up sample still counts for the verdict (nothing fresher exists)', () => {
    const staleOnly: HostWords = {
      tcp: [null, null],
      peers: null,
      master: null,
      slot: [true, true],
      ages: { peers: 0, slot: [9000, 9000] },
    };
    let mem: PoolMemory | undefined;
    run([{ dt: 1000, hosts: [staleOnly, staleOnly, staleOnly] }], POLICY, (m) => (mem = m), false);
    expect(mem!.hosts.h1!.storage).toBe('up');
    run([{ dt: 1000, hosts: [staleOnly, staleOnly, staleOnly] }], POLICY, (m) => (mem = m), true);
    expect(mem!.hosts.h1!.storage).toBe('unknown');
  });

  const INTERVAL = 1000;
  /** xapi's live under HA lags up to T + 20 s: always older than dead-after here. */
  const LAG = 50_000;
  fcTest.prop([
    runArb,
    hostWords.filter((w) => lifeShown(w, 0) !== null && (w.ages.peers <= 2500 || w.peers !== true)),
    fc.array(fc.integer({ min: 100, max: INTERVAL }), { minLength: 12, maxLength: 12 }),
    fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
  ])(
    'dead no later than dead-after + sample interval × (confirm samples + 1) after the last evidence of life',
    (prefix, lastAlive, gaps, laggingLive) => {
      // Any history, then a round that shows life (at most 2.5 s old, as a slot or peer may), then
      // every sample of both paths down, rounds at most one interval apart; the other hosts stay up
      // (the monitor reaches them: no observer isolation).
      const up: HostWords = { tcp: [true, true], peers: true, master: true, slot: [true, true] };
      const withAges = (w: HostWords): HostWords => ({
        ...w,
        ages: { peers: Math.min(w.ages!.peers, 2500), slot: [Math.min(w.ages!.slot[0], 2500), Math.min(w.ages!.slot[1], 2500)] },
      });
      const rounds: Round[] = [
        ...prefix.map((r) => ({ ...r, dt: Math.min(r.dt, INTERVAL) })),
        { dt: INTERVAL, hosts: [withAges(lastAlive), up, up] },
        // The master's lagging word may still say live (set aside: its life is older than dead-after).
        ...gaps.map((dt, i) => ({ dt, hosts: [laggingLive[i] ? { ...allDown, master: true, masterAge: LAG } : allDown, up, up] })),
      ];
      let lastLife = -Infinity;
      const bound = () => lastLife + POLICY.deadAfterMs + INTERVAL * (POLICY.confirmSamples + 1);
      let checked = 0;
      let index = 0;
      run(rounds, POLICY, (mem, r, at) => {
        const shown = lifeShown(r.hosts[0]!, at);
        if (shown !== null) lastLife = Math.max(lastLife, shown);
        // From the round that showed the last life on: every later round says both paths down.
        if (index++ > prefix.length && at >= bound()) {
          expect(mem.hosts.h1!.state, `${at - lastLife} ms after the last evidence of life`).toBe('dead');
          checked++;
        }
      });
      // The run is long enough to reach the bound: the property said something.
      if (lastLife + POLICY.deadAfterMs + INTERVAL * (POLICY.confirmSamples + 1) <= rounds.reduce((t, r) => t + r.dt, 0)) {
        expect(checked).toBeGreaterThan(0);
      }
    },
  );

  fcTest.prop([runArb, fc.nat(), fc.integer({ min: 1, max: 99 })])(
    'one dropped sample (a round without evidence) never changes the state',
    (rounds, where, frac) => {
      const i = where % rounds.length;
      const dropped: Round = { dt: 0, hosts: HOSTS.map(() => ({ tcp: [null, null], peers: null, master: null, slot: [null, null] })) };
      // Insert the empty round between round i and i+1, at a time strictly between them.
      const next = rounds[i + 1];
      const withDrop = [
        ...rounds.slice(0, i + 1),
        { ...dropped, dt: next ? Math.floor((next.dt * frac) / 100) : 1 },
        ...(next ? [{ ...next, dt: next.dt - Math.floor((next.dt * frac) / 100) }, ...rounds.slice(i + 2)] : []),
      ];
      const states = (m: PoolMemory | undefined) => HOSTS.map((h) => m?.hosts[h]?.state);
      expect(states(run(withDrop))).toEqual(states(run(rounds)));
    },
  );

  fcTest.prop([hostWords, hostWords, fc.integer({ min: 2, max: 5 })])(
    'one contrary round between agreeing rounds never changes a settled state',
    (a, b, n) => {
      const settled: Round[] = Array.from({ length: n }, () => ({ dt: 100, hosts: [a, a, a] }));
      const before = run(settled)!.hosts.h1!.state;
      const after = run([...settled, { dt: 100, hosts: [b, b, b] }])!.hosts.h1!.state;
      // Only the safe exceptions: dead ends at once on an up sample, and isolation is asserted at once.
      if (before !== 'dead') expect(after).toBe(before);
    },
  );
});

describe('classification scenarios', () => {
  const up: HostWords = { tcp: [true, true], peers: true, master: true, slot: [true, true] };
  const netCut: HostWords = { tcp: [false, false], peers: false, master: false, slot: [true, true] };
  const stoCut: HostWords = { tcp: [true, true], peers: true, master: true, slot: [false, false] };
  const oneHome: HostWords = { ...up, tcp: [false, true] };
  const isolatedMonitor: HostWords = { tcp: [false, false], peers: true, master: null, slot: [true, true] };

  function states(seq: HostWords[], dt = 1000): HostState[] {
    const out: HostState[] = [];
    run(
      seq.map((w) => ({ dt, hosts: [w, up, up] })),
      POLICY,
      (m) => out.push(m.hosts.h1!.state),
    );
    return out;
  }

  it('network cut: network_isolated after confirmation, never dead', () => {
    expect(states([up, up, netCut, netCut, netCut, netCut, netCut, netCut])).toEqual([
      'healthy',
      'healthy',
      'healthy',
      'network_isolated',
      'network_isolated',
      'network_isolated',
      'network_isolated',
      'network_isolated',
    ]);
  });

  it('storage cut: storage_lost; one home lost: degraded', () => {
    expect(states([up, stoCut, stoCut]).at(-1)).toBe('storage_lost');
    expect(states([up, oneHome, oneHome]).at(-1)).toBe('degraded');
  });

  it('crash: suspect, then dead at dead-after from the last life shown, and back on the first up sample', () => {
    // Life at t = 1 s; both paths down from 2 s; dead-after 3 s → dead at 4 s, not 3 s after the first down round.
    expect(states([up, allDown, allDown, allDown, allDown, allDown, up])).toEqual([
      'healthy',
      'healthy',
      'suspect',
      'dead',
      'dead',
      'dead',
      'healthy',
    ]);
  });

  it('a slot that shows old life counts from that life, not from the round that read it', () => {
    // The last round before the crash read a slot that had last advanced 2 s before: life at −1 s.
    const staleSlot: HostWords = { ...up, ages: { peers: 0, slot: [2000, 2000] }, tcp: [false, false], master: false, peers: false };
    const out = states([up, staleSlot, allDown, allDown, allDown, allDown]);
    // Rounds at 1..6 s; the newest life is the tcp/master/peers at 1 s (the slot's at 0 s is older): dead at 4 s.
    expect(out).toEqual(['healthy', 'healthy', 'healthy', 'dead', 'dead', 'dead']);
  });

  it('no storage heartbeat: both paths down stays suspect, with its reason', () => {
    let mem: PoolMemory | undefined;
    run(
      [up, ...Array.from({ length: 10 }, () => allDown)].map((w) => ({ dt: 1000, hosts: [w, up, up] })),
      POLICY,
      (m) => (mem = m),
      false,
    );
    expect(mem!.hosts.h1).toMatchObject({ state: 'suspect', rule: 'no-storage-heartbeat' });
    expect(mem!.hosts.h1!.reason).toMatch(/no storage heartbeat/);
  });

  it('observer isolation: the pool is flagged at once and the hosts stay healthy', () => {
    let mem: PoolMemory | undefined;
    run(
      [
        { dt: 1000, hosts: [up, up, up] },
        { dt: 1000, hosts: [isolatedMonitor, isolatedMonitor, isolatedMonitor] },
      ],
      POLICY,
      (m) => (mem = m),
    );
    expect(mem!.observerIsolated).toBe(true);
    expect(Object.values(mem!.hosts).map((h) => h.state)).toEqual(['healthy', 'healthy', 'healthy']);
  });

  it('flapping: too many verdict changes in the window', () => {
    expect(states([up, netCut, up, netCut, up, netCut, up, netCut], 500).at(-1)).toBe('flapping');
  });

  it('keeps the reason of each state', () => {
    const m = run([netCut, netCut].map((w) => ({ dt: 1000, hosts: [w, up, up] })))!;
    expect(m.hosts.h1).toMatchObject({ state: 'network_isolated', rule: 'network-down-storage-alive' });
    expect(m.hosts.h1!.reason).toMatch(
      /network down \(network-tcp\[0\], network-tcp\[1\], network-xapi\[master\], storage-statefile\[peers\]\) while the storage path is alive/,
    );
  });
});

describe('flapping then dying', () => {
  it('a host that flapped and then died goes suspect, and dead after dead-after, on time', () => {
    const up: HostWords = { tcp: [true, true], peers: true, master: true, slot: [true, true] };
    const cut: HostWords = { tcp: [false, false], peers: false, master: false, slot: [true, true] };
    const seq = [up, cut, up, cut, up, cut, up, cut, ...Array.from({ length: 10 }, () => allDown)];
    const out: HostState[] = [];
    let at = 0;
    let diedAt = 0;
    let deadAt = 0;
    run(
      seq.map((w) => ({ dt: 500, hosts: [w, up, up] })),
      POLICY,
      (m, r, t) => {
        at = t;
        if (r.hosts[0] === allDown && diedAt === 0) diedAt = t;
        out.push(m.hosts.h1!.state);
        if (m.hosts.h1!.state === 'dead' && deadAt === 0) deadAt = at;
      },
    );
    expect(out).toContain('flapping');
    expect(out.slice(out.indexOf('flapping'))).toContain('suspect');
    // The last life shown was the round before the first all-down one, 500 ms earlier.
    const lastLife = diedAt - 500;
    expect(deadAt - lastLife).toBeGreaterThanOrEqual(POLICY.deadAfterMs);
    expect(deadAt - lastLife).toBeLessThanOrEqual(POLICY.deadAfterMs + 500);
  });
});
