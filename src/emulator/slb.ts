/**
 * CLB (SLB API version 2014-05-15) actions of the emulator: vServer group reads and writes, the
 * listeners' scheduler, the load balancer's own health view and its tags, over the in-memory model
 * of loadbalancers.ts. Facts and sources: docs/reference-load-balancers.md.
 *
 * Wire shapes follow the 2014-05-15 JSON answers: the older actions wrap lists the XML way
 * (`BackendServers.BackendServer[]`, `TagResources.TagResource[]`), `DescribeLoadBalancerListeners`
 * answers a plain `Listeners[]`. `BackendServers` request parameters are JSON strings of
 * `[{ ServerId, Port, Weight, Type, Description }]`, at most 20 servers per call. CLB changes apply
 * at once (no asynchronous job).
 */
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

/** SLB API version served (CLB). */
export const SLB_VERSION = '2014-05-15';

/** Most servers in one `BackendServers` parameter (SetVServerGroupAttribute, Add…, Remove…). */
export const CLB_MAX_SERVERS_PER_CALL = 20;

const L_1_100: PageLimits = { min: 1, max: 100, def: 20 };

function model(ctx: ActionContext): LoadBalancerState {
  if (!ctx.loadBalancers) throw new ApiError(500, 'InternalError', 'Load balancers are not configured.');
  return ctx.loadBalancers;
}

/**
 * The vServer group `VServerGroupId` of the request's region. Unknown: `InvalidParameter` with the
 * message "The specified VServerGroupId does not exist." (the code and message Terraform's
 * alicloud provider matches for a missing vServer group).
 */
function vServerGroup(ctx: ActionContext): ServerGroupRecord {
  const id = ctx.params.required('VServerGroupId');
  const g = model(ctx).group('CLB', ctx.regionId, id);
  if (!g) throw new ApiError(400, 'InvalidParameter', 'The specified VServerGroupId does not exist.');
  return g;
}

/** The CLB instance `LoadBalancerId`; unknown: 404 `InvalidLoadBalancerId.NotFound`. */
function loadBalancer(ctx: ActionContext, id: string): LoadBalancerRecord {
  const lb = model(ctx).loadBalancers.get(id);
  if (!lb || lb.type !== 'CLB' || lb.regionId !== ctx.regionId) {
    throw new ApiError(
      404,
      'InvalidLoadBalancerId.NotFound',
      `The specified LoadBalancerId does not exist: ${id}.`,
    );
  }
  return lb;
}

interface ServerArg {
  instanceId: string;
  port: number;
  weight?: number;
  description?: string;
}

function intField(v: unknown, name: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw invalidParameter('BackendServers', `${name} must be an integer from ${min} to ${max}`);
  return n;
}

/**
 * The `BackendServers` JSON list: at most {@link CLB_MAX_SERVERS_PER_CALL} entries, each with
 * `ServerId`, `Port` 1–65535 and optional `Weight` 0–100, `Type` `ecs`, `Description`. A duplicate
 * `(ServerId, Port)` in one request is rejected.
 */
function backendServersArg(ctx: ActionContext, required: boolean): ServerArg[] | undefined {
  const v = ctx.params.json('BackendServers');
  if (v === undefined) {
    if (required) throw missingParameter('BackendServers');
    return undefined;
  }
  if (!Array.isArray(v)) throw invalidParameter('BackendServers', 'not a JSON list');
  if (v.length > CLB_MAX_SERVERS_PER_CALL) {
    throw invalidParameter(
      'BackendServers',
      `at most ${CLB_MAX_SERVERS_PER_CALL} backend servers per request, got ${v.length}`,
    );
  }
  const seen = new Set<string>();
  return v.map((raw) => {
    if (typeof raw !== 'object' || raw === null)
      throw invalidParameter('BackendServers', 'not a list of objects');
    const o = raw as Record<string, unknown>;
    const instanceId = typeof o['ServerId'] === 'string' ? o['ServerId'] : '';
    if (instanceId === '') throw invalidParameter('BackendServers', 'ServerId is missing');
    const type = o['Type'];
    if (type !== undefined && type !== 'ecs')
      throw invalidParameter('BackendServers', `Type ${JSON.stringify(type)} is not served (ecs only)`);
    const port = intField(o['Port'], 'Port', 1, 65535);
    if (port === undefined) throw invalidParameter('BackendServers', 'Port is missing');
    const weight = intField(o['Weight'], 'Weight', 0, 100);
    const key = `${instanceId}:${port}`;
    if (seen.has(key)) throw invalidParameter('BackendServers', `duplicate backend server ${key}`);
    seen.add(key);
    const description = typeof o['Description'] === 'string' ? o['Description'] : undefined;
    return {
      instanceId,
      port,
      ...(weight !== undefined ? { weight } : {}),
      ...(description !== undefined ? { description } : {}),
    };
  });
}

