/** Property tests of the planner on random pools (fast-check), against a brute force. */
import { describe, expect, it } from 'vitest';
import { test as fcTest, fc } from '@fast-check/vitest';
import { failuresToTolerate, whatIf } from '../../core/planner/capacity.ts';
import { DEFAULT_FENCE_POLICY, decideFences, type FencePolicy } from '../../core/planner/fence-gates.ts';
import {
  canHost,
  hostFree,
  isProtected,
  plannerSnapshot,
  type PlannerSnapshot,
  type PlannerSnapshotInput,
} from '../../core/planner/model.ts';
import { applyPlan, planRecovery } from '../../core/planner/plan.ts';

const G = 2 ** 30;

/** Random small pools: 1–8 hosts, up to 10 VMs placed within their host's memory. */
const poolArb = fc
  .record({
    hosts: fc.array(
      fc.record({
        mem: fc.integer({ min: 8, max: 40 }),
        dead: fc.integer({ min: 0, max: 9 }).map((x) => x < 2),
        disabled: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
      }),
      { minLength: 1, maxLength: 8 },
    ),
    vms: fc.array(
      fc.record({
        size: fc.integer({ min: 1, max: 12 }),
        host: fc.nat(),
        prio: fc.constantFrom('restart', 'restart', 'best-effort', ''),
        order: fc.integer({ min: -1, max: 2 }),
        pinned: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
        pinHost: fc.nat(),
        halted: fc.integer({ min: 0, max: 7 }).map((x) => x === 0),
        delay: fc.constantFrom(0, 0, 5),
      }),
      { maxLength: 10 },
    ),
    masterIdx: fc.nat(),
    haEnabled: fc.boolean(),
  })
  .map(({ hosts, vms, masterIdx, haEnabled }) => {
    const hs = hosts.map((h, i) => ({
      uuid: `h${i}`,
      name: `host-${i}`,
      live: !h.dead,
      enabled: !h.disabled,
      memoryTotal: h.mem * G,
      memoryOverhead: 0,
      state: h.dead ? ('dead' as const) : ('healthy' as const),
      anyPathUp: h.dead ? false : true,
    }));
    const used = hs.map(() => 0);
    const vs = vms.flatMap((v, i): PlannerSnapshotInput['vms'] => {
      const hi = v.host % hs.length;
      if (v.halted)
        return [
          {
            uuid: `v${i}`,
            name: `vm-${i}`,
            powerState: 'Halted' as const,
            residentOn: null,
            haRestartPriority: v.prio,
            order: v.order,
            startDelay: v.delay,
            memoryNeed: v.size * G,
          },
        ];
      if (used[hi]! + v.size * G > hs[hi]!.memoryTotal) return [];
      used[hi] = used[hi]! + v.size * G;
      // Mostly pinned to the host it runs on; sometimes (a disk on another host's local SR) elsewhere.
      const pin = v.pinned ? `h${v.pinHost % 3 === 0 ? v.pinHost % hs.length : hi}` : null;
      return [
        {
          uuid: `v${i}`,
          name: `vm-${i}`,
          powerState: 'Running' as const,
          residentOn: `h${hi}`,
          haRestartPriority: v.prio,
          order: v.order,
          startDelay: v.delay,
          memoryNeed: v.size * G,
          pinnedTo: pin,
        },
      ];
    });
    return plannerSnapshot.parse({
      pool: { name: 'p', master: `h${masterIdx % hs.length}`, haEnabled, hostFailuresToTolerate: 1 },
      hosts: hs,
      vms: vs,
    });
  });

/** Brute force: every failure set, every assignment (memoised on the remaining capacities). */
function bruteForce(s: PlannerSnapshot): number {
  const live = s.hosts.filter((h) => h.live && !h.fenced && h.state !== 'dead').map((h) => h.uuid);
  const takes = new Set(s.hosts.filter(canHost).map((h) => h.uuid));
  const free = hostFree(s);
  const prot = s.vms.filter(isProtected);
  const fits = (items: { size: number; pin: string | null }[], bins: string[]): boolean => {
    const memo = new Set<string>();
    const caps = bins.map((b) => free.get(b)!);
    const go = (k: number): boolean => {
      if (k === items.length) return true;
      const key = `${k}|${caps.join(',')}`;
      if (memo.has(key)) return false;
      for (let i = 0; i < bins.length; i++) {
        if (items[k]!.pin !== null && items[k]!.pin !== bins[i]) continue;
        if (caps[i]! >= items[k]!.size) {
          caps[i] = caps[i]! - items[k]!.size;
          if (go(k + 1)) return true;
          caps[i] = caps[i]! + items[k]!.size;
        }
      }
      memo.add(key);
      return false;
    };
    return go(0);
  };
  let best = -1;
  for (let k = 0; k <= live.length - 1; k++) {
    let all = true;
    for (let mask = 0; mask < 1 << live.length && all; mask++) {
      if (popcount(mask) !== k) continue;
      const failed = new Set(live.filter((_, i) => mask & (1 << i)));
      const items = prot
        .filter((v) => failed.has(v.residentOn!) || !live.includes(v.residentOn!))
        .map((v) => ({ size: v.memoryNeed, pin: v.pinnedTo }));
      all = fits(
        items,
        live.filter((h) => !failed.has(h) && takes.has(h)),
      );
    }
    if (!all) break;
    best = k;
  }
  return Math.max(0, best);
}

