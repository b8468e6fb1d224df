/**
 * ALB server groups (API version 2020-06-16) of one region, on top of {@link RegionCaller}: the
 * {@link LoadBalancerApi} of traffic control. The generated `@alicloud/alb20200616` client sends
 * every action RPC-style (POST `/`, formData), exactly what the generic openapi-core path of
 * `sdk.ts` sends, so it is not loaded; the regional endpoint is `alb.<regionId>.aliyuncs.com`
 * (the generated client's "regional" rule).
 *
 * Facts and sources (docs/reference-load-balancers.md): the writes are asynchronous (`JobId`; a
 * server reads `Configuring` / `Adding` / `Removing` in `ListServerGroupServers` until applied;
 * a write while the group is configuring fails with `IncorrectStatus.ServerGroup`, a transient
 * error); at most 40 servers per `UpdateServerGroupServersAttribute`, 200 per add/remove; each
 * write carries a `ClientToken`; `GetListenerHealthStatus` lists only the non-normal servers of
 * each server group (`NonNormalServers[].Status` `Initial` / `Unhealthy` / `Unused` /
 * `Unavailable`).
 */
import { randomUUID } from 'node:crypto';
import type { ActionSafety, RegionCaller } from './caller.js';
import { allPages, arr, bool, chunks, num, obj, str, strings, type Raw } from './convert.js';
import { CloudError } from './errors.js';
import { backendKey, worseHealth } from './lb-common.js';
import type { BackendHealthState, LoadBalancerApi, ServerGroupBackend, ServerGroupView } from './types.js';

/** ALB API version. */
export const ALB_API_VERSION = '2020-06-16';

/** Most servers in one `UpdateServerGroupServersAttribute` (documented: 40). */
export const ALB_UPDATE_SERVERS_PER_CALL = 40;
/** Most servers in one `AddServersToServerGroup` / `RemoveServersFromServerGroup` (documented: 200). */
export const ALB_ADD_REMOVE_SERVERS_PER_CALL = 200;
/** Most IDs in one `ListListeners` `LoadBalancerIds` / `ListTagResources` `ResourceId` list (documented: 20). */
const IDS_PER_CALL = 20;

/**
 * Every ALB action this layer calls, with its retry safety (see `caller.ts`): the writes carry a
 * `ClientToken` (the service answers a repeated token with the first call's job), so they retry
 * like reads.
 */
export const ALB_ACTIONS: Readonly<Record<string, ActionSafety>> = {
  ListServerGroups: 'read',
  ListServerGroupServers: 'read',
  ListListeners: 'read',
  ListTagResources: 'read',
  GetListenerHealthStatus: 'read',
  UpdateServerGroupServersAttribute: 'idempotentWrite',
  AddServersToServerGroup: 'idempotentWrite',
  RemoveServersFromServerGroup: 'idempotentWrite',
};

/**
 * `NonNormalServers[].Status` → {@link BackendHealthState}: `Unhealthy` → Unhealthy; `Initial`
 * (no result yet), `Unused` (weight 0), `Unavailable` (health check off) and anything else →
 * Unknown. A server of the group that is not listed is healthy.
 */
export function albHealthState(status: string | undefined): BackendHealthState {
  return status === 'Unhealthy' ? 'Unhealthy' : 'Unknown';
}

/** Server group IDs a listener's default actions forward to. */
function forwardedGroups(listener: Raw): string[] {
  return arr(listener['DefaultActions']).flatMap((a) =>
    arr(obj(a['ForwardGroupConfig'])['ServerGroupTuples']).flatMap((t) => {
      const id = str(t['ServerGroupId']);
      return id ? [id] : [];
    }),
  );
}

/** ALB client of one region. Construct through `createCloudClients` (`loadBalancer('ALB', regionId)`). */
export class AlbClient implements LoadBalancerApi {
  readonly type = 'ALB' as const;

  constructor(private readonly caller: RegionCaller) {}

  get regionId(): string {
    return this.caller.regionId;
  }

  /** `ListServerGroupServers` of the group, every page (100 per page). */
  private async servers(serverGroupId: string): Promise<ServerGroupBackend[]> {
    const rows = await allPages({ product: 'alb', action: 'ListServerGroupServers' }, async (token) => {
      const body = await this.caller.call('ListServerGroupServers', {
        ServerGroupId: serverGroupId,
        MaxResults: 100,
        NextToken: token,
      });
      return { items: arr(body['Servers']), nextToken: str(body['NextToken']) };
    });
    return rows.flatMap((r) => {
      const instanceId = str(r['ServerId']);
      const port = num(r['Port']);
      if (instanceId === undefined || port === undefined) return [];
      const description = str(r['Description']);
      return [
        {
          instanceId,
          port,
          weight: num(r['Weight']) ?? 0,
          status: str(r['Status']) ?? '',
          ...(description !== undefined ? { description } : {}),
        },
      ];
    });
  }

