import { ServerError, ThrottlingError, ClientError } from '@alicloud/openapi-core';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ApiCaller, type ActionSafety, type SendFn } from '../../../src/cloud/caller.js';
import { isAborted, isCloudError, type CloudError } from '../../../src/cloud/errors.js';
import { cloudMetrics } from '../../../src/cloud/metrics.js';
import { PRIORITY } from '../../../src/cloud/limiter.js';
import { OOS_ACTIONS, OosClient } from '../../../src/cloud/oos.js';

const ACTIONS: Record<string, ActionSafety> = { Read: 'read', Start: 'idempotentWrite', Cancel: 'write' };

const throttled = () =>
  new ThrottlingError({ statusCode: 400, code: 'Throttling.User', message: 'flow control', data: {} });
const unavailable = () =>
  new ServerError({ statusCode: 503, code: 'ServiceUnavailable', message: 'down', data: {} });
const forbidden = () =>
  new ClientError({ statusCode: 403, code: 'Forbidden.RAM', message: 'denied', data: {} });

/** A scripted transport: each call takes the next outcome (an error to throw or a body). */
function scripted(outcomes: Array<Error | Record<string, unknown>>) {
  const calls: Array<{ action: string; params: Record<string, unknown> }> = [];
  const send: SendFn = async (action, params) => {
    calls.push({ action, params });
    const next = outcomes.shift() ?? { RequestId: 'ok' };
    if (next instanceof Error) throw next;
    return next;
  };
  return { send, calls };
}

function setup(outcomes: Array<Error | Record<string, unknown>>, maxRetries = 3) {
  const registry = new Registry();
  const metrics = cloudMetrics(registry);
  const delays: number[] = [];
  const { send, calls } = scripted(outcomes);
  const caller = new ApiCaller(send, {
    product: 'oos',
    regionId: 'cn-hangzhou',
    actions: ACTIONS,
    qps: 1000,
    concurrency: 4,
    retry: { maxRetries, baseDelayMs: 100, maxDelayMs: 1000 },
    metrics,
    sleep: async (ms) => {
      delays.push(ms);
    },
    random: () => 1, // upper bound of full jitter, so delays are predictable
  });
  return { caller, calls, delays, registry };
}

async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