function popcount(x: number): number {
  let c = 0;
  for (; x; x &= x - 1) c++;
  return c;
}

const permissive: FencePolicy = { ...DEFAULT_FENCE_POLICY, quorumFraction: 1, maxConcurrentFences: 64, maxFencesInWindow: 64 };
const ctx = (policy = permissive) => ({
  observerIsolated: false,
  history: { fences: [], inFlight: [] },
  fencePolicy: policy,
  now: 1_000_000,
});

describe('failures to tolerate', () => {
  fcTest.prop([poolArb], { numRuns: 300 })('lower ≤ exact ≤ upper, and exact equals a brute force', (s) => {
    const c = failuresToTolerate(s);
    expect(c.exact).not.toBeNull();
    expect(c.exact).toBe(bruteForce(s));
    expect(c.lower).toBeLessThanOrEqual(c.exact!);
    expect(c.exact!).toBeLessThanOrEqual(c.upper);
  });

  it('answers what-if with a placement or a reason', () => {
    const s = plannerSnapshot.parse({
      pool: { name: 'p', master: 'a', haEnabled: true, hostFailuresToTolerate: 1 },
      hosts: ['a', 'b', 'c'].map((u) => ({ uuid: u, name: u, live: true, enabled: true, memoryTotal: 10 * G, memoryOverhead: 0 })),
      vms: [
        { uuid: 'v1', name: 'v1', powerState: 'Running', residentOn: 'a', haRestartPriority: 'restart', memoryNeed: 6 * G },
        { uuid: 'v2', name: 'v2', powerState: 'Running', residentOn: 'b', haRestartPriority: 'restart', memoryNeed: 6 * G },
      ],
    });
    expect(whatIf(s, ['a'])).toMatchObject({ survives: true, placement: { v1: expect.stringMatching(/^[bc]$/) } });
    expect(whatIf(s, ['a', 'b'])).toMatchObject({ survives: false, reason: expect.stringContaining('survivors have') });
    expect(failuresToTolerate(s)).toMatchObject({ lower: 1, exact: 1, upper: 1, witness: { hosts: expect.any(Array) } });
    expect(() => whatIf(s, ['zz'])).toThrow('no host with UUID zz');
  });
});

