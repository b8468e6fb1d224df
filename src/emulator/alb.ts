/**
 * ALB (API version 2020-06-16) actions of the emulator: server groups, their servers, listeners,
 * the listeners' health view and tags, over the in-memory model of loadbalancers.ts. Facts and
 * sources: docs/reference-load-balancers.md.
 *
 * Writes (`UpdateServerGroupServersAttribute`, `AddServersToServerGroup`,
 * `RemoveServersFromServerGroup`) are asynchronous: they answer `{ JobId }` and the servers show
 * `Configuring` / `Adding` / `Removing` in `ListServerGroupServers` (the group `Configuring` in
 * `ListServerGroups`) until the change applies. A write while the group is still configuring is
 * refused with `IncorrectStatus.ServerGroup`. A repeated `ClientToken` with the same parameters
 * answers the first call's JobId without acting again; with other parameters,
 * `IdempotenceSignatureMismatch`.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { ActionContext, ActionHandler } from './context.js';
import { ApiError, invalidParameter, missingParameter } from './errors.js';
import type {
  LbBackendRecord,
  LoadBalancerRecord,
  LoadBalancerState,
  ServerGroupRecord,
} from './loadbalancers.js';
import { tagRows } from './loadbalancers.js';
import type { PageLimits } from './params.js';
import { paginate } from './params.js';

/** ALB API version served. */
export const ALB_VERSION = '2020-06-16';

/** Most servers in one `UpdateServerGroupServersAttribute` (documented: 40). */
export const ALB_MAX_UPDATE_SERVERS = 40;
/** Most servers in one `AddServersToServerGroup` / `RemoveServersFromServerGroup` (documented: 200). */
export const ALB_MAX_ADD_REMOVE_SERVERS = 200;

const L_1_100: PageLimits = { min: 1, max: 100, def: 20 };
/** GetListenerHealthStatus `MaxResults`: 1–30, default 20 (documented). */
const L_1_30: PageLimits = { min: 1, max: 30, def: 20 };

/** ClientTokens seen per emulator (token → request digest and JobId); bounded, oldest dropped first. */
const TOKENS = new WeakMap<LoadBalancerState, Map<string, { digest: string; jobId: string }>>();
const MAX_TOKENS = 10_000;

/** ALB scheduler names as the API spells them (`Wrr`, `Wlc`, `Sch`, `Uch`). */
function schedulerName(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();
}

function model(ctx: ActionContext): LoadBalancerState {
  if (!ctx.loadBalancers) throw new ApiError(500, 'InternalError', 'Load balancers are not configured.');
  return ctx.loadBalancers;
}

function notFound(what: string): ApiError {
  return new ApiError(404, `ResourceNotFound.${what}`, `The specified resource of ${what} is not found.`);
}

function serverGroup(ctx: ActionContext, id: string): ServerGroupRecord {
  const g = model(ctx).group('ALB', ctx.regionId, id);
  if (!g) throw notFound('ServerGroup');
  return g;
}

function albs(ctx: ActionContext): LoadBalancerRecord[] {
  return [...model(ctx).loadBalancers.values()].filter(
    (lb) => lb.type === 'ALB' && lb.regionId === ctx.regionId,
  );
}

/** Whether any server of the group is in a change (the group reads `Configuring`). */
function configuring(g: ServerGroupRecord): boolean {
  return g.backends.some((b) => b.status !== 'Available');
}

interface ServerArg {
  instanceId: string;
  port: number;
  weight?: number;
  description?: string;
}

/**
 * `Servers.N.{ServerId, ServerType, Port, Weight, Description}`: 1..`max` entries, `ServerType`
 * `Ecs` (the only type served), `Port` 1–65535, `Weight` 0–100; a duplicate `(ServerId, Port)`
 * is `DuplicatedParam.Server`.
 */
