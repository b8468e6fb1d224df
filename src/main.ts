/**
 * Wiring only (DESIGN §2): config → clients → manager.start(). The one place that builds the
 * real kube client, cloud layer, metrics registry, event recorder and status patcher.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, GROUP } from './api/common.js';
import { CONFIGURE_PACKAGE_TEMPLATE } from './api/ecsextension.js';
import { createCloudClients, type CloudOptions } from './cloud/index.js';
import type { Config } from './config.js';
import { registerEcsExtension } from './controllers/ecsextension/register.js';
import { APP_RELEASE_METRIC_LABEL } from './controllers/apprelease/reconciler.js';
import { registerAppRelease } from './controllers/apprelease/register.js';
import { InstanceLock } from './controllers/shared/lock.js';
import { APPLY_PATCH_BASELINE_TEMPLATE } from './api/patchpolicy.js';
import { registerPatchPolicy } from './controllers/patchpolicy/register.js';
import { DomainMetrics } from './controllers/shared/metrics.js';
import { createRegistry, startProbeServer, type ProbeServer } from './metrics/index.js';
import { EventRecorder } from './runtime/events.js';
import { shareKubeDispatcher } from './util/kube-dispatcher.js';
import { createLogger, type Logger } from './runtime/logger.js';
import { Manager } from './runtime/manager.js';

export const VERSION_STRING = '0.1.0';

export interface RunningController {
  manager: Manager;
  probes: ProbeServer;
  logger: Logger;
  /** Graceful stop: stop intake, wait up to the shutdown timeout, release the Lease, close servers. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Overrides for the cloud layer (tests pass an explicit emulator credential). */
  cloud?: Partial<CloudOptions>;
  logger?: Logger;
  /** Called when leadership is lost after having led; default: exit(1). */
  onLeadershipLost?: () => void;
}

/** Loads the kubeconfig: `--kubeconfig`, else $KUBECONFIG / ~/.kube/config / in-cluster. */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  // One keep-alive pool per TLS identity instead of a TLS connection per request (docs/memory.md).
  return shareKubeDispatcher(kc);
}

/**
 * Builds every dependency from `cfg` and starts the manager (informers synced, then workers —
 * only while leader when leader election is on) plus the metrics and probe servers.
 * @throws Error when the kubeconfig cannot be loaded or a bind address is in use.
 */