describe('recovery plan', () => {
  fcTest.prop([poolArb])("never places beyond a host's free memory", (s) => {
    const plan = planRecovery(s, ctx());
    const free = hostFree(s);
    const load = new Map<string, number>();
    for (const st of plan.steps)
      if (st.kind === 'start-vm') load.set(st.host, (load.get(st.host) ?? 0) + s.vms.find((v) => v.uuid === st.vm)!.memoryNeed);
    for (const [h, l] of load) expect(l).toBeLessThanOrEqual(free.get(h)!);
  });

  fcTest.prop([poolArb])('never starts a VM before its old host is confirmed fenced', (s) => {
    const plan = planRecovery(s, ctx());
    const confirmed = new Set<string>();
    for (const st of plan.steps) {
      if (st.kind === 'confirm-fenced') confirmed.add(st.host);
      if (st.kind === 'start-vm') expect(confirmed.has(s.vms.find((v) => v.uuid === st.vm)!.residentOn!)).toBe(true);
      if (st.kind === 'reset-power-state') expect(confirmed.has(st.host)).toBe(true);
    }
  });

  fcTest.prop([poolArb, fc.array(fc.boolean(), { minLength: 8, maxLength: 8 })])('never fences a host with any path up', (s, up) => {
    const t = { ...s, hosts: s.hosts.map((h, i) => ({ ...h, anyPathUp: h.state === 'dead' ? up[i]! : true })) };
    const plan = planRecovery(t, ctx());
    for (const st of plan.steps) if (st.kind === 'fence') expect(t.hosts.find((h) => h.uuid === st.host)!.anyPathUp).toBe(false);
  });

  fcTest.prop([
    poolArb,
    fc.integer({ min: 0, max: 3 }),
    fc.integer({ min: 0, max: 4 }),
    fc.integer({ min: 0, max: 3 }),
    fc.integer({ min: 0, max: 3 }),
  ])('never fences more than the storm limits allow', (s, maxConcurrent, maxWindow, inFlight, recent) => {
    const policy: FencePolicy = { ...permissive, maxConcurrentFences: maxConcurrent, maxFencesInWindow: maxWindow };
    const history = {
      fences: Array.from({ length: recent }, (_, i) => ({ host: `old${i}`, at: 999_000 })),
      inFlight: Array.from({ length: inFlight }, (_, i) => `busy${i}`),
    };
    const plan = planRecovery(s, { ...ctx(policy), history });
    const fences = plan.steps.filter((st) => st.kind === 'fence').length;
    expect(fences).toBeLessThanOrEqual(Math.max(0, maxConcurrent - inFlight));
    expect(fences).toBeLessThanOrEqual(Math.max(0, maxWindow - recent));
  });

  fcTest.prop([poolArb, fc.boolean(), fc.boolean()])(
    'hands the master role over before any restart when the master died',
    (s, masterFencedRecently, masterPathUp) => {
      // Sometimes the master's own fence is refused (cooldown, a path up): then nothing may need XAPI.
      const t = {
        ...s,
        hosts: s.hosts.map((h) => (h.uuid === s.pool.master && h.state === 'dead' ? { ...h, anyPathUp: masterPathUp } : h)),
      };
      const history = { fences: masterFencedRecently ? [{ host: s.pool.master, at: 999_000 }] : [], inFlight: [] };
      const plan = planRecovery(t, { ...ctx(), history });
      s = t;
      const recovered = new Set([...plan.fences.fence, ...plan.fences.alreadyFenced]);
      const firstStart = plan.steps.findIndex((st) => st.kind === 'start-vm' || st.kind === 'reset-power-state');
      const master = s.hosts.find((h) => h.uuid === s.pool.master)!;
      if (master.state === 'dead' && !recovered.has(master.uuid)) expect(firstStart).toBe(-1);
      if (!recovered.has(s.pool.master) || firstStart < 0) return;
      const handover = plan.steps.findIndex((st) => st.kind === (s.pool.haEnabled ? 'await-master-election' : 'transition-master'));
      expect(handover).toBeGreaterThanOrEqual(0);
      expect(handover).toBeLessThan(firstStart);
    },
  );

  fcTest.prop([poolArb, fc.nat()], { numRuns: 300 })(
    'a pool whose plan exists for k keeps one for k − 1 after one real failure is handled',
    (s, pick) => {
      const before = failuresToTolerate(s).exact!;
      const live = s.hosts.filter(canHost);
      if (before < 1 || live.length < 2) return;
      const victim = live[pick % live.length]!;
      const failed = { ...s, hosts: s.hosts.map((h) => (h.uuid === victim.uuid ? { ...h, state: 'dead' as const, anyPathUp: false } : h)) };
      const plan = planRecovery(failed, ctx());
      expect(plan.unplaced.filter((u) => s.vms.find((v) => v.uuid === u.vm)!.haRestartPriority === 'restart')).toEqual([]);
      const after = failuresToTolerate(applyPlan(failed, plan)).exact!;
      expect(after).toBeGreaterThanOrEqual(before - 1);
    },
  );
});