function serversArg(ctx: ActionContext, max: number): ServerArg[] {
  const list = ctx.params.objList('Servers');
  if (list.length === 0) throw missingParameter('Servers');
  if (list.length > max)
    throw new ApiError(
      400,
      'IllegalParam.Servers',
      `The param of Servers is illegal: at most ${max} servers per call.`,
    );
  const seen = new Set<string>();
  return list.map((o, i) => {
    const n = i + 1;
    const instanceId = o['ServerId'] ?? '';
    if (instanceId === '') throw missingParameter(`Servers.${n}.ServerId`);
    const type = o['ServerType'];
    if (type === undefined || type === '') throw missingParameter(`Servers.${n}.ServerType`);
    if (type.toLowerCase() !== 'ecs') throw invalidParameter(`Servers.${n}.ServerType`, 'only Ecs is served');
    const port = Number(o['Port']);
    if (!/^\d+$/.test(o['Port'] ?? '') || port < 1 || port > 65535)
      throw new ApiError(400, 'IllegalParam.Port', 'The param of Port is illegal.');
    let weight: number | undefined;
    if (o['Weight'] !== undefined && o['Weight'] !== '') {
      weight = Number(o['Weight']);
      if (!/^\d+$/.test(o['Weight']) || weight > 100)
        throw new ApiError(400, 'IllegalParam.Weight', 'The param of Weight is illegal.');
    }
    const key = `${instanceId}:${port}`;
    if (seen.has(key))
      throw new ApiError(400, 'DuplicatedParam.Server', 'The param of Server is duplicated.');
    seen.add(key);
    const description = o['Description'];
    return {
      instanceId,
      port,
      ...(weight !== undefined ? { weight } : {}),
      ...(description !== undefined && description !== '' ? { description } : {}),
    };
  });
}

/**
 * Runs an asynchronous write once per `ClientToken`: a repeated token with the same parameters
 * answers the first JobId; with other parameters `IdempotenceSignatureMismatch`. `DryRun=true`
 * checks and answers `DryRunOperation` (400) without acting.
 */
function asyncJob(ctx: ActionContext, action: string, act: () => void): Record<string, unknown> {
  const token = ctx.params.str('ClientToken');
  const digest = createHash('sha256')
    .update(
      JSON.stringify(
        Object.entries(ctx.params.raw)
          .filter(
            ([k]) =>
              !/^(Signature|SignatureNonce|Timestamp|ClientToken|AccessKeyId|SignatureMethod|SignatureVersion|Format|Version)$/.test(
                k,
              ),
          )
          .sort(([a], [b]) => (a < b ? -1 : 1)),
      ),
    )
    .digest('hex');
  const key = token === undefined ? undefined : `${ctx.regionId}/${action}/${token}`;
  const lbs = model(ctx);
  let tokens = TOKENS.get(lbs);
  if (!tokens) TOKENS.set(lbs, (tokens = new Map()));
  const prior = key === undefined ? undefined : tokens.get(key);
  if (prior) {
    if (prior.digest !== digest) {
      throw new ApiError(
        400,
        'IdempotenceSignatureMismatch',
        'The idempotence token of request is same with the prev one, but the signature is different.',
      );
    }
    return { JobId: prior.jobId };
  }
  act();
  if (ctx.params.bool('DryRun') === true)
    throw new ApiError(400, 'DryRunOperation', 'Request validation has been passed with DryRun flag set.');
  const jobId = randomUUID();
  if (key !== undefined) {
    tokens.set(key, { digest, jobId });
    if (tokens.size > MAX_TOKENS) tokens.delete(tokens.keys().next().value as string);
  }
  return { JobId: jobId };
}

function lockedGroup(ctx: ActionContext): ServerGroupRecord {
  const g = serverGroup(ctx, ctx.params.required('ServerGroupId'));
  return g;
}

function requireUnlocked(g: ServerGroupRecord): void {
  if (configuring(g)) {
    throw new ApiError(
      400,
      'IncorrectStatus.ServerGroup',
      `The status of ServerGroup [${g.serverGroupId}] is incorrect.`,
    );
  }
}

function requireMembers(lbs: LoadBalancerState, g: ServerGroupRecord, list: ServerArg[]): void {
  if (list.some((s) => !lbs.backend(g, s.instanceId, s.port))) throw notFound('BackendServer');
}

/**
 * UpdateServerGroupServersAttribute: `ServerGroupId`, `Servers.N` (at most 40; each in the group)
 * with `Weight` / `Description`, `ClientToken`, `DryRun` → `{ JobId }`; asynchronous.
 */
