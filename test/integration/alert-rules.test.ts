/**
 * The alert rules in alerts/: promtool accepts them and their unit tests pass; every alert is tested
 * firing and not firing; every rule has its severity, summary, description and a runbook_url whose
 * anchor is a heading of docs/runbook.md; only the host-dead alert carries the label Alertmanager routes
 * to the remediation webhook, with the labels the service reads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { requireFile } from '../helpers/sim.ts';
import { run } from '../helpers/run.ts';

const PROMTOOL = '/usr/bin/promtool';
const ROOT = join(import.meta.dirname, '../..');
const ALERTS = join(ROOT, 'alerts');
const RUNBOOK = join(ROOT, 'docs/runbook.md');
const RUNBOOK_BASE = 'https://github.com/xenha/xenha/blob/main/docs/runbook.md#';
const REMEDIATION_ALERT = 'XenhaHostDead';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}
interface AlertCase {
  eval_time: string;
  alertname: string;
  exp_alerts?: { exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }[] | null;
}
interface TestFile {
  rule_files: string[];
  tests: { name?: string; alert_rule_test?: AlertCase[] }[];
}

const ruleFiles = readdirSync(ALERTS)
  .filter((f) => f.endsWith('.rules.yml'))
  .sort();
const testFiles = readdirSync(ALERTS)
  .filter((f) => f.endsWith('.rules.test.yml'))
  .sort();
const read = <T>(f: string) => parse(readFileSync(join(ALERTS, f), 'utf8')) as T;

/** Every alerting rule of every rule file. */
const alerts = (): Rule[] => ruleFiles.flatMap((f) => read<RuleFile>(f).groups.flatMap((g) => g.rules.filter((r) => r.alert)));
/** Every alert_rule_test case of every test file. */
const cases = (): AlertCase[] => testFiles.flatMap((f) => read<TestFile>(f).tests.flatMap((t) => t.alert_rule_test ?? []));

/**
 * The anchors GitHub gives a Markdown file's headings: lowercased, punctuation dropped (letters,
 * digits, `-` and `_` kept), spaces to `-`, a repeated anchor suffixed `-1`, `-2`… Headings inside
 * fenced code blocks are not headings.
 */
function githubAnchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

describe('alert rules (alerts/)', () => {
  beforeAll(() => {
    requireFile(PROMTOOL, 'apt-get install prometheus');
  });

  it('has rule files and test files', () => {
    expect(ruleFiles).toContain('xenha.rules.yml');
    expect(testFiles).toContain('xenha.rules.test.yml');
    expect(alerts().length).toBeGreaterThan(0);
  });

  it('promtool check rules accepts every rule file', async () => {
    const r = await run(PROMTOOL, ['check', 'rules', ...ruleFiles.map((f) => join(ALERTS, f))]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/FAILED|WARNING/);
  });

  it('promtool test rules passes every test file', async () => {
    const r = await run(PROMTOOL, ['test', 'rules', ...testFiles.map((f) => join(ALERTS, f))], { timeoutMs: 60_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toContain('SUCCESS');
  });

  it('every rule file is loaded by a test file', () => {
    const loaded = new Set(testFiles.flatMap((f) => read<TestFile>(f).rule_files));
    for (const f of ruleFiles) expect(loaded, `${f} is in no test file's rule_files`).toContain(f);
  });

  it('alert names are unique', () => {
    const names = alerts().map((a) => a.alert!);
    expect(names.length).toBe(new Set(names).size);
  });

  it('every alert is tested firing (exp_alerts not empty) and not firing (exp_alerts empty)', () => {
    const all = cases();
    const missing: string[] = [];
    for (const { alert } of alerts()) {
      const mine = all.filter((c) => c.alertname === alert);
      if (!mine.some((c) => (c.exp_alerts ?? []).length > 0)) missing.push(`${alert}: no case where it fires`);
      if (!mine.some((c) => (c.exp_alerts ?? []).length === 0)) missing.push(`${alert}: no case where it does not fire`);
    }
    expect(missing).toEqual([]);
    // And no case tests an alert that does not exist (a renamed alert would pass promtool vacuously).
    const names = new Set(alerts().map((a) => a.alert));
    expect(all.map((c) => c.alertname).filter((n) => !names.has(n))).toEqual([]);
  });

  it('every rule has a severity, a summary, a description and a runbook_url into docs/runbook.md', () => {
    const anchors = githubAnchors(readFileSync(RUNBOOK, 'utf8'));
    for (const a of alerts()) {
      const what = `alert ${a.alert}`;
      expect(['critical', 'warning', 'info'], what).toContain(a.labels?.severity);
      for (const k of ['summary', 'description', 'runbook_url']) expect(a.annotations?.[k]?.trim(), `${what}: ${k}`).toBeTruthy();
      const url = a.annotations!.runbook_url!;
      expect(url.startsWith(RUNBOOK_BASE), `${what}: ${url}`).toBe(true);
      const anchor = url.slice(RUNBOOK_BASE.length);
      expect(anchors, `${what}: no heading of docs/runbook.md has the anchor #${anchor}`).toContain(anchor);
      // One section per alert, headed by its name.
      expect(anchor, what).toBe(a.alert!.toLowerCase());
    }
  });

  it(`only ${REMEDIATION_ALERT} carries the label remediation (routed to the webhook), keeping pool, host and host_uuid`, () => {
    const routed = alerts().filter((a) => a.labels && 'remediation' in a.labels);
    expect(routed.map((a) => a.alert)).toEqual([REMEDIATION_ALERT]);
    expect(routed[0]!.labels!.remediation).toBe('xenha');
    expect(routed[0]!.expr).toMatch(/group_left\(host_uuid\)\s+xenha_host_info/);
    // Its firing cases show the labels the service reads.
    const firing = cases()
      .filter((c) => c.alertname === REMEDIATION_ALERT)
      .flatMap((c) => c.exp_alerts ?? []);
    expect(firing.length).toBeGreaterThan(0);
    for (const e of firing) expect(Object.keys(e.exp_labels ?? {})).toEqual(expect.arrayContaining(['pool', 'host', 'remediation']));
    expect(firing.some((e) => e.exp_labels?.host_uuid)).toBe(true);
  });

  it('the anchors follow GitHub: lowercase, punctuation dropped, spaces to -, repeats numbered', () => {
    const md = '# XenhaHostDead\n## What to check (`xenha explain`)\n```\n# not a heading\n```\n## What to check (`xenha explain`)\n';
    expect([...githubAnchors(md)]).toEqual(['xenhahostdead', 'what-to-check-xenha-explain', 'what-to-check-xenha-explain-1']);
  });
});