  /**
   * The server group: `ListServerGroups` (`Scheduler`, `RelatedLoadBalancerIds`),
   * `ListServerGroupServers` (backends with `Status`), `ListListeners` of the related load
   * balancers (listeners whose default action forwards to the group; when none does, e.g. the
   * group is used by forwarding rules only, every listener of those load balancers), and
   * `ListTagResources` (`ResourceType=loadbalancer`) of those load balancers (merged; a key on
   * several keeps the first value).
   * @throws CloudError; an unknown group (`ListServerGroups` answers none) is a permanent
   *   `ResourceNotFound.ServerGroup` (category `notFound`).
   */
  async describeGroup(serverGroupId: string): Promise<ServerGroupView> {
    const body = await this.caller.call('ListServerGroups', { ServerGroupIds: [serverGroupId] });
    const g = arr(body['ServerGroups']).find((r) => str(r['ServerGroupId']) === serverGroupId);
    if (!g) {
      throw new CloudError({
        code: 'ResourceNotFound.ServerGroup',
        message: `server group ${serverGroupId} does not exist in ${this.regionId}`,
        action: 'ListServerGroups',
        product: 'alb',
        kind: 'permanent',
        category: 'notFound',
      });
    }
    const loadBalancerIds = strings(g['RelatedLoadBalancerIds']);
    const backends = await this.servers(serverGroupId);
    const listeners: Raw[] = [];
    const tags: Record<string, string> = {};
    for (const ids of chunks(loadBalancerIds, IDS_PER_CALL)) {
      listeners.push(
        ...(await allPages({ product: 'alb', action: 'ListListeners' }, async (token) => {
          const b = await this.caller.call('ListListeners', {
            LoadBalancerIds: ids,
            MaxResults: 100,
            NextToken: token,
          });
          return { items: arr(b['Listeners']), nextToken: str(b['NextToken']) };
        })),
      );
      const rows = await allPages({ product: 'alb', action: 'ListTagResources' }, async (token) => {
        const b = await this.caller.call('ListTagResources', {
          ResourceType: 'loadbalancer',
          ResourceId: ids,
          MaxResults: 100,
          NextToken: token,
        });
        return { items: arr(b['TagResources']), nextToken: str(b['NextToken']) };
      });
      for (const r of rows) {
        const k = str(r['TagKey']);
        if (k !== undefined && !(k in tags)) tags[k] = str(r['TagValue']) ?? '';
      }
    }
    const forwarding = listeners.filter((l) => forwardedGroups(l).includes(serverGroupId));
    const listenerIds = (forwarding.length > 0 ? forwarding : listeners).flatMap((l) => {
      const id = str(l['ListenerId']);
      return id ? [id] : [];
    });
    return {
      type: 'ALB',
      regionId: this.regionId,
      serverGroupId,
      loadBalancerIds,
      listenerIds,
      scheduler: (str(g['Scheduler']) ?? '').toLowerCase(),
      loadBalancerTags: tags,
      ...(bool(obj(g['HealthCheckConfig'])['HealthCheckEnabled']) === false ? { healthCheck: false } : {}),
      backends,
    };
  }

  /**
   * One asynchronous write per chunk, each with a fresh `ClientToken` (a UUID): the caller's
   * retries of that request re-send the same token, so a retry after a lost answer does not act
   * twice. The token is not derived from the content: the service would answer a later identical
   * change (draining the same server again in the next rollout) with the old job and not act.
   */
  private async write(
    action: 'UpdateServerGroupServersAttribute' | 'AddServersToServerGroup' | 'RemoveServersFromServerGroup',
    serverGroupId: string,
    servers: ReadonlyArray<Record<string, unknown>>,
    perCall: number,
  ): Promise<void> {
    for (const part of chunks(servers, perCall)) {
      await this.caller.call(action, {
        ServerGroupId: serverGroupId,
        Servers: part,
        ClientToken: randomUUID(),
      });
    }
  }