const updateServerGroupServersAttribute: ActionHandler = (ctx) => {
  const g = lockedGroup(ctx);
  const list = serversArg(ctx, ALB_MAX_UPDATE_SERVERS);
  const lbs = model(ctx);
  return asyncJob(ctx, 'UpdateServerGroupServersAttribute', () => {
    requireMembers(lbs, g, list);
    requireUnlocked(g);
    if (ctx.params.bool('DryRun') === true) return;
    lbs.setWeights(g, list);
  });
};

/** AddServersToServerGroup: `Servers.N` (at most 200, weight default 100) → `{ JobId }`; asynchronous. */
const addServersToServerGroup: ActionHandler = (ctx) => {
  const g = lockedGroup(ctx);
  const list = serversArg(ctx, ALB_MAX_ADD_REMOVE_SERVERS);
  const lbs = model(ctx);
  return asyncJob(ctx, 'AddServersToServerGroup', () => {
    if (list.some((s) => lbs.backend(g, s.instanceId, s.port))) {
      throw new ApiError(
        400,
        'ResourceAlreadyAssociated.BackendServer',
        'The specified resource of BackendServer is already associated.',
      );
    }
    for (const s of list) if (!ctx.state.findInstance(s.instanceId)) throw notFound('Instance');
    requireUnlocked(g);
    if (ctx.params.bool('DryRun') === true) return;
    lbs.add(
      g,
      list.map((s) => ({
        instanceId: s.instanceId,
        port: s.port,
        weight: s.weight ?? 100,
        ...(s.description !== undefined ? { description: s.description } : {}),
      })),
    );
  });
};

/** RemoveServersFromServerGroup: `Servers.N` (at most 200; each in the group) → `{ JobId }`; asynchronous. */
const removeServersFromServerGroup: ActionHandler = (ctx) => {
  const g = lockedGroup(ctx);
  const list = serversArg(ctx, ALB_MAX_ADD_REMOVE_SERVERS);
  const lbs = model(ctx);
  return asyncJob(ctx, 'RemoveServersFromServerGroup', () => {
    requireMembers(lbs, g, list);
    requireUnlocked(g);
    if (ctx.params.bool('DryRun') === true) return;
    lbs.remove(g, list);
  });
};

function relatedLbs(ctx: ActionContext, g: ServerGroupRecord): string[] {
  return albs(ctx)
    .filter((lb) => lb.serverGroupIds.includes(g.serverGroupId))
    .map((lb) => lb.loadBalancerId);
}

/**
 * ListServerGroups: `ServerGroupIds.N`, `MaxResults` 1–100 (default 20), `NextToken` →
 * `ServerGroups[] { ServerGroupId, ServerGroupName, ServerGroupStatus, Scheduler,
 * RelatedLoadBalancerIds, HealthCheckConfig, ServerCount, Tags }`.
 */
const listServerGroups: ActionHandler = (ctx) => {
  const ids = ctx.params.list('ServerGroupIds');
  const groups = [...model(ctx).groups.values()].filter(
    (g) =>
      g.type === 'ALB' && g.regionId === ctx.regionId && (ids.length === 0 || ids.includes(g.serverGroupId)),
  );
  const page = paginate(ctx.params, groups, L_1_100, 'ListServerGroups');
  return {
    ServerGroups: page.items.map((g) => ({
      ServerGroupId: g.serverGroupId,
      ServerGroupName: g.name,
      ServerGroupStatus: configuring(g) ? 'Configuring' : 'Available',
      ServerGroupType: 'Instance',
      Protocol: 'HTTP',
      Scheduler: schedulerName(g.scheduler),
      RelatedLoadBalancerIds: relatedLbs(ctx, g),
      ServerCount: g.backends.length,
      HealthCheckConfig: {
        HealthCheckEnabled: g.healthCheck.enabled,
        HealthCheckProtocol: 'HTTP',
        HealthCheckMethod: 'GET',
        HealthCheckPath: g.healthCheck.path,
        HealthCheckInterval: g.healthCheck.intervalSeconds,
        HealthCheckTimeout: g.healthCheck.timeoutSeconds,
        HealthyThreshold: g.healthCheck.healthyThreshold,
        UnhealthyThreshold: g.healthCheck.unhealthyThreshold,
      },
      Tags: [],
    })),
    NextToken: page.nextToken,
    MaxResults: page.maxResults,
    TotalCount: page.total,
  };
};

