/**
 * Copies that must stay equal to their source, checked without any tool:
 *  - the Helm chart's crds/ and the repository's crds/ (byte for byte);
 *  - the chart's Grafana dashboard and deploy/components/monitoring/grafana-dashboard.json;
 *  - the chart's Prometheus rules file and the groups of the kustomize PrometheusRule;
 *  - deploy/argocd/argocd-cm.yaml and the Lua scripts it is generated from; its keys and the kinds
 *    of crds/; its keys and the lists of them in README.md, deploy/argocd/README.md and
 *    docs/deploy.md §5;
 *  - the chart version, its appVersion, package.json and the base's image tag.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ARGOCD_KINDS, argocdCmData, KIND_ONLY_ACTIONS } from '../../tools/gen-argocd-cm.js';

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

describe('argocd-cm keys: one health and one actions key per ecsops.io kind, listed by the docs', () => {
  const cmKeys = Object.keys((parse(read('deploy/argocd/argocd-cm.yaml')) as Obj).data as Obj).sort();
  /** The ecsops.io kinds of crds/, with whether each has spec.suspend. */
  const crdKinds = readdirSync(join(ROOT, 'crds'))
    .filter((n) => n.startsWith('ecsops.io_'))
    .map((n) => {
      const crd = parse(read('crds', n)) as Obj;
      const specProps = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties as Obj;
      return { kind: crd.spec.names.kind as string, suspend: 'suspend' in specProps };
    });
  /** The argocd-cm keys a text names (placeholders such as `<kind>` are not keys). */
  const keysIn = (text: string) =>
    [
      ...new Set(text.match(/resource\.customizations\.(?:health|actions)\.ecsops\.io_[A-Za-z]+/g) ?? []),
    ].sort();
  /** A Markdown section: from its heading to the next heading of the same level. */
  const section = (text: string, heading: string) => {
    const start = text.indexOf(`${heading}\n`);
    expect(start, heading).toBeGreaterThanOrEqual(0);
    const level = /^#+/.exec(heading)![0];
    const end = text.indexOf(`\n${level} `, start + heading.length);
    return text.slice(start, end < 0 ? undefined : end);
  };

  it('argocd-cm.yaml has a health and an actions key for every kind of crds/ (and no other)', () => {
    expect(crdKinds.map((k) => k.kind).sort()).toEqual([...ARGOCD_KINDS].sort());
    expect(cmKeys).toEqual(
      crdKinds
        .flatMap(({ kind }) => [
          `resource.customizations.actions.ecsops.io_${kind}`,
          `resource.customizations.health.ecsops.io_${kind}`,
        ])
        .sort(),
    );
  });

  it('suspend and resume are offered exactly to the kinds whose CRD has spec.suspend', () => {
    const suspendable = crdKinds.filter((k) => k.suspend).map((k) => k.kind);
    expect([...KIND_ONLY_ACTIONS.suspend!].sort()).toEqual(suspendable.sort());
    expect([...KIND_ONLY_ACTIONS.resume!].sort()).toEqual(suspendable.sort());
    for (const { kind, suspend } of crdKinds) {
      const value = argocdCmData()[`resource.customizations.actions.ecsops.io_${kind}`]!;
      const names = (parse(value) as { definitions: Obj[] }).definitions.map((d) => d.name as string);
      expect(names.includes('suspend') && names.includes('resume'), kind).toBe(suspend);
    }
  });

  it.each([
    ['README.md', () => read('README.md')],
    ['deploy/argocd/README.md', () => read('deploy/argocd/README.md')],
    ['docs/deploy.md §5', () => section(read('docs/deploy.md'), '## 5. Argo CD')],
  ])('%s lists exactly the keys argocd-cm.yaml has', (_doc, text) => {
    expect(keysIn(text())).toEqual(cmKeys);
  });

  it('the key extraction sees a missing kind (the check is not vacuous)', () => {
    const doc = read('deploy/argocd/README.md').replaceAll('ecsops.io_MaintenanceWindow', 'ecsops.io_<Kind>');
    expect(keysIn(doc)).not.toEqual(cmKeys);
    expect(keysIn(doc)).toHaveLength(cmKeys.length - 2);
  });
});
