/**
 * The install assets against a real API server (the shared test control plane):
 *  - the Helm chart deploy/helm/ecsops: `helm lint --strict`, `helm template` with the default
 *    values, with ci/full-values.yaml and with each credential mode, checked object by object
 *    (hardening, probes, RBAC = deploy/base/rbac.yaml, alerts = the kustomize PrometheusRule,
 *    every controller flag valid, typed flag values checked by the schema), then
 *    `kubectl apply --server-side --dry-run=server` of the renders, CRDs included;
 *    `helm install --dry-run=server` with monitoring on, with and without the Prometheus Operator
 *    CRDs; a real install into a namespace labelled as NOTES.txt says, and Helm 4's server-side
 *    apply conflict after a `kubectl patch` (docs/deploy.md);
 *  - every kustomize root (deploy/base, deploy/overlays/*): `kubectl kustomize` + the same dry run;
 *    the documented kubectl-only flow (an overlay setting the image, the namespace first, then a
 *    server-side dry run, then the real apply) on a namespace that does not exist yet.
 *
 * The namespace ecsops-system is created for real (dry-run cannot create a namespace and fill it
 * in the same request); so are the Prometheus Operator ServiceMonitor / PrometheusRule CRDs, so
 * the monitoring objects are validated against their real schemas. Those CRDs are removed after.
 *
 * helm and the Prometheus Operator CRDs come from test/tools/build.sh: without them the tests that
 * need them skip with a message, except in CI (env CI set), where they fail.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { parseConfig } from '../../../src/config.js';
import { applyCrd, getTestKubeConfig, kubeRequest } from '../../harness/env.js';
import { waitFor } from '../../harness/stack.js';
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

/** The Prometheus Operator kinds the chart renders only where the API server serves them. */
const MONITORING_KINDS = ['ServiceMonitor', 'PrometheusRule'];
/** `helm template` has no cluster to ask: these tell it the Prometheus Operator APIs exist. */
const MONITORING_API_VERSIONS = MONITORING_KINDS.flatMap((k) => [
  '--api-versions',
  `monitoring.coreos.com/v1/${k}`,
]);

