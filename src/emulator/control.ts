import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { EmulatorCore, ExecutionFilter, InstanceUpdate } from './core.js';
import type { FaultConfig, FaultPatch, ScriptedError } from './faults.js';
import type { InvocationScriptRule } from './invocations.js';
import type { CreateLoadBalancer } from './loadbalancers.js';
import type { Seed, SeedInstance } from './seed.js';

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(text);
}

type Route = (
  core: EmulatorCore,
  m: string[],
  q: URLSearchParams,
  body: () => Promise<unknown>,
) => Promise<unknown> | unknown;

const routes: Array<[string, RegExp, Route]> = [
  ['GET', /^\/healthz$/, () => ({ ok: true })],
  ['POST', /^\/seed$/, async (c, _m, _q, b) => void c.seed(((await b()) ?? {}) as Seed)],
  ['POST', /^\/reset$/, (c) => void c.reset()],
  [
    'GET',
    /^\/executions$/,
    (c, _m, q) => {
      const f: ExecutionFilter = {};
      for (const k of ['tagKey', 'tagValue', 'templateName', 'status', 'regionId'] as const) {
        const v = q.get(k);
        if (v !== null) f[k] = v;
      }
      return c.listExecutions(f);
    },
  ],
  [
    'GET',
    /^\/executions\/([^/]+)$/,
    (c, m) => {
      const e = c.executions.get(decodeURIComponent(m[1] ?? ''));
      if (!e) throw new HttpError(404, 'execution not found');
      return e;
    },
  ],
  ['GET', /^\/request-counts$/, (c) => c.counts()],
  ['DELETE', /^\/request-counts$/, (c) => void c.requestCounts.clear()],
  // RAM policy (ram.ts): PUT replaces it (400 naming the problem when invalid), DELETE = allow all.
  ['GET', /^\/ram-policy$/, (c) => c.ram.get() ?? null],
  ['PUT', /^\/ram-policy$/, async (c, _m, _q, b) => void c.ram.set(await b())],
  ['DELETE', /^\/ram-policy$/, (c) => void c.ram.set(undefined)],
  // Modelled-time scale (scheduler.ts) for timers scheduled from now on: `{ "timeScale": 0.5 }`.
  ['GET', /^\/time-scale$/, (c) => ({ timeScale: c.scheduler.timeScale })],
  [
    'PUT',
    /^\/time-scale$/,
    async (c, _m, _q, b) => {
      const v = ((await b()) as { timeScale?: unknown } | undefined)?.timeScale;
      if (typeof v !== 'number' || !(v > 0) || v > 10)
        throw new HttpError(400, 'timeScale must be a number in (0, 10]');
      c.scheduler.timeScale = v;
    },
  ],
  ['GET', /^\/faults$/, (c) => c.faults.get()],
  ['PUT', /^\/faults$/, async (c, _m, _q, b) => void c.setFaults(((await b()) ?? {}) as FaultConfig)],
  ['PATCH', /^\/faults$/, async (c, _m, _q, b) => c.patchFaults(((await b()) ?? {}) as FaultPatch)],
  ['DELETE', /^\/faults$/, (c) => void c.faults.clear()],
  [
    'POST',
    /^\/faults\/rules$/,
    async (c, _m, _q, b) => {
      const rule = await b();
      if (typeof rule !== 'object' || rule === null || Array.isArray(rule))
        throw new HttpError(400, 'body must be one fault rule (ScriptedError)');
      return { id: c.faults.addRule(rule as ScriptedError) };
    },
  ],
  [
    'DELETE',
    /^\/faults\/rules\/([^/]+)$/,
    (c, m) => ({ removed: c.faults.removeRule(decodeURIComponent(m[1] ?? '')) }),
  ],
  ['GET', /^\/faults\/holds$/, (c) => c.faults.holds()],
  [
    'POST',
    /^\/faults\/holds\/([^/]+)\/release$/,
    (c, m) => ({ released: c.faults.release(decodeURIComponent(m[1] ?? '')) }),
  ],
  ['GET', /^\/regions\/([^/]+)\/instances$/, (c, m) => c.listInstances(m[1] ?? '')],
  [
    'POST',
    /^\/regions\/([^/]+)\/instances$/,
    async (c, m, _q, b) => {
      const list = await b();
      if (!Array.isArray(list)) throw new HttpError(400, 'body must be an array of instances');
      return c.addInstances(m[1] ?? '', list as SeedInstance[]);
    },
  ],
  [
    'PATCH',
    /^\/regions\/([^/]+)\/instances\/([^/]+)$/,
    async (c, m, _q, b) => {
      const i = c.updateInstance(m[1] ?? '', m[2] ?? '', ((await b()) ?? {}) as InstanceUpdate);
      if (!i) throw new HttpError(404, 'instance not found');
      return i;
    },
  ],
  [
    'POST',
    /^\/regions\/([^/]+)\/instances\/([^/]+)\/release$/,
    (c, m) => {
      const i = c.releaseInstance(m[1] ?? '', m[2] ?? '');
      if (!i) throw new HttpError(404, 'instance not found');
      return i;
    },
  ],
  [
    'GET',
    /^\/regions\/([^/]+)\/package-states$/,
    (c, m, q) => c.packageStates(m[1] ?? '', q.get('instanceId') ?? undefined),
  ],
  [
    'DELETE',
    /^\/regions\/([^/]+)\/instances\/([^/]+)\/package-states\/([^/]+)$/,
    (c, m) => ({ deleted: c.deletePackageState(m[1] ?? '', m[2] ?? '', decodeURIComponent(m[3] ?? '')) }),
  ],
  [
    'GET',
    /^\/regions\/([^/]+)\/patch-states$/,
    (c, m, q) => c.patchStates(m[1] ?? '', q.get('instanceId') ?? undefined),
  ],
  [
    'POST',
    /^\/invocation-scripts$/,
    async (c, _m, _q, b) => void c.scriptInvocation(((await b()) ?? {}) as InvocationScriptRule),
  ],
  ['DELETE', /^\/invocation-scripts$/, (c) => void (c.invocations.rules.length = 0)],
  ['GET', /^\/invocations$/, (c) => c.listInvocations()],
  // Load balancers (loadbalancers.ts, lb-proxy.ts): create one with its data-plane listener, list
  // them with groups, backends and health, force a backend's health (`{ "health": null }` clears).
  [
    'POST',
    /^\/load-balancers$/,
    async (c, _m, _q, b) => {
      const body = (await b()) as CreateLoadBalancer | undefined;
      if (!body || (body.type !== 'ALB' && body.type !== 'CLB') || typeof body.regionId !== 'string')
        throw new HttpError(
          400,
          'body must be { type: "ALB" | "CLB", regionId, backends?, scheduler?, healthCheck? }',
        );
      const { lb, group, url } = await c.createLoadBalancer(body);
      return {
        loadBalancerId: lb.loadBalancerId,
        listenerId: lb.listenerId,
        serverGroupId: group.serverGroupId,
        address: lb.address,
        port: lb.port,
        url,
      };
    },
  ],
  [
    'GET',
    /^\/load-balancers$/,
    (c) =>
      c.loadBalancers.list().map(({ lb, groups }) => ({
        ...lb,
        ...(lb.port !== undefined ? { url: `http://${lb.address}:${lb.port}` } : {}),
        groups,
      })),
  ],
  [
    'PUT',
    /^\/server-groups\/([^/]+)\/backends\/([^/]+)\/(\d+)\/health$/,
    async (c, m, _q, b) => {
      const h = ((await b()) as { health?: unknown } | undefined)?.health;
      if (h !== null && h !== 'Initial' && h !== 'Healthy' && h !== 'Unhealthy')
        throw new HttpError(400, 'health must be "Initial", "Healthy", "Unhealthy" or null');
      const ok = c.forceBackendHealth(
        decodeURIComponent(m[1] ?? ''),
        decodeURIComponent(m[2] ?? ''),
        Number(m[3]),
        h,
      );
      if (!ok) throw new HttpError(404, 'server group or backend not found');
    },
  ],
  ['GET', /^\/snapshots$/, (c, _m, q) => c.listSnapshots(q.get('regionId') ?? undefined)],
];

