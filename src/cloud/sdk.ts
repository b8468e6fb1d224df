/**
 * The HTTP transport: the real Alibaba Cloud SDK clients behind a {@link SendFn}.
 *
 * - OOS: the base `OpenApi` client of `@alicloud/openapi-core` with the generic RPC `callApi`
 *   (there is no `@alicloud/oos20190601` on npm). The base client computes no endpoint, so we
 *   set `oos.<regionId>.aliyuncs.com` (the generated OOS client's "regional" rule, no map).
 * - ECS: the same base client with ECS's regional endpoint rule (`cn-hangzhou` →
 *   `ecs-cn-hangzhou.aliyuncs.com`, several regions → `ecs.aliyuncs.com`, otherwise
 *   `ecs.<regionId>.aliyuncs.com`; the table is in `ecs-endpoints.ts`). Not loading the generated
 *   `@alicloud/ecs20140526` client saves ≈ 38 MiB of RSS. Both products share one code path
 *   (`callApi`) that returns the raw JSON body, which `ecs.ts` maps to plain objects.
 * - ActionTrail (`LookupEvents` only, actiontrail.ts): the same base client and RPC path, endpoint
 *   `actiontrail.<regionId>.aliyuncs.com` (no product SDK on npm).
 * - CLB (SLB 2014-05-15, slb.ts) and ALB (2020-06-16, alb.ts): the same base client and RPC path,
 *   endpoints `slb.<regionId>.aliyuncs.com` and `alb.<regionId>.aliyuncs.com` (the generated ALB
 *   client's "regional" rule; `@alicloud/slb20140515` is not on the registry).
 *
 * With an endpoint override (`127.0.0.1:PORT`) and `protocol: 'HTTP'` the same code talks to the
 * emulator. `signatureAlgorithm: 'v3'` (default) signs with ACS3-HMAC-SHA256 headers;
 * `'v2'` uses the V1 HMAC-SHA1 query signature (openapi-core's `doRPCRequest`). The SDK's own
 * retry is off (`autoretry: false`, no `retryOptions`): retries belong to `caller.ts`.
 */
import OpenApiModule, { $OpenApiUtil, OpenApiUtil } from '@alicloud/openapi-core';
import * as $dara from '@darabonba/typescript';
import type { SendFn } from './caller.js';
import type { SdkCredential } from './credentials.js';
import { ACTIONTRAIL_API_VERSION } from './actiontrail.js';
import { ALB_API_VERSION } from './alb.js';
import { ECS_API_VERSION } from './ecs.js';
import { ecsEndpoint } from './ecs-endpoints.js';
import { cjsDefault } from './interop.js';
import { OOS_API_VERSION } from './oos.js';
import { SLB_API_VERSION } from './slb.js';
import type { CloudProduct } from './types.js';

const OpenApi = cjsDefault(OpenApiModule);
type OpenApiClient = InstanceType<typeof OpenApi>;

/**
 * `Params` of an RPC-style call (POST `/`, query-string parameters, JSON body), exactly what the
 * generated `@alicloud/oos20190601` / `@alicloud/ecs20140526` clients send for every action.
 */
export function rpcParams(
  action: string,
  version: string,
  protocol: 'HTTPS' | 'HTTP' = 'HTTPS',
): $OpenApiUtil.Params {
  return new $OpenApiUtil.Params({
    action,
    version,
    protocol,
    pathname: '/',
    method: 'POST',
    authType: 'AK',
    style: 'RPC',
    reqBodyType: 'formData',
    bodyType: 'json',
  });
}

export interface SdkTransportOptions {
  product: CloudProduct;
  regionId: string;
  credential: SdkCredential;
  /** `host[:port]` used verbatim instead of the product's regional endpoint. */
  endpoint?: string;
  /** Default `HTTPS`. */
  protocol?: 'HTTPS' | 'HTTP';
  /** Default `v3` (ACS3-HMAC-SHA256). */
  signatureAlgorithm?: 'v3' | 'v2';
  /** Milliseconds. */
  readTimeoutMs: number;
  /** Milliseconds. */
  connectTimeoutMs: number;
  userAgent?: string;
}

const VERSIONS: Record<CloudProduct, string> = {
  oos: OOS_API_VERSION,
  ecs: ECS_API_VERSION,
  actiontrail: ACTIONTRAIL_API_VERSION,
  slb: SLB_API_VERSION,
  alb: ALB_API_VERSION,
};

/** The endpoint rule of the generated OOS client: `oos.<regionId>.aliyuncs.com`. */
export function oosEndpoint(regionId: string): string {
  return `oos.${regionId}.aliyuncs.com`;
}

/** ActionTrail's regional endpoint: `actiontrail.<regionId>.aliyuncs.com`. */
export function actionTrailEndpoint(regionId: string): string {
  return `actiontrail.${regionId}.aliyuncs.com`;
}

/** The endpoint the SDK client for (product, region) will use (for logs and tests). */
export function sdkEndpoint(client: OpenApiClient): string {
  return (client as unknown as { _endpoint: string })._endpoint;
}

/** The product's regional endpoint (no override). */
function regionalEndpoint(product: CloudProduct, regionId: string): string {
  if (product === 'ecs') return ecsEndpoint(regionId);
  if (product === 'slb' || product === 'alb') return `${product}.${regionId}.aliyuncs.com`;
  return product === 'actiontrail' ? actionTrailEndpoint(regionId) : oosEndpoint(regionId);
}

/** Builds the openapi-core client of one (product, region). Throws nothing. */
export function createSdkClient(opts: SdkTransportOptions): OpenApiClient {
  const config = new $OpenApiUtil.Config({
    credential: opts.credential,
    regionId: opts.regionId,
    protocol: opts.protocol ?? 'HTTPS',
    readTimeout: opts.readTimeoutMs,
    connectTimeout: opts.connectTimeoutMs,
    // openapi-core uses this value as the algorithm name in the V3 path, so 'v3' = unset.
    ...(opts.signatureAlgorithm === 'v2' ? { signatureAlgorithm: 'v2' } : {}),
    ...(opts.userAgent ? { userAgent: opts.userAgent } : {}),
  });
  config.endpoint = opts.endpoint ?? regionalEndpoint(opts.product, opts.regionId);
  return new OpenApi(config);
}

/**
 * A {@link SendFn} over `client.callApi` (RPC style, POST `/`, all parameters in the query,
 * JSON body). Structured params are flattened by `OpenApiUtil.query` (`Key.N`, `Key.N.Sub`).
 * Rejects with the SDK's errors (`ThrottlingError`, `ClientError`, `ServerError`, socket
 * errors); `caller.ts` maps them.
 */
export function createSdkSend(
  client: OpenApiClient,
  opts: Pick<SdkTransportOptions, 'product' | 'protocol' | 'readTimeoutMs' | 'connectTimeoutMs'>,
): SendFn {
  const version = VERSIONS[opts.product];
  return async (action, params) => {
    const res = await client.callApi(
      rpcParams(action, version, opts.protocol ?? 'HTTPS'),
      new $OpenApiUtil.OpenApiRequest({ query: OpenApiUtil.query(params) }),
      new $dara.RuntimeOptions({
        autoretry: false,
        readTimeout: opts.readTimeoutMs,
        connectTimeout: opts.connectTimeoutMs,
      }),
    );
    return (res as { body?: unknown }).body;
  };
}