/** Helm against the test API server, with its own config, cache and data dirs; never throws. */
function helmCluster(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const home = join(tmp, 'helm-home');
  const res = spawnSync(toolPath(helm), [...args, '--kubeconfig', kubeconfig], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 << 20,
    env: {
      ...process.env,
      HOME: home, // also kubectl's discovery cache (~/.kube/cache), which Helm uses
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data'),
    },
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** The manifest and the NOTES of `helm install --dry-run` output. */
function dryRunOutput(stdout: string): { objs: Obj[]; notes: string } {
  const manifest = stdout.slice(stdout.indexOf('MANIFEST:') + 'MANIFEST:'.length, stdout.indexOf('\nNOTES:'));
  return { objs: readYamlDocs(manifest), notes: stdout.slice(stdout.indexOf('\nNOTES:')) };
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

    it("the typed controller values default to the controller's own defaults", () => {
      const cfg = controllerConfig(objs);
      const defaults = parseConfig([], {});
      for (const key of [
        'logLevel',
        'cloudQps',
        'executionPollMinMs',
        'executionPollMaxMs',
        'fullResyncPeriodMs',
        'actionTrail',
      ] as const)
        expect(cfg[key], key).toBe(defaults[key]);
      expect(cfg.namespace).toBeUndefined();
      expect(cfg.watchLabelSelector).toBeUndefined();
      const args = controllerOf(objs).args as string[];
      expect(new Set(args.map((a) => a.split('=')[0])).size).toBe(args.length);
    });

    it('grants exactly the rules of deploy/base/rbac.yaml', () => {
      const base = repoDocs('deploy/base/rbac.yaml');
      const baseController = base.find(
        (o) => o.kind === 'ClusterRole' && o.metadata.name === 'ecsops-controller',
      );
      expect(one(objs, 'ClusterRole').rules).toEqual(baseController?.rules);
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
        objs = helmTemplate([...fullValues, ...MONITORING_API_VERSIONS]);
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
        expect(cfg.executionPollMinMs).toBe(2_000);
        expect(cfg.executionPollMaxMs).toBe(90_000);
        expect(cfg.fullResyncPeriodMs).toBe(7_200_000);
        expect(cfg.actionTrail).toBe(false);
        expect(cfg.watchLabelSelector).toBe('sharding.ecsops.io/key notin (canary)');
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

  describe('Secret reader (AppRelease install.envVars secretKeyRef)', () => {
    it('renders nothing by default; per listed namespace a RoleBinding to the secret-reader ClusterRole', () => {
      expect(helmTemplate().some((o) => String(o.metadata?.name).endsWith('secret-reader'))).toBe(false);
      const objs = helmTemplate(['--set', 'rbac.secretReaderNamespaces={team-a,team-b}']);
      const base = repoDocs('deploy/base/rbac.yaml').find(
        (o) => o.kind === 'ClusterRole' && o.metadata.name === 'ecsops-secret-reader',
      );
      const role = byKind(objs, 'ClusterRole').find((o) => o.metadata.name === 'ecsops-secret-reader');
      expect(role?.rules).toEqual(base?.rules);
      const bindings = byKind(objs, 'RoleBinding').filter((b) => b.roleRef.name === 'ecsops-secret-reader');
      expect(bindings.map((b) => b.metadata.namespace).sort()).toEqual(['team-a', 'team-b']);
      const sa = one(objs, 'ServiceAccount');
      for (const b of bindings) {
        expect(b.roleRef).toEqual({
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'ecsops-secret-reader',
        });
        expect(b.subjects).toEqual([
          { kind: 'ServiceAccount', name: sa.metadata.name, namespace: NAMESPACE },
        ]);
      }
    });
  });

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

    it('the typed controller values reach the Deployment args, parsed by the controller as set', () => {
      const objs = helmTemplate([
        '--set',
        'controller.cloudQps=3000000', // rendered as an integer, not 3e+06
        '--set',
        'controller.executionPollMin=1.5s',
        '--set',
        'controller.executionPollMax=1m30s',
        '--set',
        'controller.watchNamespace=team-a',
        '--set',
        'controller.watchLabelSelector=sharding.ecsops.io/key in (shard1)',
        '--set',
        'controller.logLevel=warn',
        '--set',
        'controller.leaderElection.enabled=false',
        '--set',
        'controller.fullResyncPeriod=90m',
        '--set',
        'controller.actionTrail=false',
      ]);
      const cfg = controllerConfig(objs);
      expect(cfg).toMatchObject({
        fullResyncPeriodMs: 5_400_000,
        actionTrail: false,
        cloudQps: 3_000_000,
        executionPollMinMs: 1_500,
        executionPollMaxMs: 90_000,
        namespace: 'team-a',
        watchLabelSelector: 'sharding.ecsops.io/key in (shard1)',
        logLevel: 'warn',
        leaderElect: false,
      });
      expect((controllerOf(objs).args as string[]).some((a) => a.startsWith('--leader-election-id'))).toBe(
        false,
      );
    });

    it('the schema and the template reject a bad flag value before it reaches the pod', () => {
      const fails = (args: string[]) => {
        const res = spawnSync(toolPath(helm), ['template', 'x', CHART, ...args], { encoding: 'utf8' });
        expect(res.status, `${args.join(' ')}: ${res.stdout}`).not.toBe(0);
        return res.stderr;
      };
      // The issue's example: a non-integer qps, typed or through extraArgs.
      expect(fails(['--set', 'controller.cloudQps=two'])).toContain(
        "at '/controller/cloudQps': got string, want integer",
      );
      expect(fails(['--set', 'cloudQps=two'])).toContain("additional properties 'cloudQps' not allowed");
      expect(fails(['--set', 'controller.extraArgs[0]=--cloud-qps=two'])).toContain(
        'controller.extraArgs: --cloud-qps is rendered by the chart, from the value controller.cloudQps',
      );
      expect(fails(['--set', 'controller.cloudQps=2.5'])).toContain('/controller/cloudQps');
      expect(fails(['--set', 'controller.cloudQps=0'])).toContain('/controller/cloudQps');
      for (const bad of ['5', '5sec', '0s', '0.0ms', '-1s'])
        expect(fails(['--set', `controller.executionPollMin=${bad}`]), bad).toContain(
          '/controller/executionPollMin',
        );
      expect(fails(['--set', 'controller.fullResyncPeriod=10'])).toContain('/controller/fullResyncPeriod');
      expect(fails(['--set', 'controller.actionTrail=maybe'])).toContain('/controller/actionTrail');
      expect(fails(['--set', 'controller.extraArgs[0]=--actiontrail=false'])).toContain(
        'controller.extraArgs: --actiontrail is rendered by the chart, from the value controller.actionTrail',
      );
      expect(fails(['--set', 'controller.executionPollMax=soon'])).toContain('/controller/executionPollMax');
      expect(fails(['--set', 'controller.logLevel=verbose'])).toContain('/controller/logLevel');
      expect(fails(['--set', 'controller.leaderElection.enabled=maybe'])).toContain(
        '/controller/leaderElection/enabled',
      );
      expect(fails(['--set', 'controller.watchNamespace=Team_A'])).toContain('/controller/watchNamespace');
      for (const flag of ['--namespace=a', '--log-level=debug', '--execution-poll-max=2m', '--leader-elect'])
        expect(fails(['--set', `controller.extraArgs[0]=${flag}`]), flag).toContain(
          `controller.extraArgs: ${flag.split('=')[0]} is rendered by the chart, from `,
        );
      // helm lint applies the same schema.
      const lint = spawnSync(
        toolPath(helm),
        ['lint', '--strict', CHART, '--set', 'controller.cloudQps=two'],
        {
          encoding: 'utf8',
        },
      );
      expect(lint.status).not.toBe(0);
      expect(lint.stdout + lint.stderr).toContain('/controller/cloudQps');
    });
  });

  it('leaves the monitoring objects out where the API server does not serve their kinds', () => {
    // `helm template` knows only the built-in APIs unless --api-versions says otherwise.
    const fullValues = ['-f', join(CHART, 'ci', 'full-values.yaml')];
    expect(helmTemplate(fullValues).filter((o) => MONITORING_KINDS.includes(o.kind))).toEqual([]);
    expect(
      helmTemplate([...fullValues, ...MONITORING_API_VERSIONS])
        .filter((o) => MONITORING_KINDS.includes(o.kind))
        .map((o) => o.kind)
        .sort(),
    ).toEqual([...MONITORING_KINDS].sort());
  });

  describe.skipIf(monitoringCrds.skip)(
    `helm install --dry-run=server with monitoring on ${toolTitle(monitoringCrds)}`,
    () => {
      const crdNames = MONITORING_KINDS.map((k) => `${k.toLowerCase()}s.monitoring.coreos.com`);
      /** Whether discovery lists the monitoring.coreos.com group at all. */
      const groupServed = async (): Promise<boolean> => {
        const groups = (await kubeRequest(kc, 'GET', '/apis')) as { groups: Array<{ name: string }> };
        return groups.groups.some((g) => g.name === 'monitoring.coreos.com');
      };
      /** The monitoring.coreos.com/v1 kinds discovery lists (only asked once the group is served:
       * an unserved group answers 404 with a plain-text body). */
      const servedKinds = async (): Promise<string[]> => {
        if (!(await groupServed())) return [];
        const list = (await kubeRequest(kc, 'GET', '/apis/monitoring.coreos.com/v1')) as {
          resources?: Array<{ kind: string; name: string }>;
        };
        return (list.resources ?? []).filter((r) => !r.name.includes('/')).map((r) => r.kind);
      };
      const applyMonitoringCrds = async (): Promise<void> => {
        const dir = toolPath(monitoringCrds);
        for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml')))
          await applyCrd(kc, parse(readFileSync(join(dir, f), 'utf8')) as Obj);
      };
      const installDryRun = () => {
        const res = helmCluster([
          'install',
          'ecsops',
          CHART,
          '--namespace',
          NAMESPACE,
          '--dry-run=server',
          '-f',
          join(CHART, 'ci', 'full-values.yaml'),
        ]);
        expect(res.status, res.stderr).toBe(0);
        return dryRunOutput(res.stdout);
      };
      // The file's other tests expect the CRDs installed, as its beforeAll left them.
      afterAll(applyMonitoringCrds);

      it('passes without the Prometheus Operator CRDs, leaving the monitoring objects out, with a warning', async () => {
        for (const name of crdNames)
          await kubeRequest(
            kc,
            'DELETE',
            `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
          ).catch((err: { code?: number }) => {
            if (err.code !== 404) throw err;
          });
        await waitFor(
          'monitoring.coreos.com gone from discovery',
          async () => !(await groupServed()),
          60_000,
        );
        const { objs, notes } = installDryRun();
        expect(objs.map((o) => o.kind)).toEqual(
          expect.arrayContaining(['Deployment', 'Service', 'PodDisruptionBudget', 'ConfigMap']),
        );
        expect(objs.filter((o) => MONITORING_KINDS.includes(o.kind))).toEqual([]);
        expect(notes).toContain('metrics.serviceMonitor.enabled is set');
        expect(notes).toContain('metrics.prometheusRule.enabled is set');
        for (const k of MONITORING_KINDS) expect(notes).toContain(`the ${k} was NOT`);
      });

      it('passes with the CRDs installed, now rendering the ServiceMonitor and the PrometheusRule', async () => {
        await applyMonitoringCrds();
        await waitFor(
          'ServiceMonitor and PrometheusRule in discovery',
          async () => {
            const kinds = await servedKinds();
            return MONITORING_KINDS.every((k) => kinds.includes(k));
          },
          60_000,
        );
        const { objs, notes } = installDryRun();
        expect(
          objs
            .filter((o) => MONITORING_KINDS.includes(o.kind))
            .map((o) => o.kind)
            .sort(),
        ).toEqual([...MONITORING_KINDS].sort());
        expect(notes).not.toContain('NOT created');
      });
    },
  );

  it("installs into a namespace labelled as NOTES.txt says; Helm 4's server-side apply conflicts after kubectl patch", async () => {
    const ns = `ecsops-helm-${randomBytes(3).toString('hex')}`;
    const release = 'ecsops-ssa'; // contains the chart name: the objects are named ecsops-ssa
    const k = (...args: string[]) => sh(kubectl, ['--kubeconfig', kubeconfig, '-n', ns, ...args]);
    await kubeRequest(kc, 'POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns },
    });
    try {
      // The namespace an admin creates has no Pod Security label: NOTES.txt gives the command
      // (the chart's pods meet `restricted`, the level the kustomize namespace enforces).
      const dry = helmCluster(['install', release, CHART, '-n', ns, '--skip-crds', '--dry-run=server']);
      expect(dry.status, dry.stderr).toBe(0);
      const label = dryRunOutput(dry.stdout)
        .notes.split('\n')
        .map((l) => l.trim())
        .find((l) => l.startsWith('kubectl label namespace') && l.includes('pod-security'));
      expect(label).toBe(
        `kubectl label namespace ${ns} pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted`,
      );
      k(...label!.split(' ').slice(1));

      // A real install into the labelled namespace: no PodSecurity warning.
      const install = helmCluster(['install', release, CHART, '-n', ns, '--skip-crds']);
      expect(install.status, install.stderr).toBe(0);
      expect(install.stderr).not.toMatch(/PodSecurity|would violate/i);
      const labels = ((await kubeRequest(kc, 'GET', `/api/v1/namespaces/${ns}`)) as Obj).metadata.labels;
      expect(labels).toMatchObject({
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/warn': 'restricted',
      });

      // kubectl patch of a field the chart sets: the field now has another manager, and Helm 4's
      // server-side apply (its default) refuses to take it back...
      const grace = (patch: number) =>
        k(
          'patch',
          `deploy/${release}`,
          '--type=merge',
          '-p',
          JSON.stringify({ spec: { template: { spec: { terminationGracePeriodSeconds: patch } } } }),
        );
      grace(60);
      const upgrade = helmCluster(['upgrade', release, CHART, '-n', ns]);
      expect(upgrade.status).not.toBe(0);
      expect(upgrade.stderr).toContain('conflict with "kubectl-patch"');
      expect(upgrade.stderr).toContain('.spec.template.spec.terminationGracePeriodSeconds');

      // ...until --force-conflicts restores the chart's value.
      const forced = helmCluster(['upgrade', release, CHART, '-n', ns, '--force-conflicts']);
      expect(forced.status, forced.stderr).toBe(0);
      const terminationGrace = async () =>
        ((await kubeRequest(kc, 'GET', `/apis/apps/v1/namespaces/${ns}/deployments/${release}`)) as Obj).spec
          .template.spec.terminationGracePeriodSeconds as number;
      expect(await terminationGrace()).toBe(45);

      // kubectl rollout restart sets an annotation the chart does not: no conflict (the upgrade
      // is server-side still: --server-side=auto follows the previous release).
      k('rollout', 'restart', `deploy/${release}`);
      const after = helmCluster(['upgrade', release, CHART, '-n', ns]);
      expect(after.status, after.stderr).toBe(0);

      // Helm 3's client-side three-way merge takes a patched field back too.
      grace(60);
      const clientSide = helmCluster(['upgrade', release, CHART, '-n', ns, '--server-side=false']);
      expect(clientSide.status, clientSide.stderr).toBe(0);
      expect(await terminationGrace()).toBe(45);
    } finally {
      helmCluster(['uninstall', release, '-n', ns]);
      await kubeRequest(kc, 'DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined);
    }
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

  it('the documented kubectl-only flow works where the namespace does not exist yet', async () => {
    // README / docs/deploy.md: an overlay of one's own sets the image (no kustomize binary), the
    // namespace is applied first (selected by its Pod Security label), then the server-side dry
    // run, then the real apply. Here the overlay also gives everything a namespace and names of
    // its own, so it runs where deploy/base's ecsops-system and cluster-wide RBAC exist already.
    const ns = `ecsops-kflow-${randomBytes(3).toString('hex')}`;
    const suffix = `-${ns.slice(-6)}`;
    const dir = join(tmp, 'my-ecsops');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      stringify({
        apiVersion: 'kustomize.config.k8s.io/v1beta1',
        kind: 'Kustomization',
        resources: [relative(dir, join(ROOT, 'deploy', 'base'))],
        images: [{ name: 'ecsops', newName: 'registry.example.com/platform/ecsops', newTag: '0.1.0' }],
        namespace: ns,
        nameSuffix: suffix,
      }),
    );
    const k = (...args: string[]) => sh(kubectl, ['--kubeconfig', kubeconfig, ...args]);
    const objs = readYamlDocs(k('kustomize', dir).stdout);
    expect(controllerOf(objs).image).toBe('registry.example.com/platform/ecsops:0.1.0');
    expect(one(objs, 'Namespace').metadata.name).toBe(ns);
    const lines = (out: string) => out.trim().split('\n');
    try {
      // A dry run alone cannot pass: the API server refuses objects in a namespace that does not
      // exist, and a dry run never creates one (kubernetes/kubernetes#83562).
      const alone = spawnSync(kubectl, ['--kubeconfig', kubeconfig, 'apply', '--dry-run=server', '-k', dir], {
        encoding: 'utf8',
      });
      expect(alone.status).not.toBe(0);
      expect(alone.stderr).toContain(`namespaces "${ns}" not found`);

      expect(
        lines(k('apply', '-k', dir, '-l', 'pod-security.kubernetes.io/enforce=restricted').stdout),
      ).toEqual([`namespace/${ns} created`]);
      const dry = k('apply', '--dry-run=server', '-k', dir);
      expect(lines(dry.stdout).length, dry.stdout).toBe(objs.length);
      expect(
        lines(dry.stdout).every((l) => l.endsWith('(server dry run)')),
        dry.stdout,
      ).toBe(true);
      expect(dry.stderr).not.toMatch(/PodSecurity|would violate/i);

      const real = k('apply', '-k', dir);
      expect(lines(real.stdout).length, real.stdout).toBe(objs.length);
      expect(real.stdout).toContain(`deployment.apps/ecsops-controller${suffix} created`);
      expect(real.stderr).not.toMatch(/PodSecurity|would violate/i);
      const ready = (await kubeRequest(kc, 'GET', `/api/v1/namespaces/${ns}`)) as Obj;
      expect(ready.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    } finally {
      spawnSync(kubectl, ['--kubeconfig', kubeconfig, 'delete', 'namespace', ns, '--wait=false']);
      spawnSync(kubectl, [
        '--kubeconfig',
        kubeconfig,
        'delete',
        `clusterrole/ecsops-controller${suffix}`,
        `clusterrolebinding/ecsops-controller${suffix}`,
        '--ignore-not-found',
      ]);
    }
  });
});
