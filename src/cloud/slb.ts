/**
 * CLB vServer groups (SLB API version 2014-05-15) of one region, on top of {@link RegionCaller}:
 * the {@link LoadBalancerApi} of traffic control. `@alicloud/slb20140515` is not on the npm
 * registry this project uses (404), so the calls go through the same generic openapi-core RPC path
 * as OOS, ECS and ActionTrail (`sdk.ts`); the regional endpoint is `slb.<regionId>.aliyuncs.com`.
 *
 * Facts and sources (docs/reference-load-balancers.md): `BackendServers` is a JSON string of
 * `[{ ServerId, Port, Weight, Type }]` with at most 20 servers per call (chunked here); changes
 * apply at once; `DescribeHealthStatus` reports `normal` / `abnormal` / `unavailable` per
 * listener; the listener's `Scheduler` comes from `DescribeLoadBalancerListeners`; tags from
 * `ListTagResources` with `ResourceType=instance`.
 */
import type { ActionSafety, RegionCaller } from './caller.js';
import { allPages, arr, chunks, num, str, wrapped, type Raw } from './convert.js';
import { backendKey, weakestScheduler, worseHealth } from './lb-common.js';
import type { BackendHealthState, LoadBalancerApi, ServerGroupBackend, ServerGroupView } from './types.js';

/** SLB (CLB) API version. */
export const SLB_API_VERSION = '2014-05-15';

/** Most servers in one `BackendServers` parameter (documented: 20). */
export const CLB_SERVERS_PER_CALL = 20;

/**
 * Every SLB action this layer calls, with its retry safety (see `caller.ts`): setting a weight is
 * naturally idempotent; adding or removing a backend answers an error when repeated, so those are
 * plain writes (the client reads the group first and sends only what is missing or present).
 */
export const SLB_ACTIONS: Readonly<Record<string, ActionSafety>> = {
  DescribeVServerGroupAttribute: 'read',
  DescribeLoadBalancerListeners: 'read',
  DescribeHealthStatus: 'read',
  ListTagResources: 'read',
  SetVServerGroupAttribute: 'naturallyIdempotentWrite',
  AddVServerGroupBackendServers: 'write',
  RemoveVServerGroupBackendServers: 'write',
};

/** `ServerHealthStatus` → {@link BackendHealthState}: `normal` Healthy, `abnormal` Unhealthy, else Unknown. */
export function clbHealthState(status: string | undefined): BackendHealthState {
  if (status === 'normal') return 'Healthy';
  if (status === 'abnormal') return 'Unhealthy';
  return 'Unknown';
}

function toBackend(r: Raw): ServerGroupBackend | undefined {
  const instanceId = str(r['ServerId']);
  const port = num(r['Port']);
  if (instanceId === undefined || port === undefined) return undefined;
  const description = str(r['Description']);
  return {
    instanceId,
    port,
    weight: num(r['Weight']) ?? 0,
    status: 'Available',
    ...(description !== undefined ? { description } : {}),
  };
}

/** A `BackendServers` value: `{ BackendServer: [...] }` or a plain list. */
function backendList(v: unknown): Raw[] {
  return Array.isArray(v) ? arr(v) : wrapped(v, 'BackendServer');
}

/** CLB client of one region. Construct through `createCloudClients` (`loadBalancer('CLB', regionId)`). */
export class SlbClient implements LoadBalancerApi {
  readonly type = 'CLB' as const;

  constructor(private readonly caller: RegionCaller) {}

  get regionId(): string {
    return this.caller.regionId;
  }

  /** `DescribeVServerGroupAttribute`: the group's load balancer and backends. */
  private async attribute(
    serverGroupId: string,
  ): Promise<{ loadBalancerId: string; backends: ServerGroupBackend[] }> {
    const body = await this.caller.call('DescribeVServerGroupAttribute', { VServerGroupId: serverGroupId });
    return {
      loadBalancerId: str(body['LoadBalancerId']) ?? '',
      backends: backendList(body['BackendServers']).flatMap((r) => {
        const b = toBackend(r);
        return b ? [b] : [];
      }),
    };
  }

  /**
   * The vServer group: `DescribeVServerGroupAttribute`, then `DescribeLoadBalancerListeners` of its
   * load balancer (listeners whose `VServerGroupId` is the group: their ports as `listenerIds`,
   * their schedulers merged by {@link weakestScheduler}), then `ListTagResources`
   * (`ResourceType=instance`) of the load balancer.
   * @throws CloudError; an unknown group is `InvalidParameter` ("The specified VServerGroupId does
   *   not exist"), a permanent error.
   */
  async describeGroup(serverGroupId: string): Promise<ServerGroupView> {
    const { loadBalancerId, backends } = await this.attribute(serverGroupId);
    const listeners = await allPages(
      { product: 'slb', action: 'DescribeLoadBalancerListeners' },
      async (token) => {
        const body = await this.caller.call('DescribeLoadBalancerListeners', {
          LoadBalancerId: [loadBalancerId],
          MaxResults: 100,
          NextToken: token,
        });
        return { items: arr(body['Listeners']), nextToken: str(body['NextToken']) };
      },
    );
    const mine = listeners.filter((l) => str(l['VServerGroupId']) === serverGroupId);
    const tags = await this.tags(loadBalancerId);
    return {
      type: 'CLB',
      regionId: this.regionId,
      serverGroupId,
      loadBalancerIds: loadBalancerId ? [loadBalancerId] : [],
      listenerIds: mine.flatMap((l) => {
        const p = str(l['ListenerPort']);
        return p ? [p] : [];
      }),
      scheduler: weakestScheduler(
        'CLB',
        mine.map((l) => str(l['Scheduler']) ?? ''),
      ),
      loadBalancerTags: tags,
      backends,
    };
  }

