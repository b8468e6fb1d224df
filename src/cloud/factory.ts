/**
 * `createCloudClients`: the one place that builds the real OOS, ECS and ActionTrail clients.
 * Clients are created lazily and cached per (product, region); each (product, region) has its own
 * rate-limit queue, shared by the clients obtained with an `AbortSignal` (see `CloudClients`).
 */
import type { CredentialsProvider } from '@alicloud/credentials';
import type { Registry } from 'prom-client';
import { ACTIONTRAIL_ACTIONS, ACTIONTRAIL_QPS, ActionTrailClient } from './actiontrail.js';
import { ALB_ACTIONS, AlbClient } from './alb.js';
import { ApiCaller, type ActionSafety, type CloudLogger } from './caller.js';
import {
  checkCredentials,
  createCredentialsProvider,
  toSdkCredential,
  type CredentialIdentity,
  type StaticCredential,
} from './credentials.js';
import { ECS_ACTIONS, EcsClient } from './ecs.js';
import { RegionFleet } from './fleet.js';
import { changeFeedMetrics, cloudMetrics, initActionMetrics } from './metrics.js';
import { OOS_ACTIONS, OosClient } from './oos.js';
import { createSdkClient, createSdkSend, sdkEndpoint } from './sdk.js';
import { SLB_ACTIONS, SlbClient } from './slb.js';
import type {
  ActionTrailApi,
  ClientViewOptions,
  CloudClients,
  CloudProduct,
  EcsApi,
  Execution,
  LoadBalancerApi,
  LoadBalancerType,
  OosApi,
} from './types.js';

/** Options of the cloud layer. Durations are named by unit. */
export interface CloudOptions {
  /**
   * `host[:port]` per product, used verbatim instead of the regional endpoint (emulator).
   * ActionTrail, SLB (CLB) and ALB without their own override use the OOS override when one is set
   * (the emulator serves every product on one endpoint, dispatched by `Version`).
   */
  endpointOverride?: { oos?: string; ecs?: string; actiontrail?: string; slb?: string; alb?: string };
  /** Default `HTTPS`; the emulator needs `HTTP`. */
  protocol?: 'HTTPS' | 'HTTP';
  /** `v3` (default): ACS3-HMAC-SHA256 header signature. `v2`: V1 HMAC-SHA1 query signature. */
  signatureAlgorithm?: 'v3' | 'v2';
  /** Explicit credential (tests, emulator). Default: the `@alicloud/credentials` default chain. */
  credential?: StaticCredential;
  /** A custom `@alicloud/credentials` provider (ignored when `credential` is set). */
  credentialsProvider?: CredentialsProvider;
  /** Requests started per second, per (product, region). Default 20. */
  qps?: number;
  /** Requests in flight per (product, region). Default 10. */
  concurrency?: number;
  /**
   * Per-action limits, requests per sliding second per region (e.g. `{ StartExecution: 5 }`), for
   * APIs Alibaba Cloud throttles per action below the product's rate. Default none.
   */
  actionQps?: Readonly<Record<string, number>>;
  /** In-layer re-sends after transient errors. Default 5. */
  maxRetries?: number;
  /** Backoff base, milliseconds. Default 200. */
  retryBaseDelayMs?: number;
  /** Backoff cap (also caps `x-acs-retry-after`), milliseconds. Default 10000. */
  retryMaxDelayMs?: number;
  /** HTTP read timeout, milliseconds. Default 10000. */
  readTimeoutMs?: number;
  /**
   * HTTP connect timeout, milliseconds. Default 10000. NB: the SDK's HTTP layer (httpx) also
   * runs this timer on reused keep-alive sockets, where it bounds the wait for the response, so
   * keep it ≥ `readTimeoutMs`.
   */
  connectTimeoutMs?: number;
  /** Appended to the SDK user agent, e.g. `ecsops/0.1.0`. */
  userAgent?: string;
  /**
   * Full-resync period of the fleet views' change-feed reads (`RegionFleetOptions.fullResyncMs`),
   * milliseconds (`--full-resync-period`). Default: the fleet's `DEFAULT_FULL_RESYNC_MS` (10 h).
   */
  fullResyncMs?: number;
  /**
   * Whether the fleet views' change feed also reads ActionTrail `LookupEvents`
   * (`RegionFleetOptions.actionTrail`; `--actiontrail`). Default true; false: a direct
   * `UpdateInstancePackageState` is seen by the full resync only.
   */
  actionTrail?: boolean;
  /**
   * The OOS tag naming an execution's owner (`RegionFleetOptions.ownerTagKey`): the change feed
   * skips executions of owners this process manages. Default none (only executions this process
   * started are skipped).
   */
  ownerTagKey?: string;
}

/** Injected dependencies. */
export interface CloudDeps {
  /** Private prom-client Registry that receives the `ecsops_cloud_api_*` metrics. */
  registry: Registry;
  /** pino logger (or anything with `debug`/`warn`); receives only sanitized text. */
  logger?: CloudLogger;
  /** Clock of the fleet view's data ages, ms since the epoch (default `Date.now`; tests pass a fake). */
  now?: () => number;
  /**
   * The cloud's clock, ms since the epoch: the change feed's `StartDateAfter` / `EndDateAfter`
   * bounds (default `Date.now`; the fast tier passes the clock it gives the in-process emulator).
   */
  cloudNow?: () => number;
}

