/**
 * Wiring only (DESIGN §2): config → clients → manager.start(). The one place that builds the
 * real kube client, cloud layer, metrics registry, event recorder and status patcher.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { API_VERSION, GROUP, OWNER_UID_TAG } from './api/common.js';
import { CONFIGURE_PACKAGE_TEMPLATE } from './api/ecsextension.js';
import { createCloudClients, type CloudLayer, type CloudOptions } from './cloud/index.js';
import { controllersWithout, type Config, type ControllerName } from './config.js';
import { registerEcsExtension } from './controllers/ecsextension/register.js';
import { APP_RELEASE_METRIC_LABEL } from './controllers/apprelease/reconciler.js';
import { registerAppRelease } from './controllers/apprelease/register.js';
import { registerMaintenanceWindow } from './controllers/maintenancewindow/register.js';
import { InstanceLock } from './controllers/shared/lock.js';
import { DisruptionBudgets } from './controllers/shared/budget.js';
import { registerInstanceDisruptionBudget } from './controllers/instancedisruptionbudget/register.js';
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
  /**
   * Aborting it before the caches have synced (a CRD may be missing) stops what was started and
   * makes {@link startController} reject with its reason.
   */
  signal?: AbortSignal;
}

/** What {@link buildController} wires: nothing listens, connects or runs yet. */
export interface ControllerParts {
  manager: Manager;
  registry: Registry;
  cloud: CloudLayer;
  logger: Logger;
}

/**
 * How to fix a missing CRD, for the informer's error line: install the CRDs, or leave the
 * controller out with `--controllers` (keeping the other `enabled` ones).
 */
function missingCrdHint(enabled: readonly ControllerName[]): (controller: string) => string {
  return (controller) => {
    const without = controllersWithout(enabled, controller);
    return `install it with "kubectl apply --server-side -f crds/" (Helm chart: deploy/helm/ecsops/crds/)${without ? `, or run without this controller: --controllers=${without}` : ''}`;
  };
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
 * Builds every dependency from `cfg` — metrics registry, cloud layer, manager, and the controllers
 * `cfg.controllers` names (`--controllers`) registered with it — without starting anything.
 * @throws Error when the kubeconfig cannot be loaded.
 */
export function buildController(cfg: Config, opts: StartOptions = {}): ControllerParts {
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
      fullResyncMs: cfg.fullResyncPeriodMs,
      actionTrail: cfg.actionTrail,
      ownerTagKey: OWNER_UID_TAG,
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
    missingCrdHint: missingCrdHint(cfg.controllers),
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
  // The cross-kind per-instance lock: every kind registered with `lock` is a source of holders
  // (objects of a kind left out by --controllers hold no instances in this process).
  const instanceLock = new InstanceLock();
  const enabled = new Set<ControllerName>(cfg.controllers);
  // Disruption budgets: set on the lock before any kind registers, so every kind's start path
  // consults them (and its objects Stalled BudgetUnsatisfiable re-check when a budget changes).
  if (enabled.has('instancedisruptionbudget')) instanceLock.budgets = new DisruptionBudgets();
  const namespace = cfg.namespace !== undefined ? { namespace: cfg.namespace } : {};
  const options = {
    maxInstanceRows: cfg.maxInstanceRows,
    pollMinMs: cfg.executionPollMinMs,
    pollMaxMs: cfg.executionPollMaxMs,
  };
  const retry = { retryBaseMs: cfg.retryBaseMs, retryMaxMs: cfg.retryMaxMs };
  if (enabled.has('ecsextension')) {
    registerEcsExtension(manager, {
      kubeConfig,
      cloud,
      events,
      metrics,
      lock: instanceLock,
      workers: cfg.ecsExtensionWorkers,
      ...namespace,
      options: { ...options, ...retry },
    });
  }
  if (enabled.has('patchpolicy')) {
    // PatchPolicy registers the MaintenanceWindow controller too: it reads windows from its cache
    // (config.ts CONTROLLER_NEEDS makes --controllers enable both or neither).
    registerPatchPolicy(manager, {
      kubeConfig,
      cloud,
      events,
      metrics,
      lock: instanceLock,
      registry,
      workers: cfg.patchPolicyWorkers,
      ...namespace,
      options,
    });
  } else if (enabled.has('maintenancewindow')) {
    registerMaintenanceWindow(manager, { kubeConfig, events, metrics, workers: 1, ...namespace });
  }
  if (enabled.has('apprelease')) {
    registerAppRelease(manager, {
      kubeConfig,
      cloud,
      events,
      metrics,
      registry,
      lock: instanceLock,
      workers: cfg.appReleaseWorkers,
      ...namespace,
      options: { ...options, ...retry },
    });
  }
  if (instanceLock.budgets) {
    registerInstanceDisruptionBudget(manager, {
      kubeConfig,
      cloud,
      events,
      metrics,
      lock: instanceLock,
      workers: 1,
    });
  }
  return { manager, registry, cloud, logger };
}

/**
 * Builds the controller ({@link buildController}) and starts it: the metrics and probe servers,
 * then the manager (informers synced, then workers — only while leader when leader election is on).
 * Resolves once every cache has synced.
 * @throws Error when the kubeconfig cannot be loaded or a bind address is in use; `opts.signal`'s
 *   reason when it aborts before the caches have synced (everything started is stopped first).
 */
export async function startController(cfg: Config, opts: StartOptions = {}): Promise<RunningController> {
  const { manager, registry, cloud, logger } = buildController(cfg, opts);
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
      controllers: manager.controllers(),
      namespace: cfg.namespace ?? '(all)',
      leaderElect: cfg.leaderElect,
      metricsPort: probes.metricsPort,
      probePort: probes.probePort,
    },
    'starting ecsops controller',
  );
  try {
    await manager.start(opts.signal);
  } catch (err) {
    await manager.stop(0);
    await probes.close();
    throw err;
  }

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
