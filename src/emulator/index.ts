import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { EmulatorControl } from './control-client.js';
import { createControlServer } from './control.js';
import { EmulatorCore } from './core.js';
import type { Seed } from './seed.js';
import { claimLoopbackNet, type LoopbackNetClaim, type SandboxOptions } from './sandbox.js';
import { createApiServer, type BodyLogEntry } from './server.js';
export type { BodyLogEntry } from './server.js';

export { EmulatorControl } from './control-client.js';
export type {
  BackendHealth,
  CreateLoadBalancer,
  CreatedLoadBalancer,
  ExecutionFilter,
  InstanceUpdate,
  LoadBalancerView,
  PatchStateView,
} from './control-client.js';
export type { ExecutionRecord, ItemResult, RateControl } from './engine.js';
export type {
  ActionFaults,
  FaultConfig,
  FaultMatch,
  FaultPatch,
  HeldRequest,
  ScriptedError,
  ScriptedFaultKind,
} from './faults.js';
export type { InvocationRecord, InvocationScriptRule, InvokeInstanceRecord } from './invocations.js';
export type { SandboxOptions } from './sandbox.js';
export { appReleaseBootScript, BOOT_HOOK_FILE, PRIVATE_IP_ENV, SANDBOX_OWNER_ENV } from './sandbox.js';
export { loadSeedFile, parseSeed } from './seed.js';
export type {
  Seed,
  SeedGenerate,
  SeedInstance,
  SeedPackageTemplate,
  SeedParameterDecl,
  SeedPatch,
} from './seed.js';
export type { InstanceRecord, PackageStateRecord, SnapshotRecord } from './state.js';
export { APPLY_PATCH_TEMPLATE, CONFIGURE_PACKAGE_TEMPLATE, RUN_COMMAND_TEMPLATE } from './templates.js';
export { DEFAULT_REGION_ID } from './server.js';
export { ACTIONTRAIL_VERSION } from './actiontrail.js';
export type { TrailEvent } from './actiontrail.js';

/**
 * The public, fake demo AccessKey pair the emulator accepts by default. It is not a real Alibaba
 * Cloud credential; printing it is fine.
 */
export const DEMO_ACCESS_KEY = Object.freeze({
  id: 'emulator-demo-access-key-id',
  secret: 'emulator-demo-access-key-secret-not-real',
});

/** Options of {@link startEmulator}. */
export interface EmulatorOptions {
  /** Listen address; default `127.0.0.1`. */
  host?: string;
  /** API port, 0 = ephemeral (default). */
  port?: number;
  /** Control API port, 0 = ephemeral (default). */
  controlPort?: number;
  /** Accepted AccessKey pairs; default `[DEMO_ACCESS_KEY]`. */
  accessKeys?: Array<{ id: string; secret: string }>;
  /** Parsed seed document applied at start (and again by `reset()`). */
  seed?: Seed;
  /** Multiplies every modelled duration; default 1; tests use ~0.01. */
  timeScale?: number;
  /**
   * Opt-in sandbox mode: `RunShellScript` commands really run with bash on this machine (parameters
   * substituted, Timeout enforced, output captured; see docs/emulator.md). `true` = default options.
   * Each instance's private IP is then a loopback address `127.<net>.x.y` of its own (`net` =
   * `sandbox.loopbackNet`, else the first net from 10 no other running emulator claimed), given
   * to its processes as `ECS_PRIVATE_IP`; processes they leave running die with the emulator.
   */
  sandbox?: SandboxOptions | boolean;
  /**
   * Request log sink: one object per API request, called when it is answered (requestId, action,
   * regionId, status, code, `receivedAtMs` = `Date.now()` when the request arrived, before its
   * body was read and before any injected latency, and durationMs from then to the answer;
   * `instanceId` / `executionId` when the request names one, `instanceIds` = every instance ID it
   * names (`InstanceId`, `InstanceId.N`, `InstanceIds`, `ResourceId.N`, `ResourceIds`, StartExecution
   * `targets.ResourceIds`) when any, `executionId` of the execution a successful StartExecution
   * started or returned, `invokeId` of the invocation a successful RunCommand started or returned,
   * and `clientGone: true` when a held request's client had closed the connection before the
   * answer). Never sees secrets or signatures.
   */
  logger?: (line: object) => void;
  /**
   * RAM policy document (JSON, policy language version 1) enforced on every API call and on the
   * calls OOS template steps make inside executions (ram.ts): `Action` patterns with `*`, Effect
   * Allow / Deny (Deny wins), default deny; a denied call answers 403 `Forbidden.RAM`. Default: none
   * (everything allowed). Replaceable at run time: control API `PUT /ram-policy`.
   */
  ramPolicy?: unknown;
  /**
   * Body log sink (tests only): every request's parameters (but `Signature`) and the JSON body
   * answered, including secret values sent by the client. CLI: `--log-bodies <file>` (JSON lines).
   */
  bodyLogger?: (entry: BodyLogEntry) => void;
  /**
   * ActionTrail delivery delay in milliseconds of the emulator clock (not scaled by timeScale):
   * `LookupEvents` (actiontrail 2020-07-06, same endpoint) returns a recorded write call only once
   * the clock has passed its eventTime plus this. Default 0 (the reference documents only an upper
   * bound of 10 minutes; see docs/emulator.md "Change feed facts").
   */
  actionTrailDelayMs?: number;
}