/** The cloud layer handed to `main.ts`: per-region clients plus a credential check. */
export interface CloudLayer extends CloudClients {
  /**
   * The ActionTrail client of `regionId` (cached; its own rate-limit queue, `LookupEvents` at
   * {@link ACTIONTRAIL_QPS} per second unless `actionQps` names it), or with `opts` a view of it
   * (signal, owner, priority) as for `oos`.
   * Built whether or not `CloudOptions.actionTrail` is on (that option only decides whether the
   * fleet views use it). @throws TypeError for an invalid region ID.
   */
  actionTrail(regionId: string, opts?: ClientViewOptions): ActionTrailApi;
  /**
   * The CLB (`slb`, SLB API 2014-05-15) or ALB (`alb`, 2020-06-16) client of `regionId` (cached per
   * type and region, its own rate-limit queue; its `ecsops_cloud_api_*` series are initialised on
   * first use), or with `opts` a view of it as for `oos`. @throws TypeError for an invalid region ID.
   */
  loadBalancer(type: LoadBalancerType, regionId: string, opts?: ClientViewOptions): LoadBalancerApi;
  /**
   * Resolves a credential once (for `/readyz`). Resolves `{ providerName }`; rejects with a
   * transient `CloudError` (code `CredentialsUnavailable`, category `credentials`) naming the
   * chain and env vars to set.
   */
  checkCredentials(): Promise<CredentialIdentity>;
  /** The endpoint (`host[:port]`) used for (product, region). */
  endpoint(product: CloudProduct, regionId: string): string;
}

export const CLOUD_DEFAULTS = {
  qps: 20,
  concurrency: 10,
  maxRetries: 5,
  retryBaseDelayMs: 200,
  retryMaxDelayMs: 10_000,
  readTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
} as const;

const REGION_ID = /^[a-z0-9-]+$/;

/**
 * Builds the cloud layer. Nothing is contacted until the first call. `oos(regionId, { signal })`
 * / `ecs(regionId, { signal })` return the cached client of that region, or with a signal a view
 * of it whose calls stop with a `CloudError` `Aborted` when the signal aborts (see
 * `CloudClients`); both throw `TypeError` for a region ID that is not lower-case letters, digits
 * and hyphens (it becomes part of a host name). Option values must be positive where they are
 * rates or sizes; `RangeError` otherwise.
 */