function serverIp(ctx: ActionContext, instanceId: string): string {
  return ctx.state.findInstance(instanceId)?.privateIpAddress ?? '';
}

function backendView(ctx: ActionContext, b: LbBackendRecord): Record<string, unknown> {
  return {
    ServerId: b.instanceId,
    Port: b.port,
    Weight: b.weight,
    Type: 'ecs',
    ServerIp: serverIp(ctx, b.instanceId),
    Description: b.description ?? '',
  };
}

function groupBody(ctx: ActionContext, g: ServerGroupRecord): Record<string, unknown> {
  return {
    VServerGroupId: g.serverGroupId,
    VServerGroupName: g.name,
    LoadBalancerId: g.loadBalancerId,
    BackendServers: { BackendServer: g.backends.map((b) => backendView(ctx, b)) },
  };
}

/** `(ServerId, Port)` pairs of the request that are not in the group: InvalidParameter (assumption). */
function requireMembers(g: ServerGroupRecord, list: ServerArg[], lbs: LoadBalancerState): void {
  const missing = list.filter((s) => !lbs.backend(g, s.instanceId, s.port));
  if (missing.length > 0) {
    throw new ApiError(
      400,
      'InvalidParameter',
      `The specified backend server does not exist in the vServer group: ${missing
        .map((s) => `${s.instanceId}:${s.port}`)
        .join(', ')}.`,
    );
  }
}

/** DescribeVServerGroupAttribute: `VServerGroupId` → the group and its backends. */
const describeVServerGroupAttribute: ActionHandler = (ctx) => groupBody(ctx, vServerGroup(ctx));

/**
 * DescribeVServerGroups: `LoadBalancerId` → its vServer groups; `IncludeListener=true` adds
 * `AssociatedObjects.Listeners.Listener[] { Port, Protocol }`.
 */
const describeVServerGroups: ActionHandler = (ctx) => {
  const lb = loadBalancer(ctx, ctx.params.required('LoadBalancerId'));
  const withListener = ctx.params.bool('IncludeListener') === true;
  const groups = lb.serverGroupIds.flatMap((id) => {
    const g = model(ctx).group('CLB', ctx.regionId, id);
    return g ? [g] : [];
  });
  return {
    VServerGroups: {
      VServerGroup: groups.map((g, i) => ({
        VServerGroupId: g.serverGroupId,
        VServerGroupName: g.name,
        ServerCount: g.backends.length,
        ...(withListener
          ? {
              AssociatedObjects: {
                Listeners: { Listener: i === 0 ? [{ Port: lb.listenerPort, Protocol: 'http' }] : [] },
                Rules: { Rule: [] },
              },
            }
          : {}),
      })),
    },
  };
};

/**
 * SetVServerGroupAttribute: `VServerGroupName` and/or the `Weight` of the backends listed in
 * `BackendServers` (each must be in the group). Applies at once.
 */
const setVServerGroupAttribute: ActionHandler = (ctx) => {
  const g = vServerGroup(ctx);
  const list = backendServersArg(ctx, false) ?? [];
  const lbs = model(ctx);
  requireMembers(g, list, lbs);
  const name = ctx.params.str('VServerGroupName');
  if (name !== undefined) g.name = name;
  lbs.setWeights(g, list);
  return groupBody(ctx, g);
};

