/**
 * Helpers for integration tests running against the control plane started by global-setup.ts.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { kubeRequestRaw as kubeRequest } from './kube-raw.js';

export { kubeRequest };

/**
 * A KubeConfig for the test control plane.
 * @param identity `admin` (system:masters) or an unprivileged user created by the harness (`alice`).
 * @param path the kubeconfig file; default the vitest global setup's (benchmarks pass their own).
 */
export function getTestKubeConfig(identity = 'admin', path?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path ?? inject('kubeconfigPath'));
  kc.setCurrentContext(identity);
  return kc;
}

/** Creates a namespace named `<prefix>-<random hex>` and returns its name. */
export async function createTestNamespace(kc: KubeConfig, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

/**
 * A namespaced test CRD (apiextensions.k8s.io/v1, one served+stored version with a status
 * subresource) as plain JSON, so `x-kubernetes-*` keys in `openAPIV3Schema` survive (see
 * {@link kubeRequest}). `singular` and `plural` are derived from `kind` (`Widget` → `widgets`).
 */
export function testCrd(
  group: string,
  version: string,
  kind: string,
  openAPIV3Schema: Record<string, unknown>,
): Record<string, unknown> {
  const singular = kind.toLowerCase();
  const plural = `${singular}s`;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural, singular, kind, listKind: `${kind}List` },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

/**
 * Server-side applies a CustomResourceDefinition (plain JSON, wire field names) and waits
 * (up to `timeoutMs` milliseconds) until its `Established` condition is True.
 * @throws Error when the API server rejects it or it is not established in time.
 */
export async function applyCrd(
  kc: KubeConfig,
  crd: Record<string, unknown>,
  timeoutMs = 30_000,
): Promise<void> {
  const name = (crd.metadata as { name: string }).name;
  const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`;
  await kubeRequest(
    kc,
    'PATCH',
    `${path}?fieldManager=ecsops-test&force=true`,
    crd,
    'application/apply-patch+yaml',
  );
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const got = (await kubeRequest(kc, 'GET', path)) as {
      status?: { conditions?: Array<{ type: string; status: string }> };
    };
    if (got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`CRD ${name} not Established after ${timeoutMs} ms`);
}
