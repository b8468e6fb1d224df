/**
 * `spec.trafficControl` and `status.trafficControl` on the real API server (the CRDs from crds/):
 * AppRelease and PatchPolicy default drainSeconds, healthyTimeoutSeconds, maxDrained and
 * minHealthyBackends; reject a group ID of the wrong product, a duplicate group, a maxDrained of 0
 * and out-of-range seconds with messages naming the field; and keep a written
 * `status.trafficControl.backends` (not pruned as an unknown field).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { APP_RELEASE_PLURAL } from '../../src/api/apprelease.js';
import { GROUP, VERSION } from '../../src/api/common.js';
import { PATCH_POLICY_PLURAL } from '../../src/api/patchpolicy.js';
import { createTestNamespace, getTestKubeConfig } from '../harness/env.js';
import { applyProjectCrds } from '../harness/stack.js';

type Kind = 'AppRelease' | 'PatchPolicy';
const specOf = (kind: Kind, trafficControl: unknown): Record<string, unknown> =>
  kind === 'AppRelease'
    ? {
        regionId: 'cn-hangzhou',
        targets: { tags: [{ key: 'app', value: 'shop' }] },
        application: 'shop',
        version: '1.0.0',
        artifact: { url: 'https://releases.example.com/shop-1.0.0.tar.gz', sha256: 'a'.repeat(64) },
        install: { appDir: '/opt/shop' },
        hooks: { start: { script: 'systemctl restart shop' } },
        trafficControl,
      }
    : {
        regionId: 'cn-hangzhou',
        targets: { instanceIds: ['i-tc0001'] },
        install: { maintenanceWindow: { schedule: '0 1 * * SAT', duration: '4h' }, rebootIfNeeded: true },
        trafficControl,
      };
const pluralOf = (kind: Kind) => (kind === 'AppRelease' ? APP_RELEASE_PLURAL : PATCH_POLICY_PLURAL);

describe.each<Kind>(['AppRelease', 'PatchPolicy'])(
  '%s spec.trafficControl admission (real API server)',
  (kind) => {
    let kc: KubeConfig;
    let api: CustomObjectsApi;
    let namespace: string;
    beforeAll(async () => {
      kc = getTestKubeConfig('admin');
      await applyProjectCrds(kc);
      namespace = await createTestNamespace(kc, `traffic-${kind.toLowerCase()}`);
      api = kc.makeApiClient(CustomObjectsApi);
    });

    const create = (name: string, tc: unknown) =>
      api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: pluralOf(kind),
        body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec: specOf(kind, tc) },
      }) as Promise<{ spec: { trafficControl: Record<string, unknown> } }>;
    const rejection = async (name: string, tc: unknown): Promise<string> => {
      try {
        await create(name, tc);
      } catch (err) {
        const body = (err as { body?: string }).body;
        return body ? (JSON.parse(body) as { message: string }).message : String(err);
      }
      return 'accepted';
    };

    it('accepts CLB and ALB groups and fills the defaults', async () => {
      const got = await create('ok', {
        serverGroups: [
          { type: 'ALB', serverGroupId: 'sgp-8ilqs4axp6fnhk2wbp' },
          { type: 'CLB', serverGroupId: 'rsp-bp1d0a0g3uql8' },
        ],
      });
      expect(got.spec.trafficControl).toMatchObject({
        drainSeconds: 30,
        healthyTimeoutSeconds: 300,
        maxDrained: '25%',
        minHealthyBackends: 1,
      });
    });

    it('rejects a group ID of the other product, a duplicate group, maxDrained 0 and out-of-range seconds', async () => {
      expect(
        await rejection('wrong-product', {
          serverGroups: [{ type: 'CLB', serverGroupId: 'sgp-8ilqs4axp6fnhk2wbp' }],
        }),
      ).toMatch(/a CLB vServer group ID starts with rsp-, an ALB server group ID with sgp-/);
      expect(
        await rejection('duplicate', {
          serverGroups: [
            { type: 'ALB', serverGroupId: 'sgp-a1' },
            { type: 'ALB', serverGroupId: 'sgp-a1' },
          ],
        }),
      ).toMatch(/spec\.trafficControl\.serverGroups\[1\]: Duplicate value/);
      expect(
        await rejection('zero', { serverGroups: [{ type: 'ALB', serverGroupId: 'sgp-a1' }], maxDrained: 0 }),
      ).toMatch(
        /trafficControl\.maxDrained must be an integer >= 1 or a percentage string between 1% and 100%/,
      );
      expect(
        await rejection('zero-pct', {
          serverGroups: [{ type: 'ALB', serverGroupId: 'sgp-a1' }],
          maxDrained: '0%',
        }),
      ).toMatch(/trafficControl\.maxDrained must be an integer >= 1/);
      expect(
        await rejection('long', {
          serverGroups: [{ type: 'ALB', serverGroupId: 'sgp-a1' }],
          drainSeconds: 7200,
        }),
      ).toMatch(
        /spec\.trafficControl\.drainSeconds: Invalid value: 7200: spec\.trafficControl\.drainSeconds in body should be less than or equal to 3600/,
      );
      expect(await rejection('empty', { serverGroups: [] })).toMatch(/spec\.trafficControl\.serverGroups/);
    });

    it('keeps status.trafficControl.backends written through the status subresource', async () => {
      await create('status', { serverGroups: [{ type: 'ALB', serverGroupId: 'sgp-a1' }] });
      const backends = [
        {
          type: 'ALB',
          serverGroupId: 'sgp-a1',
          instanceId: 'i-tc0001',
          port: 8080,
          weight: 100,
          mode: 'Weight',
          since: '2026-12-07T10:00:00Z',
        },
      ];
      const got = (await api.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: pluralOf(kind),
          name: 'status',
          body: { status: { trafficControl: { backends } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as { status: { trafficControl?: { backends?: unknown[] } } };
      expect(got.status.trafficControl?.backends).toEqual(backends);
    });
  },
);
