import OpenApiModule, { $OpenApiUtil, OpenApiUtil } from '@alicloud/openapi-core';
import * as $dara from '@darabonba/typescript';
import { rpcParams } from '../../../src/cloud/sdk.js';

// Node's ESM loader hands the CommonJS module object to a default import (the class is `.default`);
// vitest's loader hands over the class itself. Accept both.
type OpenApiClass = typeof OpenApiModule.default;
const OpenApi: OpenApiClass =
  typeof (OpenApiModule as { default?: unknown }).default === 'function'
    ? OpenApiModule.default
    : (OpenApiModule as unknown as OpenApiClass);

/** Which signature the SDK uses: ACS3-HMAC-SHA256 (default `doRequest`) or V1 HMAC-SHA1 (`doRPCRequest`). */
export type Algorithm = 'acs3' | 'v1';

/** A real openapi-core client aimed at the emulator. */
export function sdkClient(endpoint: string, key: { id: string; secret: string }, alg: Algorithm = 'acs3') {
  return new OpenApi(
    new $OpenApiUtil.Config({
      accessKeyId: key.id,
      accessKeySecret: key.secret,
      endpoint,
      protocol: 'HTTP',
      regionId: 'cn-hangzhou',
      ...(alg === 'v1' ? { signatureAlgorithm: 'v2' } : {}),
    }),
  );
}

/** Calls one RPC action through the real SDK (same Params as the generated product clients). */
export async function call(
  client: ReturnType<typeof sdkClient>,
  product: 'oos' | 'ecs',
  action: string,
  query: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const params = rpcParams(action, product === 'oos' ? '2019-06-01' : '2014-05-26');
  const res = (await client.callApi(
    params,
    new $OpenApiUtil.OpenApiRequest({ query: OpenApiUtil.query(query) }),
    new $dara.RuntimeOptions({}),
  )) as { body: Record<string, unknown> };
  return res.body;
}

/** The error an SDK call rejected with (fails the test if it resolved). */
export async function callError(
  p: Promise<unknown>,
): Promise<{ code: string; statusCode: number; data: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; statusCode: number; data: Record<string, unknown> };
  }
  throw new Error('expected the call to fail');
}

/** Polls `fn` until it returns a truthy value (bounded by `timeoutMs`). */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
  stepMs = 20,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('waitFor timed out');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
