/**
 * `zoneOrder` admission on the real API server (the CRDs from crds/, CEL included): AppRelease
 * `spec.strategy.zoneOrder` and PatchPolicy `spec.install.zoneOrder` accept zones of the spec's
 * region ([] too) and reject a zone of another region, a repeated zone and a malformed ID with a
 * readable message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { APP_RELEASE_PLURAL } from '../../src/api/apprelease.js';
import { GROUP, VERSION } from '../../src/api/common.js';
import { PATCH_POLICY_PLURAL } from '../../src/api/patchpolicy.js';
import { createTestNamespace, getTestKubeConfig } from '../harness/env.js';
import { applyProjectCrds } from '../harness/stack.js';

const app = (zoneOrder: unknown) => ({
  regionId: 'cn-hangzhou',
  targets: { tags: [{ key: 'app', value: 'shop-api' }] },
  application: 'shop-api',
  version: '1.4.2',
  artifact: { url: 'https://releases.example.com/shop-api-1.4.2.tar.gz', sha256: 'a'.repeat(64) },
  install: { appDir: '/opt/shop-api' },
  hooks: { start: { script: 'systemctl restart shop-api' } },
  strategy: { batchSize: 10, zoneOrder },
});
const policy = (zoneOrder: unknown) => ({
  regionId: 'ap-southeast-1',
  targets: { instanceIds: ['i-zo0001'] },
  install: { maintenanceWindow: { schedule: '0 1 * * SAT', duration: '4h' }, zoneOrder },
});

describe('zoneOrder admission (real API server)', () => {
  let kc: KubeConfig;
  let api: CustomObjectsApi;
  let namespace: string;
  beforeAll(async () => {
    kc = getTestKubeConfig('admin');
    await applyProjectCrds(kc);
    namespace = await createTestNamespace(kc, 'zoneorder');
    api = kc.makeApiClient(CustomObjectsApi);
  });
  afterAll(async () => undefined);

  const create = (kind: 'AppRelease' | 'PatchPolicy', name: string, spec: unknown) =>
    api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: kind === 'AppRelease' ? APP_RELEASE_PLURAL : PATCH_POLICY_PLURAL,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec },
    });
  const rejection = async (kind: 'AppRelease' | 'PatchPolicy', name: string, spec: unknown) => {
    try {
      await create(kind, name, spec);
    } catch (err) {
      const body = (err as { body?: string }).body;
      return body ? (JSON.parse(body) as { message: string }).message : String(err);
    }
    throw new Error(`${name} was accepted`);
  };

  it('accepts zones of the region, in any order, and []', async () => {
    await expect(create('AppRelease', 'ok', app(['cn-hangzhou-k', 'cn-hangzhou-h']))).resolves.toBeDefined();
    await expect(create('AppRelease', 'sorted', app([]))).resolves.toBeDefined();
    await expect(
      create('PatchPolicy', 'ok', policy(['ap-southeast-1b', 'ap-southeast-1a'])),
    ).resolves.toBeDefined();
  });

  it('rejects a zone of another region, naming the field', async () => {
    expect(await rejection('AppRelease', 'other-region', app(['cn-hangzhou-h', 'cn-beijing-a']))).toMatch(
      /every zone in spec.strategy.zoneOrder must be a zone of spec.regionId/,
    );
    expect(await rejection('PatchPolicy', 'region-itself', policy(['ap-southeast-1']))).toMatch(
      /every zone in spec.install.zoneOrder must be a zone of spec.regionId/,
    );
  });

  it('rejects a repeated zone and a malformed zone ID', async () => {
    expect(await rejection('AppRelease', 'twice', app(['cn-hangzhou-h', 'cn-hangzhou-h']))).toMatch(
      /zoneOrder\[1\]: Duplicate value/,
    );
    expect(await rejection('PatchPolicy', 'bad-id', policy(['AP_SOUTHEAST_1A']))).toMatch(
      /zoneOrder\[0\].*should match/,
    );
  });
});
