/**
 * Alerts and dashboard against the controller's real metrics and against Prometheus itself:
 *  - the metric names every alert and every dashboard query uses are ones the controller exports
 *    (its prom-client registry built in-process the way src/main.ts builds it, nothing started;
 *    histograms expand to _bucket/_sum/_count), plus Prometheus' own `up`;
 *  - `promtool check rules` on the PrometheusRule's spec.groups and on the chart's rules file;
 *  - every dashboard expression parses (each wrapped as a recording rule, then
 *    `promtool check rules`), Grafana variables replaced by sample values;
 *  - `promtool test rules deploy/monitoring-tests/alerts.test.yaml`, which must fire and not fire
 *    every alert, including before its `for:` has elapsed;
 *  - the "Resources not converged" table selects every kind's unhealthy states (instance states
 *    of each kind's summary, AppRelease rollouts that ended RolledBack or Failed, reconciles that
 *    ended Stalled, per kind) and none of the healthy ones: statically, and evaluated by promtool
 *    on series for every kind and state.
 *
 * promtool comes from `bash test/tools/build.sh promtool`: without it the promtool tests skip
 * with a message, except in CI (env CI set), where they fail.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { AppInstanceStateValues } from '../../../src/api/apprelease.js';
import { CONFIGURE_PACKAGE_TEMPLATE } from '../../../src/api/ecsextension.js';
import { createCloudClients } from '../../../src/cloud/index.js';
import { AppReleaseMetrics, ROLLOUT_RESULTS } from '../../../src/controllers/apprelease/metrics.js';
import { PATCH_STATES, PatchMetrics } from '../../../src/controllers/patchpolicy/metrics.js';
import { DomainMetrics, INSTANCE_STATES } from '../../../src/controllers/shared/metrics.js';
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
 * the PatchPolicy and AppRelease metrics their register functions add, and the controller-runtime
 * families the Manager and the leader elector register), without starting anything. Histograms
 * and summaries expand to their series names.
 */
async function exportedSeriesNames(): Promise<Set<string>> {
  const registry = createRegistry();
  controllerRuntimeMetrics(registry);
  createCloudClients({ credential: { accessKeyId: 'unused', accessKeySecret: 'unused' } }, { registry });
  new DomainMetrics(registry, { [CONFIGURE_PACKAGE_TEMPLATE]: ['install', 'update', 'uninstall'] });
  new PatchMetrics(registry); // registerPatchPolicy
  new AppReleaseMetrics(registry); // registerAppRelease
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

/**
 * What each kind reports into `ecsops_resource_instances` (the keys of its status.summary) and
 * which of those states mean converged. A state added to a kind's summary counts as NOT converged
 * until it is listed here, so the table below must then select it.
 */
const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);
const KIND_STATES: Record<string, { states: readonly string[]; converged: readonly string[] }> = {
  EcsExtension: { states: INSTANCE_STATES, converged: ['targeted', 'installed'] },
  PatchPolicy: { states: PATCH_STATES, converged: ['targeted', 'compliant'] },
  AppRelease: {
    states: ['targeted', 'healthy', ...AppInstanceStateValues.map(lowerFirst)],
    converged: ['targeted', 'healthy', 'updated'],
  },
};
const unconvergedStates = (kind: string) =>
  KIND_STATES[kind]!.states.filter((st) => !KIND_STATES[kind]!.converged.includes(st));
/** AppRelease rollout results (`ecsops_apprelease_rollouts_total{result}`) that mean not converged. */
const BAD_ROLLOUTS: readonly string[] = ROLLOUT_RESULTS.filter(
  (r) => r !== 'Succeeded' && r !== 'Superseded',
);
/** Every ecsops.io kind of crds/; its controller is named after it in lower case (register.ts). */
const CRD_KINDS = readdirSync(join(ROOT, 'crds'))
  .filter((n) => n.startsWith('ecsops.io_'))
  .map((n) => (parse(readFileSync(join(ROOT, 'crds', n), 'utf8')) as Obj).spec.names.kind as string)
  .sort();

const notConverged = panels.find((p) => p.title === 'Resources not converged')!;
const notConvergedExpr = ((notConverged.targets as Obj[] | undefined) ?? [])
  .map((t) => t.expr as string)
  .join('\n');

/**
 * The table's expression with the Grafana variables set: job, namespace and kind at "All" (`.*`)
 * unless given, the range at 1h.
 */
function withVariables(expr: string, kind = '.*'): string {
  return expr
    .replaceAll('$__range', '1h')
    .replaceAll('$job', '.*')
    .replaceAll('$namespace', '.*')
    .replaceAll('$kind', kind);
}

/** The regexes of `label=~"..."` matchers in the selectors of `metric` in `expr` (anchored as Prometheus does). */
function matcherRegexes(expr: string, metric: string, label: string): RegExp[] {
  const out: RegExp[] = [];
  for (const sel of expr.matchAll(new RegExp(`\\b${metric}\\{([^}]*)\\}`, 'g'))) {
    for (const m of sel[1]!.matchAll(new RegExp(`\\b${label}\\s*=~\\s*"((?:[^"\\\\]|\\\\.)*)"`, 'g')))
      out.push(new RegExp(`^(?:${m[1]!.replace(/\(\?i\)/, '')})$`, /\(\?i\)/.test(m[1]!) ? 'i' : ''));
  }
  return out;
}
const selects = (res: RegExp[], value: string) => res.some((re) => re.test(value));

