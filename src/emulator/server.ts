import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ActionTrail } from './actiontrail.js';
import { ACTIONTRAIL_ACTIONS, ACTIONTRAIL_VERSION, productHost } from './actiontrail.js';
import { ALB_ACTIONS, ALB_VERSION } from './alb.js';
import type { ActionHandler } from './context.js';
import { ECS_ACTIONS, ECS_VERSION } from './ecs.js';
import type { ExecutionEngine } from './engine.js';
import { ApiError } from './errors.js';
import type { Faults } from './faults.js';
import type { InvocationEngine } from './invocations.js';
import type { LoadBalancerState } from './loadbalancers.js';
import { OOS_ACTIONS, OOS_VERSION } from './oos.js';
import { Params } from './params.js';
import { SLB_ACTIONS, SLB_VERSION } from './slb.js';
import type { RamGate } from './ram.js';
import { requestScope } from './scope.js';
import type { SignedRequest } from './signature.js';
import { NonceCache, verifySignature } from './signature.js';
import type { CloudState } from './state.js';

/** Region used for OOS requests without a `RegionId` parameter. */
export const DEFAULT_REGION_ID = 'cn-hangzhou';

/** Everything the API server needs. */
export interface ApiServerDeps {
  state: CloudState;
  executions: ExecutionEngine;
  invocations: InvocationEngine;
  faults: Faults;
  keys: ReadonlyMap<string, string>;
  requestCounts: Map<string, number>;
  /** Request log sink: one object per API request (see `EmulatorOptions.logger`). */
  logger?: (line: object) => void;
  /** Body log sink: full request parameters and response body of every answered request. */
  bodyLogger?: (entry: BodyLogEntry) => void;
  /** RAM policy in force (ram.ts); every signed request is checked before faults and handlers. */
  ram?: RamGate;
  /** ActionTrail: records every successfully answered write call; serves LookupEvents. */
  trail?: ActionTrail;
  /** CLB and ALB server groups (loadbalancers.ts) the SLB and ALB actions read and change. */
  loadBalancers?: LoadBalancerState;
}

/**
 * One line of the body log (`EmulatorOptions.bodyLogger`, CLI `--log-bodies`): every request
 * parameter but `Signature`, and the JSON body answered. Test use only: it holds whatever the
 * client sent, secrets included.
 */
export interface BodyLogEntry {
  requestId: string;
  action: string;
  status: number;
  request: Record<string, string>;
  response: object;
}

interface Product {
  name: 'Oos' | 'Ecs' | 'Actiontrail' | 'Slb' | 'Alb';
  actions: Record<string, ActionHandler>;
}

const PRODUCTS: Record<string, Product> = {
  [OOS_VERSION]: { name: 'Oos', actions: OOS_ACTIONS },
  [ECS_VERSION]: { name: 'Ecs', actions: ECS_ACTIONS },
  [ACTIONTRAIL_VERSION]: { name: 'Actiontrail', actions: ACTIONTRAIL_ACTIONS },
  [SLB_VERSION]: { name: 'Slb', actions: SLB_ACTIONS },
  [ALB_VERSION]: { name: 'Alb', actions: ALB_ACTIONS },
};

function firstValues(q: ReturnType<typeof parseQuery>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? (v[0] ?? '') : v;
  }
  return out;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function send(
  res: ServerResponse,
  status: number,
  body: object,
  requestId: string,
  extra: Record<string, string> = {},
): void {
  // A client that gave up on a held request has closed its socket: nothing to write to.
  if (res.req.socket.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json;charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'x-acs-request-id': requestId,
    ...extra,
  });
  res.end(text);
}

/** What a request log line names besides action and region. */
interface Subject {
  instanceId?: string;
  instanceIds?: string[];
  executionId?: string;
}

/** Injected connection reset: the socket is destroyed with a TCP RST instead of answering. */
function resetConnection(
  req: IncomingMessage,
  deps: ApiServerDeps,
  info: {
    requestId: string;
    action: string;
    regionId: string;
    subject: Subject;
    reset: 'before' | 'after';
    started: number;
  },
): void {
  deps.logger?.({
    requestId: info.requestId,
    action: info.action,
    regionId: info.regionId,
    ...info.subject,
    status: 0,
    code: info.reset === 'before' ? 'ConnectionReset' : 'ResponseLost',
    receivedAtMs: info.started,
    durationMs: Date.now() - info.started,
  });
  req.socket.resetAndDestroy();
}