export function createCloudClients(opts: CloudOptions, deps: CloudDeps): CloudLayer {
  const o = { ...CLOUD_DEFAULTS, ...stripUndefined(opts) };
  if (!(o.qps > 0) || !(o.concurrency > 0) || !(o.maxRetries >= 0)) {
    throw new RangeError('cloud options: qps and concurrency must be > 0 and maxRetries >= 0');
  }
  if (opts.fullResyncMs !== undefined && !(opts.fullResyncMs > 0)) {
    throw new RangeError('cloud options: fullResyncMs must be > 0');
  }
  const provider = createCredentialsProvider({
    ...(opts.credential ? { credential: opts.credential } : {}),
    ...(opts.credentialsProvider ? { credentialsProvider: opts.credentialsProvider } : {}),
  });
  const credential = toSdkCredential(provider);
  const metrics = cloudMetrics(deps.registry);
  const feedMetrics = changeFeedMetrics(deps.registry, deps.now);
  initActionMetrics(metrics, 'oos', Object.keys(OOS_ACTIONS));
  initActionMetrics(metrics, 'ecs', Object.keys(ECS_ACTIONS));
  const actionTrailOn = opts.actionTrail !== false;
  if (actionTrailOn) initActionMetrics(metrics, 'actiontrail', Object.keys(ACTIONTRAIL_ACTIONS));

  const endpoints = new Map<string, string>();
  const build = (
    product: CloudProduct,
    regionId: string,
    actions: Readonly<Record<string, ActionSafety>>,
  ): ApiCaller => {
    if (!REGION_ID.test(regionId)) throw new TypeError(`invalid region ID ${JSON.stringify(regionId)}`);
    const override =
      opts.endpointOverride?.[product] ?? (product === 'ecs' ? undefined : opts.endpointOverride?.oos);
    // LookupEvents is documented at 2 calls per second: a per-action limit unless `actionQps`
    // (`--cloud-action-qps LookupEvents=N`) sets its own.
    const actionQps =
      product === 'actiontrail' ? { LookupEvents: ACTIONTRAIL_QPS, ...opts.actionQps } : opts.actionQps;
    const transport = {
      product,
      regionId,
      credential,
      readTimeoutMs: o.readTimeoutMs,
      connectTimeoutMs: o.connectTimeoutMs,
      ...(override ? { endpoint: override } : {}),
      ...(opts.protocol ? { protocol: opts.protocol } : {}),
      ...(opts.signatureAlgorithm ? { signatureAlgorithm: opts.signatureAlgorithm } : {}),
      ...(opts.userAgent ? { userAgent: opts.userAgent } : {}),
    };
    const client = createSdkClient(transport);
    endpoints.set(`${product}/${regionId}`, sdkEndpoint(client));
    return new ApiCaller(createSdkSend(client, transport), {
      product,
      regionId,
      actions,
      qps: o.qps,
      concurrency: o.concurrency,
      ...(actionQps ? { actionQps } : {}),
      retry: { maxRetries: o.maxRetries, baseDelayMs: o.retryBaseDelayMs, maxDelayMs: o.retryMaxDelayMs },
      attemptTimeoutMs: Math.max(o.readTimeoutMs, o.connectTimeoutMs) + 1_000,
      metrics,
      ...(deps.logger ? { logger: deps.logger } : {}),
    });
  };

  const oosClients = new Map<string, { caller: ApiCaller; client: OosApi }>();
  const ecsClients = new Map<string, { caller: ApiCaller; client: EcsApi }>();
  const trailClients = new Map<string, { caller: ApiCaller; client: ActionTrailApi }>();
  const lbClients = new Map<string, { caller: ApiCaller; client: LoadBalancerApi }>();
  const lbMetricsReady = new Set<LoadBalancerType>();
  const fleets = new Map<string, RegionFleet>();
  const finishedListeners = new Set<(finished: readonly Execution[]) => void>();
  return {
    oos(regionId, clientOpts) {
      let c = oosClients.get(regionId);
      if (!c) {
        const caller = build('oos', regionId, OOS_ACTIONS);
        oosClients.set(regionId, (c = { caller, client: new OosClient(caller) }));
      }
      const view = c.caller.view(clientOpts ?? {});
      return view === c.caller ? c.client : new OosClient(view);
    },
    ecs(regionId, clientOpts) {
      let c = ecsClients.get(regionId);
      if (!c) {
        const caller = build('ecs', regionId, ECS_ACTIONS);
        ecsClients.set(regionId, (c = { caller, client: new EcsClient(caller) }));
      }
      const view = c.caller.view(clientOpts ?? {});
      return view === c.caller ? c.client : new EcsClient(view);
    },
    actionTrail(regionId, clientOpts) {
      let c = trailClients.get(regionId);
      if (!c) {
        const caller = build('actiontrail', regionId, ACTIONTRAIL_ACTIONS);
        trailClients.set(regionId, (c = { caller, client: new ActionTrailClient(caller) }));
      }
      const view = c.caller.view(clientOpts ?? {});
      return view === c.caller ? c.client : new ActionTrailClient(view);
    },
    loadBalancer(type, regionId, clientOpts) {
      const key = `${type}/${regionId}`;
      let c = lbClients.get(key);
      if (!c) {
        const product = type === 'CLB' ? 'slb' : 'alb';
        if (!lbMetricsReady.has(type)) {
          initActionMetrics(metrics, product, Object.keys(type === 'CLB' ? SLB_ACTIONS : ALB_ACTIONS));
          lbMetricsReady.add(type);
        }
        const caller = build(product, regionId, type === 'CLB' ? SLB_ACTIONS : ALB_ACTIONS);
        lbClients.set(
          key,
          (c = { caller, client: type === 'CLB' ? new SlbClient(caller) : new AlbClient(caller) }),
        );
      }
      const view = c.caller.view(clientOpts ?? {});
      if (view === c.caller) return c.client;
      return type === 'CLB' ? new SlbClient(view) : new AlbClient(view);
    },
    fleet(regionId) {
      let f = fleets.get(regionId);
      if (!f) {
        f = new RegionFleet({
          oos: (o) => this.oos(regionId, o),
          ecs: (o) => this.ecs(regionId, o),
          ...(deps.now ? { now: deps.now } : {}),
          ...(deps.cloudNow ? { cloudNow: deps.cloudNow } : {}),
          ...(opts.ownerTagKey !== undefined ? { ownerTagKey: opts.ownerTagKey } : {}),
          onFeedRead: (feed, at) => feedMetrics.observeFeedRead(regionId, feed, at),
          ...(opts.fullResyncMs !== undefined ? { fullResyncMs: opts.fullResyncMs } : {}),
          ...(actionTrailOn ? { actionTrail: (o: ClientViewOptions) => this.actionTrail(regionId, o) } : {}),
        });
        f.onExecutionsFinished((finished) => {
          for (const l of finishedListeners) l(finished);
        });
        fleets.set(regionId, f);
      }
      return f;
    },
    onExecutionsFinished(listener) {
      finishedListeners.add(listener);
      return () => finishedListeners.delete(listener);
    },
    checkCredentials: () => checkCredentials(provider),
    endpoint(product, regionId) {
      if (product === 'oos') this.oos(regionId);
      else if (product === 'ecs') this.ecs(regionId);
      else if (product === 'slb') this.loadBalancer('CLB', regionId);
      else if (product === 'alb') this.loadBalancer('ALB', regionId);
      else this.actionTrail(regionId);
      return endpoints.get(`${product}/${regionId}`) ?? '';
    },
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
