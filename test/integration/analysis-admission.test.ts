/**
 * `spec.analysis` admission on the real API server (the CRDs from crds/, CEL included), for both
 * kinds that embed it: a full valid gate is accepted (and defaulted), and every bad value admission
 * can judge is rejected with a readable message naming the field.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { APP_RELEASE_PLURAL } from '../../src/api/apprelease.js';
import { GROUP, VERSION } from '../../src/api/common.js';
import { PATCH_POLICY_PLURAL } from '../../src/api/patchpolicy.js';
import { createTestNamespace, getTestKubeConfig } from '../harness/env.js';
import { applyProjectCrds } from '../harness/stack.js';

type Json = Record<string, unknown>;

const analysis = (): Json => ({
  prometheus: {
    url: 'https://prometheus.monitoring.svc:9090/prefix',
    bearerTokenSecretRef: { name: 'prom-token', key: 'token' },
    caSecretRef: { name: 'prom-ca', key: 'ca.crt' },
  },
  bakeTime: '2m',
  metrics: [
    {
      name: 'error-rate',
      query:
        'sum(rate(web_request_errors_total{instance_id=~"{{instanceIdsRegex}}"}[1m])) / sum(rate(web_requests_total{instance_id=~"{{instanceIdsRegex}}"}[1m]))',
      interval: '15s',
      count: 4,
      successCondition: 'isNaN(result) || result < 0.05',
      failureLimit: 1,
    },
    { name: 'up', query: 'min(up{zone=~"{{zonesRegex}}"})', failureCondition: 'result < 1' },
  ],
});
const app = (a: unknown) => ({
  regionId: 'cn-hangzhou',
  targets: { tags: [{ key: 'app', value: 'shop-api' }] },
  application: 'shop-api',
  version: '1.4.2',
  artifact: { url: 'https://releases.example.com/shop-api-1.4.2.tar.gz', sha256: 'a'.repeat(64) },
  hooks: { start: { script: 'systemctl restart shop-api' } },
  analysis: a,
});
const policy = (a: unknown) => ({
  regionId: 'cn-hangzhou',
  targets: { instanceIds: ['i-an0001'] },
  install: { maintenanceWindow: { schedule: '0 1 * * SAT', duration: '4h' } },
  analysis: a,
});

/** `analysis()` with `edit` applied to a copy. */
function variant(edit: (a: Json & { prometheus: Json; metrics: Json[] }) => void): Json {
  const a = analysis() as Json & { prometheus: Json; metrics: Json[] };
  edit(a);
  return a;
}