describe('ApiCaller', () => {
  it('always sends RegionId and drops undefined parameters', async () => {
    const { caller, calls } = setup([]);
    await caller.call('Read', { A: 'x', B: undefined, C: [] });
    expect(calls[0]?.params).toEqual({ RegionId: 'cn-hangzhou', A: 'x' });
  });

  it('retries throttling with exponential backoff and succeeds', async () => {
    const { caller, calls, delays, registry } = setup([throttled(), throttled(), { Ok: true }]);
    await expect(caller.call('Read')).resolves.toEqual({ Ok: true });
    expect(calls).toHaveLength(3);
    expect(delays).toEqual([100, 200]);
    expect(
      await metricValue(registry, 'ecsops_cloud_api_requests_total', {
        action: 'Read',
        code: 'Throttling.User',
      }),
    ).toBe(2);
    expect(
      await metricValue(registry, 'ecsops_cloud_api_requests_total', { action: 'Read', code: 'OK' }),
    ).toBe(1);
    expect(await metricValue(registry, 'ecsops_cloud_api_retries_total', { action: 'Read' })).toBe(2);
    const hist = await registry.getSingleMetric('ecsops_cloud_api_request_duration_seconds')?.get();
    expect(
      (
        hist?.values as
          Array<{ metricName?: string; labels: Record<string, unknown>; value: number }> | undefined
      )?.find((v) => v.metricName?.endsWith('_count') && v.labels['action'] === 'Read')?.value,
    ).toBe(3);
  });

  it('gives up after maxRetries with a transient CloudError', async () => {
    const { caller, calls, delays } = setup(Array.from({ length: 10 }, throttled), 3);
    const err = await caller.call('Read').catch((e: unknown) => e);
    expect(isCloudError(err) && err.kind).toBe('transient');
    expect(isCloudError(err) && err.attempts).toBe(4);
    expect(calls).toHaveLength(4);
    expect(delays).toEqual([100, 200, 400]);
  });

  it('caps the backoff and honours retry-after (ms) up to the cap', async () => {
    const ra = new ThrottlingError({
      statusCode: 400,
      code: 'Throttling.User',
      message: 'm',
      retryAfter: 700,
      data: {},
    });
    const huge = new ThrottlingError({
      statusCode: 400,
      code: 'Throttling.User',
      message: 'm',
      retryAfter: 60_000,
      data: {},
    });
    const { caller, delays } = setup([ra, huge, throttled(), throttled(), throttled()], 5);
    await caller.call('Read');
    expect(delays).toEqual([700, 1000, 400, 800, 1000]);
  });

  it('never retries permanent errors', async () => {
    const { caller, calls } = setup([forbidden()]);
    await expect(caller.call('Read')).rejects.toMatchObject({
      code: 'Forbidden.RAM',
      kind: 'permanent',
      attempts: 1,
    });
    expect(calls).toHaveLength(1);
  });

  it('retries an idempotent write only when it carries a ClientToken', async () => {
    const a = setup([unavailable(), {}]);
    await a.caller.call('Start', { ClientToken: 'tok' });
    expect(a.calls).toHaveLength(2);
    const b = setup([unavailable(), {}]);
    await expect(b.caller.call('Start', {})).rejects.toMatchObject({ code: 'ServiceUnavailable' });
    expect(b.calls).toHaveLength(1);
  });

  it('re-sends a non-idempotent write only when the service did not act on it', async () => {
    const a = setup([unavailable()]);
    await expect(a.caller.call('Cancel')).rejects.toMatchObject({ code: 'ServiceUnavailable' });
    expect(a.calls).toHaveLength(1);
    const b = setup([
      throttled(),
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      {},
    ]);
    await b.caller.call('Cancel');
    expect(b.calls).toHaveLength(3);
    const c = setup([Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })]);
    await expect(c.caller.call('Cancel')).rejects.toMatchObject({ code: 'NetworkError' });
    expect(c.calls).toHaveLength(1);
  });

  it('counts network errors as NetworkError', async () => {
    const { caller, registry } = setup([Object.assign(new Error('reset'), { code: 'ECONNRESET' }), {}]);
    await caller.call('Read');
    expect(
      await metricValue(registry, 'ecsops_cloud_api_requests_total', {
        action: 'Read',
        code: 'NetworkError',
      }),
    ).toBe(1);
  });

  it('rejects a non-object body as InvalidResponse', async () => {
    const registry = new Registry();
    const caller = new ApiCaller(async () => 'not json', {
      product: 'ecs',
      regionId: 'r',
      actions: ACTIONS,
      qps: 10,
      concurrency: 1,
      retry: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 },
      metrics: cloudMetrics(registry),
    });
    await expect(caller.call('Read')).rejects.toMatchObject({ code: 'InvalidResponse', product: 'ecs' });
  });

  it('bounds one attempt by attemptTimeoutMs (NetworkError, retried for reads)', async () => {
    const registry = new Registry();
    let calls = 0;
    const caller = new ApiCaller(
      () => {
        calls++;
        return calls === 1 ? new Promise(() => undefined) : Promise.resolve({ Ok: 1 });
      },
      {
        product: 'oos',
        regionId: 'r',
        actions: ACTIONS,
        qps: 1000,
        concurrency: 1,
        retry: { maxRetries: 1, baseDelayMs: 1, maxDelayMs: 1 },
        attemptTimeoutMs: 20,
        metrics: cloudMetrics(registry),
      },
    );
    await expect(caller.call('Read')).resolves.toEqual({ Ok: 1 });
    expect(calls).toBe(2);
    expect(
      await metricValue(registry, 'ecsops_cloud_api_requests_total', {
        action: 'Read',
        code: 'NetworkError',
      }),
    ).toBe(1);
  });

  it('limits concurrency per caller', async () => {
    const registry = new Registry();
    let inFlight = 0;
    let peak = 0;
    const release: Array<() => void> = [];
    const send: SendFn = () =>
      new Promise((resolve) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        release.push(() => {
          inFlight--;
          resolve({});
        });
      });
    const caller = new ApiCaller(send, {
      product: 'oos',
      regionId: 'r',
      actions: ACTIONS,
      qps: 1000,
      concurrency: 2,
      retry: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 },
      metrics: cloudMetrics(registry),
    });
    const tick = () => new Promise((r) => setTimeout(r, 5));
    const all = Promise.all(Array.from({ length: 5 }, () => caller.call('Read')));
    let started = 0;
    while (started < 5) {
      await tick();
      expect(inFlight).toBeLessThanOrEqual(2);
      const r = release.shift();
      if (r) {
        started++;
        r();
      }
    }
    await all;
    expect(peak).toBe(2);
  });
});