/** AddVServerGroupBackendServers: adds `BackendServers` (weight default 100); one already in the group is rejected. */
const addVServerGroupBackendServers: ActionHandler = (ctx) => {
  const g = vServerGroup(ctx);
  const list = backendServersArg(ctx, true) ?? [];
  const lbs = model(ctx);
  const present = list.filter((s) => lbs.backend(g, s.instanceId, s.port));
  if (present.length > 0) {
    throw new ApiError(
      400,
      'InvalidParameter',
      `The backend server already exists in the vServer group: ${present
        .map((s) => `${s.instanceId}:${s.port}`)
        .join(', ')}.`,
    );
  }
  for (const s of list) {
    if (!ctx.state.findInstance(s.instanceId))
      throw new ApiError(
        400,
        'InvalidBackendServers.ServerIdNotExist',
        `The ECS instance ${s.instanceId} does not exist.`,
      );
  }
  lbs.add(
    g,
    list.map((s) => ({
      instanceId: s.instanceId,
      port: s.port,
      weight: s.weight ?? 100,
      ...(s.description !== undefined ? { description: s.description } : {}),
    })),
  );
  return {
    VServerGroupId: g.serverGroupId,
    BackendServers: { BackendServer: g.backends.map((b) => backendView(ctx, b)) },
  };
};

/** RemoveVServerGroupBackendServers: removes `BackendServers` (each must be in the group). */
const removeVServerGroupBackendServers: ActionHandler = (ctx) => {
  const g = vServerGroup(ctx);
  const list = backendServersArg(ctx, true) ?? [];
  const lbs = model(ctx);
  requireMembers(g, list, lbs);
  lbs.remove(g, list);
  return {
    VServerGroupId: g.serverGroupId,
    BackendServers: { BackendServer: g.backends.map((b) => backendView(ctx, b)) },
  };
};

/**
 * CLB health of one backend: `normal` (Healthy), `abnormal` (Unhealthy), `unavailable` (health
 * check off, or no result yet: the emulator's `Initial`).
 */
function clbHealth(g: ServerGroupRecord, b: LbBackendRecord): string {
  if (!g.healthCheck.enabled) return 'unavailable';
  if (b.health === 'Healthy') return 'normal';
  if (b.health === 'Unhealthy') return 'abnormal';
  return 'unavailable';
}

/**
 * DescribeHealthStatus: `LoadBalancerId`, optional `ListenerPort` / `ListenerProtocol` →
 * `BackendServers.BackendServer[] { ListenerPort, Protocol, ServerId, Port, ServerIp,
 * ServerHealthStatus }` of the listener's vServer group.
 */
const describeHealthStatus: ActionHandler = (ctx) => {
  const lb = loadBalancer(ctx, ctx.params.required('LoadBalancerId'));
  const port = ctx.params.int('ListenerPort', { min: 1, max: 65535 });
  const protocol = ctx.params.str('ListenerProtocol');
  const listening =
    (port === undefined || port === lb.listenerPort) && (protocol === undefined || protocol === 'http');
  const g = listening ? model(ctx).group('CLB', ctx.regionId, lb.serverGroupIds[0] ?? '') : undefined;
  return {
    BackendServers: {
      BackendServer: (g?.backends ?? []).map((b) => ({
        ListenerPort: lb.listenerPort,
        Protocol: 'http',
        ServerId: b.instanceId,
        Port: b.port,
        ServerIp: serverIp(ctx, b.instanceId),
        ServerHealthStatus: clbHealth(g as ServerGroupRecord, b),
      })),
    },
  };
};

function listenerView(ctx: ActionContext, lb: LoadBalancerRecord): Record<string, unknown> {
  const g = model(ctx).group('CLB', ctx.regionId, lb.serverGroupIds[0] ?? '');
  const hc = g?.healthCheck;
  return {
    LoadBalancerId: lb.loadBalancerId,
    ListenerPort: lb.listenerPort,
    ListenerProtocol: 'http',
    Status: 'running',
    Scheduler: g?.scheduler ?? 'wrr',
    VServerGroupId: g?.serverGroupId ?? '',
    HTTPListenerConfig: {
      HealthCheck: hc?.enabled ? 'on' : 'off',
      HealthCheckURI: hc?.path ?? '',
      HealthCheckInterval: hc?.intervalSeconds ?? 0,
      HealthCheckTimeout: hc?.timeoutSeconds ?? 0,
      HealthyThreshold: hc?.healthyThreshold ?? 0,
      UnhealthyThreshold: hc?.unhealthyThreshold ?? 0,
    },
  };
}

