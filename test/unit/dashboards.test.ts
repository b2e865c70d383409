/**
 * The Grafana dashboards (dashboards/*.ts → dashboards/json/*.json → deploy/grafana/): the checked-in
 * JSON is what the code builds; every panel reads the `datasource` variable; every query names only
 * metrics the code exports (collected from the metric sources here, independently of the dashboards),
 * and turns into PromQL that Prometheus' own parser accepts; the provisioning files carry what Grafana
 * requires; `xenha dashboards` writes the files and says clearly when it cannot.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as prettier from 'prettier';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { writeDashboards } from '../../cli/dashboards.ts';
import { DASHBOARDS, allPanels, dashboardQueries, instantiate, panelTargets, renderDashboard } from '../../dashboards/index.ts';

const ROOT = join(import.meta.dirname, '../..');
const JSON_DIR = join(ROOT, 'dashboards/json');
const REGENERATE =
  'regenerate them: `npm run dashboards` (= `npx tsx cli/main.ts dashboards --out dashboards/json && npx prettier --write dashboards/json`)';
const DS = { type: 'prometheus', uid: '${datasource}' };
const VARS = { pool: 'sim', host: 'host-02' };

const tmp = mkdtempSync(join(tmpdir(), 'xenha-dashboards-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The checked-in form of a dashboard: what the command writes, then Prettier (as `npm run dashboards` does). */
async function checkedInForm(file: string, text: string): Promise<string> {
  const config = (await prettier.resolveConfig(join(JSON_DIR, file))) ?? {};
  return prettier.format(text, { ...config, filepath: join(JSON_DIR, file) });
}

interface Variable {
  type: string;
  name: string;
  query?: unknown;
  datasource?: unknown;
  multi?: boolean;
  includeAll?: boolean;
}
const built = DASHBOARDS.map((d) => ({ def: d, json: d.build() }));
const variables = (json: (typeof built)[number]['json']) => (json.templating?.list ?? []) as unknown as Variable[];

