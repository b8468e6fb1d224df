/**
 * Helpers for integration tests running against the control plane started by global-setup.ts.
 */
import { randomBytes } from 'node:crypto';
import * as https from 'node:https';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';

/**
 * A KubeConfig for the test control plane.
 * @param identity `admin` (system:masters) or an unprivileged user created by the harness (`alice`).
 */
export function getTestKubeConfig(identity = 'admin'): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfigPath'));
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
 * Sends a raw JSON request with the kubeconfig's credentials and returns the parsed body.
 * Used for CRDs: client-node's typed serializer only knows `x_kubernetes_*` property names and
 * silently drops the wire names (`x-kubernetes-validations`, `x-kubernetes-int-or-string`, ...).
 * @throws Error with the API server's status message on a non-2xx answer (`code` = HTTP status).
 */
export async function kubeRequest(
  kc: KubeConfig,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<Record<string, unknown>> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const opts: https.RequestOptions = {
    method,
    headers: { 'content-type': contentType, accept: 'application/json' },
  };
  await kc.applyToHTTPSOptions(opts);
  const url = new URL(path, cluster.server);
  return new Promise((resolve, reject) => {
    const req = https.request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
        if ((res.statusCode ?? 0) >= 300) {
          const err = new Error(`${method} ${path}: ${res.statusCode} ${String(parsed.message ?? text)}`);
          Object.assign(err, { code: res.statusCode, body: parsed });
          reject(err);
        } else resolve(parsed);
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
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
