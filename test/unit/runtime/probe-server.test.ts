import { afterEach, describe, expect, it } from 'vitest';
import { Counter } from 'prom-client';
import { createRegistry } from '../../../src/metrics/registry.js';
import { parseBindAddress, startProbeServer } from '../../../src/metrics/server.js';
import type { ProbeServer } from '../../../src/metrics/server.js';

let server: ProbeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('parseBindAddress', () => {
  it.each([
    [':8080', { host: undefined, port: 8080 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::1]:9090', { host: '::1', port: 9090 }],
    ['0', undefined],
  ])('%s', (addr, want) => {
    expect(parseBindAddress(addr)).toEqual(want);
  });

  it('rejects malformed addresses', () => {
    expect(() => parseBindAddress('8080')).toThrow(/invalid bind address/);
    expect(() => parseBindAddress(':99999')).toThrow(/out of range/);
  });
});

describe('startProbeServer', () => {
  it('serves /metrics on the metrics port and probes on the probe port', async () => {
    const registry = createRegistry();
    new Counter({ name: 'ecsops_test_total', help: 'test', registers: [registry] }).inc(3);
    let ready = { ok: false, detail: 'informers not synced' };
    server = await startProbeServer({
      metricsAddr: '127.0.0.1:0',
      probeAddr: '127.0.0.1:0',
      registry,
      checks: { healthz: () => true, readyz: async () => ready },
    });
    expect(server.metricsPort).toBeGreaterThan(0);
    expect(server.probePort).toBeGreaterThan(0);
    expect(server.probePort).not.toBe(server.metricsPort);

    const metrics = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    const body = await metrics.text();
    expect(body).toContain('ecsops_test_total 3');
    expect(body).toContain('process_cpu_seconds_total');

    expect((await fetch(`http://127.0.0.1:${server.metricsPort}/healthz`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${server.probePort}/healthz`)).status).toBe(200);
    const notReady = await fetch(`http://127.0.0.1:${server.probePort}/readyz`);
    expect(notReady.status).toBe(503); // README: `/readyz` 503 until ready
    expect((await fetch(`http://127.0.0.1:${server.probePort}/readyz`, { method: 'HEAD' })).status).toBe(503);
    expect(await notReady.text()).toContain('informers not synced');
    ready = { ok: true, detail: '' };
    expect((await fetch(`http://127.0.0.1:${server.probePort}/readyz`)).status).toBe(200);
  });

  it('answers 500 when the liveness check throws and 503 when the readiness check throws', async () => {
    server = await startProbeServer({
      metricsAddr: '0',
      probeAddr: '127.0.0.1:0',
      registry: createRegistry({ defaultMetrics: false }),
      checks: {
        healthz: () => {
          throw new Error('boom');
        },
        readyz: () => Promise.reject(new Error('boom')),
      },
    });
    expect(server.metricsPort).toBe(0);
    expect((await fetch(`http://127.0.0.1:${server.probePort}/healthz`)).status).toBe(500);
    expect((await fetch(`http://127.0.0.1:${server.probePort}/readyz`)).status).toBe(503);
  });

  it('rejects when the port is taken', async () => {
    server = await startProbeServer({
      metricsAddr: '127.0.0.1:0',
      probeAddr: '0',
      registry: createRegistry({ defaultMetrics: false }),
      checks: { healthz: () => true, readyz: async () => ({ ok: true }) },
    });
    await expect(
      startProbeServer({
        metricsAddr: `127.0.0.1:${server.metricsPort}`,
        probeAddr: '0',
        registry: createRegistry({ defaultMetrics: false }),
        checks: { healthz: () => true, readyz: async () => ({ ok: true }) },
      }),
    ).rejects.toThrow(/EADDRINUSE/);
  });
});