describe('checked-in JSON', () => {
  it('dashboards/json holds exactly the dashboards, each as the code builds it', async () => {
    expect(readdirSync(JSON_DIR).sort(), `files in dashboards/json differ from DASHBOARDS: ${REGENERATE}`).toEqual(
      DASHBOARDS.map((d) => d.file).sort(),
    );
    for (const d of DASHBOARDS) {
      const onDisk = readFileSync(join(JSON_DIR, d.file), 'utf8');
      expect(onDisk, `dashboards/json/${d.file} is stale: ${REGENERATE}`).toBe(await checkedInForm(d.file, renderDashboard(d)));
    }
  });

  it('the command writes 2-space indented JSON with a trailing newline, the same model', () => {
    for (const d of DASHBOARDS) {
      const text = renderDashboard(d);
      expect(text.endsWith('}\n')).toBe(true);
      expect(text.split('\n')[1]).toMatch(/^ {2}"/);
      expect(JSON.parse(text)).toEqual(JSON.parse(readFileSync(join(JSON_DIR, d.file), 'utf8')));
    }
  });
});

describe('dashboard models', () => {
  it('stable, unique uids, the file named after the uid', () => {
    expect(built.map(({ json }) => json.uid)).toEqual(['xenha-pool-overview', 'xenha-host-detail', 'xenha-remediation']);
    for (const { def, json } of built) {
      expect(def.uid).toBe(json.uid);
      expect(def.file).toBe(`${json.uid}.json`);
      expect(json.title).toBe(def.title);
    }
  });

  it.each(built.map((b) => [b.def.uid, b] as const))(
    '%s: a Prometheus data-source variable that every panel and target reads',
    (_uid, { json }) => {
      const vars = variables(json);
      expect(vars.filter((v) => v.type === 'datasource')).toEqual([expect.objectContaining({ name: 'datasource', query: 'prometheus' })]);
      for (const v of vars.filter((v) => v.type === 'query')) expect(v.datasource, `variable ${v.name}`).toEqual(DS);
      const panels = allPanels(json);
      expect(panels.length).toBeGreaterThan(5);
      for (const p of panels) {
        expect(p.datasource, `panel ${p.title}`).toEqual(DS);
        expect(panelTargets(p).length, `panel ${p.title} has targets`).toBeGreaterThan(0);
        for (const t of panelTargets(p)) expect(t.datasource, `a target of ${p.title}`).toEqual(DS);
      }
    },
  );

  it.each(built.map((b) => [b.def.uid, b] as const))(
    '%s: unique panel ids and titles, refIds unique per panel, a unit on every panel',
    (_uid, { json }) => {
      const panels = allPanels(json);
      const ids = (json.panels ?? []).map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.every((id) => id !== undefined && id > 0)).toBe(true);
      const titles = panels.map((p) => p.title);
      expect(new Set(titles).size).toBe(titles.length);
      for (const p of panels) {
        const refIds = panelTargets(p).map((t) => t.refId);
        expect(new Set(refIds).size, `refIds of ${p.title}`).toBe(refIds.length);
        expect(p.fieldConfig?.defaults?.unit, `unit of ${p.title}`).toEqual(expect.any(String));
      }
    },
  );

  it('pool and host variables: overview multi/all, host detail one pool and one host, remediation per pool', () => {
    const byUid = new Map(built.map(({ json }) => [json.uid!, variables(json)]));
    const v = (uid: string, name: string) => byUid.get(uid)!.find((x) => x.name === name);
    expect(v('xenha-pool-overview', 'pool')).toMatchObject({
      type: 'query',
      multi: true,
      includeAll: true,
      query: 'label_values(xenha_pool_hosts, pool)',
    });
    expect(v('xenha-pool-overview', 'host')).toMatchObject({ type: 'query', multi: true, includeAll: true });
    expect(v('xenha-pool-overview', 'host')!.query).toMatch(/^label_values\(xenha_host_state\{pool=~"\$pool"\}, host\)$/);
    expect(v('xenha-host-detail', 'pool')).toMatchObject({ type: 'query', multi: false, includeAll: false });
    expect(v('xenha-host-detail', 'host')).toMatchObject({ type: 'query', multi: false, includeAll: false });
    expect(v('xenha-host-detail', 'host')!.query).toMatch(/^label_values\(xenha_host_state\{pool="\$pool"\}, host\)$/);
    expect(v('xenha-remediation', 'pool')).toMatchObject({ type: 'query', multi: true, includeAll: true });
    // A variable the queries use exists on that dashboard.
    for (const q of dashboardQueries())
      for (const name of ['pool', 'host'])
        if (q.expr.includes(`$${name}`)) expect(v(q.dashboard, name), `${q.dashboard}: ${q.panel}`).toBeDefined();
  });

  it('dashboardQueries lists every target and query variable; the key names exist', () => {
    const qs = dashboardQueries();
    const targets = built.reduce((n, { json }) => n + allPanels(json).reduce((m, p) => m + panelTargets(p).length, 0), 0);
    const queryVars = built.reduce((n, { json }) => n + variables(json).filter((v) => v.type === 'query').length, 0);
    expect(qs.length).toBe(targets + queryVars);
    for (const { def, json } of built) {
      const names = new Set([...allPanels(json).map((p) => p.title), ...variables(json).map((v) => `$${v.name}`)]);
      for (const k of def.keys) expect(names.has(k), `${def.uid}: key ${k}`).toBe(true);
      expect(qs.filter((q) => q.dashboard === json.uid && q.key).length).toBeGreaterThan(3);
    }
    const keyPanels = new Set(qs.filter((q) => q.key).map((q) => `${q.dashboard}: ${q.panel}`));
    for (const k of [
      'xenha-pool-overview: Host state',
      'xenha-pool-overview: Path up per host, path and home',
      'xenha-pool-overview: Failures tolerable vs configured',
      'xenha-pool-overview: Preflight checks',
      'xenha-remediation: Webhook requests since start',
    ])
      expect(keyPanels.has(k), k).toBe(true);
  });

  it('rates use $__rate_interval or $__range, never a fixed window', () => {
    for (const q of dashboardQueries()) {
      for (const m of q.expr.matchAll(/\[([^\]]*)\]/g)) expect(['$__rate_interval', '$__range'], `${q.panel}: ${q.expr}`).toContain(m[1]);
      if (/\b(rate|increase)\(/.test(q.expr)) expect(q.expr).toMatch(/\[\$__(rate_interval|range)\]/);
    }
  });
});

// ---- Metric names, collected from the code that exports them (not from the dashboards). ----

