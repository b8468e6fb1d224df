/**
 * The data plane of the emulator's load balancers (loadbalancers.ts): per load balancer a real
 * HTTP listener on loopback that forwards each request to ONE backend of its server group, and per
 * group a health checker. All traffic stays on loopback; every timer is the emulator Scheduler's
 * (unref'd, cancelled on stop / reset); every loop is bounded by the group's backend count.
 *
 * Routing model (docs/emulator.md "Load balancers"):
 * - A load balancer listens on `127.0.0.1:<ephemeral port>` and forwards to its first server
 *   group (`serverGroupIds[0]`). Backend address: the instance's PrimaryIpAddress (sandbox mode: a
 *   loopback address of its own) and the backend's port; an address outside 127.0.0.0/8 (no
 *   sandbox) is never contacted: the backend is unreachable.
 * - Candidates: backends with status `Available` or `Configuring`, weight > 0 when the group's
 *   scheduler honours weights (see {@link SCHEDULERS}), and, with health checks enabled, health
 *   `Healthy` (`Initial` = not yet passed `healthyThreshold` checks: not routed; ALB and CLB route
 *   only to backends declared healthy). ALB fails open: when every candidate is `Unhealthy`, ALB
 *   routes to them anyway by the scheduler ("ALB health checks"). None left: 503.
 * - No retry: a failed upstream connection or a connection the backend resets before answering is
 *   a 502 to the client.
 * - Keep-alive pinning: each client connection is pinned to the backend its first request went to,
 *   over one upstream keep-alive connection of its own, as long as that upstream connection lives
 *   (a layer-7 load balancer with upstream keep-alive). Weight 0 thus stops NEW connections only;
 *   when the backend closes the upstream connection (`Connection: close`, idle timeout, process
 *   gone) the pin ends and the client connection's next request is scheduled afresh. A backend
 *   removed from the group or declared `Unhealthy` loses its pins at once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type {
  LbBackendRecord,
  LoadBalancerRecord,
  LoadBalancerState,
  ServerGroupRecord,
} from './loadbalancers.js';
import type { Scheduler } from './scheduler.js';

/** How a scheduler picks a backend; `weighted` = weight 0 excludes a backend (drains it). */
export interface SchedulerModel {
  pick: 'wrr' | 'wlc' | 'rr' | 'hash';
  weighted: boolean;
  /** For `hash`: what is hashed. */
  key?: 'sourceIp' | 'fourTuple' | 'url';
}

/**
 * The schedulers, lower case (CLB listener `Scheduler`, ALB server group `Scheduler`): `wrr`
 * weighted round robin, `wlc` weighted least connections, `rr` round robin (weights ignored),
 * `sch` source IP hash, `tch` four-tuple hash, `qch` QUIC ID hash (no QUIC here: source IP),
 * `uch` URL hash. Hash schedulers and `rr` ignore weights: weight 0 does not drain a backend under
 * them (the issue's "weights mean nothing under some schedulers"; the caller must remove it).
 * An unknown scheduler behaves as `wrr`.
 */
export const SCHEDULERS: Readonly<Record<string, SchedulerModel>> = {
  wrr: { pick: 'wrr', weighted: true },
  wlc: { pick: 'wlc', weighted: true },
  rr: { pick: 'rr', weighted: false },
  sch: { pick: 'hash', weighted: false, key: 'sourceIp' },
  tch: { pick: 'hash', weighted: false, key: 'fourTuple' },
  qch: { pick: 'hash', weighted: false, key: 'sourceIp' },
  uch: { pick: 'hash', weighted: false, key: 'url' },
};

/** The model of a group's scheduler ({@link SCHEDULERS}; unknown = wrr). */
export function schedulerModel(scheduler: string): SchedulerModel {
  return SCHEDULERS[scheduler.toLowerCase()] ?? (SCHEDULERS['wrr'] as SchedulerModel);
}

/** Whether the data plane may send a NEW connection to `b` (before health). */
export function eligible(g: ServerGroupRecord, b: LbBackendRecord): boolean {
  if (b.status !== 'Available' && b.status !== 'Configuring') return false;
  return b.weight > 0 || !schedulerModel(g.scheduler).weighted;
}

