/**
 * Copies that must stay equal to their source, checked without any tool:
 *  - the Helm chart's crds/ and the repository's crds/ (byte for byte);
 *  - the chart's Grafana dashboard and deploy/components/monitoring/grafana-dashboard.json;
 *  - the chart's Prometheus rules file and the groups of the kustomize PrometheusRule;
 *  - deploy/argocd/argocd-cm.yaml and the Lua scripts it is generated from;
 *  - the chart version, its appVersion, package.json and the base's image tag.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { argocdCmData } from '../../tools/gen-argocd-cm.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHART = join(ROOT, 'deploy', 'helm', 'ecsops');
const read = (...p: string[]) => readFileSync(join(ROOT, ...p), 'utf8');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

describe('Helm chart copies', () => {
  it('crds/ of the chart are the repository crds/, byte for byte', () => {
    const repo = readdirSync(join(ROOT, 'crds')).filter(
      (n) => n.endsWith('.yaml') && n !== 'kustomization.yaml',
    );
    const chart = readdirSync(join(CHART, 'crds'));
    expect(chart.sort(), 'copy with: cp crds/ecsops.io_*.yaml deploy/helm/ecsops/crds/').toEqual(repo.sort());
    for (const name of repo) {
      expect(
        read('deploy/helm/ecsops/crds', name),
        `deploy/helm/ecsops/crds/${name} drifted from crds/${name}`,
      ).toBe(read('crds', name));
    }
  });

  it('the chart dashboard is deploy/components/monitoring/grafana-dashboard.json', () => {
    expect(read('deploy/helm/ecsops/files/grafana-dashboard.json')).toBe(
      read('deploy/components/monitoring/grafana-dashboard.json'),
    );
  });

  it('the chart rules file holds the groups of the kustomize PrometheusRule', () => {
    const rule = parseAllDocuments(read('deploy/components/monitoring/prometheusrule.yaml'))
      .map((d) => d.toJS() as Obj)
      .find((d) => d.kind === 'PrometheusRule')!;
    const file = parse(read('deploy/helm/ecsops/files/prometheus-rules.yaml')) as Obj;
    expect(Object.keys(file)).toEqual(['groups']);
    expect(file.groups).toEqual(rule.spec.groups);
  });

  it('chart version = appVersion = package.json version = the base image tag', () => {
    const chart = parse(read('deploy/helm/ecsops/Chart.yaml')) as Obj;
    const pkg = JSON.parse(read('package.json')) as { version: string };
    const base = parse(read('deploy/base/kustomization.yaml')) as Obj;
    expect(chart.version).toBe(pkg.version);
    expect(chart.appVersion).toBe(pkg.version);
    expect(base.images[0].newTag).toBe(pkg.version);
  });
});

describe('deploy/argocd/argocd-cm.yaml', () => {
  it('holds the current health script and actions (regenerate: npx tsx test/tools/gen-argocd-cm.ts)', () => {
    const cm = parse(read('deploy/argocd/argocd-cm.yaml')) as Obj;
    expect(cm).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'argocd-cm' } });
    expect(cm.metadata.labels['app.kubernetes.io/part-of']).toBe('argocd');
    expect(cm.data).toEqual(argocdCmData());
  });

  it('the actions value is the YAML Argo CD expects: discovery.lua and named definitions', () => {
    const value = argocdCmData()['resource.customizations.actions.ecsops.io_EcsExtension']!;
    const parsed = parse(value) as { 'discovery.lua': string; definitions: Array<Obj> };
    expect(parsed['discovery.lua']).toBe(read('deploy/argocd/actions/discovery.lua'));
    expect(parsed.definitions.map((d) => d.name)).toEqual(['reconcile', 'resume', 'suspend']);
    for (const d of parsed.definitions) {
      expect(Object.keys(d).sort()).toEqual(['action.lua', 'name']);
      expect(d['action.lua']).toBe(read('deploy/argocd/actions', d.name as string, 'action.lua'));
    }
  });
});