  /**
   * `UpdateServerGroupServersAttribute`, at most 40 servers per call. Asynchronous: poll
   * {@link describeGroup} until each server reads `Available`.
   * @throws CloudError (`IncorrectStatus.ServerGroup` while the group is configuring: transient,
   *   retried; `ResourceNotFound.BackendServer` for a server not in the group).
   */
  async setWeights(
    serverGroupId: string,
    backends: ReadonlyArray<{ instanceId: string; port: number; weight: number }>,
  ): Promise<void> {
    await this.write(
      'UpdateServerGroupServersAttribute',
      serverGroupId,
      backends.map((b) => ({ ServerId: b.instanceId, ServerType: 'Ecs', Port: b.port, Weight: b.weight })),
      ALB_UPDATE_SERVERS_PER_CALL,
    );
  }

  /** `AddServersToServerGroup` of the servers not in the group yet (read first), 200 per call; asynchronous. */
  async addBackends(
    serverGroupId: string,
    backends: ReadonlyArray<{ instanceId: string; port: number; weight: number; description?: string }>,
  ): Promise<void> {
    const have = new Set((await this.servers(serverGroupId)).map((b) => backendKey(b.instanceId, b.port)));
    await this.write(
      'AddServersToServerGroup',
      serverGroupId,
      backends
        .filter((b) => !have.has(backendKey(b.instanceId, b.port)))
        .map((b) => ({
          ServerId: b.instanceId,
          ServerType: 'Ecs',
          Port: b.port,
          Weight: b.weight,
          ...(b.description !== undefined ? { Description: b.description } : {}),
        })),
      ALB_ADD_REMOVE_SERVERS_PER_CALL,
    );
  }

  /** `RemoveServersFromServerGroup` of the servers still in the group (read first), 200 per call; asynchronous. */
  async removeBackends(
    serverGroupId: string,
    backends: ReadonlyArray<{ instanceId: string; port: number }>,
  ): Promise<void> {
    const current = await this.servers(serverGroupId);
    const have = new Set(
      current.filter((b) => b.status !== 'Removing').map((b) => backendKey(b.instanceId, b.port)),
    );
    await this.write(
      'RemoveServersFromServerGroup',
      serverGroupId,
      backends
        .filter((b) => have.has(backendKey(b.instanceId, b.port)))
        .map((b) => ({ ServerId: b.instanceId, ServerType: 'Ecs', Port: b.port })),
      ALB_ADD_REMOVE_SERVERS_PER_CALL,
    );
  }

  /**
   * `GetListenerHealthStatus` of each listener in `group.listenerIds` (every page, 30 per page):
   * for the group's entry in `ServerGroupInfos`, a backend listed in `NonNormalServers` maps by
   * {@link albHealthState}, one not listed is Healthy; `HealthCheckEnabled` other than `on` makes
   * every backend Unknown. A listener without an entry for the group reports nothing; several
   * listeners: the worse state wins.
   */
  async backendHealth(group: ServerGroupView): Promise<Map<string, BackendHealthState>> {
    const out = new Map<string, BackendHealthState>();
    for (const listenerId of group.listenerIds) {
      let seen = false;
      let enabled = true;
      const nonNormal = new Map<string, string>();
      await allPages({ product: 'alb', action: 'GetListenerHealthStatus' }, async (token) => {
        const body = await this.caller.call('GetListenerHealthStatus', {
          ListenerId: listenerId,
          MaxResults: 30,
          NextToken: token,
        });
        for (const l of arr(body['ListenerHealthStatus'])) {
          for (const info of arr(l['ServerGroupInfos'])) {
            if (str(info['ServerGroupId']) !== group.serverGroupId) continue;
            seen = true;
            if (str(info['HealthCheckEnabled']) !== 'on') enabled = false;
            for (const s of arr(info['NonNormalServers'])) {
              const id = str(s['ServerId']);
              const port = num(s['Port']);
              if (id !== undefined && port !== undefined)
                nonNormal.set(backendKey(id, port), str(s['Status']) ?? '');
            }
          }
        }
        return { items: [], nextToken: str(body['NextToken']) };
      });
      if (!seen) continue;
      for (const b of group.backends) {
        const key = backendKey(b.instanceId, b.port);
        const status = nonNormal.get(key);
        const state: BackendHealthState = !enabled
          ? 'Unknown'
          : status === undefined
            ? 'Healthy'
            : albHealthState(status);
        out.set(key, worseHealth(out.get(key), state));
      }
    }
    return out;
  }
}
