/** Property tests of the classification state machine (fast-check), plus the named scenarios. */
import { describe, expect, it } from 'vitest';
import { test as fcTest, fc } from '@fast-check/vitest';
import {
  classifyPool,
  type ClassifyPolicy,
  type HostState,
  type PoolMemory,
  type PoolObservation,
  type Sample,
} from '../../core/classify/state-machine.ts';

const POLICY: ClassifyPolicy = { confirmSamples: 2, deadAfterMs: 3000, flapWindowMs: 10_000, flapThreshold: 6 };
const HOSTS = ['h1', 'h2', 'h3'];

type Word = boolean | null;
interface HostWords {
  tcp: [Word, Word];
  peers: Word;
  master: Word;
  slot: [Word, Word];
}

function samplesOf(w: HostWords): Sample[] {
  const s = (probe: string, path: 'network' | 'storage', home: string, up: Word, observerSide = false): Sample => ({
    probe,
    path,
    home,
    up,
    latencySeconds: null,
    detail: '',
    observerSide,
  });
  return [
    s('network-tcp', 'network', '0', w.tcp[0], true),
    s('network-tcp', 'network', '1', w.tcp[1], true),
    s('network-xapi', 'network', 'master', w.master),
    s('storage-statefile', 'network', 'peers', w.peers),
    s('storage-statefile', 'storage', '0', w.slot[0]),
    s('storage-statefile', 'storage', '1', w.slot[1]),
  ];
}

const word = fc.oneof(fc.constant(true), fc.constant(false), fc.constant(null));
const hostWords = fc.record({ tcp: fc.tuple(word, word), peers: word, master: word, slot: fc.tuple(word, word) });
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

function observe(at: number, round: Round): PoolObservation {
  return { at, hosts: round.hosts.map((w, i) => ({ host: HOSTS[i]!, samples: samplesOf(w) })) };
}

function run(rounds: Round[], policy = POLICY, onRound?: (mem: PoolMemory, round: Round, at: number) => void): PoolMemory | undefined {
  let mem: PoolMemory | undefined;
  let at = 0;
  for (const r of rounds) {
    at += r.dt;
    mem = classifyPool(mem, observe(at, r), policy).next;
    onRound?.(mem, r, at);
  }
  return mem;
}

const anyUp = (w: HostWords) => [...w.tcp, w.peers, w.master, ...w.slot].some((x) => x === true);
const knownAllDown = (w: HostWords) => {
  const known = [...w.tcp, w.peers, w.master, ...w.slot].filter((x) => x !== null);
  const net = [...w.tcp, w.peers, w.master].filter((x) => x !== null);
  const sto = w.slot.filter((x) => x !== null);
  return known.length > 0 && net.length > 0 && sto.length > 0 && known.every((x) => x === false);
};

describe('classification properties', () => {
  fcTest.prop([runArb])('a host with any path up on any home is never dead', (rounds) => {
    run(rounds, POLICY, (mem, r) => {
      r.hosts.forEach((w, i) => {
        if (anyUp(w)) expect(mem.hosts[HOSTS[i]!]!.state).not.toBe('dead');
      });
    });
  });

  fcTest.prop([runArb])('under observer isolation no host is dead', (rounds) => {
    run(rounds, POLICY, (mem) => {
      if (mem.observerIsolated) for (const h of Object.values(mem.hosts)) expect(h.state).not.toBe('dead');
    });
  });

  fcTest.prop([runArb])('dead needs dead-after of continuous evidence that both paths are down', (rounds) => {
    const streak: (number | null)[] = HOSTS.map(() => null);
    run(rounds, POLICY, (mem, r, at) => {
      r.hosts.forEach((w, i) => {
        const noEvidence = [...w.tcp, w.peers, w.master, ...w.slot].every((x) => x === null);
        if (knownAllDown(w)) streak[i] ??= at;
        else if (!noEvidence) streak[i] = null;
        if (mem.hosts[HOSTS[i]!]!.state === 'dead') {
          expect(streak[i]).not.toBeNull();
          expect(at - streak[i]!).toBeGreaterThanOrEqual(POLICY.deadAfterMs);
        }
      });
    });
  });

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

  it('crash: suspect, then dead after dead-after, and back on the first up sample', () => {
    expect(states([up, allDown, allDown, allDown, allDown, allDown, up])).toEqual([
      'healthy',
      'healthy',
      'suspect',
      'suspect',
      'dead',
      'dead',
      'healthy',
    ]);
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
    expect(deadAt - diedAt).toBeGreaterThanOrEqual(POLICY.deadAfterMs);
    expect(deadAt - diedAt).toBeLessThanOrEqual(POLICY.deadAfterMs + 500);
  });
});
