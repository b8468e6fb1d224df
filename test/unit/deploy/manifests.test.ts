/**
 * Static checks of the deployment assets: every YAML file under deploy/ and crds/ parses, every
 * Kubernetes object is named, the Deployment is hardened, RBAC grants exactly the API calls the
 * controller makes, every Deployment flag is a real controller flag, the alerts use metrics the
 * controller registers, and (when a kustomize binary is found) every kustomization renders.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Command } from 'commander';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ACTIONTRAIL_ACTIONS } from '../../../src/cloud/actiontrail.js';
import { ALB_ACTIONS } from '../../../src/cloud/alb.js';
import { SLB_ACTIONS } from '../../../src/cloud/slb.js';
import { ECS_ACTIONS } from '../../../src/cloud/ecs.js';
import { cloudMetrics } from '../../../src/cloud/metrics.js';
import { OOS_ACTIONS } from '../../../src/cloud/oos.js';
import {
  ASSOCIATED_ACTIONS,
  ramActionName,
  ramPolicyFor,
  TEMPLATE_ACTIONS,
} from '../../../src/cloud/ram-actions.js';
import { addControllerOptions, parseConfig } from '../../../src/config.js';
import { DomainMetrics, INSTANCE_STATES } from '../../../src/controllers/shared/metrics.js';
import { controllerRuntimeMetrics } from '../../../src/runtime/metrics.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const NAMESPACE = 'ecsops-system';

/** YAML files that are not Kubernetes objects, with the reason. */
const NOT_KUBERNETES_OBJECTS: Record<string, string> = {
  'deploy/emulator/fleet.yaml': 'cloud emulator seed (ecsops emulator --seed)',
  'deploy/argocd/health_test.yaml': "Argo CD health-check test cases (Argo CD's test format)",
  'deploy/argocd/health-apprelease_test.yaml': "AppRelease health-check test cases (Argo CD's test format)",
  'deploy/argocd/health-patchpolicy_test.yaml': "PatchPolicy health-check test cases (Argo CD's test format)",
  'deploy/argocd/health-maintenancewindow_test.yaml':
    "MaintenanceWindow health-check test cases (Argo CD's test format)",
  'deploy/argocd/health-instancedisruptionbudget_test.yaml':
    "InstanceDisruptionBudget health-check test cases (Argo CD's test format)",
  'deploy/argocd/actions/action_test.yaml': "Argo CD resource-action test cases (Argo CD's test format)",
  'deploy/monitoring-tests/alerts.test.yaml': 'promtool rule unit tests',
};

/**
 * The Helm chart is checked by test/integration/deploy/helm.test.ts (helm lint / template) and
 * test/unit/deploy/drift.test.ts: its templates are Go templates, not YAML.
 */
const HELM_CHARTS = 'deploy/helm';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

interface YamlFile {
  path: string; // relative to ROOT, forward slashes
  docs: Obj[];
}

function walk(dir: string, pattern = /\.ya?ml$/): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) return walk(full, pattern);
    return pattern.test(name) ? [full] : [];
  });
}

function loadYaml(path: string): YamlFile {
  const rel = relative(ROOT, path).split('\\').join('/');
  const docs = parseAllDocuments(readFileSync(path, 'utf8'));
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`${rel}: ${d.errors.map((e) => e.message).join('; ')}`);
  }
  return { path: rel, docs: docs.map((d) => d.toJS() as Obj).filter((d) => d !== null) };
}

const files = [...walk(join(ROOT, 'deploy')), ...walk(join(ROOT, 'crds'))]
  .filter((p) => !relative(ROOT, p).split('\\').join('/').startsWith(`${HELM_CHARTS}/`))
  .map(loadYaml);
const isKustomization = (f: YamlFile) => /(^|\/)kustomization\.ya?ml$/.test(f.path);
const objectFiles = files.filter((f) => !isKustomization(f) && !(f.path in NOT_KUBERNETES_OBJECTS));
const allObjects = objectFiles.flatMap((f) => f.docs.map((doc) => ({ file: f.path, doc })));

