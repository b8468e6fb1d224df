/**
 * The install assets against a real API server (the shared test control plane):
 *  - the Helm chart deploy/helm/ecsops: `helm lint --strict`, `helm template` with the default
 *    values, with ci/full-values.yaml and with each credential mode, checked object by object
 *    (hardening, probes, RBAC = deploy/base/rbac.yaml, alerts = the kustomize PrometheusRule,
 *    every controller flag valid), then `kubectl apply --server-side --dry-run=server` of the
 *    renders, CRDs included;
 *  - every kustomize root (deploy/base, deploy/overlays/*): `kubectl kustomize` + the same dry run.
 *
 * The namespace ecsops-system is created for real (dry-run cannot create a namespace and fill it
 * in the same request); so are the Prometheus Operator ServiceMonitor / PrometheusRule CRDs, so
 * the monitoring objects are validated against their real schemas. Those CRDs are removed after.
 *
 * helm and the Prometheus Operator CRDs come from test/tools/build.sh: without them the tests that
 * need them skip with a message, except in CI (env CI set), where they fail.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig } from '../../../src/config.js';
import { applyCrd, getTestKubeConfig, kubeRequest } from '../../harness/env.js';
import { findTool, toolPath, toolTitle } from '../../tools/tools.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHART = join(ROOT, 'deploy', 'helm', 'ecsops');
const NAMESPACE = 'ecsops-system';
const KUSTOMIZE_METRICS_SERVICE = 'ecsops-controller-metrics';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

const helm = findTool('helm');
const monitoringCrds = findTool('prometheus-operator-crds');
const kubectl = inject('kubectlPath');
const kubeconfig = inject('kubeconfigPath');
const kc = getTestKubeConfig('admin');
const tmp = mkdtempSync(join(tmpdir(), 'ecsops-deploy-test-'));

const readYamlDocs = (text: string): Obj[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null);
const repoDocs = (...p: string[]) => readYamlDocs(readFileSync(join(ROOT, ...p), 'utf8'));

/** Runs a command; returns stdout, or throws with its stderr. */
function sh(bin: string, args: string[], input?: string): { stdout: string; stderr: string } {
  const res = spawnSync(bin, args, { encoding: 'utf8', input, timeout: 120_000, maxBuffer: 64 << 20 });
  if (res.status !== 0) {
    throw new Error(
      `${bin} ${args.join(' ')} exited ${res.status}:\n${res.stderr}${res.stdout.slice(0, 4000)}`,
    );
  }
  return { stdout: res.stdout, stderr: res.stderr };
}

function helmTemplate(args: string[] = [], release = 'ecsops'): Obj[] {
  const out = sh(toolPath(helm), ['template', release, CHART, '--namespace', NAMESPACE, ...args]).stdout;
  return readYamlDocs(out);
}

/** Server-side dry-run apply of `objects`; returns kubectl's output (warnings in stderr). */
function dryRunApply(objects: Obj[], name: string): { stdout: string; stderr: string } {
  const file = join(tmp, `${name}.yaml`);
  // JSON documents: a YAML round trip would turn the label value 'on' into a YAML 1.1 boolean.
  writeFileSync(file, objects.map((o) => JSON.stringify(o)).join('\n---\n'));
  return sh(kubectl, [
    '--kubeconfig',
    kubeconfig,
    'apply',
    '--server-side',
    '--dry-run=server',
    '--field-manager=ecsops-deploy-test',
    '-f',
    file,
  ]);
}

function expectCleanDryRun(res: { stdout: string; stderr: string }, objects: Obj[]): void {
  const applied = res.stdout.split('\n').filter((l) => l.includes('serverside-applied (server dry run)'));
  expect(applied.length, res.stdout).toBe(objects.length);
  // PodSecurity (the namespace enforces and warns `restricted`) and deprecation warnings.
  expect(res.stderr, res.stderr).not.toMatch(/Warning/i);
}