function exportedMetrics(): { names: Set<string>; histograms: Set<string> } {
  const names = new Set<string>(['up']);
  const histograms = new Set<string>();
  for (const f of ['exporter/metrics.ts', 'remediation/metrics.ts']) {
    const src = readFileSync(join(ROOT, f), 'utf8');
    for (const m of src.matchAll(/'(xenha_[a-z0-9_]+)'/g)) names.add(m[1]!);
    for (const m of src.matchAll(/new Histogram\(\{\s*name:\s*'(xenha_[a-z0-9_]+)'/g)) histograms.add(m[1]!);
  }
  return { names, histograms };
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset']);

/** The bare identifiers of an expression that are metric names: outside strings, label matchers, ranges, label lists and calls. */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const out: string[] = [];
  for (const m of stripped.matchAll(/(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    if (m[2] || PROMQL_WORDS.has(m[1]!)) continue; // a function call or a keyword
    out.push(m[1]!);
  }
  return out;
}

describe('metric names', () => {
  const { names, histograms } = exportedMetrics();

  it('the collection finds the metrics (sanity)', () => {
    for (const n of ['xenha_host_path_up', 'xenha_pool_failures_tolerable', 'xenha_pool_observer_isolated', 'xenha_remediation_plans'])
      expect(names.has(n), n).toBe(true);
    expect([...histograms].sort()).toEqual([
      'xenha_remediation_journal_fsync_seconds',
      'xenha_remediation_plan_duration_seconds',
      'xenha_remediation_step_duration_seconds',
    ]);
    expect(metricNamesIn('sum by (pool, path) (increase(xenha_false_positives_averted_total{pool=~"$pool"}[$__range])) or up')).toEqual([
      'xenha_false_positives_averted_total',
      'up',
    ]);
  });

  it('every expression names only metrics the code exports (a histogram through _bucket, _sum, _count)', () => {
    const unknown: string[] = [];
    for (const q of dashboardQueries()) {
      const found = metricNamesIn(q.expr.replace(/^label_values\((.*),\s*\w+\)$/s, '$1'));
      expect(found.length, `${q.panel}: ${q.expr}`).toBeGreaterThan(0);
      for (const n of found) {
        const h = /^(.*)_(bucket|sum|count)$/.exec(n);
        if (!(names.has(n) && !histograms.has(n)) && !(h && histograms.has(h[1]!))) unknown.push(`${q.dashboard} / ${q.panel}: ${n}`);
      }
    }
    expect(unknown).toEqual([]);
  });
});

// ---- instantiate(): plain PromQL for Prometheus' HTTP API. ----

/** Brackets balanced outside string literals, in order. */
function balanced(expr: string): boolean {
  const stack: string[] = [];
  const close: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  for (const c of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if ('([{'.includes(c)) stack.push(c);
    else if (c in close && stack.pop() !== close[c]) return false;
  }
  return stack.length === 0;
}

describe('instantiate', () => {
  it('replaces every variable form and the built-in intervals', () => {
    expect(instantiate('rate(x{pool=~"$pool",host="${host}"}[$__rate_interval])', VARS)).toBe('rate(x{pool=~"sim",host="host-02"}[1m])');
    expect(instantiate('increase(x{pool="[[pool]]",host=~"${host:regex}"}[$__range])', VARS)).toBe(
      'increase(x{pool="sim",host=~"host-02"}[5m])',
    );
    expect(instantiate('avg_over_time(x[$__interval])', VARS)).toBe('avg_over_time(x[15s])');
    expect(instantiate('label_values(xenha_host_state{pool=~"$pool"}, host)', VARS)).toBe(
      'group by (host) (xenha_host_state{pool=~"sim"})',
    );
    expect(instantiate('label_values(xenha_pool_hosts, pool)', VARS)).toBe('group by (pool) (xenha_pool_hosts)');
  });

  it('escapes a value: regex metacharacters inside =~ / !~, quotes and backslashes everywhere', () => {
    const host = 'h (1a2b3c4d).x"y\\z';
    expect(instantiate('x{host=~"$host"}', { pool: 'p', host })).toBe('x{host=~"h \\\\(1a2b3c4d\\\\)\\\\.x\\"y\\\\\\\\z"}');
    expect(instantiate('x{host="$host"}', { pool: 'p', host })).toBe('x{host="h (1a2b3c4d).x\\"y\\\\z"}');
    // A value is not scanned again for variables.
    expect(instantiate('x{host="$host",pool="$pool"}', { pool: '$host', host: '$pool' })).toBe('x{host="$pool",pool="$host"}');
  });

  it('refuses an unknown variable', () => {
    expect(() => instantiate('x{a="$nope"}', VARS)).toThrow(/unknown variable \$nope/);
    expect(() => instantiate('x[$__nope]', VARS)).toThrow(/unknown variable/);
  });

  it('every dashboard expression becomes PromQL: no $ left, brackets balanced', () => {
    for (const q of dashboardQueries()) {
      const p = instantiate(q.expr, VARS);
      expect(p, `${q.dashboard} / ${q.panel}`).not.toMatch(/\$|\[\[|label_values/);
      expect(balanced(p), `${q.dashboard} / ${q.panel}: ${p}`).toBe(true);
    }
  });

  const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  it.skipIf(promtool.error !== undefined)("every instantiated expression parses with Prometheus' own parser (promtool check rules)", () => {
    const exprs = dashboardQueries().flatMap((q) => [
      instantiate(q.expr, VARS),
      instantiate(q.expr, { pool: 'prod.a-1', host: 'h (1a2b3c4d) "q"\\' }),
    ]);
    const rules = { groups: [{ name: 'dashboards', rules: exprs.map((expr, i) => ({ record: `xenha:dashboard_query:${i}`, expr })) }] };
    const file = join(tmp, 'rules.json');
    // YAML is a superset of JSON: promtool reads this as a rules file.
    writeFileSync(file, JSON.stringify(rules));
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toContain(`${exprs.length} rules found`);
  });
});

// ---- Grafana provisioning files. ----

describe('deploy/grafana provisioning', () => {
  const yaml = (p: string) => parse(readFileSync(join(ROOT, 'deploy/grafana/provisioning', p), 'utf8')) as Record<string, unknown>;

  it('dashboards: a file provider with a path', () => {
    const doc = yaml('dashboards/xenha.yml') as { apiVersion: unknown; providers: Record<string, unknown>[] };
    expect(doc.apiVersion).toBe(1);
    expect(doc.providers).toHaveLength(1);
    const p = doc.providers[0]!;
    expect(p).toMatchObject({ name: 'xenha', type: 'file' });
    expect((p.options as { path?: unknown }).path).toMatch(/^\/.+/);
  });

  it('datasources: Prometheus at 127.0.0.1:9090', () => {
    const doc = yaml('datasources/prometheus.yml') as { apiVersion: unknown; datasources: Record<string, unknown>[] };
    expect(doc.apiVersion).toBe(1);
    expect(doc.datasources).toHaveLength(1);
    expect(doc.datasources[0]).toMatchObject({ type: 'prometheus', access: 'proxy', url: 'http://127.0.0.1:9090' });
    expect(doc.datasources[0]!.name).toEqual(expect.any(String));
  });
});

// ---- xenha dashboards --out DIR ----

describe('xenha dashboards', () => {
  it('writes every dashboard to a new directory and returns the paths', async () => {
    const dir = join(tmp, 'a/b');
    const paths = await writeDashboards(dir);
    expect(paths).toEqual(DASHBOARDS.map((d) => join(dir, d.file)));
    for (const d of DASHBOARDS) expect(readFileSync(join(dir, d.file), 'utf8')).toBe(renderDashboard(d));
    expect(readdirSync(dir).sort()).toEqual(DASHBOARDS.map((d) => d.file).sort()); // no temporary file left
    // Again over the same files.
    await expect(writeDashboards(dir)).resolves.toEqual(paths);
  });

  it('says clearly when the directory cannot be written', async () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, '');
    await expect(writeDashboards(join(file, 'dashboards'))).rejects.toThrow(
      /^cannot write the dashboards to .*a-file\/dashboards: cannot create the directory: ENOTDIR/,
    );
  });

  it('runs from the built CLI (bin/xenha.js), printing the paths', () => {
    const dir = join(tmp, 'cli');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/xenha.js'), 'dashboards', '--out', dir], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(DASHBOARDS.map((d) => join(dir, d.file)));
    for (const d of DASHBOARDS) expect(JSON.parse(readFileSync(join(dir, d.file), 'utf8'))).toMatchObject({ uid: d.uid });
    const file = join(tmp, 'not-a-directory');
    writeFileSync(file, '');
    const bad = spawnSync(process.execPath, [join(ROOT, 'bin/xenha.js'), 'dashboards', '--out', join(file, 'x')], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^xenha: cannot write the dashboards to /);
  });
});
