/**
 * The emulator's load-balancer data plane (lb-proxy.ts) with real HTTP: backends are real servers
 * listening on the sandboxed instances' own loopback addresses, requests go through the load
 * balancer's listener.
 *  - wrr spreads new connections by weight; weight 0 stops NEW connections, a keep-alive client
 *    connection opened before keeps going to its backend;
 *  - health checks: `Initial` gets no traffic, `healthyThreshold` oks → Healthy, `unhealthyThreshold`
 *    failures → Unhealthy (out of rotation), driven by the timer too;
 *  - 503 when no backend is available (CLB), ALB fails open when all are Unhealthy;
 *  - 502 (no retry) when the backend process is gone;
 *  - an ALB weight change is `Configuring` for a while and traffic follows the old weight until it
 *    applies;
 *  - the control API creates a load balancer (fixed IDs optional), lists it, forces health; stop
 *    closes the listener.
 */
import { spawn } from 'node:child_process';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EmulatorCore } from '../../../src/emulator/core.js';
import { startEmulator, type Emulator } from '../../../src/emulator/index.js';
import { LbDataPlane } from '../../../src/emulator/lb-proxy.js';
import {
  DEFAULT_HEALTH_CHECK,
  LoadBalancerState,
  type ServerGroupRecord,
} from '../../../src/emulator/loadbalancers.js';
import { Scheduler } from '../../../src/emulator/scheduler.js';
import { claimLoopbackNet, type LoopbackNetClaim } from '../../../src/emulator/sandbox.js';
import { fleetIds, fleetSeed } from '../../harness/fast.js';

const REGION = 'cn-hangzhou';

interface Backend {
  name: string;
  port: number;
  hits: number;
  connections: number;
  healthCode: number;
  server: Server;
}

/** A backend server on `ip`: answers its name; `/healthz` answers `healthCode`. */
async function backend(ip: string, name: string): Promise<Backend> {
  const b = { name, port: 0, hits: 0, connections: 0, healthCode: 200 } as Backend;
  b.server = createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(b.healthCode).end('hc');
      return;
    }
    b.hits++;
    res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
  });
  b.server.on('connection', () => b.connections++);
  await new Promise<void>((r) => b.server.listen(0, ip, () => r()));
  b.port = (b.server.address() as AddressInfo).port;
  return b;
}

function closeServer(s: Server): Promise<void> {
  return new Promise((r) => {
    s.close(() => r());
    s.closeAllConnections();
  });
}

/** GET through `agent` (default: a new connection). */
function get(url: string, agent?: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function bodies(url: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await get(url)).body);
  return out;
}

