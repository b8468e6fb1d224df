/**
 * Proves the local control plane is a real Kubernetes API server: CRD structural schema +
 * CEL + status subresource, informers, merge patch and server-side apply on /status,
 * optimistic concurrency (409), RBAC, and a clean teardown.
 */
import { existsSync } from 'node:fs';
import {
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { isAlive, startControlPlane } from '../harness/controlplane.js';
import { kubeRequestRaw } from '../harness/kube-raw.js';
import { applyCrd, testCrd, createTestNamespace, getTestKubeConfig } from '../harness/env.js';

const group = 'cp-test.ecsops.io';
const version = 'v1';
const plural = 'widgets';

interface Widget extends KubernetesObject {
  spec: { size: number; min: number };
  status?: { phase?: string; count?: number };
}

const crd = testCrd(group, version, 'Widget', {
  type: 'object',
  properties: {
    spec: {
      type: 'object',
      required: ['size', 'min'],
      properties: { size: { type: 'integer' }, min: { type: 'integer' } },
      'x-kubernetes-validations': [
        { rule: 'self.size >= self.min', message: 'spec.size must be at least spec.min' },
      ],
    },
    status: {
      type: 'object',
      properties: { phase: { type: 'string' }, count: { type: 'integer' } },
    },
  },
});

describe('local control plane', () => {
  const kc = getTestKubeConfig('admin');
  const api = kc.makeApiClient(CustomObjectsApi);
  let namespace = '';

  beforeAll(async () => {
    await applyCrd(kc, crd);
    namespace = await createTestNamespace(kc, 'cp');
  });

  it('serves a CRD end to end: informer, status patches, conflicts, CEL and RBAC', async () => {
    // Informer sees the object.
    const path = `/apis/${group}/${version}/namespaces/${namespace}/${plural}`;
    const informer = makeInformer<Widget>(kc, path, () =>
      api.listNamespacedCustomObject({ group, version, namespace, plural }),
    );
    const seen = new Promise<Widget>((resolve) => informer.on('add', (obj) => resolve(obj)));
    // client-node's informer stops on any watch error (a freshly established CRD can answer the
    // first watch with an error); restart it from its last resourceVersion, as src/runtime does.
    let stopped = false;
    informer.on('error', () => {
      if (!stopped) setTimeout(() => void informer.start().catch(() => undefined), 200);
    });
    await informer.start();
    try {
      const created = (await api.createNamespacedCustomObject({
        group,
        version,
        namespace,
        plural,
        body: {
          apiVersion: `${group}/${version}`,
          kind: 'Widget',
          metadata: { name: 'w1' },
          spec: { size: 3, min: 1 },
        },
      })) as Widget;
      const viaInformer = await seen;
      expect(viaInformer.metadata?.uid).toBe(created.metadata?.uid);

      // Merge patch on the status subresource.
      const merged = (await api.patchNamespacedCustomObjectStatus(
        { group, version, namespace, plural, name: 'w1', body: { status: { phase: 'Merged' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as Widget;
      expect(merged.status?.phase).toBe('Merged');
      expect(merged.spec.size).toBe(3);

      // Server-side apply on the status subresource.
      const applied = (await api.patchNamespacedCustomObjectStatus(
        {
          group,
          version,
          namespace,
          plural,
          name: 'w1',
          fieldManager: 'ecsops-test',
          force: true,
          body: {
            apiVersion: `${group}/${version}`,
            kind: 'Widget',
            metadata: { name: 'w1' },
            status: { count: 7 },
          },
        },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      )) as Widget;
      expect(applied.status?.count).toBe(7);
      expect(applied.metadata?.managedFields?.some((f) => f.manager === 'ecsops-test')).toBe(true);

      // A status write never changes spec: the status subresource ignores spec in the body.
      const ignored = (await api.patchNamespacedCustomObjectStatus(
        {
          group,
          version,
          namespace,
          plural,
          name: 'w1',
          body: { spec: { size: 99 }, status: { phase: 'P' } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as Widget;
      expect(ignored.spec.size).toBe(3);

      // Optimistic concurrency: an update carrying a stale resourceVersion gets 409.
      const stale = { ...created, spec: { size: 4, min: 1 } };
      await expect(
        api.replaceNamespacedCustomObject({ group, version, namespace, plural, name: 'w1', body: stale }),
      ).rejects.toMatchObject({ code: 409 });

      // CEL rule rejects with its readable message.
      const rejected = api.createNamespacedCustomObject({
        group,
        version,
        namespace,
        plural,
        body: {
          apiVersion: `${group}/${version}`,
          kind: 'Widget',
          metadata: { name: 'bad' },
          spec: { size: 1, min: 5 },
        },
      });
      await expect(rejected).rejects.toMatchObject({ code: 422 });
      await expect(rejected).rejects.toThrow(/spec\.size must be at least spec\.min/);

      // RBAC: the unprivileged identity is forbidden.
      const alice = getTestKubeConfig('alice').makeApiClient(CustomObjectsApi);
      await expect(
        alice.listNamespacedCustomObject({ group, version, namespace, plural }),
      ).rejects.toMatchObject({
        code: 403,
      });
    } finally {
      stopped = true;
      await informer.stop();
    }
  });
});

describe('control plane lifecycle', () => {
  it('stop() leaves no process and no temp dir behind', async () => {
    const cp = await startControlPlane({ users: [] });
    expect(cp.pids.every(isAlive)).toBe(true);
    await cp.stop();
    expect(cp.pids.filter(isAlive)).toEqual([]);
    expect(existsSync(cp.dir)).toBe(false);
  });

  it('stopApiServer() and startApiServer() restart kube-apiserver on the same port with the data kept', async () => {
    const cp = await startControlPlane({ users: [] });
    try {
      const kc = new KubeConfig();
      kc.loadFromFile(cp.kubeconfigPath);
      await kubeRequestRaw(kc, 'POST', '/api/v1/namespaces', { metadata: { name: 'kept' } });
      const [, oldApi] = cp.pids;
      await cp.stopApiServer();
      expect(isAlive(oldApi!)).toBe(false);
      await expect(kubeRequestRaw(kc, 'GET', '/api/v1/namespaces/kept')).rejects.toThrow();
      await cp.startApiServer();
      expect(cp.pids).toHaveLength(2);
      expect(cp.pids.every(isAlive)).toBe(true);
      const ns = (await kubeRequestRaw(kc, 'GET', '/api/v1/namespaces/kept')) as {
        metadata: { name: string };
      };
      expect(ns.metadata.name).toBe('kept');
    } finally {
      await cp.stop();
    }
    expect(cp.pids.filter(isAlive)).toEqual([]);
  });
});
