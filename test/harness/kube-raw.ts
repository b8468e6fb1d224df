/** Raw Kubernetes API requests (no vitest dependency, so scripts/ can use it too). */
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/**
 * Sends a raw JSON request with the kubeconfig's credentials and returns the parsed body.
 * Used for CRDs: client-node's typed serializer only knows `x_kubernetes_*` property names and
 * silently drops the wire names (`x-kubernetes-validations`, `x-kubernetes-int-or-string`, ...).
 * @throws Error with the API server's status message on a non-2xx answer (`code` = HTTP status).
 */
export async function kubeRequestRaw(
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