/**
 * DescribeLoadBalancerHTTPListenerAttribute: `LoadBalancerId` + `ListenerPort` → `Scheduler`,
 * `VServerGroupId`, health check settings. No HTTP listener on that port: 404
 * `InvalidParameter`-style `The specified resource does not exist` (code `ResourceNotFound`, assumption).
 */
const describeHttpListener: ActionHandler = (ctx) => {
  const lb = loadBalancer(ctx, ctx.params.required('LoadBalancerId'));
  const port = ctx.params.int('ListenerPort', { min: 1, max: 65535 });
  if (port === undefined) throw missingParameter('ListenerPort');
  if (port !== lb.listenerPort)
    throw new ApiError(404, 'ResourceNotFound', 'The specified resource does not exist.');
  const v = listenerView(ctx, lb);
  const { HTTPListenerConfig, ...rest } = v;
  return { ...rest, ...(HTTPListenerConfig as Record<string, unknown>), BackendServerPort: 0 };
};

/**
 * DescribeLoadBalancerListeners: `LoadBalancerId.N` (at most 10; none: every CLB of the region),
 * `ListenerProtocol`, `MaxResults` 1–100 (default 20), `NextToken` → `Listeners[]` with
 * `ListenerPort`, `ListenerProtocol`, `Scheduler`, `VServerGroupId`.
 */
const describeLoadBalancerListeners: ActionHandler = (ctx) => {
  const ids = ctx.params.list('LoadBalancerId');
  if (ids.length > 10) throw invalidParameter('LoadBalancerId', 'at most 10 load balancer IDs');
  const protocol = ctx.params.str('ListenerProtocol');
  const lbs = [...model(ctx).loadBalancers.values()].filter(
    (lb) =>
      lb.type === 'CLB' &&
      lb.regionId === ctx.regionId &&
      (ids.length === 0 || ids.includes(lb.loadBalancerId)) &&
      (protocol === undefined || protocol === 'http'),
  );
  const page = paginate(
    ctx.params,
    lbs.map((lb) => listenerView(ctx, lb)),
    L_1_100,
    'DescribeLoadBalancerListeners',
  );
  return {
    Listeners: page.items,
    NextToken: page.nextToken,
    MaxResults: page.maxResults,
    TotalCount: page.total,
  };
};

/**
 * ListTagResources: `ResourceType` `instance` (CLB instances), `ResourceId.N` (at most 50),
 * `Tag.N.Key`/`.Value` filters, `NextToken` → `TagResources.TagResource[] { ResourceType,
 * ResourceId, TagKey, TagValue }` (at most 50 per page, assumption).
 */
const listTagResources: ActionHandler = (ctx) => {
  const type = ctx.params.required('ResourceType');
  if (type !== 'instance') throw invalidParameter('ResourceType', 'expected instance');
  const ids = ctx.params.list('ResourceId');
  if (ids.length > 50) throw invalidParameter('ResourceId', 'at most 50 resource IDs');
  const tagFilter = ctx.params.objList('Tag');
  const clbs = [...model(ctx).loadBalancers.values()].filter(
    (lb) => lb.type === 'CLB' && lb.regionId === ctx.regionId,
  );
  const rows = tagRows(clbs, ids, tagFilter, 'instance');
  const page = paginate(ctx.params, rows, { min: 1, max: 50, def: 50 }, 'ListTagResources.slb');
  return { TagResources: { TagResource: page.items }, NextToken: page.nextToken };
};

/** SLB (CLB) 2014-05-15 actions the emulator serves. */
export const SLB_ACTIONS: Record<string, ActionHandler> = {
  DescribeVServerGroupAttribute: describeVServerGroupAttribute,
  DescribeVServerGroups: describeVServerGroups,
  SetVServerGroupAttribute: setVServerGroupAttribute,
  AddVServerGroupBackendServers: addVServerGroupBackendServers,
  RemoveVServerGroupBackendServers: removeVServerGroupBackendServers,
  DescribeHealthStatus: describeHealthStatus,
  DescribeLoadBalancerHTTPListenerAttribute: describeHttpListener,
  DescribeLoadBalancerListeners: describeLoadBalancerListeners,
  ListTagResources: listTagResources,
};
