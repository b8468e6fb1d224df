/**
 * The emulator's load balancers: CLB (SLB API 2014-05-15) vServer groups and ALB (API 2020-06-16)
 * server groups, as one in-memory model that both the API handlers (slb.ts, alb.ts) and the data
 * plane (lb-proxy.ts: a real HTTP listener per load balancer that forwards to the backends by
 * weight, scheduler and its own health checks) read and change.
 *
 * Backends are `(instanceId, port)` pairs with a weight. CLB changes apply at once; ALB backend
 * changes are asynchronous (`UpdateServerGroupServersAttribute`, `AddServersToServerGroup` and
 * `RemoveServersFromServerGroup` answer with a JobId; the server shows `Configuring` / `Adding` /
 * `Removing` in `ListServerGroupServers` until the change applies, `albApplyDelayMs` later).
 * `health` is what the load balancer's own health check last judged (the data plane's checker
 * sets it; a forced value from the control API wins, for "never healthy" tests).
 */
import { randomBytes } from 'node:crypto';
import type { Scheduler } from './scheduler.js';

/** Load balancer product. */
export type LbType = 'CLB' | 'ALB';

/** ALB server status in `ListServerGroupServers` (CLB backends are always `Available`). */
export type BackendStatus = 'Adding' | 'Available' | 'Configuring' | 'Removing';

/** Health as the load balancer's own checks judge a backend. */
export type BackendHealth = 'Initial' | 'Healthy' | 'Unhealthy';

/** One backend of a server group. */
export interface LbBackendRecord {
  instanceId: string;
  port: number;
  /** 0–100. */
  weight: number;
  description?: string;
  status: BackendStatus;
  health: BackendHealth;
  /** Consecutive check results toward the thresholds (data plane). */
  healthyStreak: number;
  unhealthyStreak: number;
  /** Set by the control API: the checker reports this whatever the backend answers. */
  forcedHealth?: BackendHealth;
}

/** Health check of a group (HTTP GET `path` on each backend's private IP and port). */
export interface HealthCheckConfig {
  enabled: boolean;
  path: string;
  /** Seconds between checks (model seconds; scaled by the emulator's time scale). */
  intervalSeconds: number;
  timeoutSeconds: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
}

/** A CLB vServer group or an ALB server group. */
export interface ServerGroupRecord {
  type: LbType;
  regionId: string;
  serverGroupId: string;
  name: string;
  loadBalancerId: string;
  /**
   * Scheduling algorithm, lower case: CLB listener `wrr` | `wlc` | `rr` | `sch` | `tch` | `qch`;
   * ALB server group `wrr` | `wlc` | `sch` | `uch`.
   */
  scheduler: string;
  healthCheck: HealthCheckConfig;
  backends: LbBackendRecord[];
}

/** A load balancer with one HTTP listener forwarding to one server group. */
export interface LoadBalancerRecord {
  type: LbType;
  regionId: string;
  loadBalancerId: string;
  /** ALB listener ID (`lsn-…`); CLB listeners are named by port. */
  listenerId: string;
  listenerPort: number;
  serverGroupIds: string[];
  tags: Record<string, string>;
  /** Where the data plane listens (set when it starts; `http://address:port`). */
  address?: string;
  port?: number;
}

/** What {@link LoadBalancerState.create} takes. */
export interface CreateLoadBalancer {
  type: LbType;
  regionId: string;
  /** Default 80. */
  listenerPort?: number;
  /** Default `wrr`. */
  scheduler?: string;
  healthCheck?: Partial<HealthCheckConfig>;
  backends?: Array<{ instanceId: string; port: number; weight?: number; description?: string }>;
  tags?: Record<string, string>;
  /** Fixed IDs (e.g. a demo whose manifests name the group); default: generated. */
  loadBalancerId?: string;
  serverGroupId?: string;
}