describe('Grafana dashboard: the "Resources not converged" table', () => {
  it('exists, as an instant table query on the controller job', () => {
    expect(notConverged?.type).toBe('table');
    expect(notConvergedExpr).toContain('job=~"$job"');
    expect(CRD_KINDS).toEqual([
      'AppRelease',
      'EcsExtension',
      'InstanceDisruptionBudget',
      'MaintenanceWindow',
      'PatchPolicy',
    ]);
  });

  it.each(Object.keys(KIND_STATES))(
    'selects every unconverged instance state of %s, and no converged one',
    (kind) => {
      const res = matcherRegexes(withVariables(notConvergedExpr), 'ecsops_resource_instances', 'state');
      expect(res.length).toBeGreaterThan(0);
      const missing = unconvergedStates(kind).filter((st) => !selects(res, st));
      expect(missing, `${kind} states missing from the table's state=~ matcher`).toEqual([]);
      const converged = KIND_STATES[kind]!.converged.filter((st) => selects(res, st));
      expect(converged, `${kind} converged states in the table`).toEqual([]);
    },
  );

  it('selects AppRelease rollouts that ended RolledBack or Failed', () => {
    expect(BAD_ROLLOUTS).toEqual(['Failed', 'RolledBack']);
    const res = matcherRegexes(withVariables(notConvergedExpr), 'ecsops_apprelease_rollouts_total', 'result');
    for (const r of ROLLOUT_RESULTS) expect(selects(res, r), r).toBe(BAD_ROLLOUTS.includes(r));
  });

  it.each(CRD_KINDS)('selects %s resources whose Stalled condition is True, by name', (kind) => {
    const selectors = [...notConvergedExpr.matchAll(/\becsops_resource_condition\{([^}]*)\}/g)].map(
      (m) => m[1]!,
    );
    expect(selectors).toHaveLength(1);
    expect(selectors[0]).toMatch(/\btype="Stalled"/);
    expect(selectors[0]).toMatch(/\bstatus="True"/);
    const kinds = matcherRegexes(withVariables(notConvergedExpr, kind), 'ecsops_resource_condition', 'kind');
    expect(kinds.length).toBeGreaterThan(0);
    expect(kinds.every((re) => re.test(kind))).toBe(true);
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

  it('the not-converged table returns exactly the unconverged rows of every kind (evaluated)', () => {
    const job = 'ecsops-controller-metrics';
    const series: Array<{ series: string; values: string }> = [];
    const want: string[] = [];
    const row = (l: Record<string, string>) =>
      `{${Object.entries(l)
        .map(([k, v]) => `${k}="${v}"`)
        .join(', ')}}`;
    for (const [kind, { states }] of Object.entries(KIND_STATES)) {
      const bad = unconvergedStates(kind);
      for (const state of states) {
        // <kind>-a: 2 instances in each unconverged state, 5 in each converged one; <kind>-b: all 0.
        const a = { kind, namespace: 'ns', name: `${kind.toLowerCase()}-a`, state };
        series.push({
          series: `ecsops_resource_instances${row({ job, ...a })}`,
          values: bad.includes(state) ? '2x60' : '5x60',
        });
        series.push({
          series: `ecsops_resource_instances${row({ job, ...a, name: `${kind.toLowerCase()}-b` })}`,
          values: '0x60',
        });
        if (bad.includes(state)) want.push(row(a));
      }
    }
    for (const result of ROLLOUT_RESULTS) {
      // One rollout of each result ended half-way through the hour.
      series.push({
        series: `ecsops_apprelease_rollouts_total${row({ job, namespace: 'ns', name: 'apprelease-a', result })}`,
        values: '0x30 1x30',
      });
      if (BAD_ROLLOUTS.includes(result))
        want.push(
          row({ kind: 'AppRelease', namespace: 'ns', name: 'apprelease-a', state: `rollout ${result}` }),
        );
    }
    for (const kind of CRD_KINDS) {
      // <kind>-s is Stalled now; <kind>-r was Stalled and is not any more (both series are 0/1).
      for (const [name, stalled] of [
        [`${kind.toLowerCase()}-s`, true],
        [`${kind.toLowerCase()}-r`, false],
      ] as const) {
        for (const status of ['True', 'False', 'Unknown']) {
          const now = stalled ? status === 'True' : status === 'False';
          const before = stalled ? status === 'False' : status === 'True';
          series.push({
            series: `ecsops_resource_condition${row({ job, kind, namespace: 'ns', name, type: 'Stalled', status })}`,
            values: `${before ? 1 : 0}x30 ${now ? 1 : 0}x30`,
          });
        }
        series.push({
          series: `ecsops_resource_condition${row({ job, kind, namespace: 'ns', name, type: 'Ready', status: 'True' })}`,
          values: '1x60',
        });
      }
      want.push(row({ kind, namespace: 'ns', name: `${kind.toLowerCase()}-s`, state: 'Stalled' }));
    }
    const evaluate = (kind: string) =>
      `count by (kind, namespace, name, state) (${withVariables(notConvergedExpr, kind)})`;
    const file = join(tmp, 'not-converged.test.yaml');
    writeFileSync(
      file,
      stringify({
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: series,
            promql_expr_test: [
              {
                expr: evaluate('.*'),
                eval_time: '60m',
                exp_samples: want.map((labels) => ({ labels, value: 1 })),
              },
              // The kind variable narrows every part of the table (Grafana renders a multi-value as (a|b)).
              {
                expr: evaluate('(PatchPolicy|MaintenanceWindow)'),
                eval_time: '60m',
                exp_samples: want
                  .filter((l) => /kind="(PatchPolicy|MaintenanceWindow)"/.test(l))
                  .map((labels) => ({ labels, value: 1 })),
              },
            ],
          },
        ],
      }),
    );
    expect(want.some((l) => l.includes('nonCompliant'))).toBe(true);
    expect(
      want.some((l) => l.includes('rolledBack')) && want.some((l) => l.includes('rollout RolledBack')),
    ).toBe(true);
    const r = runPromtool(['test', 'rules', file]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
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