function one(path: string, kind: string): Obj {
  const f = files.find((x) => x.path === path);
  if (!f) throw new Error(`${path} not found`);
  const docs = f.docs.filter((d) => d.kind === kind);
  if (docs.length !== 1) throw new Error(`${path}: expected one ${kind}, found ${docs.length}`);
  return docs[0]!;
}

const deployment = one('deploy/base/deployment.yaml', 'Deployment');
const container = (deployment.spec.template.spec.containers as Obj[]).find((c) => c.name === 'controller')!;

describe('deploy/ and crds/ YAML', () => {
  it('finds the base, the overlays, the CRDs and the Argo CD cases', () => {
    const paths = files.map((f) => f.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'deploy/base/kustomization.yaml',
        'deploy/base/deployment.yaml',
        'deploy/overlays/accesskey/kustomization.yaml',
        'deploy/overlays/monitoring/kustomization.yaml',
        'crds/kustomization.yaml',
        'crds/ecsops.io_ecsextensions.yaml',
        'deploy/argocd/health_test.yaml',
      ]),
    );
  });

  it('every Kubernetes object has apiVersion, kind and metadata.name', () => {
    expect(allObjects.length).toBeGreaterThan(10);
    const bad = allObjects
      .filter(({ doc }) => !doc.apiVersion || !doc.kind || !doc.metadata?.name)
      .map(({ file, doc }) => `${file}: ${JSON.stringify(doc).slice(0, 80)}`);
    expect(bad).toEqual([]);
  });

  it('every kustomization is a Kustomization or Component whose references exist', () => {
    for (const f of files.filter(isKustomization)) {
      const k = f.docs[0]!;
      expect(k.apiVersion, f.path).toMatch(/^kustomize\.config\.k8s\.io\/v1(alpha1|beta1)$/);
      expect(['Kustomization', 'Component'], f.path).toContain(k.kind);
      const dir = join(ROOT, dirname(f.path));
      const refs: string[] = [
        ...((k.resources as string[] | undefined) ?? []),
        ...((k.components as string[] | undefined) ?? []),
        ...((k.patches as Obj[] | undefined) ?? []).flatMap((p) => (p.path ? [p.path as string] : [])),
      ];
      for (const ref of refs) expect(existsSync(join(dir, ref)), `${f.path} → ${ref}`).toBe(true);
    }
  });

  it('crds/kustomization.yaml lists every generated CRD', () => {
    const listed = one('crds/kustomization.yaml', 'Kustomization').resources as string[];
    const onDisk = readdirSync(join(ROOT, 'crds')).filter(
      (n) => n !== 'kustomization.yaml' && /\.ya?ml$/.test(n),
    );
    expect([...listed].sort()).toEqual(onDisk.sort());
  });

  it('namespaced objects of the base live in ecsops-system', () => {
    const clusterScoped = ['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'];
    const wrong = allObjects
      .filter(({ file }) => file.startsWith('deploy/base/') || file.startsWith('deploy/components/'))
      .filter(({ doc }) => !clusterScoped.includes(doc.kind) && doc.metadata.namespace !== NAMESPACE)
      .map(({ file, doc }) => `${file}: ${doc.kind}/${doc.metadata.name}`);
    expect(wrong).toEqual([]);
  });

  it('no file holds anything that looks like a real AccessKey ID', () => {
    const hits = [
      ...walk(join(ROOT, 'deploy'), /./),
      join(ROOT, 'Dockerfile'),
      join(ROOT, 'docs', 'deploy.md'),
    ]
      .filter((p) => existsSync(p))
      .filter((p) => /LTAI[A-Za-z0-9]{12,}/.test(readFileSync(p, 'utf8')));
    expect(hits).toEqual([]);
  });
});