describe('ApiCaller view minPriority', () => {
  it('lifts the drift reads of a changed object above background drift reads; writes keep their class', async () => {
    const order: string[] = [];
    const release: Array<() => void> = [];
    const send: SendFn = (action, params) =>
      new Promise((resolve) => {
        order.push(`${action}:${String(params.InstanceId ?? params.ClientToken ?? '')}`);
        release.push(() => resolve({}));
      });
    const caller = new ApiCaller(send, {
      product: 'oos',
      regionId: 'r',
      actions: { ListInstancePackageStates: 'read', StartExecution: 'idempotentWrite' },
      qps: 1000,
      concurrency: 1,
      retry: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 },
      metrics: cloudMetrics(new Registry()),
    });
    const big = caller.view({ owner: 'big' });
    const changed = caller.view({ owner: 'changed', minPriority: PRIORITY.interactive });
    const calls = [
      big.call('ListInstancePackageStates', { InstanceId: 'blocker' }),
      ...[1, 2, 3].map((i) => big.call('ListInstancePackageStates', { InstanceId: `big${i}` })),
      changed.call('ListInstancePackageStates', { InstanceId: 'changed1' }),
      big.call('StartExecution', { ClientToken: 'big-write' }),
    ];
    while (order.length < calls.length) {
      await new Promise((r) => setTimeout(r, 2));
      release.shift()?.();
    }
    release.shift()?.();
    await Promise.all(calls);
    expect(order).toEqual([
      'ListInstancePackageStates:blocker',
      'StartExecution:big-write',
      'ListInstancePackageStates:changed1',
      'ListInstancePackageStates:big1',
      'ListInstancePackageStates:big2',
      'ListInstancePackageStates:big3',
    ]);
  });
});