/** A running emulator. */
export interface Emulator {
  /** `127.0.0.1:PORT` — pass as SDK `Config.endpoint` with `protocol: 'HTTP'`. */
  endpoint: string;
  /** `http://127.0.0.1:CPORT` — base URL of the control API. */
  controlUrl: string;
  /** Typed client of the control API. */
  control: EmulatorControl;
  /** Closes both servers and cancels every timer; nothing keeps the process alive afterwards. */
  stop(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Starts the Alibaba Cloud OOS (2019-06-01) + ECS (2014-05-26) emulator: an API server speaking
 * the RPC wire protocol (ACS3-HMAC-SHA256 and V1 HMAC-SHA1 signatures) and a separate control API.
 * @throws Error when a port cannot be bound or the seed is invalid.
 */
export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const host = opts.host ?? '127.0.0.1';
  let sandbox = opts.sandbox === true ? {} : opts.sandbox || undefined;
  let netClaim: LoopbackNetClaim | undefined;
  if (sandbox && sandbox.loopbackNet === undefined) {
    netClaim = await claimLoopbackNet();
    sandbox = { ...sandbox, loopbackNet: netClaim.net };
  }
  const core = new EmulatorCore({
    timeScale: opts.timeScale ?? 1,
    seed: opts.seed,
    ramPolicy: opts.ramPolicy,
    ...(opts.actionTrailDelayMs !== undefined ? { actionTrailDelayMs: opts.actionTrailDelayMs } : {}),
    ...(sandbox ? { sandbox } : {}),
  });
  const keys = new Map((opts.accessKeys ?? [DEMO_ACCESS_KEY]).map((k) => [k.id, k.secret]));
  const api = createApiServer({
    state: core.state,
    executions: core.executions,
    invocations: core.invocations,
    faults: core.faults,
    keys,
    requestCounts: core.requestCounts,
    logger: opts.logger,
    ram: core.ram,
    trail: core.trail,
    loadBalancers: core.loadBalancers,
    ...(opts.bodyLogger ? { bodyLogger: opts.bodyLogger } : {}),
  });
  const ctl = createControlServer(core);
  api.keepAliveTimeout = 5000;
  let port: number;
  let cport: number;
  try {
    port = await listen(api, opts.port ?? 0, host);
    try {
      cport = await listen(ctl, opts.controlPort ?? 0, host);
    } catch (e) {
      await close(api);
      throw e;
    }
  } catch (e) {
    await netClaim?.release();
    throw e;
  }
  const controlUrl = `http://${host}:${cport}`;
  let stopped = false;
  return {
    endpoint: `${host}:${port}`,
    controlUrl,
    control: new EmulatorControl(controlUrl),
    async stop() {
      if (stopped) return;
      stopped = true;
      core.shutdown();
      await Promise.all([close(api), close(ctl), core.lbPlane.closeAll()]);
      await netClaim?.release();
    },
  };
}