describe('Deployment', () => {
  it('runs one replica as non-root with a read-only root filesystem and no capabilities', () => {
    expect(deployment.spec.replicas).toBe(1);
    const pod = deployment.spec.template.spec;
    expect(pod.serviceAccountName).toBe('ecsops-controller');
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.securityContext.privileged).not.toBe(true);
    expect(container.securityContext.capabilities.add).toBeUndefined();
  });

  it('sets resource requests and limits', () => {
    for (const kind of ['requests', 'limits'] as const) {
      expect(container.resources[kind].cpu, kind).toBeTruthy();
      expect(container.resources[kind].memory, kind).toBeTruthy();
    }
  });

  it('probes /healthz and /readyz on the health-probe port 8081 and exposes metrics on 8080', () => {
    const ports = Object.fromEntries((container.ports as Obj[]).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ metrics: 8080, health: 8081 });
    const portOf = (p: string | number) => (typeof p === 'number' ? p : ports[p]);
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(portOf(container.livenessProbe.httpGet.port)).toBe(8081);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(portOf(container.readinessProbe.httpGet.port)).toBe(8081);

    const args = container.args as string[];
    expect(args).toContain('--health-probe-bind-address=:8081');
    expect(args).toContain('--metrics-bind-address=:8080');
  });

  it('gives the pod its name and namespace and elects a leader in its own namespace', () => {
    const env = Object.fromEntries((container.env as Obj[]).map((e) => [e.name, e]));
    expect(env.POD_NAME?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(env.POD_NAMESPACE?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
    const cfg = parseConfig(expandEnvRefs(container.args as string[], { POD_NAMESPACE: NAMESPACE }), {});
    expect(cfg.leaderElect).toBe(true);
    expect(cfg.leaderElectionNamespace).toBe(NAMESPACE);
    expect(cfg.leaderElectionId).toBe('ecsops-controller');
  });

  it('gives the termination grace period room for --shutdown-timeout', () => {
    const cfg = parseConfig(expandEnvRefs(container.args as string[], { POD_NAMESPACE: NAMESPACE }), {});
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(
      cfg.shutdownTimeoutMs,
    );
  });

  it('every flag in any Deployment (base and patches) is a controller flag with a valid value', () => {
    const known = new Set(addControllerOptions(new Command('controller')).options.map((o) => o.long));
    const deployments = allObjects.filter(({ doc }) => doc.kind === 'Deployment');
    expect(deployments.length).toBeGreaterThanOrEqual(2);
    for (const { file, doc } of deployments) {
      for (const c of (doc.spec.template.spec.containers as Obj[] | undefined) ?? []) {
        const args = (c.args as string[] | undefined) ?? [];
        for (const arg of args) {
          expect(arg, `${file}: ${arg}`).toMatch(/^--[a-z-]+=/);
          expect(known.has(arg.split('=')[0]), `${file}: unknown flag ${arg}`).toBe(true);
        }
        // The values parse and pass the cross-flag checks of toConfig.
        expect(() => parseConfig(expandEnvRefs(args, { POD_NAMESPACE: NAMESPACE }), {})).not.toThrow();
      }
    }
  });

  it('the ha component runs two replicas only with leader election on', () => {
    const ha = one('deploy/components/ha/deployment-ha.yaml', 'Deployment');
    expect(ha.spec.replicas).toBe(2);
    const cfg = parseConfig(expandEnvRefs(container.args as string[], { POD_NAMESPACE: NAMESPACE }), {});
    expect(cfg.leaderElect).toBe(true);
    const pdb = one('deploy/components/ha/pdb.yaml', 'PodDisruptionBudget');
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
  });

  it('the metrics Service selects the controller pods and targets the metrics port', () => {
    const svc = one('deploy/base/service.yaml', 'Service');
    const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
    expect(podLabels).toMatchObject(svc.spec.selector);
    expect(deployment.spec.selector.matchLabels).toEqual(svc.spec.selector);
    expect(svc.spec.ports).toEqual([
      expect.objectContaining({ name: 'metrics', port: 8080, targetPort: 'metrics' }),
    ]);
  });
});

/** Kubernetes `$(VAR)` expansion in container args. */
function expandEnvRefs(args: string[], env: Record<string, string>): string[] {
  return args.map((a) => a.replace(/\$\(([A-Z_][A-Z0-9_]*)\)/g, (m, name: string) => env[name] ?? m));
}

