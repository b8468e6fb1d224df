/**
 * Flags + environment → one validated {@link Config} (commander). Every flag also reads an
 * `ECSOPS_*` environment variable; flags win. `ecsops controller --help` lists them all.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import parseDuration from 'parse-duration';
import { DEFAULT_FULL_RESYNC_MS } from './cloud/fleet.js';
import { leaderElectionTimingsError } from './runtime/leader-election.js';

/**
 * The controllers `--controllers` selects from: the names they register with the manager (metric
 * `controller` label, log field). MaintenanceWindow has its own controller (window status), which
 * the PatchPolicy controller reads from (see {@link CONTROLLER_NEEDS}). InstanceDisruptionBudget
 * resolves budgets; without it no budget is consulted by this process's starts.
 */
export const CONTROLLER_NAMES = [
  'ecsextension',
  'patchpolicy',
  'maintenancewindow',
  'apprelease',
  'instancedisruptionbudget',
] as const;
export type ControllerName = (typeof CONTROLLER_NAMES)[number];

/** Controllers that read another controller's cache, so both must run in one process. */
export const CONTROLLER_NEEDS: Readonly<Partial<Record<ControllerName, readonly ControllerName[]>>> = {
  patchpolicy: ['maintenancewindow'],
};

export interface Config {
  kubeconfig?: string;
  /** The controllers to run (`--controllers`), in {@link CONTROLLER_NAMES} order; never empty. */
  controllers: ControllerName[];
  /** Watched namespace; undefined = all namespaces. */
  namespace?: string;
  /** Label selector of the objects this process reconciles (sharding); undefined = all. */
  watchLabelSelector?: string;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  leaderElect: boolean;
  leaderElectionId: string;
  leaderElectionNamespace: string;
  /** Milliseconds. */
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  ecsExtensionWorkers: number;
  appReleaseWorkers: number;
  patchPolicyWorkers: number;
  cloudQps: number;
  cloudConcurrency: number;
  /** Per-action limits (requests per sliding second per region); empty when unset. */
  cloudActionQps: Record<string, number>;
  cloudMaxRetries: number;
  oosEndpoint?: string;
  ecsEndpoint?: string;
  cloudProtocol: 'HTTPS' | 'HTTP';
  /**
   * Milliseconds (`--full-resync-period`): each targeted instance's state is re-read one by one at
   * least this often (jittered per instance); between sweeps the change feed decides what is read.
   */
  fullResyncPeriodMs: number;
  /** Whether the change feed also reads ActionTrail `LookupEvents` (`--actiontrail`). */
  actionTrail: boolean;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  maxInstanceRows: number;
  /** Milliseconds. */
  executionPollMinMs: number;
  executionPollMaxMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  shutdownTimeoutMs: number;
}

function duration(flag: string) {
  return (value: string): number => {
    const ms = parseDuration(value);
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
      throw new InvalidArgumentError(`${flag}: "${value}" is not a positive duration (e.g. 500ms, 15s, 10m)`);
    }
    return ms;
  };
}

/** Shortest `--full-resync-period`: 10 minutes (a shorter sweep costs per instance what the feed saves). */
export const MIN_FULL_RESYNC_MS = 600_000;

/** A duration of at least `minMs` (`minText` names it in the error). */
function durationAtLeast(flag: string, minMs: number, minText: string) {
  const parse = duration(flag);
  return (value: string): number => {
    const ms = parse(value);
    if (ms < minMs)
      throw new InvalidArgumentError(`${flag}: "${value}" is shorter than the minimum ${minText}`);
    return ms;
  };
}

