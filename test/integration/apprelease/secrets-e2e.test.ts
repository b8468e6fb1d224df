/**
 * AppRelease with a Secret-sourced env value, end to end (issue 21, "What it must show", first
 * bullet): the real API server, the controller as a child process (its whole log captured at
 * debug level, its /metrics scraped), and the emulator in sandbox mode with every request and
 * response body logged.
 *
 * - the sandboxed hooks see the Secret's value (written to a file on the "host");
 * - a grep of every emulator body (except the Create/UpdateSecretParameter requests, which must be
 *   the only hits), DescribeInvocationResults output, the object's status, its Events, the
 *   controller log and /metrics finds the plaintext 0 times (plain, Base64 or inside a Base64
 *   command); the same grep finds the inline env value (positive control);
 * - rotating the Secret reaches the instances of the current revision (re-deployed);
 * - deleting the AppRelease deletes its OOS encrypted parameter.
 */
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_RELEASE_PLURAL, type AppRelease, type AppReleaseSpec } from '../../../src/api/apprelease.js';
import { GROUP, VERSION } from '../../../src/api/common.js';
import { createCloudClients } from '../../../src/cloud/index.js';
import { createRegistry } from '../../../src/metrics/index.js';
import { secretParameterName } from '../../../src/controllers/apprelease/secrets.js';
import { revisionOf } from '../../../src/controllers/apprelease/wrapper.js';
import {
  DEMO_ACCESS_KEY,
  startEmulator,
  type BodyLogEntry,
  type Emulator,
} from '../../../src/emulator/index.js';
import { createTestNamespace, getTestKubeConfig } from '../../harness/env.js';
import { ArtifactServer } from '../../harness/fast-apprelease.js';
import { fleetSeed } from '../../harness/fast.js';
import {
  applyProjectCrds,
  REGION,
  spawnController,
  testControllerArgs,
  waitFor,
} from '../../harness/stack.js';

const ids = ['i-sec0001', 'i-sec0002', 'i-sec0003'];
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/**
 * Whether `text` contains `value`: verbatim, Base64-encoded, or inside a Base64 run that decodes
 * to text containing either (two levels: a Base64 command whose lines carry Base64 values).
 */
