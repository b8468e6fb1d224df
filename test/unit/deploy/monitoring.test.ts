/**
 * Alerts and dashboard against the controller's real metrics and against Prometheus itself:
 *  - the metric names every alert and every dashboard query uses are ones the controller exports
 *    (its prom-client registry built in-process the way src/main.ts builds it, nothing started;
 *    histograms expand to _bucket/_sum/_count), plus Prometheus' own `up`;
 *  - `promtool check rules` on the PrometheusRule's spec.groups and on the chart's rules file;
 *  - every dashboard expression parses (each wrapped as a recording rule, then
 *    `promtool check rules`), Grafana variables replaced by sample values;
 *  - `promtool test rules deploy/monitoring-tests/alerts.test.yaml`, which must fire and not fire
 *    every alert, including before its `for:` has elapsed.
 *
 * promtool comes from `bash test/tools/build.sh promtool`: without it the promtool tests skip
 * with a message, except in CI (env CI set), where they fail.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { CONFIGURE_PACKAGE_TEMPLATE } from '../../../src/api/ecsextension.js';
import { createCloudClients } from '../../../src/cloud/index.js';
import { DomainMetrics } from '../../../src/controllers/shared/metrics.js';
import { createRegistry } from '../../../src/metrics/index.js';
import { controllerRuntimeMetrics } from '../../../src/runtime/metrics.js';
import { findTool, toolPath, toolTitle } from '../../tools/tools.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

/** Series names Prometheus adds itself, not the controller. */
const PROMETHEUS_SERIES = new Set(['up']);

const promtool = findTool('promtool');
const tmp = mkdtempSync(join(tmpdir(), 'ecsops-promtool-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const prometheusRule = parseAllDocuments(
  readFileSync(join(ROOT, 'deploy/components/monitoring/prometheusrule.yaml'), 'utf8'),
)
  .map((d) => d.toJS() as Obj)
  .find((d) => d.kind === 'PrometheusRule')!;
const alerts = (prometheusRule.spec.groups as Obj[]).flatMap((g) => g.rules as Obj[]);
const dashboard = JSON.parse(
  readFileSync(join(ROOT, 'deploy/components/monitoring/grafana-dashboard.json'), 'utf8'),
) as Obj;
const panels = (dashboard.panels as Obj[]).flatMap((p) => [p, ...((p.panels as Obj[] | undefined) ?? [])]);
const dashboardTargets = panels.flatMap((p) =>
  ((p.targets as Obj[] | undefined) ?? []).map((t) => ({
    panel: p.title as string,
    id: p.id as number,
    refId: t.refId as string,
    expr: t.expr as string,
  })),
);

/**
 * The names the controller's /metrics serves: a registry built as src/main.ts builds it
 * (createRegistry with the default process/Node.js metrics, the cloud layer, the domain metrics,
 * and the controller-runtime families the Manager and the leader elector register), without
 * starting anything. Histograms and summaries expand to their series names.
 */
async function exportedSeriesNames(): Promise<Set<string>> {
  const registry = createRegistry();
  controllerRuntimeMetrics(registry);
  createCloudClients({ credential: { accessKeyId: 'unused', accessKeySecret: 'unused' } }, { registry });
  new DomainMetrics(registry, { [CONFIGURE_PACKAGE_TEMPLATE]: ['install', 'update', 'uninstall'] });
  const names = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    const type = String(m.type);
    names.add(m.name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

const PROMQL_KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
  'start',
  'end',
]);

/**
 * Metric names a PromQL expression selects: identifiers outside strings, label matchers, ranges
 * and grouping clauses that are not functions, aggregations or keywords.
 */
function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = s.slice(m.index + m[0].length).trimStart();
    if (rest.startsWith('(') || PROMQL_KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** Grafana variables replaced by values that keep the expression valid PromQL. */
function withoutGrafanaVariables(expr: string): string {
  return expr
    .replace(/\$__(rate_interval|interval|range)\b/g, '5m')
    .replace(/\$\{[^}]+\}|\$[A-Za-z_]\w*|\[\[[^\]]+\]\]/g, 'x');
}