export async function startController(cfg: Config, opts: StartOptions = {}): Promise<RunningController> {
  const logger = opts.logger ?? createLogger({ level: cfg.logLevel });
  const kubeConfig = loadKubeConfig(cfg.kubeconfig);
  const registry = createRegistry();

  const cloud = createCloudClients(
    {
      endpointOverride: { oos: cfg.oosEndpoint, ecs: cfg.ecsEndpoint },
      protocol: cfg.cloudProtocol,
      qps: cfg.cloudQps,
      concurrency: cfg.cloudConcurrency,
      actionQps: cfg.cloudActionQps,
      maxRetries: cfg.cloudMaxRetries,
      userAgent: `ecsops/${VERSION_STRING}`,
      ...opts.cloud,
    },
    { registry, logger: logger.child({ component: 'cloud' }) },
  );

  const identity = process.env.POD_NAME ?? `${hostname()}_${randomUUID()}`;
  const manager = new Manager({
    kubeConfig,
    registry,
    logger,
    ...(cfg.watchLabelSelector ? { labelSelector: cfg.watchLabelSelector } : {}),
    leaderElection: cfg.leaderElect
      ? {
          namespace: cfg.leaderElectionNamespace,
          name: cfg.leaderElectionId,
          identity,
          leaseDurationMs: cfg.leaseDurationMs,
          renewDeadlineMs: cfg.renewDeadlineMs,
          retryPeriodMs: cfg.retryPeriodMs,
        }
      : undefined,
    onLeadershipLost:
      opts.onLeadershipLost ??
      (() => {
        logger.error('leadership lost; exiting so a fresh process can rejoin the election');
        process.exit(1);
      }),
  });

  const events = new EventRecorder({
    kubeConfig,
    reportingController: `${GROUP}/controller`,
    reportingInstance: `ecsops-controller-${hostname()}`.slice(0, 128),
    logger,
  });
  const metrics = new DomainMetrics(registry, {
    [CONFIGURE_PACKAGE_TEMPLATE]: ['install', 'update', 'uninstall'],
    [APP_RELEASE_METRIC_LABEL]: ['deploy', 'rollback', 'uninstall'],
    [APPLY_PATCH_BASELINE_TEMPLATE]: ['scan', 'install'],
  });
  // The cross-kind per-instance lock: every kind registered with `lock` is a source of holders.
  const instanceLock = new InstanceLock();
  registerEcsExtension(manager, {
    kubeConfig,
    cloud,
    events,
    metrics,
    lock: instanceLock,
    workers: cfg.ecsExtensionWorkers,
    ...(cfg.namespace !== undefined ? { namespace: cfg.namespace } : {}),
    options: {
      maxInstanceRows: cfg.maxInstanceRows,
      pollMinMs: cfg.executionPollMinMs,
      pollMaxMs: cfg.executionPollMaxMs,
      retryBaseMs: cfg.retryBaseMs,
      retryMaxMs: cfg.retryMaxMs,
    },
  });
  // PatchPolicy (+ its MaintenanceWindow controller).
  registerPatchPolicy(manager, {
    kubeConfig,
    cloud,
    events,
    metrics,
    lock: instanceLock,
    registry,
    workers: cfg.patchPolicyWorkers,
    ...(cfg.namespace !== undefined ? { namespace: cfg.namespace } : {}),
    options: {
      maxInstanceRows: cfg.maxInstanceRows,
      pollMinMs: cfg.executionPollMinMs,
      pollMaxMs: cfg.executionPollMaxMs,
    },
  });

  // AppRelease.
  registerAppRelease(manager, {
    kubeConfig,
    cloud,
    events,
    metrics,
    registry,
    lock: instanceLock,
    workers: cfg.appReleaseWorkers,
    ...(cfg.namespace !== undefined ? { namespace: cfg.namespace } : {}),
    options: {
      maxInstanceRows: cfg.maxInstanceRows,
      pollMinMs: cfg.executionPollMinMs,
      pollMaxMs: cfg.executionPollMaxMs,
      retryBaseMs: cfg.retryBaseMs,
      retryMaxMs: cfg.retryMaxMs,
    },
  });

  let credentialsCheckedAt = 0;
  let credentialsOk: { ok: boolean; detail: string } = {
    ok: false,
    detail: 'cloud credentials not checked yet',
  };
  const probes = await startProbeServer({
    metricsAddr: cfg.metricsBindAddress,
    probeAddr: cfg.healthProbeBindAddress,
    registry,
    checks: {
      healthz: () => true,
      readyz: async () => {
        const mgr = manager.readyz();
        if (!mgr.ok) return mgr;
        if (Date.now() - credentialsCheckedAt > 30_000) {
          credentialsCheckedAt = Date.now();
          try {
            const id = await cloud.checkCredentials();
            credentialsOk = { ok: true, detail: `cloud credentials resolved (${id.providerName})` };
          } catch (err) {
            credentialsOk = { ok: false, detail: (err as Error).message };
          }
        }
        return credentialsOk.ok
          ? { ok: true, detail: `${mgr.detail}; ${credentialsOk.detail}` }
          : credentialsOk;
      },
    },
  });

  logger.info(
    {
      version: VERSION_STRING,
      apiVersion: API_VERSION,
      namespace: cfg.namespace ?? '(all)',
      leaderElect: cfg.leaderElect,
      metricsPort: probes.metricsPort,
      probePort: probes.probePort,
    },
    'starting ecsops controller',
  );
  await manager.start();

  let stopping: Promise<void> | undefined;
  return {
    manager,
    probes,
    logger,
    stop: () => {
      stopping ??= (async () => {
        await manager.stop(cfg.shutdownTimeoutMs);
        await probes.close();
      })();
      return stopping;
    },
  };
}