function leaks(text: string, value: string, depth = 2): boolean {
  if (text.includes(value) || text.includes(b64(value))) return true;
  if (depth === 0) return false;
  for (const m of text.matchAll(/[A-Za-z0-9+/]{16,}={0,2}/g)) {
    const decoded = Buffer.from(m[0], 'base64').toString('utf8');
    if (leaks(decoded, value, depth - 1)) return true;
  }
  return false;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

describe('AppRelease Secret-sourced env values end to end (sandbox)', () => {
  let kc: KubeConfig;
  let api: CustomObjectsApi;
  let core: CoreV1Api;
  let namespace: string;
  let emu: Emulator;
  let root: string;
  let child: ChildProcess | undefined;
  let metricsPort = 0;
  let log = '';
  const bodies: BodyLogEntry[] = [];
  const artifacts = new ArtifactServer();
  const secret1 = `pw-${randomBytes(12).toString('hex')}`; // 27 characters, random per run
  const secret2 = `pw2-${randomBytes(12).toString('hex')}`;
  const inline = `inline-${randomBytes(8).toString('hex')}`;

  const seen = (id: string) =>
    existsSync(join(root, id, 'seen')) ? readFileSync(join(root, id, 'seen'), 'utf8') : undefined;
  const get = async (): Promise<AppRelease> =>
    (await api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: APP_RELEASE_PLURAL,
      name: 'shop',
    })) as AppRelease;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'ecsops-secrets-'));
    kc = getTestKubeConfig('admin');
    api = kc.makeApiClient(CustomObjectsApi);
    core = kc.makeApiClient(CoreV1Api);
    await applyProjectCrds(kc);
    namespace = await createTestNamespace(kc, 'arsec');
    await artifacts.start();
    emu = await startEmulator({
      seed: {
        ...fleetSeed('unused', 0),
        regions: {
          [REGION]: { generate: [{ count: 3, idPrefix: 'i-sec', tags: [{ key: 'app', value: 'shop' }] }] },
        },
      },
      timeScale: 0.05,
      sandbox: { rootDir: root },
      bodyLogger: (e) => bodies.push(e),
    });
    metricsPort = await freePort();
    const args = testControllerArgs(namespace, emu, []);
    const i = args.indexOf('--metrics-bind-address');
    args[i + 1] = `127.0.0.1:${metricsPort}`;
    const l = args.indexOf('--log-level');
    args[l + 1] = 'debug';
    child = spawnController(args);
    child.stdout?.on('data', (d: Buffer) => (log += d.toString('utf8')));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString('utf8')));
  });

  afterAll(async () => {
    child?.kill('SIGKILL');
    await emu?.stop();
    await artifacts.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('admission: an envVars entry takes exactly one of value / valueFrom, names differ from install.env', async () => {
    const base = {
      regionId: REGION,
      targets: { tags: [{ key: 'app', value: 'none' }] },
      application: 'bad',
      version: '1',
      artifact: { url: 'https://example.com/a.tar.gz', sha256: 'a'.repeat(64) },
      hooks: { start: { script: 'true' } },
    };
    const ref = { secretKeyRef: { name: 'db', key: 'password' } };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ envVars: [{ name: 'A', value: 'x', valueFrom: ref }] }, 'exactly one of value or valueFrom'],
      [{ envVars: [{ name: 'A' }] }, 'exactly one of value or valueFrom'],
      [
        { env: { A: 'x' }, envVars: [{ name: 'A', valueFrom: ref }] },
        'names must differ from install.env keys',
      ],
    ];
    for (const [install, message] of cases) {
      const err = await api
        .createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: APP_RELEASE_PLURAL,
          body: {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: 'AppRelease',
            metadata: { name: 'bad' },
            spec: { ...base, install },
          },
        })
        .then(
          () => undefined,
          (e: unknown) => String((e as { body?: unknown }).body ?? e),
        );
      expect(err, JSON.stringify(install)).toContain(message);
    }
  });

  it('delivers, redacts everywhere, rotates, and deletes the parameter', async () => {
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'db' }, stringData: { password: secret1 } },
    });
    const app = artifacts.add('shop-1', { 'app.sh': '#!/bin/bash\nexit 0\n' }, root);
    const spec: AppReleaseSpec = {
      regionId: REGION,
      targets: { tags: [{ key: 'app', value: 'shop' }] },
      interval: '10s',
      application: 'shop',
      version: '1.0.0',
      artifact: app,
      install: {
        appDir: `${root}/{{ACS::InstanceId}}/app`,
        env: { INLINE_TOKEN: inline },
        envVars: [{ name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }],
      },
      hooks: {
        // The hook writes what it sees to a file and prints it (hook output stays on the host
        // unless a step fails; the wrapper redacts it then).
        start: {
          script: `printf '%s' "$DB_PASSWORD" > "$APP_DIR/../seen"; echo "password=$DB_PASSWORD token=$INLINE_TOKEN"; ./app.sh start`,
          timeoutSeconds: 20,
        },
      },
      strategy: { batchSize: '100%' },
      rollback: { automatic: true },
      progressDeadlineSeconds: 120,
    } as AppReleaseSpec;
    await api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: APP_RELEASE_PLURAL,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'AppRelease', metadata: { name: 'shop' }, spec },
    });

    // 1. Ready, and every sandboxed hook saw the Secret's value.
    let obj = await waitFor(
      'Ready',
      async () => {
        const o = await get();
        return o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? o : undefined;
      },
      90_000,
      200,
    );
    expect(ids.map(seen)).toEqual(ids.map(() => secret1));
    const parameter = secretParameterName(namespace, 'shop');
    expect(obj.status?.secretParameter).toMatchObject({ name: parameter });
    expect(obj.status?.currentRevision).toBe(revisionOf(obj.spec));

    // 2. Rotation reaches the instances of the current revision (within the interval).
    await core.replaceNamespacedSecret({
      namespace,
      name: 'db',
      body: { metadata: { name: 'db' }, stringData: { password: secret2 } },
    });
    await waitFor(
      'rotated value on every instance',
      async () => ids.every((id) => seen(id) === secret2),
      90_000,
      200,
    ).catch(async (e: unknown) => {
      writeFileSync('/tmp/secrets-e2e.log', log);
      writeFileSync('/tmp/secrets-e2e.status.json', JSON.stringify((await get()).status, null, 1));
      throw e;
    });
    obj = await waitFor(
      'redeployedVersions caught up',
      async () => {
        const o = await get();
        const p = o.status?.secretParameter;
        return p?.secretVersions && p.secretVersions === p.redeployedVersions && !p.refresh ? o : undefined;
      },
      60_000,
      200,
    );
    expect(obj.status?.currentRevision).toBe(revisionOf(obj.spec)); // no new revision

    // 3. A release whose validate hook prints the secret and fails: its output (last log lines)
    //    reaches Cloud Assistant's copy and status.instances[].output; it is rolled back.
    await api.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: APP_RELEASE_PLURAL,
        name: 'shop',
        body: {
          spec: {
            version: '1.0.1',
            hooks: {
              ...spec.hooks,
              validate: {
                script: `echo "connecting with password=$DB_PASSWORD"; echo "the value: $DB_PASSWORD"; echo "token=$INLINE_TOKEN value $INLINE_TOKEN"; exit 3`,
                timeoutSeconds: 10,
              },
            },
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    obj = await waitFor(
      'rolled back after the failing validate hook',
      async () => {
        const o = await get();
        return o.status?.observedGeneration === o.metadata.generation && o.status?.phase === 'RolledBack'
          ? o
          : undefined;
      },
      90_000,
      200,
    );
    const failedOutput = (obj.status?.instances ?? []).map((r) => r.output ?? '').join('\n');
    expect(failedOutput).toContain('validate');

    // 4. The grep. Everything a reader of the cloud, the cluster or the controller can see.
    const cloud = createCloudClients(
      {
        endpointOverride: { oos: emu.endpoint, ecs: emu.endpoint },
        protocol: 'HTTP',
        credential: { accessKeyId: DEMO_ACCESS_KEY.id, accessKeySecret: DEMO_ACCESS_KEY.secret },
      },
      { registry: createRegistry({ defaultMetrics: false }) },
    );
    const ecs = cloud.ecs(REGION);
    const results = [];
    for (const inv of await emu.control.listInvocations())
      results.push(...(await ecs.describeInvocationResults({ invokeId: inv.invokeId })));
    expect(results.length).toBeGreaterThan(0);
    const events = (await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace })).items.filter(
      (e) => e.regarding?.name === 'shop',
    );
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const allowed = (b: BodyLogEntry) =>
      b.action === 'CreateSecretParameter' || b.action === 'UpdateSecretParameter';
    for (const value of [secret1, secret2]) {
      const hits = bodies.filter((b) => leaks(JSON.stringify(b), value));
      expect(hits.length).toBeGreaterThan(0);
      for (const h of hits) {
        expect(allowed(h), `${h.action} carries a Secret value`).toBe(true);
        expect(leaks(JSON.stringify(h.response), value), `${h.action} response`).toBe(false);
      }
      expect(leaks(JSON.stringify(results), value), 'DescribeInvocationResults').toBe(false);
      expect(leaks(JSON.stringify(obj), value), 'object and status').toBe(false);
      expect(leaks(JSON.stringify(events), value), 'Events').toBe(false);
      expect(leaks(log, value), 'controller log').toBe(false);
      expect(leaks(metrics, value), '/metrics').toBe(false);
    }
    expect(log.length).toBeGreaterThan(1000); // debug logging really captured
    expect(
      bodies.some((b) => b.action === 'DescribeInvocationResults' || b.action === 'DescribeInvocations'),
    ).toBe(true);
    // The failing hook's output reached Cloud Assistant's copy, redacted on the host.
    expect(JSON.stringify(results)).toContain('***');
    // Positive control: the same grep finds the inline env value: in the RunCommand request, and
    // printed by the hook, in Cloud Assistant's copy of the output (not redacted on the host).
    const inlineHits = bodies.filter((b) => leaks(JSON.stringify(b), inline)).map((b) => b.action);
    expect(inlineHits).toContain('RunCommand');
    expect(leaks(JSON.stringify(results), inline)).toBe(true);
    expect(leaks(JSON.stringify(obj.status), inline)).toBe(false); // the controller redacts it

    // 5. Delete: the parameter goes with the object.
    const oos = cloud.oos(REGION);
    expect(await oos.getSecretParameter(parameter)).toBeDefined();
    await api.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: APP_RELEASE_PLURAL,
      name: 'shop',
    });
    await waitFor(
      'object gone',
      async () => {
        try {
          await get();
          return undefined;
        } catch {
          return true;
        }
      },
      60_000,
      200,
    );
    expect(await oos.getSecretParameter(parameter)).toBeUndefined();
  });
});