const count = (list: string[], v: string) => list.filter((x) => x === v).length;

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('load balancer data plane', () => {
  let net: LoopbackNetClaim;
  let core: EmulatorCore;
  const ids = fleetIds('lb', 1, 3);
  let ips: string[];
  const servers: Server[] = [];

  beforeAll(async () => {
    net = await claimLoopbackNet();
  });
  afterAll(async () => {
    await net.release();
  });
  afterEach(async () => {
    core.shutdown();
    await core.lbPlane.closeAll();
    await Promise.all(servers.splice(0).map(closeServer));
  });

  async function setup(timeScale = 0.01): Promise<Backend[]> {
    core = new EmulatorCore({ timeScale, seed: fleetSeed('lb', 3), sandbox: { loopbackNet: net.net } });
    ips = core.listInstances(REGION).map((i) => i.privateIpAddress);
    const bs = await Promise.all(ips.map((ip, k) => backend(ip, `b${k}`)));
    servers.push(...bs.map((b) => b.server));
    return bs;
  }

  const forceHealthy = (g: ServerGroupRecord) => {
    for (const b of g.backends) core.forceBackendHealth(g.serverGroupId, b.instanceId, b.port, 'Healthy');
  };

  it('wrr: new connections by weight; weight 0 stops new connections, a keep-alive one stays', async () => {
    const [a, b] = await setup();
    const { group: g, url } = await core.createLoadBalancer({
      type: 'CLB',
      regionId: REGION,
      backends: [
        { instanceId: ids[0] as string, port: a!.port, weight: 100 },
        { instanceId: ids[1] as string, port: b!.port, weight: 50 },
      ],
    });
    forceHealthy(g);
    const first = await bodies(url, 30);
    expect([count(first, 'b0'), count(first, 'b1')]).toEqual([20, 10]);

    // a keep-alive client connection served by b1 before its weight goes to 0
    let agent: Agent | undefined;
    for (let i = 0; i < 3 && !agent; i++) {
      const ka = new Agent({ keepAlive: true, maxSockets: 1 });
      if ((await get(url, ka)).body === 'b1') agent = ka;
      else ka.destroy();
    }
    if (!agent) throw new Error('no keep-alive connection reached b1 in 3 tries');
    const b1Connections = b!.connections;
    core.loadBalancers.setWeights(g, [{ instanceId: ids[1] as string, port: b!.port, weight: 0 }]);
    expect(await bodies(url, 10)).toEqual(Array(10).fill('b0'));
    for (let i = 0; i < 5; i++) expect((await get(url, agent)).body).toBe('b1');
    // …over the same upstream connection
    expect(b!.connections).toBe(b1Connections);
    agent.destroy();
  });

  it('health checks: Initial gets no traffic; healthy/unhealthy thresholds; timer-driven', async () => {
    const [a, b] = await setup();
    const { group: g, url } = await core.createLoadBalancer({
      type: 'CLB',
      regionId: REGION,
      // checks by hand below (checkOnce); the timer's first round runs at once
      healthCheck: { intervalSeconds: 3600, healthyThreshold: 3, unhealthyThreshold: 2 },
      backends: [
        { instanceId: ids[0] as string, port: a!.port },
        { instanceId: ids[1] as string, port: b!.port },
      ],
    });
    const [ba, bb] = g.backends;
    await until(() => ba!.healthyStreak === 1 && bb!.healthyStreak === 1, 'the first round');
    expect(g.backends.map((x) => x.health)).toEqual(['Initial', 'Initial']);
    expect(await get(url)).toMatchObject({ status: 503 });
    await core.lbPlane.checkOnce(g);
    expect(ba!.health).toBe('Initial');
    expect((await get(url)).status).toBe(503);
    await core.lbPlane.checkOnce(g);
    expect(g.backends.map((x) => x.health)).toEqual(['Healthy', 'Healthy']);
    expect((await bodies(url, 4)).sort()).toEqual(['b0', 'b0', 'b1', 'b1']);

    a!.healthCode = 500;
    await core.lbPlane.checkOnce(g);
    expect([ba!.health, ba!.unhealthyStreak]).toEqual(['Healthy', 1]);
    expect(count(await bodies(url, 4), 'b0')).toBe(2);
    await core.lbPlane.checkOnce(g);
    expect(ba!.health).toBe('Unhealthy');
    expect(await bodies(url, 4)).toEqual(Array(4).fill('b1'));

    // the timer drives the same checks (2 s model interval × 0.01)
    a!.healthCode = 200;
    const second = await core.createLoadBalancer({
      type: 'CLB',
      regionId: REGION,
      backends: [{ instanceId: ids[0] as string, port: a!.port }],
    });
    await until(() => second.group.backends[0]!.health === 'Healthy', 'healthy by the timer');
    expect((await get(second.url)).body).toBe('b0');
  });

  it('503 when nothing is available (CLB); ALB fails open when every backend is Unhealthy', async () => {
    const [a] = await setup();
    const clb = await core.createLoadBalancer({
      type: 'CLB',
      regionId: REGION,
      backends: [{ instanceId: ids[0] as string, port: a!.port, weight: 0 }],
    });
    forceHealthy(clb.group);
    expect(await get(clb.url)).toMatchObject({ status: 503 });
    core.forceBackendHealth(clb.group.serverGroupId, ids[0] as string, a!.port, 'Unhealthy');
    core.loadBalancers.setWeights(clb.group, [{ instanceId: ids[0] as string, port: a!.port, weight: 100 }]);
    expect(await get(clb.url)).toMatchObject({ status: 503 });

    const alb = await core.createLoadBalancer({
      type: 'ALB',
      regionId: REGION,
      backends: [{ instanceId: ids[0] as string, port: a!.port }],
    });
    core.forceBackendHealth(alb.group.serverGroupId, ids[0] as string, a!.port, 'Unhealthy');
    expect(await get(alb.url)).toMatchObject({ status: 200, body: 'b0' });
    core.forceBackendHealth(alb.group.serverGroupId, ids[0] as string, a!.port, 'Initial');
    expect(await get(alb.url)).toMatchObject({ status: 503 });
  });

  it('502, no retry to another backend, when the backend process is gone', async () => {
    const [, b] = await setup();
    const port = b!.port + 1;
    const proc = spawn('python3', ['-m', 'http.server', '--bind', ips[0] as string, String(port)], {
      stdio: 'ignore',
    });
    try {
      const { group: g, url } = await core.createLoadBalancer({
        type: 'CLB',
        regionId: REGION,
        scheduler: 'rr',
        backends: [
          { instanceId: ids[0] as string, port },
          { instanceId: ids[1] as string, port: b!.port },
        ],
      });
      forceHealthy(g);
      const probe = async () => {
        for (let i = 0; i < 100; i++) {
          const statuses = [(await get(url)).status, (await get(url)).status].sort();
          if (statuses[0] === 200 && statuses[1] === 200) return;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error('python backend never answered');
      };
      await probe();
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
      const answers = await Promise.all([0, 1, 2, 3].map(async () => (await get(url)).status));
      expect(answers.sort()).toEqual([200, 200, 502, 502]);
    } finally {
      proc.kill('SIGKILL');
    }
  });

  it('ALB: a weight change is Configuring until it applies; traffic follows the old weight meanwhile', async () => {
    const [a, b] = await setup(0.5); // 3 s model apply delay = 1.5 s
    const { group: g, url } = await core.createLoadBalancer({
      type: 'ALB',
      regionId: REGION,
      backends: [
        { instanceId: ids[0] as string, port: a!.port },
        { instanceId: ids[1] as string, port: b!.port },
      ],
    });
    forceHealthy(g);
    core.loadBalancers.setWeights(g, [{ instanceId: ids[0] as string, port: a!.port, weight: 0 }]);
    expect(g.backends.map((x) => x.status)).toEqual(['Configuring', 'Available']);
    const during = await bodies(url, 4);
    expect(g.backends[0]!.status).toBe('Configuring'); // the window was still open
    expect(count(during, 'b0')).toBe(2);
    await until(() => g.backends[0]!.status === 'Available', 'the change to apply');
    expect(g.backends[0]!.weight).toBe(0);
    expect(await bodies(url, 4)).toEqual(Array(4).fill('b1'));
  });
});

describe('load balancer schedulers (pick)', () => {
  const group = (scheduler: string, weights: number[]): ServerGroupRecord => ({
    type: 'CLB',
    regionId: REGION,
    serverGroupId: `rsp-${scheduler}00`,
    name: 'g',
    loadBalancerId: 'lb-x0000',
    scheduler,
    healthCheck: { ...DEFAULT_HEALTH_CHECK, enabled: false },
    backends: weights.map((weight, k) => ({
      instanceId: `i-s${k}`,
      port: 80,
      weight,
      status: 'Available',
      health: 'Initial',
      healthyStreak: 0,
      unhealthyStreak: 0,
    })),
  });
  const plane = () =>
    new LbDataPlane(new LoadBalancerState(new Scheduler(1)), new Scheduler(1), () => undefined);
  const picks = (p: LbDataPlane, g: ServerGroupRecord, n: number, ctx = (i: number) => `10.0.0.${i}`) =>
    Array.from(
      { length: n },
      (_, i) => p.pick(g, { sourceIp: ctx(i), sourcePort: 1000 + i, url: `/p${i}` })?.instanceId,
    );

  it('rr and the hash schedulers ignore weights (weight 0 does not drain); wrr and wlc honour them', () => {
    expect(picks(plane(), group('rr', [100, 0]), 4)).toEqual(['i-s0', 'i-s1', 'i-s0', 'i-s1']);
    const sch = picks(plane(), group('sch', [100, 0]), 20);
    expect(new Set(sch)).toEqual(new Set(['i-s0', 'i-s1']));
    // the same source IP always lands on the same backend
    expect(new Set(picks(plane(), group('sch', [100, 100]), 10, () => '10.9.9.9')).size).toBe(1);
    expect(new Set(picks(plane(), group('wrr', [100, 0]), 10))).toEqual(new Set(['i-s0']));
    expect(new Set(picks(plane(), group('wlc', [0, 100]), 10))).toEqual(new Set(['i-s1']));
    // wlc with no live connections: (0 + 1) / weight, the heavier wins
    expect(picks(plane(), group('wlc', [50, 100]), 1)).toEqual(['i-s1']);
  });
});

describe('load balancers through the control API', () => {
  let emu: Emulator;
  let srv: Backend;
  const ids = fleetIds('lbc', 1, 2);
  beforeAll(async () => {
    emu = await startEmulator({ seed: fleetSeed('lbc', 2), sandbox: true, timeScale: 0.01 });
    const [inst] = await emu.control.listInstances(REGION);
    srv = await backend(inst!.privateIpAddress, 'web');
  });
  afterAll(async () => {
    await emu?.stop();
    if (srv) await closeServer(srv.server);
  });

  it('creates an ALB in front of a sandboxed instance, lists it, forces health; stop closes it', async () => {
    const created = await emu.control.createLoadBalancer({
      type: 'ALB',
      regionId: REGION,
      backends: [{ instanceId: ids[0] as string, port: srv.port, weight: 100 }],
    });
    expect(created).toMatchObject({
      loadBalancerId: expect.stringMatching(/^alb-/),
      listenerId: expect.stringMatching(/^lsn-/),
      serverGroupId: expect.stringMatching(/^sgp-/),
      url: `http://127.0.0.1:${created.port}`,
    });
    // healthy after 3 checks (2 s model interval), then it serves
    for (let i = 0; ; i++) {
      const [lb] = await emu.control.listLoadBalancers();
      if (lb?.groups[0]?.backends[0]?.health === 'Healthy') break;
      if (i > 500) throw new Error('never healthy');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await get(created.url)).toEqual({ status: 200, body: 'web' });
    const [lb] = await emu.control.listLoadBalancers();
    expect(lb).toMatchObject({ type: 'ALB', url: created.url, loadBalancerId: created.loadBalancerId });

    await emu.control.forceBackendHealth(created.serverGroupId, ids[0] as string, srv.port, 'Initial');
    expect((await get(created.url)).status).toBe(503);
    await expect(
      emu.control.forceBackendHealth(created.serverGroupId, 'i-nope', srv.port, 'Healthy'),
    ).rejects.toThrow(/404/);
    await emu.control.forceBackendHealth(created.serverGroupId, ids[0] as string, srv.port, null);
    // fixed IDs (npm run local's demo ALB); a taken one is refused
    const fixed = {
      type: 'CLB' as const,
      regionId: REGION,
      loadBalancerId: 'lb-fixed01',
      serverGroupId: 'rsp-fixed01',
    };
    expect(await emu.control.createLoadBalancer(fixed)).toMatchObject({ serverGroupId: 'rsp-fixed01' });
    await expect(emu.control.createLoadBalancer(fixed)).rejects.toThrow(
      /400 loadBalancerId lb-fixed01 already exists/,
    );

    await emu.stop();
    await expect(get(created.url)).rejects.toThrow(/ECONNREFUSED/);
  });
});