function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${flag}: "${value}" is not an integer >= 1`);
    return n;
  };
}

/** `Action=N,Action=N`: per-action requests per second (N > 0, numbers allowed, e.g. 0.5). */
function actionRates(flag: string) {
  return (value: string): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const part of value
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const m = /^([A-Za-z][A-Za-z0-9]*)=([0-9]*\.?[0-9]+)$/.exec(part);
      const n = m ? Number(m[2]) : NaN;
      if (!m || !(n > 0)) {
        throw new InvalidArgumentError(
          `${flag}: "${part}" is not ACTION=RATE with an API action name and a rate > 0 (e.g. StartExecution=5)`,
        );
      }
      out[m[1] as string] = n;
    }
    return out;
  };
}

function nonNegativeInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new InvalidArgumentError(`${flag}: "${value}" is not an integer >= 0`);
    return n;
  };
}

function bool(value: string): boolean {
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new InvalidArgumentError(`"${value}" is not a boolean (true/false)`);
}

function isControllerName(name: string): name is ControllerName {
  return (CONTROLLER_NAMES as readonly string[]).includes(name);
}

/**
 * Parses `--controllers` (kube-controller-manager's convention): a comma-separated list where `*`
 * enables every controller, `name` enables one and `-name` disables one; a controller runs when it
 * is named, or when `*` is given and it is not disabled. Returns the enabled names in
 * {@link CONTROLLER_NAMES} order.
 * @throws InvalidArgumentError for an unknown name, a name both enabled and disabled, a list that
 *   enables nothing, or a controller enabled without one it needs ({@link CONTROLLER_NEEDS}).
 */
export function parseControllers(value: string): ControllerName[] {
  const known = `known: ${CONTROLLER_NAMES.join(', ')}, or * for all`;
  let all = false;
  const on = new Set<ControllerName>();
  const off = new Set<ControllerName>();
  for (const item of value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    if (item === '*') {
      all = true;
      continue;
    }
    const name = item.startsWith('-') ? item.slice(1) : item;
    if (!isControllerName(name)) {
      throw new InvalidArgumentError(`--controllers: unknown controller "${name}" (${known})`);
    }
    (item.startsWith('-') ? off : on).add(name);
  }
  const both = [...on].find((n) => off.has(n));
  if (both) throw new InvalidArgumentError(`--controllers: "${both}" is both enabled and disabled`);
  const enabled = CONTROLLER_NAMES.filter((n) => on.has(n) || (all && !off.has(n)));
  if (enabled.length === 0) {
    throw new InvalidArgumentError(
      `--controllers: "${value}" enables no controller (${known}; "*,-name" runs all but one)`,
    );
  }
  for (const name of enabled) {
    const missing = (CONTROLLER_NEEDS[name] ?? []).filter((n) => !enabled.includes(n));
    if (missing.length > 0) {
      throw new InvalidArgumentError(
        `--controllers: ${name} needs ${missing.join(', ')} in the same process (it reads those objects from that cache): enable ${missing.join(', ')} too, or disable ${name}`,
      );
    }
  }
  return enabled;
}

/**
 * The `--controllers` value that runs the `enabled` controllers except `name` and those that need it
 * ({@link CONTROLLER_NEEDS}): `*,-patchpolicy,-maintenancewindow` when every controller is enabled
 * (so several hints combine), else the remaining names; undefined when none would remain.
 */
export function controllersWithout(enabled: readonly ControllerName[], name: string): string | undefined {
  const drop = new Set<string>([
    name,
    ...CONTROLLER_NAMES.filter((n) => CONTROLLER_NEEDS[n]?.some((d) => d === name)),
  ]);
  const left = enabled.filter((n) => !drop.has(n));
  if (left.length === 0) return undefined;
  if (enabled.length < CONTROLLER_NAMES.length) return left.join(',');
  return ['*', ...CONTROLLER_NAMES.filter((n) => drop.has(n)).map((n) => `-${n}`)].join(',');
}

function opt(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

/** Adds every controller flag to `cmd` (used by `ecsops controller` and `npm start`). */
export function addControllerOptions(cmd: Command): Command {
  return cmd
    .addOption(
      opt(
        '--kubeconfig <path>',
        'kubeconfig file; default: $KUBECONFIG, ~/.kube/config, then in-cluster',
        'KUBECONFIG',
      ),
    )
    .addOption(
      opt(
        '--controllers <list>',
        `controllers to run, comma-separated: "*" all, "name" enables one, "-name" disables one (e.g. "*,-apprelease"); names: ${CONTROLLER_NAMES.join(', ')}`,
        'ECSOPS_CONTROLLERS',
      )
        .argParser(parseControllers)
        .default([...CONTROLLER_NAMES], '*'),
    )
    .addOption(
      opt('--namespace <ns>', 'watch only this namespace (default: all namespaces)', 'ECSOPS_NAMESPACE'),
    )
    .addOption(
      opt(
        '--watch-label-selector <selector>',
        'reconcile only objects matching this label selector, e.g. "sharding.ecsops.io/key in (shard1)" (sharding; give each shard its own --leader-election-id)',
        'ECSOPS_WATCH_LABEL_SELECTOR',
      ),
    )
    .addOption(
      opt(
        '--metrics-bind-address <addr>',
        'address of /metrics ("0" disables)',
        'ECSOPS_METRICS_BIND_ADDRESS',
      ).default(':8080'),
    )
    .addOption(
      opt(
        '--health-probe-bind-address <addr>',
        'address of /healthz and /readyz',
        'ECSOPS_HEALTH_PROBE_BIND_ADDRESS',
      ).default(':8081'),
    )
    .addOption(
      opt(
        '--leader-elect <bool>',
        'run leader election on a Lease; only the leader reconciles',
        'ECSOPS_LEADER_ELECT',
      )
        .argParser(bool)
        .default(true),
    )
    .addOption(
      opt('--leader-election-id <name>', 'name of the Lease', 'ECSOPS_LEADER_ELECTION_ID').default(
        'ecsops-controller',
      ),
    )
    .addOption(
      opt(
        '--leader-election-namespace <ns>',
        'namespace of the Lease (default: $POD_NAMESPACE, else "default")',
        'ECSOPS_LEADER_ELECTION_NAMESPACE',
      ),
    )
    .addOption(
      opt('--lease-duration <duration>', 'Lease duration', 'ECSOPS_LEASE_DURATION')
        .argParser(duration('--lease-duration'))
        .default(15_000, '15s'),
    )
    .addOption(
      opt(
        '--renew-deadline <duration>',
        'how long the leader retries renewing before giving up',
        'ECSOPS_RENEW_DEADLINE',
      )
        .argParser(duration('--renew-deadline'))
        .default(10_000, '10s'),
    )
    .addOption(
      opt('--retry-period <duration>', 'interval between Lease acquire/renew attempts', 'ECSOPS_RETRY_PERIOD')
        .argParser(duration('--retry-period'))
        .default(2_000, '2s'),
    )
    .addOption(
      opt('--ecsextension-workers <n>', 'concurrent EcsExtension reconciles', 'ECSOPS_ECSEXTENSION_WORKERS')
        .argParser(positiveInt('--ecsextension-workers'))
        // Reconciles mostly wait on the cloud (the rate gate bounds its load) and concurrent ones
        // share batched reads: 16 converged 1,000 resources in 60 s where 4 took 177 s (bench/).
        .default(16),
    )
    .addOption(
      opt('--apprelease-workers <n>', 'concurrent AppRelease reconciles', 'ECSOPS_APPRELEASE_WORKERS')
        .argParser(positiveInt('--apprelease-workers'))
        .default(2),
    )
    .addOption(
      opt('--patchpolicy-workers <n>', 'concurrent PatchPolicy reconciles', 'ECSOPS_PATCHPOLICY_WORKERS')
        .argParser(positiveInt('--patchpolicy-workers'))
        .default(2),
    )
    .addOption(
      opt(
        '--cloud-qps <n>',
        'Alibaba Cloud API requests per second, per product and region',
        'ECSOPS_CLOUD_QPS',
      )
        .argParser(positiveInt('--cloud-qps'))
        .default(20),
    )
    .addOption(
      opt(
        '--cloud-concurrency <n>',
        'Alibaba Cloud API requests in flight, per product and region',
        'ECSOPS_CLOUD_CONCURRENCY',
      )
        .argParser(positiveInt('--cloud-concurrency'))
        .default(10),
    )
    .addOption(
      opt(
        '--cloud-action-qps <list>',
        'per-action limits below --cloud-qps, per region, for APIs Alibaba Cloud throttles per action (e.g. StartExecution=5,ListInstancePackageStates=10)',
        'ECSOPS_CLOUD_ACTION_QPS',
      ).argParser(actionRates('--cloud-action-qps')),
    )
    .addOption(
      opt(
        '--cloud-max-retries <n>',
        'retries of throttled / 5xx / network-failed cloud calls',
        'ECSOPS_CLOUD_MAX_RETRIES',
      )
        .argParser(nonNegativeInt('--cloud-max-retries'))
        .default(5),
    )
    .addOption(
      opt(
        '--oos-endpoint <host:port>',
        'override the OOS endpoint (e.g. the emulator 127.0.0.1:9100)',
        'ECSOPS_OOS_ENDPOINT',
      ),
    )
    .addOption(opt('--ecs-endpoint <host:port>', 'override the ECS endpoint', 'ECSOPS_ECS_ENDPOINT'))
    .addOption(
      opt('--cloud-protocol <protocol>', 'HTTPS, or HTTP for the emulator', 'ECSOPS_CLOUD_PROTOCOL')
        .choices(['HTTPS', 'HTTP'])
        .default('HTTPS'),
    )
    .addOption(
      opt(
        '--full-resync-period <duration>',
        'each targeted instance is re-read one by one at least this often (jittered per instance); between sweeps only instances the change feed names are read (min 10m)',
        'ECSOPS_FULL_RESYNC_PERIOD',
      )
        .argParser(durationAtLeast('--full-resync-period', MIN_FULL_RESYNC_MS, '10m'))
        // controller-runtime's default SyncPeriod (10 h): a sweep of 10,000 instances then costs
        // ≈ 0.017 OOS calls per instance per 10-minute interval.
        .default(DEFAULT_FULL_RESYNC_MS, '10h'),
    )
    .addOption(
      opt(
        '--actiontrail <bool>',
        'the change feed also reads ActionTrail LookupEvents (direct UpdateInstancePackageState calls seen within one interval); needs actiontrail:LookupEvents, stops on a permission error; false: the full resync catches them',
        'ECSOPS_ACTIONTRAIL',
      )
        .argParser(bool)
        .default(true),
    )
    .addOption(
      opt('--log-level <level>', 'log level', 'LOG_LEVEL')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
        .default('info'),
    )
    .addOption(
      opt(
        '--max-instance-rows <n>',
        'bound on status.instances rows per resource',
        'ECSOPS_MAX_INSTANCE_ROWS',
      )
        .argParser(positiveInt('--max-instance-rows'))
        .default(100),
    )
    .addOption(
      opt(
        '--execution-poll-min <duration>',
        'first poll delay of a running execution',
        'ECSOPS_EXECUTION_POLL_MIN',
      )
        .argParser(duration('--execution-poll-min'))
        .default(5_000, '5s'),
    )
    .addOption(
      opt(
        '--execution-poll-max <duration>',
        'longest poll delay of a running execution',
        'ECSOPS_EXECUTION_POLL_MAX',
      )
        .argParser(duration('--execution-poll-max'))
        .default(60_000, '60s'),
    )
    .addOption(
      opt(
        '--retry-base <duration>',
        'first retry delay for failed instances (doubles per failed round)',
        'ECSOPS_RETRY_BASE',
      )
        .argParser(duration('--retry-base'))
        .default(30_000, '30s'),
    )
    .addOption(
      opt('--retry-max <duration>', 'longest retry delay for failed instances', 'ECSOPS_RETRY_MAX')
        .argParser(duration('--retry-max'))
        .default(1_800_000, '30m'),
    )
    .addOption(
      opt(
        '--shutdown-timeout <duration>',
        'how long SIGTERM waits for in-flight reconciles',
        'ECSOPS_SHUTDOWN_TIMEOUT',
      )
        .argParser(duration('--shutdown-timeout'))
        .default(30_000, '30s'),
    );
}

/**
 * Turns parsed commander options into a {@link Config}.
 * @throws Error on inconsistent values: leader-election durations that break the elector's rules
 *   (`leaderElectionTimingsError`: lease ≥ 1s, renew deadline < lease duration, renew deadline >
 *   1.2 × retry period), or `--execution-poll-min` above `--execution-poll-max`.
 */
export function toConfig(o: Record<string, unknown>): Config {
  const cfg: Config = {
    kubeconfig: o.kubeconfig as string | undefined,
    controllers: o.controllers as ControllerName[],
    namespace: (o.namespace as string | undefined) || undefined,
    ...((o.watchLabelSelector as string | undefined)
      ? { watchLabelSelector: o.watchLabelSelector as string }
      : {}),
    metricsBindAddress: o.metricsBindAddress as string,
    healthProbeBindAddress: o.healthProbeBindAddress as string,
    leaderElect: o.leaderElect as boolean,
    leaderElectionId: o.leaderElectionId as string,
    leaderElectionNamespace:
      (o.leaderElectionNamespace as string | undefined) ?? process.env.POD_NAMESPACE ?? 'default',
    leaseDurationMs: o.leaseDuration as number,
    renewDeadlineMs: o.renewDeadline as number,
    retryPeriodMs: o.retryPeriod as number,
    ecsExtensionWorkers: o.ecsextensionWorkers as number,
    appReleaseWorkers: o.appreleaseWorkers as number,
    patchPolicyWorkers: o.patchpolicyWorkers as number,
    cloudQps: o.cloudQps as number,
    cloudConcurrency: o.cloudConcurrency as number,
    cloudActionQps: (o.cloudActionQps as Record<string, number> | undefined) ?? {},
    cloudMaxRetries: o.cloudMaxRetries as number,
    oosEndpoint: o.oosEndpoint as string | undefined,
    ecsEndpoint: o.ecsEndpoint as string | undefined,
    cloudProtocol: o.cloudProtocol as 'HTTPS' | 'HTTP',
    fullResyncPeriodMs: o.fullResyncPeriod as number,
    actionTrail: o.actiontrail as boolean,
    logLevel: o.logLevel as Config['logLevel'],
    maxInstanceRows: o.maxInstanceRows as number,
    executionPollMinMs: o.executionPollMin as number,
    executionPollMaxMs: o.executionPollMax as number,
    retryBaseMs: o.retryBase as number,
    retryMaxMs: o.retryMax as number,
    shutdownTimeoutMs: o.shutdownTimeout as number,
  };
  // The elector's own rules, so a bad combination fails here, at startup, naming the flags.
  const timings = leaderElectionTimingsError(cfg, {
    leaseDurationMs: '--lease-duration',
    renewDeadlineMs: '--renew-deadline',
    retryPeriodMs: '--retry-period',
  });
  if (timings) throw new Error(timings);
  if (cfg.executionPollMinMs > cfg.executionPollMaxMs) {
    throw new Error('--execution-poll-min must not exceed --execution-poll-max');
  }
  return cfg;
}

/** Parses controller flags from `argv` (user args only, no node/script). @throws commander errors. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): Config {
  const saved = process.env;
  process.env = env;
  try {
    const cmd = addControllerOptions(new Command('controller')).exitOverride().allowExcessArguments(false);
    cmd.parse(argv, { from: 'user' });
    return toConfig(cmd.opts());
  } finally {
    process.env = saved;
  }
}