describe('ApiCaller with an AbortSignal', () => {
  const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

  function limited(send: SendFn, retry = { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 }) {
    return new ApiCaller(send, {
      product: 'ecs',
      regionId: 'cn-hangzhou',
      actions: ACTIONS,
      qps: 1,
      concurrency: 4,
      retry,
      metrics: cloudMetrics(new Registry()),
    });
  }

  it('drops queued calls, abandons the one in flight, and rejects them all with Aborted', async () => {
    let sends = 0;
    const send: SendFn = () => {
      sends++;
      return new Promise(() => undefined); // on the wire forever
    };
    const caller = limited(send);
    const ac = new AbortController();
    const client = caller.withSignal(ac.signal);
    const results = Array.from({ length: 50 }, () =>
      client.call('Read').then(
        () => 'resolved',
        (e: unknown) => e,
      ),
    );
    await tick(20);
    expect(sends).toBe(1); // qps 1: one started, 49 waiting for a rate-limit slot
    ac.abort(new Error('leadership lost'));
    const errors = await Promise.all(results);
    for (const e of errors) {
      expect(isAborted(e)).toBe(true);
      expect(e).toMatchObject({ code: 'Aborted', kind: 'transient', category: 'aborted', action: 'Read' });
    }
    expect((errors[0] as CloudError).attempts).toBe(1); // the abandoned attempt was sent
    expect((errors[1] as CloudError).attempts).toBe(0);
    // The abandoned attempt is still on the wire: it keeps its concurrency slot; nothing queued.
    expect(caller.pending).toBe(1);
    await tick(1_200); // past the next rate-limit window
    expect(sends).toBe(1);
  });

  it('shares the rate-limit queue with unsignalled calls, which an abort does not touch', async () => {
    const sent: string[] = [];
    const caller = limited(async (_action, params) => {
      sent.push(String(params['Who']));
      return {};
    });
    const ac = new AbortController();
    const first = caller.call('Read', { Who: 'plain-1' });
    const signalled = caller
      .withSignal(ac.signal)
      .call('Read', { Who: 'signalled' })
      .catch((e: unknown) => e);
    const second = caller.call('Read', { Who: 'plain-2' });
    await first;
    await tick(20);
    expect(sent).toEqual(['plain-1']); // the signalled call waits behind the same qps budget
    ac.abort();
    expect(isAborted(await signalled)).toBe(true);
    await second;
    expect(sent).toEqual(['plain-1', 'plain-2']);
  });

  it('interrupts a retry backoff and starts no further retry', async () => {
    let sends = 0;
    const caller = limited(
      async () => {
        sends++;
        throw throttled();
      },
      { maxRetries: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 },
    );
    const ac = new AbortController();
    const started = Date.now();
    const pending = caller
      .withSignal(ac.signal)
      .call('Read')
      .catch((e: unknown) => e);
    await tick(20);
    ac.abort();
    const err = await pending;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(isAborted(err)).toBe(true);
    expect((err as CloudError).attempts).toBe(1);
    expect(sends).toBe(1);
  });

  it('sends nothing when the signal is already aborted', async () => {
    let sends = 0;
    const caller = limited(async () => {
      sends++;
      return {};
    });
    const err = await caller.call('Read', {}, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'Aborted', attempts: 0 });
    expect(sends).toBe(0);
  });

  it('starts no further page after an abort (OosClient over a signalled caller)', async () => {
    const ac = new AbortController();
    const tokens: unknown[] = [];
    const caller = new ApiCaller(
      async (_action, params) => {
        tokens.push(params['NextToken']);
        ac.abort(); // abort while page 1 is on the wire; its body still arrives
        return { Templates: [{ TemplateName: 'a' }], NextToken: 'page-2' };
      },
      {
        product: 'oos',
        regionId: 'cn-hangzhou',
        actions: OOS_ACTIONS,
        qps: 1000,
        concurrency: 4,
        retry: { maxRetries: 3, baseDelayMs: 1, maxDelayMs: 1 },
        metrics: cloudMetrics(new Registry()),
      },
    );
    const err = await new OosClient(caller.withSignal(ac.signal)).listTemplates().catch((e: unknown) => e);
    expect(isAborted(err)).toBe(true);
    expect(tokens).toEqual([undefined]);
    // The same caller without the signal is unaffected.
    let pages = 0;
    const plain = new ApiCaller(
      async () => (++pages === 1 ? { Templates: [], NextToken: 'p2' } : { Templates: [] }),
      {
        product: 'oos',
        regionId: 'cn-hangzhou',
        actions: OOS_ACTIONS,
        qps: 1000,
        concurrency: 4,
        retry: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 },
        metrics: cloudMetrics(new Registry()),
      },
    );
    await expect(new OosClient(plain).listTemplates()).resolves.toEqual([]);
    expect(pages).toBe(2);
  });
});