/**
 * Creates the control API server (plain JSON over HTTP, no signatures, separate port). Routes:
 * `GET /healthz`, `POST /seed`, `POST /reset`, `GET /executions[?tagKey&tagValue&templateName&status&regionId]`,
 * `GET /executions/:id`, `GET|DELETE /request-counts`, `GET|PUT|PATCH|DELETE /faults`
 * (PATCH merges a `FaultPatch` without re-seeding and answers the resulting config),
 * `POST /faults/rules` (one `ScriptedError` appended → `{ id }`), `DELETE /faults/rules/:id`
 * (→ `{ removed }`; its held requests are released), `GET /faults/holds` (→ `HeldRequest[]`),
 * `POST /faults/holds/:ruleId/release` (→ `{ released: n }`),
 * `GET|POST /regions/:region/instances`, `PATCH /regions/:region/instances/:id`,
 * `POST /regions/:region/instances/:id/release` (→ the released instance; 404 when not in the fleet),
 * `GET /regions/:region/package-states[?instanceId]`,
 * `DELETE /regions/:region/instances/:id/package-states/:templateName`,
 * `GET /regions/:region/patch-states[?instanceId]`, `POST|DELETE /invocation-scripts`,
 * `GET /invocations`, `GET /snapshots[?regionId]`, `POST|GET /load-balancers` (create → ids and
 * `url`; list with groups and backends), `PUT /server-groups/:id/backends/:instanceId/:port/health`
 * (`{ health }`, null clears). Errors: `{ error }` with 400/404.
 * A request carrying an ACS `Authorization` header or `Signature` parameter is refused (403),
 * so the control port is never reachable with a signed API request.
 */
export function createControlServer(core: EmulatorCore): Server {
  return createServer((req, res) => {
    void (async () => {
      try {
        const url = new URL(req.url ?? '/', 'http://control');
        if (req.headers['authorization'] !== undefined || url.searchParams.has('Signature')) {
          throw new HttpError(403, 'the control API does not accept signed Alibaba Cloud API requests');
        }
        for (const [method, re, fn] of routes) {
          const m = re.exec(url.pathname);
          if (!m || method !== req.method) continue;
          const out = await fn(core, m, url.searchParams, () => readJson(req));
          return reply(res, out === undefined ? 204 : 200, out);
        }
        throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
      } catch (err) {
        if (err instanceof HttpError) reply(res, err.status, { error: err.message });
        else reply(res, 400, { error: err instanceof Error ? err.message : String(err) });
      }
    })();
  });
}