/**
 * The backends a new connection may go to: {@link eligible} ones that are `Healthy` (health
 * checks on), all eligible ones with health checks off; ALB fails open to all eligible ones when
 * every one of them is `Unhealthy`.
 */
export function candidates(g: ServerGroupRecord): LbBackendRecord[] {
  const ok = g.backends.filter((b) => eligible(g, b));
  if (!g.healthCheck.enabled) return ok;
  const healthy = ok.filter((b) => b.health === 'Healthy');
  if (healthy.length > 0) return healthy;
  if (g.type === 'ALB' && ok.length > 0 && ok.every((b) => b.health === 'Unhealthy')) return ok;
  return [];
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const bkey = (b: LbBackendRecord): string => `${b.instanceId}:${b.port}`;

/** A client connection's pin: its backend and the one upstream keep-alive connection to it. */
interface Pin {
  group: ServerGroupRecord;
  backend: LbBackendRecord;
  agent: Agent;
  upstream?: Socket;
}

/** Resolves an instance to its private IP address. */
export type ResolveIp = (regionId: string, instanceId: string) => string | undefined;

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

/** Per-group scheduling state (round-robin position, smooth WRR current weights). */
interface GroupSched {
  rr: number;
  current: Map<string, number>;
}

/**
 * The listeners and health checkers of every load balancer. Not started by itself: {@link start}
 * opens one load balancer's listener and starts its groups' health checks.
 */
export class LbDataPlane {
  private readonly servers = new Map<string, Server>();
  private readonly checking = new Set<string>();
  private readonly sched = new Map<string, GroupSched>();
  /** Live upstream connections per `groupId/instanceId:port` (wlc, tests). */
  private readonly active = new Map<string, number>();
  private readonly pins = new Map<Socket, Pin>();
  private readonly watched = new WeakSet<Socket>();
  private generation = 0;
  private closing: Promise<void> = Promise.resolve();

  /**
   * @param host listen address of the listeners (the emulator's, `127.0.0.1`).
   */
  constructor(
    private readonly lbs: LoadBalancerState,
    private readonly scheduler: Scheduler,
    resolveIp: ResolveIp,
    private readonly host = '127.0.0.1',
  ) {
    // All traffic stays on loopback: a backend whose address is not in 127.0.0.0/8 (instances
    // outside sandbox mode have 172.16.x.y) is unreachable — its checks fail, requests get 502.
    this.resolveIp = (regionId, instanceId) => {
      const ip = resolveIp(regionId, instanceId);
      return ip?.startsWith('127.') ? ip : undefined;
    };
  }

  private readonly resolveIp: ResolveIp;

  /**
   * Opens `lb`'s listener on an ephemeral port of {@link host} (recorded as `lb.address` /
   * `lb.port`) and starts the health checks of its groups. Idempotent.
   * @returns `http://address:port`. @throws Error when the port cannot be bound.
   */
  async start(lb: LoadBalancerRecord): Promise<string> {
    if (!this.servers.has(lb.loadBalancerId)) {
      const server = createServer((req, res) => this.handle(lb, req, res));
      server.keepAliveTimeout = 15_000;
      this.servers.set(lb.loadBalancerId, server);
      const port = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, this.host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
      server.unref();
      lb.address = this.host;
      lb.port = port;
    }
    for (const id of lb.serverGroupIds) this.startChecks(id);
    return `http://${lb.address}:${lb.port}`;
  }

  /** Live upstream connections to a backend (what `wlc` counts). */
  connections(serverGroupId: string, instanceId: string, port: number): number {
    return this.active.get(`${serverGroupId}/${instanceId}:${port}`) ?? 0;
  }

  /**
   * Closes every listener and client connection, drops pins and ends health checks (emulator
   * stop / reset). Resolves when the listeners are closed.
   */
  async closeAll(): Promise<void> {
    this.generation++;
    this.checking.clear();
    this.sched.clear();
    for (const p of this.pins.values()) p.agent.destroy();
    this.pins.clear();
    this.active.clear();
    const servers = [...this.servers.values()];
    this.servers.clear();
    const closing = Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
    this.closing = Promise.all([this.closing, closing]).then(() => undefined);
    await this.closing;
  }

  /**
   * Picks a backend of `g` for a new connection by the group's scheduler, or undefined when
   * there is no candidate ({@link candidates}).
   */
  pick(
    g: ServerGroupRecord,
    ctx: { sourceIp: string; sourcePort: number; url: string },
  ): LbBackendRecord | undefined {
    const list = candidates(g);
    if (list.length === 0) return undefined;
    const m = schedulerModel(g.scheduler);
    let st = this.sched.get(g.serverGroupId);
    if (!st) {
      st = { rr: 0, current: new Map() };
      this.sched.set(g.serverGroupId, st);
    }
    if (m.pick === 'rr') return list[st.rr++ % list.length];
    if (m.pick === 'hash') {
      const k =
        m.key === 'url'
          ? ctx.url
          : m.key === 'fourTuple'
            ? `${ctx.sourceIp}:${ctx.sourcePort}`
            : ctx.sourceIp;
      return list[fnv1a(k) % list.length];
    }
    // A fail-open ALB may route to weight-less candidates only under unweighted schedulers;
    // weighted ones never see weight 0 here (eligible()).
    if (m.pick === 'wlc') {
      let best: LbBackendRecord | undefined;
      let bestScore = Infinity;
      for (const b of list) {
        const score = (this.connections(g.serverGroupId, b.instanceId, b.port) + 1) / b.weight;
        if (score < bestScore) {
          best = b;
          bestScore = score;
        }
      }
      return best;
    }
    // Smooth weighted round robin (as nginx): each pick adds every weight to its current value,
    // takes the largest and subtracts the total from it.
    let total = 0;
    let best: LbBackendRecord | undefined;
    let bestCur = -Infinity;
    for (const b of list) {
      const cur = (st.current.get(bkey(b)) ?? 0) + b.weight;
      st.current.set(bkey(b), cur);
      total += b.weight;
      if (cur > bestCur) {
        best = b;
        bestCur = cur;
      }
    }
    if (best) st.current.set(bkey(best), bestCur - total);
    return best;
  }

  private group(lb: LoadBalancerRecord): ServerGroupRecord | undefined {
    const id = lb.serverGroupIds[0];
    return id === undefined ? undefined : this.lbs.groups.get(id);
  }

  private dropPin(sock: Socket): void {
    const p = this.pins.get(sock);
    if (!p) return;
    this.pins.delete(sock);
    p.agent.destroy();
  }

  /** The client connection's live pin, or a new one; undefined = no backend (503). */
  private pinFor(g: ServerGroupRecord, req: IncomingMessage): Pin | undefined {
    const sock = req.socket;
    const p = this.pins.get(sock);
    if (p) {
      // Kept while the backend is still in the group and not declared Unhealthy (unless a
      // fail-open ALB still routes to it); weight 0 does not end it.
      const b = p.backend;
      const keep =
        p.group === g &&
        g.backends.includes(b) &&
        (b.health !== 'Unhealthy' || !g.healthCheck.enabled || candidates(g).includes(b));
      if (keep) return p;
      this.dropPin(sock);
    }
    const b = this.pick(g, {
      sourceIp: sock.remoteAddress ?? '',
      sourcePort: sock.remotePort ?? 0,
      url: req.url ?? '/',
    });
    if (!b) return undefined;
    const pin: Pin = {
      group: g,
      backend: b,
      agent: new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 }),
    };
    this.pins.set(sock, pin);
    if (!this.watched.has(sock)) {
      this.watched.add(sock);
      sock.once('close', () => this.dropPin(sock));
    }
    return pin;
  }

  private handle(lb: LoadBalancerRecord, req: IncomingMessage, res: ServerResponse): void {
    const fail = (status: number, why: string): void => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(status, {
        'content-type': 'text/plain; charset=utf-8',
        'x-emulator-lb': lb.loadBalancerId,
      });
      res.end(`${status} ${why}\n`);
    };
    const g = this.group(lb);
    const pin = g ? this.pinFor(g, req) : undefined;
    if (!g || !pin) {
      req.resume();
      return fail(503, 'no backend available');
    }
    const ip = this.resolveIp(lb.regionId, pin.backend.instanceId);
    if (!ip) {
      req.resume();
      this.dropPin(req.socket);
      return fail(502, 'backend unreachable');
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    }
    const xff = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] =
      `${typeof xff === 'string' ? `${xff}, ` : ''}${req.socket.remoteAddress ?? ''}`;
    const key = `${g.serverGroupId}/${bkey(pin.backend)}`;
    const clientSock = req.socket;
    const up = request(
      { host: ip, port: pin.backend.port, method: req.method, path: req.url, headers, agent: pin.agent },
      (ures) => {
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(ures.headers)) {
          if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
        }
        res.writeHead(ures.statusCode ?? 502, ures.statusMessage, out);
        ures.pipe(res);
        ures.on('error', () => res.destroy());
      },
    );
    up.on('socket', (s: Socket) => {
      if (pin.upstream === s) return;
      pin.upstream = s;
      this.active.set(key, (this.active.get(key) ?? 0) + 1);
      s.once('close', () => {
        this.active.set(key, Math.max(0, (this.active.get(key) ?? 1) - 1));
        // The backend closed the upstream connection: the pin ends with it.
        if (this.pins.get(clientSock) === pin && pin.upstream === s) this.dropPin(clientSock);
      });
    });
    up.on('error', () => {
      if (this.pins.get(clientSock) === pin) this.dropPin(clientSock);
      fail(502, 'bad gateway');
    });
    req.pipe(up);
  }

  private startChecks(serverGroupId: string): void {
    if (this.checking.has(serverGroupId)) return;
    this.checking.add(serverGroupId);
    const gen = this.generation;
    const tick = (): void => {
      if (gen !== this.generation || !this.checking.has(serverGroupId)) return;
      const g = this.lbs.groups.get(serverGroupId);
      if (!g) {
        this.checking.delete(serverGroupId);
        return;
      }
      void this.checkOnce(g).finally(() => {
        if (gen !== this.generation) return;
        this.scheduler.after(Math.max(1, g.healthCheck.intervalSeconds) * 1000, tick);
      });
    };
    tick();
  }

  /**
   * One round of health checks of `g`: GET `path` on each backend (2xx/3xx = ok) within
   * `timeoutSeconds`; `healthyThreshold` consecutive oks → `Healthy`, `unhealthyThreshold`
   * consecutive failures → `Unhealthy`. `forcedHealth` wins. A backend of weight 0 under a
   * weighted scheduler is not checked (ALB/CLB: weight-0 servers take no part in health checks)
   * and starts over from `Initial` (its checks resume when it gets a weight again).
   */
  async checkOnce(g: ServerGroupRecord): Promise<void> {
    const hc = g.healthCheck;
    const weighted = schedulerModel(g.scheduler).weighted;
    await Promise.all(
      g.backends.map(async (b) => {
        if (b.forcedHealth !== undefined) {
          b.health = b.forcedHealth;
          return;
        }
        if (!hc.enabled) return;
        if (weighted && b.weight === 0) {
          b.health = 'Initial';
          b.healthyStreak = 0;
          b.unhealthyStreak = 0;
          return;
        }
        const ok = await this.probe(g.regionId, b, hc.path, hc.timeoutSeconds);
        if (b.forcedHealth !== undefined) {
          b.health = b.forcedHealth;
          return;
        }
        if (ok) {
          b.unhealthyStreak = 0;
          b.healthyStreak++;
          if (b.healthyStreak >= hc.healthyThreshold) b.health = 'Healthy';
        } else {
          b.healthyStreak = 0;
          b.unhealthyStreak++;
          if (b.unhealthyStreak >= hc.unhealthyThreshold) b.health = 'Unhealthy';
        }
      }),
    );
  }

  private probe(
    regionId: string,
    b: LbBackendRecord,
    path: string,
    timeoutSeconds: number,
  ): Promise<boolean> {
    const ip = this.resolveIp(regionId, b.instanceId);
    if (!ip) return Promise.resolve(false);
    // Real milliseconds: the model timeout scaled, at least 200 ms so a loaded loopback server
    // is not declared unhealthy by scheduling jitter at small time scales.
    const ms = Math.max(200, Math.round(timeoutSeconds * 1000 * this.scheduler.timeScale));
    return new Promise((resolve) => {
      const req = request(
        {
          host: ip,
          port: b.port,
          method: 'GET',
          path,
          agent: false,
          timeout: ms,
          headers: { connection: 'close' },
        },
        (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          resolve(code >= 200 && code < 400);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(false));
      req.end();
    });
  }
}
