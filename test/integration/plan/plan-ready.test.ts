/**
 * `ecsops plan` against what the API server stores and what the controller did, on the real API
 * server (CRDs from crds/), the emulator seeded with the demo fleet (sandbox mode: the AppRelease
 * example's wrapper really runs) and the in-process controller:
 *
 * - each example, created with `dryRun=All`, comes back with the CRD schema's defaults: plan's
 *   offline defaulting (`withSpecDefaults`) gives the same spec, compared field by field;
 * - a new object is stored with `status.observedGeneration: 0` (GET and LIST), so kstatus reads it
 *   as InProgress before the controller's first status write;
 * - once every example is Ready, `ecsops plan --detailed-exitcode` prints "nothing to do" and
 *   exits 0 (the PatchPolicy's install waits for its window: scheduled, not 0 → 2); after a version
 *   bump of the AppRelease it prints the deploy and exits 2; a spec problem exits 1.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { GROUP, VERSION } from '../../../src/api/common.js';
import { definitions } from '../../../src/api/crds.js';
import { withSpecDefaults } from '../../../src/api/defaults.js';
import { loadSeedFile } from '../../../src/emulator/index.js';
import type { Plan } from '../../../src/plan/index.js';
import { createTestNamespace } from '../../harness/env.js';
import { emulatorEnv, REPO_ROOT, startStack, waitFor, type Stack } from '../../harness/stack.js';

const execFileAsync = promisify(execFile);

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; generation?: number };
  spec: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    conditions?: Array<{ type: string; status: string; reason?: string }>;
  };
}

const EXAMPLES = ['maintenancewindow', 'ecsextension', 'patchpolicy', 'apprelease'];

function examples(): Doc[] {
  return EXAMPLES.flatMap((f) =>
    parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy/examples', `${f}.yaml`), 'utf8'))
      .map((d) => d.toJS() as Doc | null)
      .filter((d): d is Doc => !!d?.kind),
  );
}

const pluralOf = (kind: string) => definitions.find((d) => d.kind === kind)!.plural;

/** Every leaf of `v` as `path → JSON value`, for a field-by-field comparison with named paths. */
function leaves(v: unknown, path = 'spec', out = new Map<string, string>()): Map<string, string> {
  if (v !== null && typeof v === 'object' && Object.keys(v).length > 0) {
    for (const [k, x] of Object.entries(v)) leaves(x, `${path}.${k}`, out);
  } else out.set(path, JSON.stringify(v));
  return out;
}

