/**
 * One shared HTTPS connection pool per KubeConfig for the generated API clients.
 *
 * `@kubernetes/client-node` 2.0.1 authenticates every generated-API request (CustomObjectsApi,
 * EventsV1Api, CoordinationV1Api: status patches, list calls, events, leases) through
 * `KubeConfig.applySecurityAuthentication`, which builds a NEW undici `Agent` for each request
 * whenever the cluster has TLS material (always, for a real cluster). Every request therefore
 * opens its own TLS connection (full handshake, a fresh secure context) that then idles for
 * undici's keep-alive timeout: the whole-daemon benchmark's 1000×10 scenario held ≈ 260 such
 * connections at once (docs/memory.md). The watch path (`createAgent`) already caches its agent.
 *
 * {@link shareKubeDispatcher} keeps one dispatcher per distinct TLS identity instead, so requests
 * share keep-alive connections. The identity key covers everything the library passes to the
 * dispatcher (server, proxy, skip-verify, server name, CA, client certificate and key), read on
 * every request exactly as before, so a rotated CA or client certificate still gets a new
 * dispatcher; the oldest of more than {@link MAX_DISPATCHERS} is closed gracefully (in-flight
 * requests complete). Bearer tokens are headers, applied per request as before.
 */
import { createHash, type Hash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';

/** Distinct TLS identities kept open at once (a rotation adds one; the oldest is closed). */
export const MAX_DISPATCHERS = 4;

type CreateDispatcher = (cluster: unknown, agentOptions: Record<string, unknown>) => unknown;

const SHARED = Symbol('ecsops.sharedDispatcher');

function update(hash: Hash, value: unknown): void {
  if (value === undefined || value === null) hash.update('\u0000-');
  else if (typeof value === 'string' || Buffer.isBuffer(value))
    hash.update(`\u0000${value.length}:`).update(value);
  else if (Array.isArray(value)) {
    hash.update(`\u0000[${value.length}`);
    for (const v of value) update(hash, v);
  } else hash.update(`\u0000${typeof value}:${String(value)}`);
}

/** The key of everything `createDispatcher(cluster, agentOptions)` builds a dispatcher from. */
export function dispatcherKey(cluster: unknown, agentOptions: Record<string, unknown>): string {
  const hash = createHash('sha256');
  const c = (cluster ?? {}) as Record<string, unknown>;
  for (const k of ['server', 'proxyUrl', 'skipTLSVerify', 'tlsServerName']) update(hash, c[k]);
  for (const k of ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'])
    update(hash, agentOptions[k]);
  return hash.digest('hex');
}

/**
 * Makes `kc`'s generated API clients share one undici dispatcher per TLS identity (see the
 * module comment). Idempotent; a client-node without the private `createDispatcher` hook is left
 * untouched. Returns `kc`.
 */
export function shareKubeDispatcher(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createDispatcher?: CreateDispatcher; [SHARED]?: true };
  const original = target.createDispatcher;
  if (typeof original !== 'function' || target[SHARED]) return kc;
  const cache = new Map<string, unknown>();
  target.createDispatcher = (cluster, agentOptions) => {
    const key = dispatcherKey(cluster, agentOptions);
    if (cache.has(key)) return cache.get(key);
    const dispatcher = original.call(kc, cluster, agentOptions);
    cache.set(key, dispatcher);
    if (cache.size > MAX_DISPATCHERS) {
      const [oldestKey, oldest] = cache.entries().next().value as [string, unknown];
      cache.delete(oldestKey);
      const close = (oldest as { close?: () => Promise<void> } | undefined)?.close;
      if (typeof close === 'function') close.call(oldest).catch(() => undefined);
    }
    return dispatcher;
  };
  target[SHARED] = true;
  return kc;
}