function serverIp(ctx: ActionContext, instanceId: string): string {
  return ctx.state.findInstance(instanceId)?.privateIpAddress ?? '';
}

/**
 * ListServerGroupServers: `ServerGroupId` (absent: every group of the region), `ServerIds.N`,
 * `MaxResults` 1–100 (default 20), `NextToken` → `Servers[] { ServerGroupId, ServerId, ServerType,
 * ServerIp, Port, Weight, Description, Status }`.
 */
const listServerGroupServers: ActionHandler = (ctx) => {
  const id = ctx.params.str('ServerGroupId');
  const groups =
    id !== undefined
      ? [serverGroup(ctx, id)]
      : [...model(ctx).groups.values()].filter((g) => g.type === 'ALB' && g.regionId === ctx.regionId);
  const ids = ctx.params.list('ServerIds');
  const rows = groups.flatMap((g) =>
    g.backends
      .filter((b) => ids.length === 0 || ids.includes(b.instanceId))
      .map((b) => ({
        ServerGroupId: g.serverGroupId,
        ServerId: b.instanceId,
        ServerType: 'Ecs',
        ServerIp: serverIp(ctx, b.instanceId),
        Port: b.port,
        Weight: b.weight,
        Description: b.description ?? '',
        Status: b.status,
        RemoteIpEnabled: false,
      })),
  );
  const page = paginate(ctx.params, rows, L_1_100, `ListServerGroupServers:${id ?? ''}`);
  return {
    Servers: page.items,
    NextToken: page.nextToken,
    MaxResults: page.maxResults,
    TotalCount: page.total,
  };
};

function listenerView(lb: LoadBalancerRecord): Record<string, unknown> {
  return {
    ListenerId: lb.listenerId,
    LoadBalancerId: lb.loadBalancerId,
    ListenerPort: lb.listenerPort,
    ListenerProtocol: 'HTTP',
    ListenerStatus: 'Running',
    DefaultActions: [
      {
        Type: 'ForwardGroup',
        ForwardGroupConfig: { ServerGroupTuples: lb.serverGroupIds.map((id) => ({ ServerGroupId: id })) },
      },
    ],
  };
}

/**
 * ListListeners: `ListenerIds.N` / `LoadBalancerIds.N` (at most 20 each), `MaxResults` 1–100
 * (default 20), `NextToken` → `Listeners[] { ListenerId, LoadBalancerId, ListenerPort,
 * ListenerProtocol, ListenerStatus, DefaultActions[].ForwardGroupConfig.ServerGroupTuples[] }`.
 */
const listListeners: ActionHandler = (ctx) => {
  const listenerIds = ctx.params.list('ListenerIds');
  const lbIds = ctx.params.list('LoadBalancerIds');
  if (listenerIds.length > 20) throw invalidParameter('ListenerIds', 'at most 20 listener IDs');
  if (lbIds.length > 20) throw invalidParameter('LoadBalancerIds', 'at most 20 load balancer IDs');
  const rows = albs(ctx)
    .filter(
      (lb) =>
        (listenerIds.length === 0 || listenerIds.includes(lb.listenerId)) &&
        (lbIds.length === 0 || lbIds.includes(lb.loadBalancerId)),
    )
    .map(listenerView);
  const page = paginate(ctx.params, rows, L_1_100, 'ListListeners');
  return {
    Listeners: page.items,
    NextToken: page.nextToken,
    MaxResults: page.maxResults,
    TotalCount: page.total,
  };
};

/**
 * The `NonNormalServers[]` status of a backend, or undefined when it is healthy: `Unused` (weight
 * 0), `Unavailable` (health check off), `Unhealthy`, `Initial` (no result yet).
 */