/**
 * Creates the RPC API server: POST (or GET) `/` with `x-acs-action`/`x-acs-version` headers
 * (ACS3) or `Action`/`Version` query parameters (V1). Unknown product version or action →
 * `InvalidAction.NotFound` (404); then the signature is verified, the request counted, faults
 * applied (scripted rules scoped by the request's instance IDs and tags, quota, rates; a `hold`
 * rule parks the request until released) and the action handler run. Errors use Alibaba's body
 * `{ RequestId, HostId, Code, Message, Recommend }`.
 */
export function createApiServer(deps: ApiServerDeps): Server {
  const nonces = new NonceCache();
  // RPC parameters travel in the query string: a RunCommand carries up to 24 KB of Base64
  // CommandContent plus 100 instance IDs, beyond Node's default 16 KB header limit.
  return createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => {
    // Arrival time: taken first, before the body is read and before any injected latency.
    const receivedAtMs = Date.now();
    void handle(deps, nonces, req, res, receivedAtMs);
  });
}

/** @param started when the request arrived (ms since the epoch): the log's `receivedAtMs`. */
async function handle(
  deps: ApiServerDeps,
  nonces: NonceCache,
  req: IncomingMessage,
  res: ServerResponse,
  started: number,
): Promise<void> {
  const requestId = randomUUID().toUpperCase();
  let action = '';
  let product: Product | undefined;
  let regionId = DEFAULT_REGION_ID;
  /**
   * The request's subject for the log line: its `InstanceId` / `ExecutionId` parameter or the
   * started execution, and every instance ID it names (`instanceIds`, see scope.ts).
   */
  const subject: Subject = {};
  let requestParams: Record<string, string> = {};
  const logBody = (status: number, response: object) =>
    deps.bodyLogger?.({ requestId, action, status, request: requestParams, response });
  const hostId = () => productHost(product?.name ?? 'Oos', regionId);
  const fail = (e: ApiError, extra: Record<string, string> = {}) => {
    send(
      res,
      e.httpStatus,
      {
        RequestId: requestId,
        HostId: hostId(),
        Code: e.code,
        Message: e.message,
        Recommend: `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(e.code)}&product=${product?.name ?? ''}&requestId=${requestId}`,
        ...e.body,
      },
      requestId,
      extra,
    );
    logBody(e.httpStatus, { Code: e.code, Message: e.message });
    deps.logger?.({
      requestId,
      action,
      regionId,
      ...subject,
      status: e.httpStatus,
      code: e.code,
      receivedAtMs: started,
      durationMs: Date.now() - started,
    });
  };
  try {
    const body = await readBody(req);
    const url = req.url ?? '/';
    const qi = url.indexOf('?');
    const path = qi < 0 ? url : url.slice(0, qi);
    const query = firstValues(parseQuery(qi < 0 ? '' : url.slice(qi + 1)));
    const ctype = String(req.headers['content-type'] ?? '');
    const bodyParams = ctype.startsWith('application/x-www-form-urlencoded')
      ? firstValues(parseQuery(body.toString('utf8')))
      : {};
    const headers: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(req.headersDistinct)) if (v) headers[k] = v;
    action = headers['x-acs-action']?.[0] ?? query['Action'] ?? '';
    const version = headers['x-acs-version']?.[0] ?? query['Version'] ?? '';
    product = PRODUCTS[version];
    const all: Record<string, string> = { ...query, ...bodyParams };
    requestParams = Object.fromEntries(Object.entries(all).filter(([k]) => k !== 'Signature'));
    if (all['RegionId']) regionId = all['RegionId'];
    if (all['InstanceId']) subject.instanceId = all['InstanceId'];
    if (all['ExecutionId']) subject.executionId = all['ExecutionId'];
    const scope = requestScope(all);
    if (scope.instanceIds.length > 0) subject.instanceIds = scope.instanceIds;
    const handler = product?.actions[action];
    if (!product || !handler) {
      throw new ApiError(
        404,
        'InvalidAction.NotFound',
        `Specified api is not found, please check your url and method. (${action || '<none>'} ${version || '<none>'})`,
      );
    }
    const signed: SignedRequest = { method: req.method ?? 'POST', path, query, headers, body, bodyParams };
    const { accessKeyId } = verifySignature(signed, deps.keys, nonces);
    deps.ram?.check(`${product.name.toLowerCase()}:${action}`);
    deps.requestCounts.set(action, (deps.requestCounts.get(action) ?? 0) + 1);
    const fault = deps.faults.decide(action, scope);
    if (fault.latencyMs > 0) await sleep(fault.latencyMs, undefined, { ref: false });
    if (fault.kind === 'scripted' && fault.scripted) {
      fail(new ApiError(fault.scripted.httpStatus, fault.scripted.code, fault.scripted.message));
      return;
    }
    if (fault.kind === 'throttle') {
      const ra = deps.faults.retryAfterMs();
      fail(
        new ApiError(400, 'Throttling.User', 'Request was denied due to user flow control.'),
        ra !== undefined ? { 'x-acs-retry-after': String(ra) } : {},
      );
      return;
    }
    if (fault.kind === 'reset') {
      resetConnection(req, deps, { requestId, action, regionId, subject, reset: 'before', started });
      return;
    }
    if (fault.kind === 'error') {
      fail(
        fault.errorCode === 'InternalError'
          ? new ApiError(500, 'InternalError', 'The request processing has failed due to some unknown error.')
          : new ApiError(
              503,
              'ServiceUnavailable',
              'The request has failed due to a temporary failure of the server.',
            ),
      );
      return;
    }
    if (fault.kind === 'hold') {
      // Held unprocessed until released through the control API; then processed normally (the
      // answer is written only if the client is still there). Dropped on emulator stop.
      const go = await deps.faults.hold({
        ruleId: fault.ruleId ?? '',
        action,
        requestId,
        instanceIds: scope.instanceIds,
      });
      if (!go) {
        req.socket.destroy();
        return;
      }
    }
    delete all['Signature'];
    const out = handler({
      params: new Params(all),
      regionId,
      state: deps.state,
      executions: deps.executions,
      invocations: deps.invocations,
      ...(deps.trail ? { trail: deps.trail } : {}),
      ...(deps.loadBalancers ? { loadBalancers: deps.loadBalancers } : {}),
    });
    const outId = (out['Execution'] as { ExecutionId?: unknown } | undefined)?.ExecutionId;
    const startedId = action === 'StartExecution' && typeof outId === 'string' ? outId : undefined;
    const trailExecutionId = startedId ?? subject.executionId;
    // Processed: ActionTrail records the call even when the answer is then lost.
    deps.trail?.record({
      action,
      serviceName: product.name,
      apiVersion: version,
      regionId,
      requestId,
      params: all,
      instanceIds: scope.instanceIds,
      accessKeyId,
      ...(trailExecutionId !== undefined ? { executionId: trailExecutionId } : {}),
    });
    if (fault.kind === 'responseLoss') {
      resetConnection(req, deps, { requestId, action, regionId, subject, reset: 'after', started });
      return;
    }
    const clientGone = req.socket.destroyed;
    send(res, 200, { RequestId: requestId, ...out }, requestId);
    logBody(200, out);
    if (startedId !== undefined) subject.executionId = startedId;
    const invokeId = action === 'RunCommand' ? out['InvokeId'] : undefined;
    deps.logger?.({
      requestId,
      action,
      regionId,
      ...subject,
      status: 200,
      ...(typeof invokeId === 'string' ? { invokeId } : {}),
      ...(clientGone ? { clientGone: true } : {}),
      receivedAtMs: started,
      durationMs: Date.now() - started,
    });
  } catch (err) {
    if (err instanceof ApiError) fail(err);
    else {
      fail(
        new ApiError(500, 'InternalError', 'The request processing has failed due to some unknown error.'),
      );
      deps.logger?.({
        requestId,
        action,
        receivedAtMs: started,
        internalError: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