describe('survivors silent this round', () => {
  /**
   * Host b is dead with three 4 GiB protected VMs; c and d survive with 12 GiB free each (a, the master,
   * is full). `c` and `d` are the survivors' verdicts: the state and whether a path shows life now.
   */
  const pool = (c: { state: 'healthy' | 'suspect'; up: boolean }, d: { state: 'healthy' | 'suspect'; up: boolean }, cFree = 12) =>
    plannerSnapshot.parse({
      pool: { name: 'p', master: 'a', haEnabled: false, hostFailuresToTolerate: 1 },
      hosts: [
        { uuid: 'a', name: 'a', live: true, enabled: true, memoryTotal: 4 * G, memoryOverhead: 0, state: 'healthy', anyPathUp: true },
        { uuid: 'b', name: 'b', live: true, enabled: true, memoryTotal: 12 * G, memoryOverhead: 0, state: 'dead', anyPathUp: false },
        { uuid: 'c', name: 'c', live: true, enabled: true, memoryTotal: cFree * G, memoryOverhead: 0, state: c.state, anyPathUp: c.up },
        { uuid: 'd', name: 'd', live: true, enabled: true, memoryTotal: 12 * G, memoryOverhead: 0, state: d.state, anyPathUp: d.up },
      ],
      vms: [
        { uuid: 'full', name: 'full', powerState: 'Running', residentOn: 'a', haRestartPriority: '', memoryNeed: 4 * G },
        ...[1, 2, 3].map((i) => ({
          uuid: `v${i}`,
          name: `v${i}`,
          powerState: 'Running' as const,
          residentOn: 'b',
          haRestartPriority: 'restart' as const,
          memoryNeed: 4 * G,
        })),
      ],
    });
  const startsOn = (s: PlannerSnapshot) =>
    planRecovery(s, ctx())
      .steps.filter((st) => st.kind === 'start-vm')
      .map((st) => (st.kind === 'start-vm' ? st.host : ''));

  it('every survivor silent this round, none confirmed (the monitor stalled): every VM still gets a host', () => {
    const s = pool({ state: 'healthy', up: false }, { state: 'healthy', up: false });
    const plan = planRecovery(s, ctx());
    expect(plan.unplaced).toEqual([]);
    expect(startsOn(s)).toHaveLength(3);
    expect(plan.steps.find((st) => st.kind === 'start-vm')?.reason).toContain('silent this round');
  });

  it('a survivor confirmed silent (suspect) takes nothing: what fits only there is unplaced', () => {
    const s = pool({ state: 'suspect', up: false }, { state: 'healthy', up: true });
    expect(startsOn(s)).toEqual(['d', 'd', 'd']);
    expect(planRecovery(pool({ state: 'suspect', up: false }, { state: 'suspect', up: false }), ctx()).unplaced.map((u) => u.name)).toEqual(
      ['v1', 'v2', 'v3'],
    );
  });

  it('a survivor silent this round is a last resort: used only for what fits on no host showing life', () => {
    expect(startsOn(pool({ state: 'healthy', up: false }, { state: 'healthy', up: true }))).toEqual(['d', 'd', 'd']);
    // c shows life but has room for one VM only: the two others go to d, silent this round.
    expect(startsOn(pool({ state: 'healthy', up: true }, { state: 'healthy', up: false }, 4)).sort()).toEqual(['c', 'd', 'd']);
  });

  it('the master role goes to a survivor showing life before one silent this round', () => {
    const s = pool({ state: 'healthy', up: false }, { state: 'healthy', up: true });
    const dead = { ...s, hosts: s.hosts.map((h) => (h.uuid === 'a' ? { ...h, state: 'dead' as const, anyPathUp: false } : h)) };
    const plan = planRecovery(dead, ctx());
    expect(plan.steps.find((st) => st.kind === 'transition-master')).toMatchObject({ host: 'd' });
  });

  fcTest.prop([poolArb, fc.array(fc.constantFrom('life', 'silent', 'suspect-silent'), { minLength: 8, maxLength: 8 })])(
    'never gives a VM nor the master role to a host confirmed silent, nor leaves a protected VM unplaced while a survivor has room for it',
    (s, marks) => {
      const t = {
        ...s,
        hosts: s.hosts.map((h, i) =>
          h.state === 'dead' || marks[i] === 'life'
            ? h
            : { ...h, anyPathUp: false, state: marks[i] === 'suspect-silent' ? ('suspect' as const) : h.state },
        ),
      };
      const plan = planRecovery(t, ctx());
      const suspect = new Set(t.hosts.filter((h) => h.state === 'suspect').map((h) => h.uuid));
      for (const st of plan.steps) if (st.kind === 'start-vm' || st.kind === 'transition-master') expect(suspect.has(st.host)).toBe(false);
      // A protected VM left unplaced does not fit on any survivor (showing life or not) once the plan's starts are counted.
      const free = hostFree(applyPlan(t, plan));
      const takes = t.hosts.filter((h) => canHost(h) && !suspect.has(h.uuid) && !plan.fences.fence.includes(h.uuid));
      for (const u of plan.unplaced) {
        const v = t.vms.find((x) => x.uuid === u.vm)!;
        if (v.haRestartPriority !== 'restart') continue;
        const fitsSomewhere = takes.some((h) => (v.pinnedTo === null || v.pinnedTo === h.uuid) && free.get(h.uuid)! >= v.memoryNeed);
        expect(fitsSomewhere, `${v.name} unplaced (${u.reason}) though a survivor has room`).toBe(false);
      }
    },
  );
});