describe('RBAC', () => {
  const rbac = allObjects.filter(({ doc }) => ['ClusterRole', 'Role'].includes(doc.kind));

  /** `group/resource: verbs` for one role, verbs sorted. */
  function grants(kind: string, name: string): Record<string, string[]> {
    const role = rbac.find(({ doc }) => doc.kind === kind && doc.metadata.name === name)?.doc;
    if (!role) throw new Error(`${kind} ${name} not found`);
    const out: Record<string, string[]> = {};
    for (const rule of role.rules as Obj[]) {
      for (const group of rule.apiGroups as string[])
        for (const resource of rule.resources as string[]) {
          const key = `${group || 'core'}/${resource}`;
          out[key] = [...new Set([...(out[key] ?? []), ...(rule.verbs as string[])])].sort();
        }
    }
    return out;
  }

  it('the ClusterRole grants exactly what the controller calls', () => {
    expect(grants('ClusterRole', 'ecsops-controller')).toEqual({
      'ecsops.io/ecsextensions': ['get', 'list', 'patch', 'update', 'watch'],
      'ecsops.io/ecsextensions/status': ['get', 'patch', 'update'],
      'ecsops.io/ecsextensions/finalizers': ['update'],
      'ecsops.io/appreleases': ['get', 'list', 'patch', 'update', 'watch'],
      'ecsops.io/appreleases/status': ['get', 'patch', 'update'],
      'ecsops.io/appreleases/finalizers': ['update'],
      'ecsops.io/patchpolicies': ['get', 'list', 'patch', 'update', 'watch'],
      'ecsops.io/patchpolicies/status': ['get', 'patch', 'update'],
      'ecsops.io/patchpolicies/finalizers': ['update'],
      'ecsops.io/maintenancewindows': ['get', 'list', 'watch'],
      'ecsops.io/maintenancewindows/status': ['get', 'patch', 'update'],
      'ecsops.io/instancedisruptionbudgets': ['get', 'list', 'watch'],
      'ecsops.io/instancedisruptionbudgets/status': ['get', 'patch', 'update'],
      'events.k8s.io/events': ['create', 'patch'],
    });
  });

  it('the leader-election Role grants Lease get/create/update in ecsops-system only', () => {
    const role = rbac.find(({ doc }) => doc.kind === 'Role')!.doc;
    expect(role.metadata.namespace).toBe(NAMESPACE);
    expect(grants('Role', 'ecsops-leader-election')).toEqual({
      'coordination.k8s.io/leases': ['create', 'get', 'update'],
    });
  });

  it('the secret reader ClusterRole grants get on Secrets only (opt-in per namespace)', () => {
    expect(grants('ClusterRole', 'ecsops-secret-reader')).toEqual({ 'core/secrets': ['get'] });
  });

  it('no rule anywhere uses a wildcard, nonResourceURLs, or escalation verbs', () => {
    expect(rbac.length).toBe(3);
    for (const { file, doc } of rbac) {
      for (const rule of doc.rules as Obj[]) {
        for (const field of ['apiGroups', 'resources', 'verbs'])
          expect(rule[field] as string[], `${file} ${field}`).not.toContain('*');
        expect(rule.nonResourceURLs, file).toBeUndefined();
        for (const verb of ['escalate', 'bind', 'impersonate', 'delete', 'deletecollection'])
          expect(rule.verbs as string[], `${file} ${verb}`).not.toContain(verb);
        // The controller creates only Events and its Lease, never the objects it reconciles.
        if ((rule.verbs as string[]).includes('create'))
          expect(rule.resources, file).toEqual(
            expect.arrayContaining([expect.stringMatching(/^(events|leases)$/)]),
          );
      }
    }
  });

  it('the bindings give the roles to the controller ServiceAccount', () => {
    const sa = one('deploy/base/serviceaccount.yaml', 'ServiceAccount');
    const bindings = allObjects.filter(({ doc }) => ['ClusterRoleBinding', 'RoleBinding'].includes(doc.kind));
    // ecsops-secret-reader is bound by an admin, per namespace (RoleBinding), never by the base.
    expect(bindings.map(({ doc }) => `${doc.roleRef.kind}/${doc.roleRef.name}`).sort()).toEqual(
      rbac
        .filter(({ doc }) => doc.metadata.name !== 'ecsops-secret-reader')
        .map(({ doc }) => `${doc.kind}/${doc.metadata.name}`)
        .sort(),
    );
    for (const { doc } of bindings)
      expect(doc.subjects).toEqual([
        { kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace },
      ]);
  });
});