describe('spec.analysis admission (real API server)', () => {
  let kc: KubeConfig;
  let api: CustomObjectsApi;
  let namespace: string;
  beforeAll(async () => {
    kc = getTestKubeConfig('admin');
    await applyProjectCrds(kc);
    namespace = await createTestNamespace(kc, 'analysis');
    api = kc.makeApiClient(CustomObjectsApi);
  });

  const create = (kind: 'AppRelease' | 'PatchPolicy', name: string, spec: unknown) =>
    api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: kind === 'AppRelease' ? APP_RELEASE_PLURAL : PATCH_POLICY_PLURAL,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec },
    });
  const rejection = async (kind: 'AppRelease' | 'PatchPolicy', name: string, spec: unknown) => {
    try {
      await create(kind, name, spec);
    } catch (err) {
      const body = (err as { body?: string }).body;
      return body ? (JSON.parse(body) as { message: string }).message : String(err);
    }
    throw new Error(`${name} was accepted`);
  };

  it('accepts a full gate on both kinds and fills the defaults', async () => {
    const created = (await create('AppRelease', 'ok', app(analysis()))) as {
      spec: { analysis: { prometheus: Json; metrics: Json[] } };
    };
    expect(created.spec.analysis.prometheus.timeoutSeconds).toBe(10);
    expect(created.spec.analysis.metrics[1]).toMatchObject({
      interval: '30s',
      count: 1,
      failureLimit: 0,
      inconclusiveLimit: 0,
    });
    await expect(create('PatchPolicy', 'ok', policy(analysis()))).resolves.toBeDefined();
    // http, no path, no bake time, a bare vector
    const minimal = {
      prometheus: { url: 'http://127.0.0.1:9090' },
      metrics: [{ name: 'm', query: 'vector(0)', successCondition: 'result == 0.0' }],
    };
    await expect(create('AppRelease', 'minimal', app(minimal))).resolves.toBeDefined();
  });

  it('rejects each bad value with a readable message', async () => {
    const cases: Array<[string, Json, string | RegExp]> = [
      [
        'ftp-url',
        variant((a) => (a.prometheus.url = 'ftp://prometheus:9090')),
        'analysis.prometheus.url must be an http:// or https:// URL without user info, query string or fragment',
      ],
      [
        'userinfo-url',
        variant((a) => (a.prometheus.url = 'https://admin:hunter2@prometheus:9090')),
        'without user info',
      ],
      ['query-url', variant((a) => (a.prometheus.url = 'http://prometheus:9090/?x=1')), 'without user info'],
      ['timeout-0', variant((a) => (a.prometheus.timeoutSeconds = 0)), /timeoutSeconds: Invalid value: 0/],
      [
        'bake-bad',
        variant((a) => (a.bakeTime = '2 minutes')),
        /bakeTime: Invalid value: "2 minutes": spec.analysis.bakeTime in body should match/,
      ],
      [
        'bake-long',
        variant((a) => (a.bakeTime = '25h')),
        'analysis.bakeTime must be a duration between 0s and 24h',
      ],
      [
        'interval-short',
        variant((a) => ((a.metrics[0] as Json).interval = '500ms')),
        'analysis metric interval must be a duration between 1s and 1h',
      ],
      ['count-0', variant((a) => ((a.metrics[0] as Json).count = 0)), /count: Invalid value: 0/],
      [
        'failure-limit-neg',
        variant((a) => ((a.metrics[0] as Json).failureLimit = -1)),
        /failureLimit: Invalid value: -1/,
      ],
      [
        'inconclusive-neg',
        variant((a) => ((a.metrics[0] as Json).inconclusiveLimit = -1)),
        /inconclusiveLimit: Invalid value: -1/,
      ],
      [
        'limit-ge-count',
        variant((a) => ((a.metrics[0] as Json).failureLimit = 4)),
        'analysis metric failureLimit must be less than count',
      ],
      [
        'no-condition',
        variant((a) => delete (a.metrics[0] as Json).successCondition),
        'each analysis metric needs a successCondition or a failureCondition (or both)',
      ],
      [
        'dup-name',
        variant((a) => ((a.metrics[1] as Json).name = 'error-rate')),
        /metrics\[1\]: Duplicate value/,
      ],
      [
        'bad-placeholder',
        variant((a) => ((a.metrics[1] as Json).query = 'up{instance_id="{{instanceId}}"}')),
        'analysis metric query may only use the placeholders {{instanceIds}}, {{instanceIdsRegex}}',
      ],
      ['no-metrics', variant((a) => (a.metrics = [])), /metrics: Invalid value: 0: .*at least 1 item/],
      [
        'bad-name',
        variant((a) => ((a.metrics[0] as Json).name = 'Error Rate!')),
        /metrics\[0\].name: Invalid value/,
      ],
      ['no-url', variant((a) => delete a.prometheus.url), /prometheus.url: Required value/],
    ];
    for (const [name, a, message] of cases) {
      const msg = await rejection('AppRelease', `bad-${name}`, app(a));
      if (typeof message === 'string') expect(msg, name).toContain(message);
      else expect(msg, name).toMatch(message);
    }
    // the same schema on PatchPolicy
    expect(
      await rejection(
        'PatchPolicy',
        'bad-limit',
        policy(variant((a) => ((a.metrics[0] as Json).failureLimit = 9))),
      ),
    ).toContain('analysis metric failureLimit must be less than count');
  });
});
