/**
 * xhad's liveset as the simulator models it: xha's state manager (daemon/sm.c, daemon/heartbeat.c) run
 * on every running host's views, the liveset following the xhad xapi's HA monitor queries (the master;
 * while no master runs, the lowest-slot running host, whose xhad carries on the survivors' fault
 * handling). The liveset's members run the fault handler in step, as xhad's rendezvous make them.
 *
 * - The two domains: each xhad keeps a heartbeat domain (the hosts it heard within T1) and a statefile
 *   domain (the hosts whose slot it saw change within T2; update_hbdomain, update_sfdomain). A host
 *   leaves a domain at once; it comes back only while no fault handler runs (join_block). They are what
 *   a host sends in its heartbeats, writes in its slot, and what xhad answers for it.
 * - The fault handler (fault_handler), started when a liveset host leaves one of the followed xhad's
 *   domains (start_fh; a statefile loss is ignored under Survival Rule 2). Phase 1 waits until the
 *   domains are stable (wait_until_HBSF_state_stable: every host still in a domain was seen there
 *   within T/4, or since phase 1 began); phase 2 until every liveset host in a domain has our view
 *   (wait_until_all_hosts_have_consistent_view), which a host that lost one path never has, so phase 2
 *   then runs out its timeout max(T1, T2); phase 3 applies the survival rule (test_Survival_Rule,
 *   am_I_in_largest_partition): the proposed liveset keeps the hosts in both domains (in the heartbeat
 *   domain only, under Survival Rule 2), and every winner takes the others out of its domains; phase 4
 *   sleeps max((max(Wh, Ws) − min(T1, T2) + max(t1, t2)) s − (phase 4 − phase 3), 10 s), plus
 *   min(T1, T2) when a host it drops was still in one domain (fh_sleep_extend), and only then removes
 *   the dropped hosts from the liveset. A degradation seen during phases 3 and 4 runs it again.
 * - Survival Rule 2: when every host is heard and none has the statefile, nobody is dropped for the
 *   statefile until every host has it again (surviving_by_SR2).
 * - Joining (process_join_request, and xhad's start-up on the joiner): a host out of the liveset joins
 *   once no fault handler runs, it is in both of the followed xhad's domains, which heard it and saw its
 *   slot change since its xhad started, and its start-up waits are over (wait_all_hosts_up_on_heartbeat
 *   / _on_statefile: every host in both of its domains, or T since it started). A host dropped while it
 *   kept running (in xha it fences itself) counts as restarting its xhad at the drop.
 *
 * Not modelled: self-fencing (a host that loses the survival rule, or its watchdog, keeps running
 * here), so when the followed xhad loses the survival rule it changes nothing (in xha it fences its
 * host before updating anything); the seconds phases 1 to 4 spend in rendezvous and in views catching
 * up; the partition merge phase 2 does when it times out; host weights; the excluded flag; xhad's
 * start-up aborts (Tboot) and join acknowledgements.
 */
import type { HostRuntime } from './pool.ts';

/** What the model reads from the running pool at a tick. */
export interface XhadView {
  readonly now: number;
  readonly hosts: readonly HostRuntime[];
  /** The host whose xhad's views the model follows (see the module comment). */
  readonly observer: HostRuntime;
  /** T1 = T2: xhad's heartbeat and statefile timeout. */
  readonly timeoutMs: number;
  /** The fault handler's phase-4 sleep before it updates the liveset (without fh_sleep_extend). */
  readonly dropDelayMs: number;
  readonly bootMs: number;
  isUp(h: HostRuntime): boolean;
}

/** Where the fault handler is: phases 1 and 2 (join_block on, not yet decided), then the phase-4 sleep before the drop. */
export type FaultHandlerState =
  | { phase: 'stabilise'; since: number }
  | { phase: 'consistent-view'; since: number }
  | { phase: 'sleep'; since: number; until: number; dropping: HostRuntime[]; extended: boolean };

export class XhadLiveset {
  readonly liveset = new Set<HostRuntime>();
  faultHandler: FaultHandlerState | null = null;
  /** Survival Rule 2 in force (xha's SR2: the liveset survives without the statefile). */
  sr2 = false;
  private needFh = false;
  /** Each host's xhad's heartbeat and statefile domains (as of its last run), and the boot they belong to. */
  private readonly hb = new Map<HostRuntime, Set<HostRuntime>>();
  private readonly sf = new Map<HostRuntime, Set<HostRuntime>>();
  private readonly domainsBoot = new Map<HostRuntime, number>();
  /** The boot during which each host was last in the liveset. */
  private readonly memberBoot = new Map<HostRuntime, number>();
  /**
   * A host dropped from the liveset while it kept running (in xha it fences itself then): its xhad
   * counts as restarted at the drop, in that boot.
   */
  private readonly restartedAt = new Map<HostRuntime, { boot: number; at: number }>();
  /** The xhad start (see xhadStart) whose start-up waits have finished, per host. */
  private readonly readyStart = new Map<HostRuntime, number>();

