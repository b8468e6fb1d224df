/**
 * AppRelease admission on the real API server (the CRD from crds/, CEL included): readable
 * messages for hooks that exceed the RunCommand limit (saying by how much), a bad sha256,
 * batchSize 0 and both health-check forms; a valid spec is accepted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import {
  APP_RELEASE_PLURAL,
  USER_CONTENT_BUDGET_BYTES,
  type AppReleaseSpec,
} from '../../../src/api/apprelease.js';
import { appDirProblem } from '../../../src/api/apprelease.js';
import { userContentBytes } from '../../../src/controllers/apprelease/wrapper.js';
import { GROUP, VERSION } from '../../../src/api/common.js';
import { createTestNamespace, getTestKubeConfig } from '../../harness/env.js';
import { applyProjectCrds, REPO_ROOT } from '../../harness/stack.js';

const valid = () => ({
  regionId: 'cn-beijing',
  targets: { tags: [{ key: 'app', value: 'shop-api' }] },
  application: 'shop-api',
  version: '1.4.2',
  artifact: { url: 'https://releases.example.com/shop-api-1.4.2.tar.gz', sha256: 'a'.repeat(64) },
  install: { appDir: '/opt/shop-api', env: { PORT: '8080' } },
  hooks: { start: { script: 'systemctl restart shop-api' } },
  healthCheck: { http: { port: 8080, path: '/healthz' } },
  strategy: { batchSize: '25%', canary: { instances: 1, pause: true } },
});

describe('AppRelease admission (real API server)', () => {
  let kc: KubeConfig;
  let api: CustomObjectsApi;
  let namespace: string;
  beforeAll(async () => {
    kc = getTestKubeConfig('admin');
    await applyProjectCrds(kc);
    namespace = await createTestNamespace(kc, 'apprel');
    api = kc.makeApiClient(CustomObjectsApi);
  });
  afterAll(async () => undefined);

  const create = (name: string, spec: unknown) =>
    api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: APP_RELEASE_PLURAL,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'AppRelease', metadata: { name }, spec },
    });
  const rejection = async (name: string, spec: unknown): Promise<string> => {
    try {
      await create(name, spec);
    } catch (err) {
      const body = (err as { body?: string }).body;
      return body ? (JSON.parse(body) as { message: string }).message : String(err);
    }
    throw new Error(`${name} was accepted`);
  };

  it('accepts a valid spec (the CEL rules compile and pass)', async () => {
    const created = (await create('ok', valid())) as { spec: { strategy: { maxErrors: number } } };
    expect(created.spec.strategy.maxErrors).toBe(0); // defaulted
  });

  it('accepts deploy/examples/apprelease.yaml', async () => {
    const example = parse(readFileSync(join(REPO_ROOT, 'deploy/examples/apprelease.yaml'), 'utf8')) as {
      spec: unknown;
    };
    await expect(create('example', example.spec)).resolves.toMatchObject({ metadata: { name: 'example' } });
  });

  it('accepts deploy/examples/apprelease-analysis.yaml (a metric-gated rollout)', async () => {
    const file = join(REPO_ROOT, 'deploy/examples/apprelease-analysis.yaml');
    const example = parse(readFileSync(file, 'utf8')) as { spec: { analysis?: unknown } };
    expect(example.spec.analysis).toBeDefined();
    await expect(create('example-gated', example.spec)).resolves.toMatchObject({
      metadata: { name: 'example-gated' },
    });
  });

  it('rejects hooks that do not fit the RunCommand limit, saying by how much', async () => {
    const spec = valid();
    spec.hooks.start.script = '#'.repeat(USER_CONTENT_BUDGET_BYTES); // Base64 makes it 4/3 of this
    const msg = await rejection('too-big', spec);
    const over = userContentBytes(spec as AppReleaseSpec) - USER_CONTENT_BUDGET_BYTES;
    expect(over).toBeGreaterThan(USER_CONTENT_BUDGET_BYTES / 4); // a third of the script, Base64 overhead
    expect(msg).toContain(
      `exceed the 16384-byte RunCommand limit (${USER_CONTENT_BUDGET_BYTES} bytes of Base64 user content) by ${over} bytes; move long scripts into the artifact`,
    );
  });

  it('counts install.envVars values in the RunCommand limit like install.env', async () => {
    const spec = valid() as ReturnType<typeof valid> & { install: { envVars?: unknown[] } };
    // 9 values of 1,000 bytes: ~12 KB of Base64, over the budget; secretKeyRef entries add nothing.
    spec.install.envVars = [
      ...Array.from({ length: 9 }, (_, i) => ({ name: `BIG_${i}`, value: 'v'.repeat(1000) })),
      { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
    ];
    const msg = await rejection('envvars-too-big', spec);
    const over = userContentBytes(spec as unknown as AppReleaseSpec) - USER_CONTENT_BUDGET_BYTES;
    expect(over).toBeGreaterThan(0);
    expect(msg).toContain(`by ${over} bytes`);
  });

  it('rejects an appDir with . or .. segments, or a system root, with a readable message', async () => {
    const rejected: [string, string][] = [
      ['/opt/../etc', "install.appDir must not contain '.' or '..' segments (got /opt/../etc)"],
      ['/opt/./x', "install.appDir must not contain '.' or '..' segments (got /opt/./x)"],
      ['/usr', 'install.appDir must be a directory of its own at least two segments deep'],
      ['/', 'install.appDir must be a directory of its own at least two segments deep'],
      [
        '/etc/',
        'never a system root like /, /bin, /boot, /dev, /etc, /lib*, /proc, /root, /sbin, /sys, /usr, /var (got /etc/)',
      ],
      ['//var', '(got //var)'],
      ['/lib64', '(got /lib64)'],
      ['/{{ACS::InstanceId}}', 'at least two segments deep'],
    ];
    for (const [i, [appDir, message]] of rejected.entries()) {
      const spec = valid();
      spec.install.appDir = appDir;
      const msg = await rejection(`appdir-bad-${i}`, spec);
      expect(msg, appDir).toContain(message);
      // the runtime copy (for objects stored before the rule) says the same
      expect(appDirProblem(appDir), appDir).toContain(message);
    }
    for (const [i, appDir] of [
      '/var/lib/app',
      '/opt/app',
      '/opt/{{ACS::InstanceId}}/app',
      '/srv/a.b/..c',
    ].entries()) {
      const spec = valid();
      spec.install.appDir = appDir;
      await expect(create(`appdir-ok-${i}`, spec), appDir).resolves.toMatchObject({
        spec: { install: { appDir } },
      });
      expect(appDirProblem(appDir), appDir).toBeUndefined();
    }
  });

  it('rejects a bad sha256, batchSize 0 and both health-check forms with readable messages', async () => {
    const badSha = valid();
    badSha.artifact.sha256 = 'ABC';
    expect(await rejection('bad-sha', badSha)).toMatch(/spec.artifact.sha256.*\^\[a-f0-9\]\{64\}\$/);
    const zero = valid();
    (zero.strategy as { batchSize: unknown }).batchSize = 0;
    expect(await rejection('zero', zero)).toContain(
      'strategy.batchSize must be an integer >= 1 or a percentage string between 1% and 100%',
    );
    const both = valid();
    (both.healthCheck as Record<string, unknown>).exec = { script: 'true' };
    expect(await rejection('both', both)).toContain('healthCheck must set exactly one of http or exec');
    const neither = valid();
    neither.healthCheck = {} as typeof neither.healthCheck;
    expect(await rejection('neither', neither)).toContain('healthCheck must set exactly one of http or exec');
  });
});