function albHealth(g: ServerGroupRecord, b: LbBackendRecord): string | undefined {
  if (b.weight === 0) return 'Unused';
  if (!g.healthCheck.enabled) return 'Unavailable';
  if (b.health === 'Healthy') return undefined;
  return b.health === 'Unhealthy' ? 'Unhealthy' : 'Initial';
}

/**
 * GetListenerHealthStatus: `ListenerId`, `IncludeRule`, `MaxResults` 1–30 (default 20),
 * `NextToken` → `ListenerHealthStatus[] { ListenerId, ListenerPort, ListenerProtocol,
 * ServerGroupInfos[] { ServerGroupId, ActionType, HealthCheckEnabled 'on'|'off',
 * NonNormalServers[] { ServerId, ServerIp, Port, Status, Reason? } } }`, `RuleHealthStatus[]`.
 * Healthy servers are not listed. Pages run over the non-normal servers (assumption: the
 * reference does not say what a page counts).
 */
const getListenerHealthStatus: ActionHandler = (ctx) => {
  const id = ctx.params.required('ListenerId');
  const lb = albs(ctx).find((l) => l.listenerId === id);
  if (!lb) throw notFound('Listener');
  const groups = lb.serverGroupIds.flatMap((gid) => {
    const g = model(ctx).group('ALB', ctx.regionId, gid);
    return g ? [g] : [];
  });
  const flat = groups.flatMap((g) =>
    g.backends.flatMap((b) => {
      const status = albHealth(g, b);
      if (status === undefined) return [];
      return [
        {
          group: g.serverGroupId,
          server: {
            ServerId: b.instanceId,
            ServerIp: serverIp(ctx, b.instanceId),
            Port: b.port,
            Status: status,
            ...(status === 'Unhealthy' ? { Reason: { ReasonCode: 'RESPONSE_MISMATCH' } } : {}),
          },
        },
      ];
    }),
  );
  const page = paginate(ctx.params, flat, L_1_30, `GetListenerHealthStatus:${id}`);
  return {
    ListenerHealthStatus: [
      {
        ListenerId: lb.listenerId,
        ListenerPort: lb.listenerPort,
        ListenerProtocol: 'HTTP',
        ServerGroupInfos: groups.map((g) => ({
          ServerGroupId: g.serverGroupId,
          ActionType: 'ForwardGroup',
          HealthCheckEnabled: g.healthCheck.enabled ? 'on' : 'off',
          NonNormalServers: page.items.filter((r) => r.group === g.serverGroupId).map((r) => r.server),
        })),
      },
    ],
    RuleHealthStatus: [],
    NextToken: page.nextToken,
  };
};

/**
 * ListTagResources: `ResourceType` `loadbalancer` | `servergroup` (required), `ResourceId.N`,
 * `Tag.N.Key`/`.Value`, `MaxResults` 1–100 (default 20), `NextToken` → `TagResources[] {
 * ResourceId, ResourceType, TagKey, TagValue }`. Server groups carry no tags in the emulator.
 */
const listTagResources: ActionHandler = (ctx) => {
  const type = ctx.params.oneOf('ResourceType', [
    'loadbalancer',
    'servergroup',
    'acl',
    'securitypolicy',
  ] as const);
  if (type === undefined) throw missingParameter('ResourceType');
  const ids = ctx.params.list('ResourceId');
  const tagFilter = ctx.params.objList('Tag');
  const rows = type === 'loadbalancer' ? tagRows(albs(ctx), ids, tagFilter, 'loadbalancer') : [];
  const page = paginate(ctx.params, rows, L_1_100, `ListTagResources.alb:${type}`);
  return { TagResources: page.items, NextToken: page.nextToken, MaxResults: page.maxResults };
};

/** ALB 2020-06-16 actions the emulator serves. */
export const ALB_ACTIONS: Record<string, ActionHandler> = {
  ListServerGroups: listServerGroups,
  ListServerGroupServers: listServerGroupServers,
  UpdateServerGroupServersAttribute: updateServerGroupServersAttribute,
  AddServersToServerGroup: addServersToServerGroup,
  RemoveServersFromServerGroup: removeServersFromServerGroup,
  GetListenerHealthStatus: getListenerHealthStatus,
  ListListeners: listListeners,
  ListTagResources: listTagResources,
};
