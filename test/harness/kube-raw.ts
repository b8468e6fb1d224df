/** Raw Kubernetes API requests (no vitest dependency, so scripts/ can use it too). */
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

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

/** One document {@link applyYaml} applied. */
export interface AppliedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

/**
 * Server-side applies (`application/apply-patch+yaml`, `force=true`) every document of `text` in
 * order, as `fieldManager`; `Kustomization` and empty documents are skipped. The plural is the
 * lower-cased kind + `s` (`y` → `ies`), which holds for every kind this project applies.
 * @returns each applied document and the object the API server answered with.
 * @throws Error from {@link kubeRequestRaw} on the first rejected document.
 */
export async function applyYaml(
  kc: KubeConfig,
  text: string,
  fieldManager: string,
): Promise<Array<{ doc: AppliedObject; result: Record<string, unknown> }>> {
  const out: Array<{ doc: AppliedObject; result: Record<string, unknown> }> = [];
  for (const d of parseAllDocuments(text)) {
    const obj = d.toJS() as AppliedObject | null;
    if (!obj?.kind || obj.kind === 'Kustomization') continue;
    const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
    const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
    const kind = obj.kind.toLowerCase();
    const plural = kind.endsWith('y') ? `${kind.slice(0, -1)}ies` : `${kind}s`;
    const ns = obj.metadata.namespace ? `/namespaces/${obj.metadata.namespace}` : '';
    const result = await kubeRequestRaw(
      kc,
      'PATCH',
      `${base}${ns}/${plural}/${obj.metadata.name}?fieldManager=${encodeURIComponent(fieldManager)}&force=true`,
      obj,
      'application/apply-patch+yaml',
    );
    out.push({ doc: obj, result });
  }
  return out;
}