/** Serves deploy/examples/artifacts/ on 127.0.0.1 (what `npm run local` serves on --artifact-port). */
async function serveArtifacts(): Promise<{ base: string; server: Server }> {
  const server = createServer((req, res) => {
    try {
      const rel = (req.url ?? '/').split('?')[0]!.replace(/\.\./g, '');
      res.writeHead(200).end(readFileSync(join(REPO_ROOT, 'deploy/examples/artifacts', rel)));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('ecsops plan sees what the API server stores (real API server, demo fleet, sandbox)', () => {
  let stack: Stack;
  let root: string;
  let artifacts: { base: string; server: Server };
  let docs: Doc[];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ecsops-plan-ready-'));
    artifacts = await serveArtifacts();
    stack = await startStack({
      seed: await loadSeedFile(join(REPO_ROOT, 'deploy/emulator/fleet.yaml')),
      prefix: 'plan-ready',
      sandbox: { rootDir: root },
    });
    // The examples as `npm run local` applies them: the artifact URL on this run's server, the
    // appDir inside this run's sandbox, no gate.
    docs = examples().map((d) => {
      if (d.kind !== 'AppRelease') return d;
      const spec = structuredClone(d.spec) as {
        artifact: { url: string };
        install: { appDir: string };
      };
      spec.artifact.url = spec.artifact.url.replace(/^http:\/\/127\.0\.0\.1:\d+/, artifacts.base);
      spec.install.appDir = join(root, '{{ACS::InstanceId}}', 'web');
      // As `npm run local` without Prometheus: no metric gate (this test runs no Prometheus); and
      // no load balancer (test/unit/plan/plan-traffic.test.ts plans trafficControl).
      delete (spec as { analysis?: unknown }).analysis;
      delete (spec as { trafficControl?: unknown }).trafficControl;
      return { ...d, spec };
    });
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    artifacts?.server.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const create = async (d: Doc, namespace: string, dryRun?: 'All'): Promise<Doc> =>
    (await stack.api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: pluralOf(d.kind),
      body: { ...d, metadata: { ...d.metadata, namespace } },
      ...(dryRun ? { dryRun } : {}),
    })) as Doc;
  const get = async (d: Doc, namespace = stack.namespace): Promise<Doc> =>
    (await stack.api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: pluralOf(d.kind),
      name: d.metadata.name,
    })) as Doc;

  async function plan(
    file: string,
    extra = ['--detailed-exitcode'],
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const res = await execFileAsync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'src/cli.ts'),
        'plan',
        '-f',
        file,
        ...extra,
        '--oos-endpoint',
        stack.emu.endpoint,
        '--ecs-endpoint',
        stack.emu.endpoint,
        '--cloud-protocol',
        'HTTP',
      ],
      {
        cwd: REPO_ROOT,
        env: emulatorEnv(),
      },
    ).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (err: { code?: number; stdout?: string; stderr?: string }) => {
        if (typeof err.code !== 'number') throw err as Error;
        return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
      },
    );
    return res;
  }

  it('every example, defaulted by the API server, equals plan’s offline defaulting field by field', async () => {
    const ns = await createTestNamespace(stack.kc, 'plan-defaults');
    let added = 0;
    for (const d of docs) {
      const stored = await create(d, ns, 'All');
      const offline = withSpecDefaults(d.kind, d.spec);
      added += leaves(stored.spec).size - leaves(d.spec).size;
      expect([...leaves(offline)].sort(), d.kind).toEqual([...leaves(stored.spec)].sort());
    }
    // Not vacuous: the API server added fields the manifests do not have (healthCheck.timeoutSeconds, ...).
    expect(added).toBeGreaterThan(0);
  });

  it('a new object is stored with status.observedGeneration 0 (GET and LIST), before any status write', async () => {
    const ns = await createTestNamespace(stack.kc, 'plan-status'); // no controller watches it
    for (const d of docs) {
      const created = await create(d, ns);
      expect(created.metadata.generation).toBe(1);
      expect(created.status, d.kind).toEqual({ observedGeneration: 0 });
      expect((await get(d, ns)).status, d.kind).toEqual({ observedGeneration: 0 });
      const list = (await stack.api.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: pluralOf(d.kind),
      })) as { items: Doc[] };
      expect(list.items.map((i) => i.status)).toEqual([{ observedGeneration: 0 }]);
    }
  });

  it('plan --detailed-exitcode: 0 "nothing to do" once every example is Ready, 2 after a version bump, 1 on a spec problem', async () => {
    for (const d of docs) await create(d, stack.namespace);
    for (const d of docs) {
      await waitFor(
        `${d.kind} ${d.metadata.name} Ready=True`,
        async () => {
          const o = await get(d);
          const ready = o.status?.conditions?.find((c) => c.type === 'Ready');
          return o.status?.observedGeneration === o.metadata.generation && ready?.status === 'True'
            ? o
            : undefined;
        },
        150_000,
        250,
      );
    }
    const file = join(root, 'manifest.yaml');
    const kubeconfig = join(root, 'kubeconfig');
    writeFileSync(kubeconfig, stack.kc.exportConfig(), { mode: 0o600 });
    const here = docs.map((d) => ({ ...d, metadata: { ...d.metadata, namespace: stack.namespace } }));
    writeFileSync(file, here.map((d) => stringify(d)).join('---\n'));
    const ready = await plan(file, ['--detailed-exitcode', '--kubeconfig', kubeconfig]);
    expect(ready.stdout).toMatch(/Plan: nothing to do at the next reconcile/);
    expect(ready.stdout).not.toMatch(/would start: (?!nothing)/);
    expect(ready.stdout).toMatch(/scheduled: ACS-ECS-BulkyApplyPatchBaseline action=install/);
    expect(ready.code).toBe(0);
    // Without the stored status the PatchPolicy's scan-requested annotation counts as not handled.
    const blind = await plan(file);
    expect(blind.stdout).toMatch(/scan-requested-at=initial counts as not handled yet/);
    expect(blind.code).toBe(2);

    // A release bump as a user makes it: the version and its artifact (the revision hashes what
    // runs on the host, not the version label).
    const bumped = here.map((d) =>
      d.kind === 'AppRelease'
        ? {
            ...d,
            spec: {
              ...d.spec,
              version: '1.4.3',
              artifact: {
                ...(d.spec.artifact as object),
                url: `${artifacts.base}/web-1.4.3/web.sh`,
                sha256: 'b'.repeat(64),
              },
            },
          }
        : d,
    );
    writeFileSync(file, bumped.map((d) => stringify(d)).join('---\n'));
    const bump = await plan(file, ['--detailed-exitcode', '--kubeconfig', kubeconfig]);
    expect(bump.stdout).toMatch(
      /would start: RunCommand RunShellScript \(ecsops wrapper\) action=deploy on 4 instance/,
    );
    expect(bump.code).toBe(2);

    const broken = here.map((d) =>
      d.kind === 'EcsExtension' ? { ...d, spec: { ...d.spec, packageName: 'no-such-package' } } : d,
    );
    writeFileSync(file, broken.map((d) => stringify(d)).join('---\n'));
    const stalled = await plan(file, ['--detailed-exitcode', '--kubeconfig', kubeconfig]);
    expect(stalled.stdout).toMatch(/STALLED/);
    expect(stalled.code).toBe(1);
    // The JSON form carries the same facts the exit code is computed from (exit 1 without the flag too).
    const asJson = await plan(file, ['-o', 'json']);
    expect(asJson.code).toBe(1);
    const json = JSON.parse(asJson.stdout) as Plan[];
    expect(json.find((p) => p.kind === 'EcsExtension')?.problems.length).toBeGreaterThan(0);
  }, 240_000);
});