describe('credentials', () => {
  it('the base asks the ACK RRSA webhook to inject the OIDC role credentials', () => {
    const ns = one('deploy/base/namespace.yaml', 'Namespace');
    expect(ns.metadata.labels['pod-identity.alibabacloud.com/injection']).toBe('on');
    const sa = one('deploy/base/serviceaccount.yaml', 'ServiceAccount');
    expect(sa.metadata.annotations['pod-identity.alibabacloud.com/role-name']).toBeTruthy();
  });

  it('the accesskey component reads the AccessKey pair from the Secret, never a literal', () => {
    const patch = one('deploy/components/accesskey/deployment-env.yaml', 'Deployment');
    const env = (patch.spec.template.spec.containers as Obj[])[0]!.env as Obj[];
    for (const name of ['ALIBABA_CLOUD_ACCESS_KEY_ID', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET']) {
      const e = env.find((x) => x.name === name);
      expect(e?.value, name).toBeUndefined();
      expect(e?.valueFrom?.secretKeyRef?.name, name).toBe('ecsops-alibaba-credentials');
    }
    const anySecretValue = allObjects.some(({ doc }) => doc.kind === 'Secret');
    expect(anySecretValue).toBe(false);
  });

  it('the rrsa-manual component mounts a projected STS-audience token where the env var points', () => {
    const patch = one('deploy/components/rrsa-manual/deployment-rrsa.yaml', 'Deployment');
    const c = (patch.spec.template.spec.containers as Obj[])[0]!;
    const tokenFile = (c.env as Obj[]).find((e) => e.name === 'ALIBABA_CLOUD_OIDC_TOKEN_FILE')!
      .value as string;
    const mount = (c.volumeMounts as Obj[])[0]!;
    const volume = (patch.spec.template.spec.volumes as Obj[]).find((v) => v.name === mount.name)!;
    const source = (volume.projected.sources as Obj[])[0]!.serviceAccountToken;
    expect(tokenFile).toBe(`${mount.mountPath}/${source.path}`);
    expect(source.audience).toBe('sts.aliyuncs.com');
  });
});

describe('monitoring', () => {
  const registry = new Registry();
  controllerRuntimeMetrics(registry);
  cloudMetrics(registry);
  new DomainMetrics(registry);
  const registered = new Set(registry.getMetricsAsArray().map((m) => m.name));

  const rule = one('deploy/components/monitoring/prometheusrule.yaml', 'PrometheusRule');
  const alerts = (rule.spec.groups as Obj[]).flatMap((g) => g.rules as Obj[]);

  it('alerts on failed instances, reconcile errors, throttling and a missing leader', () => {
    const exprs = alerts.map((a) => a.expr as string).join('\n');
    expect(exprs).toContain('ecsops_resource_instances{state="failed"}');
    expect(exprs).toContain('controller_runtime_reconcile_errors_total');
    expect(exprs).toContain('ecsops_cloud_api_requests_total{code=~"Throttling.*"}');
    expect(exprs).toContain('leader_election_master_status');
    const failed = alerts.find((a) => (a.expr as string).includes('state="failed"'))!;
    expect(failed.for).toBe('15m');
    expect(INSTANCE_STATES).toContain('failed');
    for (const a of alerts) {
      expect(a.alert, JSON.stringify(a)).toMatch(/^Ecsops[A-Z][A-Za-z]+$/);
      expect(a.labels?.severity, a.alert).toMatch(/^(warning|critical)$/);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
    }
  });

  it('every metric an alert uses is registered by the controller', () => {
    const used = new Set(
      alerts.flatMap(
        (a) =>
          (a.expr as string).match(/\b(ecsops|controller_runtime|leader_election|workqueue)_[a-z_]+/g) ?? [],
      ),
    );
    expect(used.size).toBeGreaterThanOrEqual(4);
    for (const name of used) expect(registered.has(name), name).toBe(true);
  });

  it('job selectors name the metrics Service, which the ServiceMonitor scrapes by port name', () => {
    const svc = one('deploy/base/service.yaml', 'Service');
    const jobs = new Set(
      alerts.flatMap((a) => [...(a.expr as string).matchAll(/job="([^"]+)"/g)].map((m) => m[1])),
    );
    expect([...jobs]).toEqual([svc.metadata.name]);
    const sm = one('deploy/components/monitoring/servicemonitor.yaml', 'ServiceMonitor');
    expect(svc.metadata.labels).toMatchObject(sm.spec.selector.matchLabels);
    expect(sm.spec.endpoints.map((e: Obj) => e.port)).toEqual(['metrics']);
    // ecsops_resource_instances has its own `namespace` label; it must not become exported_namespace.
    expect(sm.spec.endpoints[0].honorLabels).toBe(true);
  });
});

describe('docs/deploy.md RAM policy', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## 4. RAM policy'), doc.indexOf('## 5. '));
  const blocks = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map(
    (m) => JSON.parse(m[1]!) as { Version: string; Statement: Obj[] },
  );
  const actionsOf = (p: { Statement: Obj[] }) => p.Statement.flatMap((st) => st.Action as string[]);
  /** The first block of §4: the controller's all-kinds policy. */
  const policy = blocks[0]!;
  const actions = actionsOf(policy);
  const instanceBlock = /Instance RAM role[\s\S]*?```json\n([\s\S]*?)```/.exec(section)?.[1];
  const instanceActions = actionsOf(JSON.parse(instanceBlock ?? '{"Statement":[]}') as { Statement: Obj[] });

  it('is a RAM policy document granting only named OOS / ECS / KMS / OSS / ActionTrail / SLB / ALB actions', () => {
    expect(policy.Version).toBe('1');
    for (const p of blocks) for (const st of p.Statement) expect(st.Effect).toBe('Allow');
    for (const a of actions) expect(a).toMatch(/^(oos|ecs|kms|oss|actiontrail|slb|alb):[A-Z][A-Za-z]+$/);
    expect(actions).toEqual(ramPolicyFor().Statement.flatMap((s) => s.Action));
  });

  it('grants what the controller calls and what the OOS package template calls as the caller', () => {
    expect(actions).toEqual(
      expect.arrayContaining([
        // the controller (src/controllers → src/cloud)
        'oos:StartExecution',
        'oos:ListExecutions',
        'oos:ListTaskExecutions',
        'oos:GetTemplate',
        'oos:ListInstancePackageStates',
        'ecs:DescribeInstances',
        'ecs:DescribeCloudAssistantStatus',
        'oos:CreateSecretParameter',
        // ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL without OOSAssumeRole
        'ecs:RunCommand',
        'oos:UpdateInstancePackageState',
        // dependent action of CreateSecretParameter
        'kms:CreateSecret',
      ]),
    );
    expect(new Set(actions).size).toBe(actions.length);
  });

  it('names only actions the cloud layer knows, template steps call, or RAM checks as dependent actions', () => {
    const known = new Set([
      ...Object.keys(OOS_ACTIONS).map((a) => `oos:${a}`),
      ...Object.keys(ECS_ACTIONS).map((a) => `ecs:${a}`),
      ...Object.keys(ACTIONTRAIL_ACTIONS).map((a) => `actiontrail:${a}`),
      ...Object.keys(SLB_ACTIONS).map((a) => `slb:${a}`),
      ...Object.keys(ALB_ACTIONS).map((a) => `alb:${a}`),
      ...Object.values(TEMPLATE_ACTIONS).flatMap((t) => t.actions.map(ramActionName)),
      ...ASSOCIATED_ACTIONS.map(ramActionName),
    ]);
    expect(actions.filter((a) => !known.has(a))).toEqual([]);
  });

  it('renders the instance RAM role policy separately; the controller policy leaves its actions out', () => {
    expect(instanceActions).toEqual(['kms:GetSecretValue', 'oos:GetSecretParameter']);
    for (const a of instanceActions) expect(actions).not.toContain(a);
  });
});

/** A kustomize-capable binary: kustomize or kubectl on PATH, or the project's cached kubectl. */
function findKustomize(): { bin: string; args: string[] } | undefined {
  const tryRun = (bin: string, args: string[]) => {
    try {
      execFileSync(bin, [...args, '--help'], { stdio: 'ignore', timeout: 20_000 });
      return { bin, args };
    } catch {
      return undefined;
    }
  };
  const cacheRoot = join(process.env.ECSOPS_CACHE_DIR ?? join(homedir(), '.cache', 'ecsops'), 'controlplane');
  const cached = existsSync(cacheRoot)
    ? readdirSync(cacheRoot)
        .map((d) => join(cacheRoot, d, 'kubectl'))
        .filter((p) => existsSync(p))
    : [];
  return (
    cached.map((p) => tryRun(p, ['kustomize'])).find(Boolean) ??
    tryRun('kustomize', ['build']) ??
    tryRun('kubectl', ['kustomize'])
  );
}

const kustomize = findKustomize();
const kustomizeMissing = kustomize === undefined;
const roots = [
  'deploy/base',
  ...readdirSync(join(ROOT, 'deploy', 'overlays')).map((o) => `deploy/overlays/${o}`),
];

describe(
  kustomizeMissing
    ? 'kustomize build (SKIPPED: no kustomize, kubectl, or cached project kubectl found)'
    : `kustomize build (${[kustomize.bin, ...kustomize.args].join(' ')})`,
  () => {
    function render(dir: string): Obj[] {
      const out = execFileSync(kustomize!.bin, [...kustomize!.args, join(ROOT, dir)], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      return parseAllDocuments(out).map((d) => d.toJS() as Obj);
    }

    it.skipIf(kustomizeMissing).each(roots)('%s renders', (dir) => {
      const objs = render(dir);
      const kinds = objs.map((o) => o.kind);
      expect(kinds).toEqual(
        expect.arrayContaining([
          'CustomResourceDefinition',
          'Namespace',
          'ServiceAccount',
          'ClusterRole',
          'Deployment',
        ]),
      );
      const deploy = objs.find((o) => o.kind === 'Deployment')!;
      expect(deploy.metadata.namespace).toBe(NAMESPACE);
      expect(deploy.spec.template.spec.containers[0].image).toBe('ecsops:0.1.0');
      // `kubectl apply -k <root> -l pod-security.kubernetes.io/enforce=restricted` applies the
      // namespace alone, before a server-side dry run (docs/deploy.md §2).
      const selected = objs.filter(
        (o) =>
          (o.metadata?.labels as Obj | undefined)?.['pod-security.kubernetes.io/enforce'] === 'restricted',
      );
      expect(selected.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([`Namespace/${NAMESPACE}`]);
    });

    it.skipIf(kustomizeMissing)('the overlays change what they say they change', () => {
      const byKind = (objs: Obj[], kind: string) => objs.find((o) => o.kind === kind)!;
      const envNames = (objs: Obj[]) =>
        (byKind(objs, 'Deployment').spec.template.spec.containers[0].env as Obj[]).map(
          (e) => e.name as string,
        );

      const accesskey = render('deploy/overlays/accesskey');
      expect(envNames(accesskey)).toEqual(
        expect.arrayContaining([
          'POD_NAME',
          'POD_NAMESPACE',
          'ALIBABA_CLOUD_ACCESS_KEY_ID',
          'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
        ]),
      );
      expect(byKind(accesskey, 'Namespace').metadata.labels).not.toHaveProperty(
        'pod-identity.alibabacloud.com/injection',
      );
      expect(byKind(accesskey, 'ServiceAccount').metadata.annotations ?? {}).not.toHaveProperty(
        'pod-identity.alibabacloud.com/role-name',
      );

      const rrsa = render('deploy/overlays/rrsa-manual');
      expect(envNames(rrsa)).toEqual(
        expect.arrayContaining(['POD_NAMESPACE', 'ALIBABA_CLOUD_OIDC_TOKEN_FILE']),
      );

      const ha = render('deploy/overlays/ha');
      expect(byKind(ha, 'Deployment').spec.replicas).toBe(2);
      expect(byKind(ha, 'Deployment').spec.template.spec.securityContext.runAsNonRoot).toBe(true);

      const monitoring = render('deploy/overlays/monitoring');
      expect(monitoring.map((o) => o.kind)).toEqual(
        expect.arrayContaining(['ServiceMonitor', 'PrometheusRule']),
      );
    });
  },
);