/** Runs promtool; returns its exit code and output. */
function runPromtool(args: string[]): { status: number | null; out: string } {
  const res = spawnSync(toolPath(promtool), args, { encoding: 'utf8', timeout: 60_000 });
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

/** Parses a Go-style duration of the rule files (`15m`, `1h30m`) to seconds. */
function seconds(d: string): number {
  const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
  let total = 0;
  for (const m of d.matchAll(/(\d+)([smhd])/g)) total += Number(m[1]) * units[m[2]!]!;
  return total;
}

describe('metric names used by alerts and the dashboard', () => {
  let exported = new Set<string>();
  beforeAll(async () => {
    exported = await exportedSeriesNames();
  });

  it('the registry holds the families DESIGN §5 names', () => {
    for (const name of [
      'controller_runtime_reconcile_total',
      'controller_runtime_reconcile_errors_total',
      'controller_runtime_reconcile_time_seconds_bucket',
      'workqueue_depth',
      'workqueue_queue_duration_seconds_bucket',
      'leader_election_master_status',
      'ecsops_cloud_api_requests_total',
      'ecsops_executions_started_total',
      'ecsops_resource_instances',
      'process_resident_memory_bytes',
    ])
      expect(exported.has(name), name).toBe(true);
  });

  it('the extractor finds selectors, not functions, keywords or labels', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{code=~"x|y"}[5m]))) / on (job) group_left b_total > bool 1e3 or absent(up == 1) offset 5m',
      ).sort(),
    ).toEqual(['a_bucket', 'b_total', 'up']);
  });

  it('every alert uses only exported metrics (and Prometheus up)', () => {
    const missing = alerts.flatMap((a) =>
      metricNames(a.expr as string)
        .filter((n) => !exported.has(n) && !PROMETHEUS_SERIES.has(n))
        .map((n) => `${a.alert}: ${n}`),
    );
    expect(missing).toEqual([]);
    expect(alerts.flatMap((a) => metricNames(a.expr as string)).length).toBeGreaterThanOrEqual(alerts.length);
  });

  it('every dashboard query and variable uses only exported metrics (and Prometheus up)', () => {
    const missing = dashboardTargets.flatMap((t) =>
      metricNames(withoutGrafanaVariables(t.expr))
        .filter((n) => !exported.has(n) && !PROMETHEUS_SERIES.has(n))
        .map((n) => `${t.panel} ${t.refId}: ${n}`),
    );
    const variableMetrics = (dashboard.templating.list as Obj[])
      .filter((v) => v.type === 'query')
      .map((v) => /label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(v.definition as string)?.[1]);
    expect(variableMetrics.every(Boolean)).toBe(true);
    missing.push(...variableMetrics.filter((n) => !exported.has(n!)).map((n) => `variable: ${n}`));
    expect(missing).toEqual([]);
  });
});

describe('Grafana dashboard', () => {
  const exprs = dashboardTargets.map((t) => t.expr).join('\n');

  it('has panels for reconciles, work queue, cloud API, throttling, executions and instance states', () => {
    for (const needle of [
      'rate(controller_runtime_reconcile_total',
      'controller_runtime_reconcile_errors_total',
      'controller_runtime_reconcile_time_seconds_bucket',
      'workqueue_depth',
      'workqueue_queue_duration_seconds_bucket',
      'sum by (product, action, code) (rate(ecsops_cloud_api_requests_total',
      'code=~"Throttling.*"',
      'ecsops_executions_started_total',
      'ecsops_executions_finished_total',
      'sum by (kind, state) (ecsops_resource_instances',
    ])
      expect(exprs, needle).toContain(needle);
  });

  it('every query selects the controller job and uses the dashboard datasource variable', () => {
    for (const t of dashboardTargets) expect(t.expr, t.panel).toContain('job=~"$job"');
    for (const p of panels.filter((x) => x.type !== 'row'))
      expect(p.datasource, p.title as string).toEqual({ type: 'prometheus', uid: '${datasource}' });
  });

  it('panels have unique ids and fit the 24-column grid', () => {
    const ids = panels.map((p) => p.id as number);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) expect(p.gridPos.x + p.gridPos.w, p.title as string).toBeLessThanOrEqual(24);
    expect(dashboard.uid).toBe('ecsops-controller');
  });
});