/** Default health check: `/healthz` every 2 s, 3 ok → healthy, 3 failed → unhealthy. */
export const DEFAULT_HEALTH_CHECK: HealthCheckConfig = {
  enabled: true,
  path: '/healthz',
  intervalSeconds: 2,
  timeoutSeconds: 5,
  healthyThreshold: 3,
  unhealthyThreshold: 3,
};

function suffix(n: number): string {
  return randomBytes(n).toString('hex');
}

/** The load balancers and server groups of every region. */
export class LoadBalancerState {
  readonly loadBalancers = new Map<string, LoadBalancerRecord>();
  readonly groups = new Map<string, ServerGroupRecord>();

  /**
   * @param scheduler the emulator's timers (ALB asynchronous changes).
   * @param albApplyDelayMs model ms an ALB backend change stays `Configuring`/`Adding`/`Removing`.
   */
  constructor(
    private readonly scheduler: Scheduler,
    readonly albApplyDelayMs = 3000,
  ) {}

  /**
   * Creates a load balancer, its listener and one server group.
   * @throws Error when a given `loadBalancerId` / `serverGroupId` is malformed or taken.
   */
  create(req: CreateLoadBalancer): { lb: LoadBalancerRecord; group: ServerGroupRecord } {
    const alb = req.type === 'ALB';
    const loadBalancerId = req.loadBalancerId ?? (alb ? `alb-${suffix(9)}` : `lb-${suffix(10)}`);
    const serverGroupId = req.serverGroupId ?? (alb ? `sgp-${suffix(9)}` : `rsp-${suffix(6)}`);
    for (const [what, id, taken] of [
      ['loadBalancerId', loadBalancerId, this.loadBalancers.has(loadBalancerId)],
      ['serverGroupId', serverGroupId, this.groups.has(serverGroupId)],
    ] as const) {
      if (!/^[a-z]+-[a-z0-9]{4,32}$/.test(id))
        throw new Error(`${what} ${id} is not like prefix-[a-z0-9]{4,32}`);
      if (taken) throw new Error(`${what} ${id} already exists`);
    }
    const group: ServerGroupRecord = {
      type: req.type,
      regionId: req.regionId,
      serverGroupId,
      name: `group-${serverGroupId}`,
      loadBalancerId,
      scheduler: (req.scheduler ?? 'wrr').toLowerCase(),
      healthCheck: { ...DEFAULT_HEALTH_CHECK, ...req.healthCheck },
      backends: (req.backends ?? []).map((b) => ({
        instanceId: b.instanceId,
        port: b.port,
        weight: b.weight ?? 100,
        ...(b.description !== undefined ? { description: b.description } : {}),
        status: 'Available',
        health: 'Initial',
        healthyStreak: 0,
        unhealthyStreak: 0,
      })),
    };
    const lb: LoadBalancerRecord = {
      type: req.type,
      regionId: req.regionId,
      loadBalancerId,
      listenerId: alb ? `lsn-${suffix(9)}` : `${req.listenerPort ?? 80}`,
      listenerPort: req.listenerPort ?? 80,
      serverGroupIds: [serverGroupId],
      tags: { ...req.tags },
    };
    this.loadBalancers.set(loadBalancerId, lb);
    this.groups.set(serverGroupId, group);
    return { lb, group };
  }

  /** The group, when it exists in `regionId` with `type`. */
  group(type: LbType, regionId: string, serverGroupId: string): ServerGroupRecord | undefined {
    const g = this.groups.get(serverGroupId);
    return g && g.type === type && g.regionId === regionId ? g : undefined;
  }

  /** The backend `(instanceId, port)` of a group. */
  backend(g: ServerGroupRecord, instanceId: string, port: number): LbBackendRecord | undefined {
    return g.backends.find((b) => b.instanceId === instanceId && b.port === port);
  }

  /**
   * Applies `fn` at once (CLB) or after {@link albApplyDelayMs} with the servers in `status`
   * meanwhile (ALB).
   */
  apply(g: ServerGroupRecord, servers: LbBackendRecord[], status: BackendStatus, fn: () => void): void {
    if (g.type === 'CLB') return fn();
    for (const s of servers) s.status = status;
    this.scheduler.after(this.albApplyDelayMs, () => {
      fn();
      for (const s of servers) if (s.status === status) s.status = 'Available';
    });
  }

