/**
 * `spec.driftDetection` and `status.stateFreshness` on the real API server (the CRDs from crds/):
 * EcsExtension and PatchPolicy accept ChangeFeed and PerInstance, default an absent value to
 * ChangeFeed, reject any other value with a message that names the field and the allowed values,
 * and keep a written `status.stateFreshness` (not pruned as an unknown field).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../src/api/common.js';
import { ECS_EXTENSION_PLURAL } from '../../src/api/ecsextension.js';
import { PATCH_POLICY_PLURAL } from '../../src/api/patchpolicy.js';
import { createTestNamespace, getTestKubeConfig } from '../harness/env.js';
import { applyProjectCrds } from '../harness/stack.js';

type Kind = 'EcsExtension' | 'PatchPolicy';
const specOf = (kind: Kind, driftDetection?: unknown): Record<string, unknown> => ({
  regionId: 'cn-hangzhou',
  targets: { instanceIds: ['i-drift0001'] },
  ...(kind === 'EcsExtension' ? { packageName: 'ACS-Extension-node-1853370294850618' } : {}),
  ...(driftDetection !== undefined ? { driftDetection } : {}),
});
const pluralOf = (kind: Kind) => (kind === 'EcsExtension' ? ECS_EXTENSION_PLURAL : PATCH_POLICY_PLURAL);

describe.each<Kind>(['EcsExtension', 'PatchPolicy'])(
  '%s spec.driftDetection admission (real API server)',
  (kind) => {
    let kc: KubeConfig;
    let api: CustomObjectsApi;
    let namespace: string;
    beforeAll(async () => {
      kc = getTestKubeConfig('admin');
      await applyProjectCrds(kc);
      namespace = await createTestNamespace(kc, `drift-${kind.toLowerCase()}`);
      api = kc.makeApiClient(CustomObjectsApi);
    });
    afterAll(async () => undefined);

    const create = (name: string, spec: unknown) =>
      api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: pluralOf(kind),
        body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec },
      }) as Promise<{ spec: Record<string, unknown> }>;

    it('accepts ChangeFeed and PerInstance and defaults an absent value to ChangeFeed', async () => {
      expect((await create('feed', specOf(kind, 'ChangeFeed'))).spec.driftDetection).toBe('ChangeFeed');
      expect((await create('per-instance', specOf(kind, 'PerInstance'))).spec.driftDetection).toBe(
        'PerInstance',
      );
      expect((await create('default', specOf(kind))).spec.driftDetection).toBe('ChangeFeed');
    });

    it('rejects another value, naming the field and the supported values', async () => {
      let message = '';
      try {
        await create('bad', specOf(kind, 'changefeed'));
      } catch (err) {
        const body = (err as { body?: string }).body;
        message = body ? (JSON.parse(body) as { message: string }).message : String(err);
      }
      expect(message).toMatch(
        /spec\.driftDetection: Unsupported value: "changefeed": supported values: "ChangeFeed", "PerInstance"/,
      );
    });

    it('keeps status.stateFreshness written through the status subresource', async () => {
      await create('status', specOf(kind));
      const stateFreshness = { driftDetection: 'ChangeFeed', lastFullResyncTime: '2026-06-01T00:00:00Z' };
      const got = (await api.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: pluralOf(kind),
          name: 'status',
          body: { status: { stateFreshness } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as { status?: { stateFreshness?: unknown } };
      expect(got.status?.stateFreshness).toEqual(stateFreshness);
    });
  },
);