  /**
   * The liveset xhad forms when it starts on the pool (the Start Criteria with every host up): every
   * running host in both domains of the observer's view at this tick.
   */
  constructor(v: XhadView) {
    for (const h of v.hosts) {
      if (!v.isUp(h)) continue;
      this.readyStart.set(h, this.xhadStart(v, h));
      this.domainsOf(h);
      for (const p of v.hosts) {
        if (this.hbFresh(v, h, p)) this.hb.get(h)!.add(p);
        if (this.sfFresh(v, h, p)) this.sf.get(h)!.add(p);
      }
    }
    for (const h of v.hosts) {
      if (this.hbdomain(v).has(h) && this.sfdomain(v).has(h)) {
        this.liveset.add(h);
        this.memberBoot.set(h, h.bootedAt);
      }
    }
  }

  /** The observer's heartbeat domain (the hosts its xhad counts as heard). */
  hbdomain(v: Pick<XhadView, 'observer'>): ReadonlySet<HostRuntime> {
    return this.hb.get(v.observer) ?? new Set();
  }

  /** The observer's statefile domain (the hosts whose slot its xhad counts as changing). */
  sfdomain(v: Pick<XhadView, 'observer'>): ReadonlySet<HostRuntime> {
    return this.sf.get(v.observer) ?? new Set();
  }

  /** One step of every xhad thread the model follows, at v.now. */
  step(v: XhadView): void {
    let degraded = false;
    for (const viewer of v.hosts) {
      if (!v.isUp(viewer)) continue; // no xhad runs there: its views stay as it last sent them
      const [hb, sf] = this.domainsOf(viewer);
      for (const h of v.hosts) {
        if (hb.has(h) && !this.hbFresh(v, viewer, h)) {
          hb.delete(h);
          if (viewer === v.observer && this.liveset.has(h)) degraded = true;
        }
        if (sf.has(h) && !this.sfFresh(v, viewer, h)) {
          sf.delete(h);
          // start_fh ignores a statefile loss under SR2
          if (viewer === v.observer && this.liveset.has(h) && !this.sr2) degraded = true;
        }
      }
    }
    this.readmit(v);
    // start_fh: ignored while the handler is in phases 1 and 2 (they see the change anyway), queued in phases 3 and 4.
    if (degraded && (this.faultHandler === null || this.faultHandler.phase === 'sleep')) this.needFh = true;
    this.runFaultHandler(v);
    this.afterSlotReads(v);
    if (this.sr2) this.checkSr2Recovered(v);
  }

  /** After this tick's slots were written and read: hosts re-enter domains and join on them at once. */
  afterSlotReads(v: XhadView): void {
    this.readmit(v);
    this.join(v);
  }

  /** h's xhad's heartbeat and statefile domains as it last kept them (undefined: its xhad never ran in the model). */
  domains(h: HostRuntime): { hb: ReadonlySet<HostRuntime>; sf: ReadonlySet<HostRuntime> } | undefined {
    const hb = this.hb.get(h);
    const sf = this.sf.get(h);
    return hb && sf ? { hb, sf } : undefined;
  }

  /** Whether xhad's answer to the liveset query names h live. */
  has(h: HostRuntime): boolean {
    return this.liveset.has(h);
  }

  /**
   * The statefile access xhad answers for h (xha daemon/sc_func.c): false out of the liveset; in it,
   * true (Survival Rule 1: a host that lost the statefile is dropped, and fenced, by then), or, under
   * Survival Rule 2, what h reported (its own statefile domain holds it). The observer answers for
   * itself as a member (the simulator's running master is always in its own liveset).
   */
  statefileAccess(v: XhadView, h: HostRuntime): boolean {
    if (!this.liveset.has(h) && h !== v.observer) return false;
    if (!this.sr2) return true;
    return this.access(v, h);
  }

  // ------------------------------------------------------------ views

  /** h's xhad domains, empty when its xhad (re)started since they were last kept. */
  private domainsOf(h: HostRuntime): [Set<HostRuntime>, Set<HostRuntime>] {
    if (this.domainsBoot.get(h) !== h.bootedAt) {
      this.domainsBoot.set(h, h.bootedAt);
      this.hb.set(h, new Set());
      this.sf.set(h, new Set());
    }
    return [this.hb.get(h)!, this.sf.get(h)!];
  }

  /** viewer's xhad heard h within T1 (its own heartbeat domain always holds it). */
  private hbFresh(v: XhadView, viewer: HostRuntime, h: HostRuntime): boolean {
    if (h === viewer) return true;
    const at = viewer.lastHbReceipt[h.slot]!;
    return at >= 0 && v.now - at < v.timeoutMs;
  }