describe.skipIf(promtool.skip)(`promtool ${toolTitle(promtool)}`, () => {
  it('check rules accepts the PrometheusRule spec.groups', () => {
    const file = join(tmp, 'prometheusrule-groups.yaml');
    writeFileSync(file, stringify({ groups: prometheusRule.spec.groups }));
    const r = runPromtool(['check', 'rules', file]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`SUCCESS: ${alerts.length} rules found`);
  });

  it("check rules accepts the chart's rules file", () => {
    const r = runPromtool(['check', 'rules', join(ROOT, 'deploy/helm/ecsops/files/prometheus-rules.yaml')]);
    expect(r.status, r.out).toBe(0);
  });

  it('check rules rejects a broken expression (the check is not vacuous)', () => {
    const file = join(tmp, 'broken.yaml');
    writeFileSync(
      file,
      stringify({ groups: [{ name: 'x', rules: [{ record: 'x:y', expr: 'sum by (a (b)' }] }] }),
    );
    expect(runPromtool(['check', 'rules', file]).status).not.toBe(0);
  });

  it('every dashboard expression parses', () => {
    const rules = dashboardTargets.map((t) => ({
      record: `ecsops_dashboard:panel_${t.id}_${t.refId}`,
      expr: withoutGrafanaVariables(t.expr),
    }));
    const file = join(tmp, 'dashboard-exprs.yaml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = runPromtool(['check', 'rules', file]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  describe('deploy/monitoring-tests/alerts.test.yaml', () => {
    const testFile = join(ROOT, 'deploy/monitoring-tests/alerts.test.yaml');
    const spec = parse(readFileSync(testFile, 'utf8')) as {
      tests: Array<{
        alert_rule_test: Array<{ alertname: string; eval_time: string; exp_alerts: unknown[] }>;
      }>;
    };

    it('passes promtool test rules', () => {
      const r = runPromtool(['test', 'rules', testFile]);
      expect(r.status, r.out).toBe(0);
      expect(r.out).toContain('SUCCESS');
    });

    it.each(alerts.map((a) => [a.alert as string, a] as const))(
      '%s is tested firing, and silent before its for: elapses',
      (name, alert) => {
        const evals = spec.tests.flatMap((t) => t.alert_rule_test).filter((e) => e.alertname === name);
        expect(evals.some((e) => e.exp_alerts.length > 0)).toBe(true);
        const forSeconds = seconds(alert.for as string);
        expect(forSeconds).toBeGreaterThan(0);
        // In a test group where it fires later, an evaluation before `for:` expects nothing.
        const groups = spec.tests.filter((t) =>
          t.alert_rule_test.some((e) => e.alertname === name && e.exp_alerts.length > 0),
        );
        const early = groups.flatMap((t) =>
          t.alert_rule_test.filter(
            (e) =>
              e.alertname === name && e.exp_alerts.length === 0 && seconds(e.eval_time) < forSeconds + 60,
          ),
        );
        expect(
          early.length,
          `${name}: no evaluation before for: (${alert.for as string}) elapses`,
        ).toBeGreaterThan(0);
      },
    );

    it('a mutated alert threshold fails the unit tests (the tests are not vacuous)', () => {
      const rules = readFileSync(join(ROOT, 'deploy/helm/ecsops/files/prometheus-rules.yaml'), 'utf8');
      const mutated = rules.replace('for: 15m', 'for: 1m');
      expect(mutated).not.toBe(rules);
      writeFileSync(join(tmp, 'rules.yaml'), mutated);
      writeFileSync(
        join(tmp, 'alerts.test.yaml'),
        readFileSync(testFile, 'utf8').replace('../helm/ecsops/files/prometheus-rules.yaml', 'rules.yaml'),
      );
      const r = runPromtool(['test', 'rules', join(tmp, 'alerts.test.yaml')]);
      expect(r.status, r.out).not.toBe(0);
    });
  });
});