const byKind = (objs: Obj[], kind: string): Obj[] => objs.filter((o) => o.kind === kind);
const one = (objs: Obj[], kind: string): Obj => {
  const found = byKind(objs, kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!;
};
const controllerOf = (objs: Obj[]): Obj =>
  (one(objs, 'Deployment').spec.template.spec.containers as Obj[]).find((c) => c.name === 'controller')!;
const envNames = (objs: Obj[]): string[] => (controllerOf(objs).env as Obj[]).map((e) => e.name as string);

/** The container args with $(VAR) references expanded, parsed by the controller's own parser. */
function controllerConfig(objs: Obj[]) {
  const args = (controllerOf(objs).args as string[]).map((a) =>
    a.replace(/\$\(([A-Z_]+)\)/g, (_m, v: string) => (v === 'POD_NAMESPACE' ? NAMESPACE : `$(${v})`)),
  );
  return parseConfig(args, {});
}

beforeAll(async () => {
  // The namespace the kustomize roots and the chart renders use, created for real (idempotent).
  await kubeRequest(
    kc,
    'PATCH',
    `/api/v1/namespaces/${NAMESPACE}?fieldManager=ecsops-deploy-test&force=true`,
    one(repoDocs('deploy/base/namespace.yaml'), 'Namespace'),
    'application/apply-patch+yaml',
  );
  if (monitoringCrds.path) {
    for (const f of readdirSync(monitoringCrds.path).filter((n) => n.endsWith('.yaml'))) {
      await applyCrd(kc, parse(readFileSync(join(monitoringCrds.path, f), 'utf8')) as Obj);
    }
  }
});

afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  if (monitoringCrds.path) {
    for (const plural of ['servicemonitors', 'prometheusrules']) {
      await kubeRequest(
        kc,
        'DELETE',
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${plural}.monitoring.coreos.com`,
      ).catch(() => undefined);
    }
  }
});

describe.skipIf(helm.skip)(`Helm chart deploy/helm/ecsops ${toolTitle(helm)}`, () => {
  const fullValues = ['-f', join(CHART, 'ci', 'full-values.yaml')];

  it('passes helm lint --strict with the default and the full values', () => {
    for (const args of [[], fullValues]) {
      const out = sh(toolPath(helm), ['lint', '--strict', CHART, ...args]).stdout;
      expect(out).toContain('0 chart(s) failed');
    }
  });

  describe('default values', () => {
    let objs: Obj[] = [];
    beforeAll(() => {
      objs = helmTemplate();
    });

    it('renders the controller, its ServiceAccount, RBAC and metrics Service, nothing optional', () => {
      expect(objs.map((o) => o.kind).sort()).toEqual(
        [
          'ClusterRole',
          'ClusterRoleBinding',
          'Deployment',
          'Role',
          'RoleBinding',
          'Service',
          'ServiceAccount',
        ].sort(),
      );
      for (const o of objs) {
        if (!o.kind.startsWith('Cluster')) expect(o.metadata.namespace, `${o.kind}`).toBe(NAMESPACE);
        expect(o.metadata.labels['app.kubernetes.io/managed-by'], o.kind).toBe('Helm');
      }
    });

    it('runs one hardened replica with probes, resources and the chart appVersion image', () => {
      const deploy = one(objs, 'Deployment');
      const pod = deploy.spec.template.spec;
      const c = controllerOf(objs);
      expect(deploy.spec.replicas).toBe(1);
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(c.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
      expect(Object.fromEntries((c.ports as Obj[]).map((p) => [p.name, p.containerPort]))).toEqual({
        metrics: 8080,
        health: 8081,
      });
      expect(c.resources).toEqual({
        requests: { cpu: '100m', memory: '192Mi' },
        limits: { cpu: '1', memory: '384Mi' },
      });
      const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as Obj;
      expect(c.image).toBe(`ecsops:${chart.appVersion}`);
      expect(pod.serviceAccountName).toBe(one(objs, 'ServiceAccount').metadata.name);
      expect(pod.volumes).toEqual([{ name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } }]);
    });

    it('matches the kustomize Deployment in everything but names and labels', () => {
      const base = one(repoDocs('deploy/base/deployment.yaml'), 'Deployment');
      const k = (base.spec.template.spec.containers as Obj[])[0]!;
      const h = controllerOf(objs);
      for (const field of [
        'ports',
        'livenessProbe',
        'readinessProbe',
        'resources',
        'securityContext',
        'volumeMounts',
      ])
        expect(h[field], field).toEqual(k[field]);
      expect(h.env).toEqual(k.env);
      expect(one(objs, 'Deployment').spec.template.spec.securityContext).toEqual(
        base.spec.template.spec.securityContext,
      );
      expect(one(objs, 'Deployment').spec.template.spec.terminationGracePeriodSeconds).toBe(
        base.spec.template.spec.terminationGracePeriodSeconds,
      );
    });

    it('passes only real controller flags, electing a leader on a Lease in its own namespace', () => {
      const cfg = controllerConfig(objs);
      expect(cfg.leaderElect).toBe(true);
      expect(cfg.leaderElectionNamespace).toBe(NAMESPACE);
      expect(cfg.leaderElectionId).toBe('ecsops');
      expect(cfg.metricsBindAddress).toBe(':8080');
      expect(cfg.healthProbeBindAddress).toBe(':8081');
    });

    it('grants exactly the rules of deploy/base/rbac.yaml', () => {
      const base = repoDocs('deploy/base/rbac.yaml');
      expect(one(objs, 'ClusterRole').rules).toEqual(one(base, 'ClusterRole').rules);
      expect(one(objs, 'Role').rules).toEqual(one(base, 'Role').rules);
      const sa = one(objs, 'ServiceAccount');
      for (const b of [...byKind(objs, 'ClusterRoleBinding'), ...byKind(objs, 'RoleBinding')]) {
        expect(b.subjects).toEqual([
          { kind: 'ServiceAccount', name: sa.metadata.name, namespace: NAMESPACE },
        ]);
        expect(objs.some((o) => o.kind === b.roleRef.kind && o.metadata.name === b.roleRef.name)).toBe(true);
      }
    });

    it('annotates the ServiceAccount for ACK RRSA (credentials.mode=rrsa)', () => {
      expect(one(objs, 'ServiceAccount').metadata.annotations).toEqual({
        'pod-identity.alibabacloud.com/role-name': 'ecsops-controller',
      });
      expect(envNames(objs).filter((n) => n.startsWith('ALIBABA_CLOUD_'))).toEqual([]);
    });

    it('the metrics Service selects the controller pods on the metrics port', () => {
      const svc = one(objs, 'Service');
      expect(one(objs, 'Deployment').spec.template.metadata.labels).toMatchObject(svc.spec.selector);
      expect(svc.spec.ports).toEqual([
        { name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' },
      ]);
    });

    it('the render, CRDs included, passes a server-side dry-run apply with no warning', () => {
      const withCrds = helmTemplate(['--include-crds']);
      expect(withCrds.filter((o) => o.kind === 'CustomResourceDefinition').length).toBeGreaterThan(0);
      expectCleanDryRun(dryRunApply(withCrds, 'helm-default'), withCrds);
    });
  });

  describe.skipIf(monitoringCrds.skip)(
    `full values (ci/full-values.yaml) ${toolTitle(monitoringCrds)}`,
    () => {
      let objs: Obj[] = [];
      beforeAll(() => {
        objs = helmTemplate(fullValues);
      });

      it('adds HA, the PodDisruptionBudget, the ServiceMonitor, the PrometheusRule and the dashboard', () => {
        expect(objs.map((o) => o.kind)).toEqual(
          expect.arrayContaining(['PodDisruptionBudget', 'ServiceMonitor', 'PrometheusRule', 'ConfigMap']),
        );
        const deploy = one(objs, 'Deployment');
        expect(deploy.spec.replicas).toBe(2);
        expect(deploy.spec.template.spec.affinity.podAntiAffinity).toBeDefined();
        expect(one(objs, 'PodDisruptionBudget').spec).toEqual({
          minAvailable: 1,
          selector: { matchLabels: deploy.spec.selector.matchLabels },
        });
        const cfg = controllerConfig(objs);
        expect(cfg.leaderElectionId).toBe('ecsops-ha');
        expect(cfg.cloudQps).toBe(10);
        expect(cfg.ecsExtensionWorkers).toBe(8);
        expect(cfg.logLevel).toBe('debug');
      });

      it('reads the AccessKey from the existing Secret and creates none', () => {
        expect(byKind(objs, 'Secret')).toEqual([]);
        const env = controllerOf(objs).env as Obj[];
        for (const name of ['ALIBABA_CLOUD_ACCESS_KEY_ID', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET'])
          expect(env.find((e) => e.name === name)?.valueFrom?.secretKeyRef?.name).toBe(
            'ecsops-alibaba-credentials',
          );
        expect(env.find((e) => e.name === 'ALIBABA_CLOUD_ECS_METADATA_DISABLED')?.value).toBe('true');
        expect(one(objs, 'ServiceAccount').metadata.annotations).toEqual({
          'example.com/owner': 'platform-team',
        });
      });

      it('the PrometheusRule has the kustomize alerts, selecting the release metrics Service by job', () => {
        const svc = one(objs, 'Service').metadata.name as string;
        expect(svc).not.toBe(KUSTOMIZE_METRICS_SERVICE);
        const rendered = JSON.stringify(one(objs, 'PrometheusRule').spec.groups);
        expect(rendered).not.toContain(KUSTOMIZE_METRICS_SERVICE);
        const kustomize = one(repoDocs('deploy/components/monitoring/prometheusrule.yaml'), 'PrometheusRule');
        expect(
          JSON.parse(rendered.replaceAll(`job=\\"${svc}\\"`, `job=\\"${KUSTOMIZE_METRICS_SERVICE}\\"`)),
        ).toEqual(kustomize.spec.groups);
        expect(one(objs, 'PrometheusRule').metadata.labels.release).toBe('kube-prometheus-stack');
      });

      it('the ServiceMonitor scrapes the metrics Service port, keeping the resources namespace label', () => {
        const sm = one(objs, 'ServiceMonitor');
        expect(one(objs, 'Service').metadata.labels).toMatchObject(sm.spec.selector.matchLabels);
        expect(sm.spec.endpoints).toEqual([
          { port: 'metrics', path: '/metrics', interval: '15s', scrapeTimeout: '10s', honorLabels: true },
        ]);
      });

      it('the dashboard ConfigMap carries the Grafana sidecar label and the dashboard JSON', () => {
        const cm = one(objs, 'ConfigMap');
        expect(cm.metadata.labels.grafana_dashboard).toBe('1');
        expect(JSON.parse(cm.data['ecsops.json'] as string)).toEqual(
          JSON.parse(readFileSync(join(ROOT, 'deploy/components/monitoring/grafana-dashboard.json'), 'utf8')),
        );
      });

      it('the render passes a server-side dry-run apply (monitoring objects against their CRDs)', () => {
        expectCleanDryRun(dryRunApply(objs, 'helm-full'), objs);
      });
    },
  );

  describe('credential modes', () => {
    it('accessKey without existingSecret creates the Secret and rolls pods when it changes', () => {
      // Placeholders assembled at run time: no credential-looking literal in the repository.
      const id = ['placeholder', 'id'].join('-');
      const render = (secret: string) =>
        helmTemplate([
          '--set',
          'credentials.mode=accessKey',
          '--set',
          `credentials.accessKey.accessKeyId=${id}`,
          '--set',
          `credentials.accessKey.accessKeySecret=${secret}`,
        ]);
      const objs = render('placeholder-secret-1');
      const secret = one(objs, 'Secret');
      expect(secret.stringData).toEqual({ accessKeyId: id, accessKeySecret: 'placeholder-secret-1' });
      const env = controllerOf(objs).env as Obj[];
      expect(env.find((e) => e.name === 'ALIBABA_CLOUD_ACCESS_KEY_ID')?.valueFrom?.secretKeyRef?.name).toBe(
        secret.metadata.name,
      );
      expect(one(objs, 'ServiceAccount').metadata.annotations ?? {}).toEqual({});
      const checksum = (o: Obj[]) =>
        one(o, 'Deployment').spec.template.metadata.annotations['checksum/credentials'];
      expect(checksum(objs)).toMatch(/^[0-9a-f]{64}$/);
      expect(checksum(render('placeholder-secret-2'))).not.toBe(checksum(objs));
      expectCleanDryRun(dryRunApply(objs, 'helm-accesskey'), objs);
    });

    it('rrsaManual mounts the projected STS token the way the rrsa-manual component does', () => {
      const objs = helmTemplate([
        '--set',
        'credentials.mode=rrsaManual',
        '--set',
        'credentials.rrsaManual.roleArn=acs:ram::1234567890123456:role/ecsops-controller',
        '--set',
        'credentials.rrsaManual.oidcProviderArn=acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0123',
      ]);
      const component = one(repoDocs('deploy/components/rrsa-manual/deployment-rrsa.yaml'), 'Deployment');
      const kVolume = (component.spec.template.spec.volumes as Obj[])[0]!;
      const hVolume = (one(objs, 'Deployment').spec.template.spec.volumes as Obj[]).find(
        (v) => v.name === kVolume.name,
      );
      expect(hVolume).toEqual(kVolume);
      const kMount = (component.spec.template.spec.containers as Obj[])[0]!.volumeMounts[0];
      expect(controllerOf(objs).volumeMounts).toContainEqual(kMount);
      const env = Object.fromEntries((controllerOf(objs).env as Obj[]).map((e) => [e.name, e.value]));
      expect(env).toMatchObject({
        ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::1234567890123456:role/ecsops-controller',
        ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0123',
        ALIBABA_CLOUD_OIDC_TOKEN_FILE: '/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token',
      });
      expect(one(objs, 'ServiceAccount').metadata.annotations ?? {}).toEqual({});
      expectCleanDryRun(dryRunApply(objs, 'helm-rrsa-manual'), objs);
    });

    it('rejects invalid values with a clear message', () => {
      const fails = (args: string[]) => {
        const res = spawnSync(toolPath(helm), ['template', 'x', CHART, ...args], { encoding: 'utf8' });
        expect(res.status, res.stdout).not.toBe(0);
        return res.stderr;
      };
      expect(fails(['--set', 'credentials.mode=vault'])).toContain('/credentials/mode');
      expect(fails(['--set', 'credentials.mode=accessKey'])).toContain(
        'accessKeyId (or existingSecret) is required',
      );
      expect(fails(['--set', 'credentials.mode=rrsaManual'])).toContain('roleArn is required');
      expect(
        fails(['--set', 'replicaCount=2', '--set', 'controller.leaderElection.enabled=false']),
      ).toContain('needs controller.leaderElection.enabled');
      expect(fails(['--set', 'podDisruptionBudget.enabled=true'])).toContain('needs replicaCount >= 2');
      expect(fails(['--set', 'controller.extraArgs[0]=cloud-qps=5'])).toContain('/controller/extraArgs/0');
      expect(fails(['--set', 'replicas=2'])).toContain('replicas');
    });
  });

  it('NOTES.txt tells how to check the rollout and label the namespace for RRSA', () => {
    const out = sh(toolPath(helm), [
      'install',
      'ecsops',
      CHART,
      '--dry-run=client',
      '--namespace',
      NAMESPACE,
    ]).stdout;
    expect(out).toContain('kubectl -n ecsops-system rollout status deploy/ecsops');
    expect(out).toContain('pod-identity.alibabacloud.com/injection=on');
  });
});

describe('kustomize roots', () => {
  const roots = [
    'deploy/base',
    ...readdirSync(join(ROOT, 'deploy', 'overlays'))
      .sort()
      .map((o) => `deploy/overlays/${o}`),
  ];

  it.each(roots)('%s renders and passes a server-side dry-run apply', (root) => {
    const objs = readYamlDocs(sh(kubectl, ['kustomize', join(ROOT, root)]).stdout);
    const needsMonitoring = objs.some((o) => String(o.apiVersion).startsWith('monitoring.coreos.com/'));
    if (needsMonitoring && monitoringCrds.skip) {
      console.warn(`${root}: dry run SKIPPED — ${monitoringCrds.reason}`);
      return;
    }
    if (needsMonitoring) toolPath(monitoringCrds); // fails in CI when missing
    // The Namespace itself exists already (beforeAll); dry-run the rest.
    expect(one(objs, 'Namespace').metadata.name).toBe(NAMESPACE);
    expectCleanDryRun(dryRunApply(objs, root.replaceAll('/', '_')), objs);
  });
});