  /** viewer's xhad saw h's slot change within T2. */
  private sfFresh(v: XhadView, viewer: HostRuntime, h: HostRuntime): boolean {
    const at = viewer.slotReadAt[h.slot]!;
    return at > -Infinity && v.now - at < v.timeoutMs;
  }

  /** h's own statefile access (xha's SF_access: its own slot seen written within T2), as it reports it. */
  private access(v: XhadView, h: HostRuntime): boolean {
    return this.sfFresh(v, h, h);
  }

  /**
   * Fresh hosts re-enter each running xhad's domains, but not those of the liveset's members while a
   * fault handler runs (join_block: they all run it).
   */
  private readmit(v: XhadView): void {
    for (const viewer of v.hosts) {
      if (!v.isUp(viewer) || (this.faultHandler && this.liveset.has(viewer))) continue;
      const [hb, sf] = this.domainsOf(viewer);
      for (const h of v.hosts) {
        if (!hb.has(h) && this.hbFresh(v, viewer, h)) hb.add(h);
        if (!sf.has(h) && this.sfFresh(v, viewer, h)) sf.add(h);
      }
    }
  }

  // ------------------------------------------------------------ the fault handler

  private runFaultHandler(v: XhadView): void {
    for (;;) {
      const fh = this.faultHandler;
      if (fh === null) {
        if (!this.needFh) return;
        this.needFh = false;
        this.faultHandler = { phase: 'stabilise', since: v.now };
      } else if (fh.phase === 'stabilise') {
        if (!this.stable(v, fh.since)) return;
        this.faultHandler = { phase: 'consistent-view', since: v.now };
      } else if (fh.phase === 'consistent-view') {
        if (!this.consistent(v) && v.now - fh.since < v.timeoutMs) return;
        this.survivalRule(v);
      } else {
        if (v.now < fh.until) return;
        for (const h of fh.dropping) {
          this.liveset.delete(h);
          if (v.isUp(h) && this.memberBoot.get(h) === h.bootedAt) {
            this.restartedAt.set(h, { boot: h.bootedAt, at: v.now });
            this.hb.set(h, new Set());
            this.sf.set(h, new Set());
          }
        }
        this.faultHandler = null; // join_block off; a degradation queued meanwhile starts the next run
      }
    }
  }

  /** wait_until_HBSF_state_stable: no host in a domain has gone T/4 unseen there since before phase 1. */
  private stable(v: XhadView, since: number): boolean {
    const approaching = v.timeoutMs / 4; // APPROACHING_TIMEOUT_FACTOR 25 %
    const obs = v.observer;
    for (const h of v.hosts) {
      if (h === obs) continue;
      const hb = obs.lastHbReceipt[h.slot]!;
      if (this.hbdomain(v).has(h) && hb >= 0 && v.now - hb > approaching && hb < since) return false;
      const sf = obs.slotReadAt[h.slot]!;
      if (this.sfdomain(v).has(h) && sf > -Infinity && v.now - sf > approaching && sf < since) return false;
    }
    return true;
  }

  /**
   * wait_until_all_hosts_have_consistent_view: every liveset host in one of our domains has the same
   * heartbeat and statefile domains as ours, within the liveset. A host that lost one path never has:
   * it hears only itself, or sees no slot change.
   */
  private consistent(v: XhadView): boolean {
    const inL = (set: ReadonlySet<HostRuntime>) => [...set].filter((h) => this.liveset.has(h));
    const same = (a: HostRuntime[], b: HostRuntime[]) => a.length === b.length && a.every((h) => b.includes(h));
    const myHb = inL(this.hbdomain(v));
    const mySf = inL(this.sfdomain(v));
    for (const h of this.liveset) {
      if (h === v.observer || !(this.hbdomain(v).has(h) || this.sfdomain(v).has(h))) continue;
      if (!same(myHb, inL(this.hb.get(h) ?? new Set())) || !same(mySf, inL(this.sf.get(h) ?? new Set()))) return false;
    }
    return true;
  }