  private async tags(loadBalancerId: string): Promise<Record<string, string>> {
    if (!loadBalancerId) return {};
    const rows = await allPages({ product: 'slb', action: 'ListTagResources' }, async (token) => {
      const body = await this.caller.call('ListTagResources', {
        ResourceType: 'instance',
        ResourceId: [loadBalancerId],
        NextToken: token,
      });
      const v = body['TagResources'];
      return {
        items: Array.isArray(v) ? arr(v) : wrapped(v, 'TagResource'),
        nextToken: str(body['NextToken']),
      };
    });
    const out: Record<string, string> = {};
    for (const r of rows) {
      const k = str(r['TagKey']);
      if (k !== undefined && str(r['ResourceId']) === loadBalancerId) out[k] = str(r['TagValue']) ?? '';
    }
    return out;
  }

  private async send(
    action: 'SetVServerGroupAttribute' | 'AddVServerGroupBackendServers' | 'RemoveVServerGroupBackendServers',
    serverGroupId: string,
    servers: ReadonlyArray<Record<string, unknown>>,
  ): Promise<void> {
    for (const part of chunks(servers, CLB_SERVERS_PER_CALL)) {
      await this.caller.call(action, { VServerGroupId: serverGroupId, BackendServers: JSON.stringify(part) });
    }
  }

  /**
   * `SetVServerGroupAttribute` with `BackendServers` `[{ ServerId, Port, Weight, Type: 'ecs' }]`,
   * at most {@link CLB_SERVERS_PER_CALL} per call (chunks sent one after the other; a failure
   * leaves the earlier chunks applied: repeat the call). Applies at once.
   * @throws CloudError (a backend not in the group: `InvalidParameter`).
   */
  async setWeights(
    serverGroupId: string,
    backends: ReadonlyArray<{ instanceId: string; port: number; weight: number }>,
  ): Promise<void> {
    await this.send(
      'SetVServerGroupAttribute',
      serverGroupId,
      backends.map((b) => ({ ServerId: b.instanceId, Port: b.port, Weight: b.weight, Type: 'ecs' })),
    );
  }

  /**
   * `AddVServerGroupBackendServers` of the backends not in the group yet (read first with
   * `DescribeVServerGroupAttribute`, so a repeat is a no-op), chunked by 20.
   */
  async addBackends(
    serverGroupId: string,
    backends: ReadonlyArray<{ instanceId: string; port: number; weight: number; description?: string }>,
  ): Promise<void> {
    const { backends: current } = await this.attribute(serverGroupId);
    const have = new Set(current.map((b) => backendKey(b.instanceId, b.port)));
    const missing = backends.filter((b) => !have.has(backendKey(b.instanceId, b.port)));
    await this.send(
      'AddVServerGroupBackendServers',
      serverGroupId,
      missing.map((b) => ({
        ServerId: b.instanceId,
        Port: b.port,
        Weight: b.weight,
        Type: 'ecs',
        ...(b.description !== undefined ? { Description: b.description } : {}),
      })),
    );
  }

  /**
   * `RemoveVServerGroupBackendServers` of the backends still in the group (read first, so a
   * repeat is a no-op), chunked by 20.
   */
  async removeBackends(
    serverGroupId: string,
    backends: ReadonlyArray<{ instanceId: string; port: number }>,
  ): Promise<void> {
    const { backends: current } = await this.attribute(serverGroupId);
    const have = new Set(current.map((b) => backendKey(b.instanceId, b.port)));
    const present = backends.filter((b) => have.has(backendKey(b.instanceId, b.port)));
    await this.send(
      'RemoveVServerGroupBackendServers',
      serverGroupId,
      present.map((b) => ({ ServerId: b.instanceId, Port: b.port, Type: 'ecs' })),
    );
  }

  /**
   * `DescribeHealthStatus` of each of the group's load balancers; rows of the group's listener
   * ports (all rows when `listenerIds` is empty) and of its backends, mapped by
   * {@link clbHealthState}; a backend several listeners report gets the worse state.
   */
  async backendHealth(group: ServerGroupView): Promise<Map<string, BackendHealthState>> {
    const members = new Set(group.backends.map((b) => backendKey(b.instanceId, b.port)));
    const out = new Map<string, BackendHealthState>();
    for (const lb of group.loadBalancerIds) {
      const body = await this.caller.call('DescribeHealthStatus', { LoadBalancerId: lb });
      for (const r of backendList(body['BackendServers'])) {
        const id = str(r['ServerId']);
        const port = num(r['Port']);
        const lport = str(r['ListenerPort']);
        if (id === undefined || port === undefined) continue;
        if (group.listenerIds.length > 0 && (lport === undefined || !group.listenerIds.includes(lport)))
          continue;
        const key = backendKey(id, port);
        if (!members.has(key)) continue;
        out.set(key, worseHealth(out.get(key), clbHealthState(str(r['ServerHealthStatus']))));
      }
    }
    return out;
  }
}
