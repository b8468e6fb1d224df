import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { MAX_DISPATCHERS, shareKubeDispatcher } from '../../../src/util/kube-dispatcher.js';

function kubeConfig(ca = 'ca-1'): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData: Buffer.from(ca).toString('base64') }],
    users: [{ name: 'u', token: 'secret-token' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

async function dispatcherOf(kc: KubeConfig): Promise<{ dispatcher: unknown; auth: string | undefined }> {
  const ctx = new RequestContext('https://127.0.0.1:6443/api', HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return { dispatcher: ctx.getDispatcher(), auth: ctx.getHeaders().Authorization };
}

describe('shareKubeDispatcher', () => {
  it('client-node still builds a new dispatcher per request (drop the helper once it does not)', async () => {
    const kc = kubeConfig();
    const a = await dispatcherOf(kc);
    const b = await dispatcherOf(kc);
    expect(a.dispatcher).toBeDefined();
    expect(b.dispatcher).not.toBe(a.dispatcher);
  });

  it('shares one dispatcher across requests and still sets the token on each', async () => {
    const kc = shareKubeDispatcher(kubeConfig());
    expect(shareKubeDispatcher(kc)).toBe(kc); // idempotent
    const a = await dispatcherOf(kc);
    const b = await dispatcherOf(kc);
    expect(a.dispatcher).toBeDefined();
    expect(b.dispatcher).toBe(a.dispatcher);
    expect(a.auth).toBe('Bearer secret-token');
    expect(b.auth).toBe('Bearer secret-token');
  });

  it('builds a new dispatcher when the TLS material changes and closes the oldest beyond the cap', async () => {
    const kc = shareKubeDispatcher(kubeConfig('ca-0'));
    type Agent = { closed: boolean };
    const first = (await dispatcherOf(kc)).dispatcher as Agent;
    const seen = new Set([first]);
    for (let i = 1; i <= MAX_DISPATCHERS; i++) {
      const cluster = kc.getCurrentCluster();
      if (!cluster) throw new Error('no cluster');
      // A rotated CA (the library re-reads caFile / caData on every request).
      (cluster as { caData?: string }).caData = Buffer.from(`ca-${i}`).toString('base64');
      const d = (await dispatcherOf(kc)).dispatcher as Agent;
      expect(seen.has(d)).toBe(false);
      seen.add(d);
      expect((await dispatcherOf(kc)).dispatcher).toBe(d);
    }
    // The oldest was closed (gracefully), the current ones stay open.
    expect(first.closed).toBe(true);
    expect([...seen].filter((d) => d.closed)).toEqual([first]);
  });
});