  /** Phase 3 (test_Survival_Rule), then phase 4's sleep before the liveset update, or the end of the run. */
  private survivalRule(v: XhadView): void {
    const obs = v.observer;
    const hbd = new Set([...this.hbdomain(v)].filter((h) => this.liveset.has(h)));
    const sfd = new Set([...this.sfdomain(v)].filter((h) => this.liveset.has(h)));
    let winner = sfd.size > 0 && [...sfd].every((h) => hbd.has(h));
    if (!winner) winner = this.inLargestPartition(v);
    if (!winner) {
      // Survival Rule 2: every host heard (none excluded here) and none with the statefile.
      if (v.hosts.every((h) => hbd.has(h) && !this.access(v, h))) this.sr2 = winner = true;
    }
    if (!winner) {
      // This xhad has lost: it would fence its host now and never update its liveset. Not simulated.
      this.faultHandler = null;
      return;
    }
    const dropping = [...this.liveset].filter((h) => !hbd.has(h) || (!this.sr2 && !sfd.has(h)));
    const [hb, sf] = this.domainsOf(obs);
    const extended = dropping.some((h) => hb.has(h) || sf.has(h));
    // Every winner takes the hosts it drops out of its domains (the liveset's other members reach the
    // same decision in the same rendezvous).
    for (const viewer of this.liveset) {
      if (dropping.includes(viewer) || !v.isUp(viewer)) continue;
      const [vhb, vsf] = this.domainsOf(viewer);
      for (const h of dropping) {
        vhb.delete(h);
        vsf.delete(h);
      }
    }
    if (dropping.length === 0) {
      this.faultHandler = null;
      return;
    }
    const until = v.now + v.dropDelayMs + (extended ? v.timeoutMs : 0);
    this.faultHandler = { phase: 'sleep', since: v.now, until, dropping, extended };
  }

  /**
   * am_I_in_largest_partition (no weights): each host of our statefile domain sizes its partition as
   * |its sfdomain ∩ its hbdomain|; the first largest, by slot, wins, and we with it when we are in its
   * partition and it in ours.
   */
  private inLargestPartition(v: XhadView): boolean {
    const obs = v.observer;
    const empty = new Set<HostRuntime>();
    let best = 0;
    let win: HostRuntime | null = null;
    for (const h of [...v.hosts].sort((a, b) => a.slot - b.slot)) {
      if (!this.sfdomain(v).has(h)) continue;
      const hbOfH = this.hb.get(h) ?? empty;
      const size = [...(this.sf.get(h) ?? empty)].filter((p) => hbOfH.has(p)).length;
      if (size > best) {
        best = size;
        win = h;
      }
    }
    if (win === null) return false;
    if (win === obs) return true;
    return (
      (this.sf.get(win) ?? empty).has(obs) && (this.hb.get(win) ?? empty).has(obs) && this.sfdomain(v).has(win) && this.hbdomain(v).has(win)
    );
  }

  // ------------------------------------------------------------ joining

  /**
   * When h's current xhad started: its boot's end, or the drop that would have fenced it (a host
   * dropped while it kept running, in the same boot).
   */
  private xhadStart(v: XhadView, h: HostRuntime): number {
    const r = this.restartedAt.get(h);
    return r?.boot === h.bootedAt ? r.at : h.bootedAt + v.bootMs;
  }

  /**
   * process_join_request and xhad's start-up on the joining host: a host out of the liveset joins once
   * no fault handler runs, it is in both of our domains (the heartbeat domain only, under SR2), we
   * heard it and saw its slot change since its xhad started, and its start-up waits are over.
   */
  private join(v: XhadView): void {
    for (const h of v.hosts) {
      if (!v.isUp(h)) continue;
      const start = this.xhadStart(v, h);
      if (this.readyStart.get(h) !== start && this.startedUp(v, h, start)) this.readyStart.set(h, start);
    }
    if (this.faultHandler) return; // join_block: no join is acknowledged while a fault handler runs
    const obs = v.observer;
    for (const h of v.hosts) {
      if (this.liveset.has(h) || !v.isUp(h)) continue;
      if (!this.hbdomain(v).has(h) || !(this.sfdomain(v).has(h) || this.sr2)) continue;
      const start = this.xhadStart(v, h);
      if (this.readyStart.get(h) !== start) continue;
      if (h !== obs && (obs.lastHbReceipt[h.slot]! < start || obs.slotReadAt[h.slot]! < start)) continue;
      this.liveset.add(h);
      this.memberBoot.set(h, h.bootedAt);
    }
  }

  /**
   * xhad's start-up waits (wait_all_hosts_up_on_heartbeat, _on_statefile): every host in both of its
   * domains, or T since it started.
   */
  private startedUp(v: XhadView, h: HostRuntime, start: number): boolean {
    if (v.now - start >= v.timeoutMs) return true;
    const [hb, sf] = this.domainsOf(h);
    return v.hosts.every((p) => hb.has(p) && sf.has(p));
  }

  /** surviving_by_SR2: SR2 ends once we have the statefile and every host is heard and has it. */
  private checkSr2Recovered(v: XhadView): void {
    if (!this.access(v, v.observer)) return;
    for (const h of v.hosts) {
      if (h !== v.observer && !(this.hbdomain(v).has(h) && this.access(v, h))) return;
    }
    this.sr2 = false;
  }
}