describe('exact placement search', () => {
  it('does not treat two bins with equal free memory as the same when an item is pinned to one', async () => {
    const { exactFeasible } = await import('../../core/planner/packing.ts');
    const r = exactFeasible(
      [
        { id: 'X', size: 6, pinnedTo: null },
        { id: 'Y', size: 5, pinnedTo: 'A' },
      ],
      [
        { id: 'A', free: 10 },
        { id: 'B', free: 10 },
      ],
    );
    expect(r.result).toBe('feasible');
    expect(r.placement).toEqual(
      new Map([
        ['X', 'B'],
        ['Y', 'A'],
      ]),
    );
  });
});

describe('fence gates', () => {
  const base = (dead: string[], extra: Partial<PlannerSnapshot['hosts'][number]> = {}) =>
    plannerSnapshot.parse({
      pool: { name: 'p', master: 'a', haEnabled: false, hostFailuresToTolerate: 1 },
      hosts: ['a', 'b', 'c', 'd', 'e'].map((u) => ({
        uuid: u,
        name: u,
        live: !dead.includes(u),
        enabled: true,
        memoryTotal: 10 * G,
        memoryOverhead: 0,
        state: dead.includes(u) ? 'dead' : 'healthy',
        anyPathUp: !dead.includes(u),
        ...(dead.includes(u) ? extra : {}),
      })),
      vms: [],
    });
  const hist = { fences: [], inFlight: [] };

  it('refuses everything under observer isolation', () => {
    expect(decideFences(base(['b']), true, hist, DEFAULT_FENCE_POLICY, 0)).toMatchObject({
      fence: [],
      refused: [{ host: 'b', gate: 'observer-isolated' }],
    });
  });
  it('refuses when most of the pool looks dead, unless overridden', () => {
    expect(decideFences(base(['b', 'c', 'd']), false, hist, DEFAULT_FENCE_POLICY, 0).refused.map((r) => r.gate)).toEqual([
      'quorum',
      'quorum',
      'quorum',
    ]);
    expect(
      decideFences(base(['b', 'c', 'd']), false, hist, { ...DEFAULT_FENCE_POLICY, overrideQuorum: true, maxConcurrentFences: 5 }, 0).fence,
    ).toEqual(['b', 'c', 'd']);
  });
  it('refuses a host without two-path evidence unless allowed, and does not count fenced hosts for quorum', () => {
    const noEvidence = plannerSnapshot.parse({ ...base(['b']), hosts: base(['b']).hosts.map(({ anyPathUp: _a, ...h }) => h) });
    expect(decideFences(noEvidence, false, hist, DEFAULT_FENCE_POLICY, 0).refused[0]).toMatchObject({
      host: 'b',
      gate: 'no-path-evidence',
    });
    expect(decideFences(noEvidence, false, hist, { ...DEFAULT_FENCE_POLICY, allowWithoutPathEvidence: true }, 0).fence).toEqual(['b']);
    const s = plannerSnapshot.parse({
      ...base(['b', 'c', 'd']),
      hosts: base(['b', 'c', 'd']).hosts.map((h) => (h.uuid === 'b' || h.uuid === 'c' ? { ...h, fenced: true } : h)),
    });
    expect(decideFences(s, false, hist, DEFAULT_FENCE_POLICY, 0)).toMatchObject({ fence: ['d'], alreadyFenced: ['b', 'c'] });
  });

  it('never fences twice, respects the cooldown, and puts the master first', () => {
    expect(decideFences(base(['b'], { fenced: true }), false, hist, DEFAULT_FENCE_POLICY, 0)).toMatchObject({
      fence: [],
      alreadyFenced: ['b'],
    });
    expect(
      decideFences(base(['b']), false, { fences: [{ host: 'b', at: 0 }], inFlight: [] }, DEFAULT_FENCE_POLICY, 60_000).refused[0],
    ).toMatchObject({ gate: 'cooldown' });
    expect(decideFences(base(['b']), false, { fences: [], inFlight: ['b'] }, DEFAULT_FENCE_POLICY, 0).refused[0]).toMatchObject({
      gate: 'in-flight',
    });
    expect(decideFences(base(['c', 'a']), false, hist, { ...DEFAULT_FENCE_POLICY, maxConcurrentFences: 2 }, 0).fence).toEqual(['a', 'c']);
  });
});