  /** Sets weights (and descriptions) of existing backends; see {@link apply}. */
  setWeights(
    g: ServerGroupRecord,
    changes: Array<{ instanceId: string; port: number; weight?: number; description?: string }>,
  ): void {
    const targets = changes.map((c) => ({ c, b: this.backend(g, c.instanceId, c.port) }));
    const servers = targets.flatMap((t) => (t.b ? [t.b] : []));
    this.apply(g, servers, 'Configuring', () => {
      for (const { c, b } of targets) {
        if (!b) continue;
        if (c.weight !== undefined) b.weight = c.weight;
        if (c.description !== undefined) b.description = c.description;
      }
    });
  }

  /** Adds backends (health starts `Initial`); see {@link apply}. */
  add(
    g: ServerGroupRecord,
    list: Array<{ instanceId: string; port: number; weight: number; description?: string }>,
  ): void {
    const added: LbBackendRecord[] = list.map((b) => ({
      instanceId: b.instanceId,
      port: b.port,
      weight: b.weight,
      ...(b.description !== undefined ? { description: b.description } : {}),
      status: 'Adding',
      health: 'Initial',
      healthyStreak: 0,
      unhealthyStreak: 0,
    }));
    if (g.type === 'CLB') for (const a of added) a.status = 'Available';
    g.backends.push(...added);
    if (g.type === 'ALB') {
      this.scheduler.after(this.albApplyDelayMs, () => {
        for (const a of added) if (a.status === 'Adding') a.status = 'Available';
      });
    }
  }

  /** Removes backends; see {@link apply} (an ALB server stays listed `Removing` meanwhile). */
  remove(g: ServerGroupRecord, list: Array<{ instanceId: string; port: number }>): void {
    const gone = list.flatMap((r) => {
      const b = this.backend(g, r.instanceId, r.port);
      return b ? [b] : [];
    });
    this.apply(g, gone, 'Removing', () => {
      g.backends = g.backends.filter((b) => !gone.includes(b));
    });
  }

  /** Every load balancer and group (control API, `npm run local`). */
  list(): Array<{ lb: LoadBalancerRecord; groups: ServerGroupRecord[] }> {
    return [...this.loadBalancers.values()].map((lb) => ({
      lb,
      groups: lb.serverGroupIds.flatMap((id) => {
        const g = this.groups.get(id);
        return g ? [g] : [];
      }),
    }));
  }

  /** Drops everything (emulator reset). */
  clear(): void {
    this.loadBalancers.clear();
    this.groups.clear();
  }
}

/**
 * `ListTagResources` rows (`ResourceId`, `ResourceType`, `TagKey`, `TagValue`) of the load
 * balancers among `lbs` named in `ids` (all when empty) whose tags match every `Tag.N` filter (a
 * filter without `Value` matches any value of its key); shared by the CLB and ALB actions.
 */
export function tagRows(
  lbs: Iterable<LoadBalancerRecord>,
  ids: readonly string[],
  filter: ReadonlyArray<Record<string, string | undefined>>,
  resourceType: string,
): Array<Record<string, string>> {
  const rows: Array<Record<string, string>> = [];
  for (const lb of lbs) {
    if (ids.length > 0 && !ids.includes(lb.loadBalancerId)) continue;
    const key = (t: Record<string, string | undefined>) => t['Key'];
    if (
      !filter.every(
        (t) =>
          key(t) !== undefined && lb.tags[key(t) as string] === (t['Value'] ?? lb.tags[key(t) as string]),
      )
    )
      continue;
    for (const [k, v] of Object.entries(lb.tags))
      rows.push({ ResourceId: lb.loadBalancerId, ResourceType: resourceType, TagKey: k, TagValue: v });
  }
  return rows;
}
