/**
 * `AppRelease` (ecsops.io/v1alpha1): "version V of application A, from artifact U (sha256 H), runs
 * on these ECS instances, started by these hooks" (DESIGN §1). Gaps are closed with one ECS Cloud
 * Assistant `RunCommand` (`RunShellScript`) per batch of at most 100 instances, running the
 * wrapper script of `src/controllers/apprelease/wrapper.ts`; which revision runs where is recorded
 * on each instance as the ECS tag `ecsops.io/app.<application>` (`TagResources`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { AnalysisSpecSchema, AnalysisStatusSchema } from './analysis.js';
import { TrafficControlSpecSchema, TrafficControlStatusSchema } from './traffic.js';
import {
  AllowKubernetesNodesSchema,
  commonStatusProperties,
  DURATION_PATTERN,
  executionStatusProperties,
  instanceRowProperties,
  IntervalSchema,
  IntOrString,
  RegionIdSchema,
  SecretKeySelectorSchema,
  targetNodeStatusProperties,
  TargetsSchema,
  type ObjectMeta,
  type SecretKeySelector,
} from './common.js';
import { ZoneOrderSchema, zoneOrderInRegionRule } from './zone-order.js';

export const APP_RELEASE_KIND = 'AppRelease';
export const APP_RELEASE_PLURAL = 'appreleases';
/** Annotation whose new value continues a paused rollout (Argo Rollouts' promote). */
export const PROMOTE_REQUESTED_ANNOTATION = 'ecsops.io/promote-requested-at';
/** Prefix of the ECS tag that records the revision running on an instance: `ecsops.io/app.<application>`. */
export const REVISION_TAG_PREFIX = 'ecsops.io/app.';

/**
 * Cloud Assistant `RunCommand` content limit this kind keeps to (bytes of the plaintext command,
 * the `CommandContent` MaxLength of Alibaba's `ACS-ECS-BulkyRunCommand`; the API's own limit is
 * 24 KB of Base64 including parameters, which 16 KB of plaintext always fits).
 */
export const COMMAND_LIMIT_BYTES = 16_384;
/**
 * Bytes of the command the controller itself uses (the wrapper script, variable names, and the
 * largest fixed-size values: a 256-character appDir, a 180-character secret parameter name, the
 * longest owner): `COMMAND_LIMIT_BYTES - WRAPPER_RESERVED_BYTES` is the budget for the
 * user's hooks, health-check script, env and artifact URL, Base64-encoded (4 bytes per 3). A unit
 * test checks that a spec exactly at the budget renders a command within the limit.
 */
export const WRAPPER_RESERVED_BYTES = 8_704;
/** The budget for Base64-encoded user content, bytes. */
export const USER_CONTENT_BUDGET_BYTES = COMMAND_LIMIT_BYTES - WRAPPER_RESERVED_BYTES;

const HOOK_NAMES = ['stop', 'beforeInstall', 'afterInstall', 'start', 'validate'] as const;
export type HookName = (typeof HOOK_NAMES)[number];
export const HOOK_ORDER: readonly HookName[] = HOOK_NAMES;

function HookSchema(name: string, defaultTimeout: number) {
  return Type.Object(
    {
      script: Type.String({
        description: `Shell script (bash) run for ${name}. Its output goes to a log on the host; the last lines are shown when it fails.`,
        minLength: 1,
        maxLength: USER_CONTENT_BUDGET_BYTES,
      }),
      timeoutSeconds: Type.Optional(
        Type.Integer({
          description: `Seconds before the hook is killed (default ${defaultTimeout}).`,
          minimum: 1,
          maximum: 3600,
          default: defaultTimeout,
        }),
      ),
    },
    { description: `The ${name} hook.` },
  );
}

/** Size in Base64 bytes of a CEL string expression `e` (4 per 3, rounded up). */
function b64(e: string): string {
  return `((size(${e}) + 2) / 3 * 4)`;
}
function optB64(has: string, e: string): string {
  return `(has(${has}) ? ${b64(e)} : 0)`;
}

/**
 * CEL: the Base64-encoded user content (hooks, exec health check, env, artifact URL) must fit the
 * command budget. Mirrors `userContentBytes()` in src/controllers/apprelease/wrapper.ts.
 */
const userContentExpr = [
  b64('self.artifact.url'),
  ...HOOK_NAMES.map((h) =>
    h === 'start' ? b64('self.hooks.start.script') : optB64(`self.hooks.${h}`, `self.hooks.${h}.script`),
  ),
  '(has(self.healthCheck) && has(self.healthCheck.exec) ? ' + b64('self.healthCheck.exec.script') + ' : 0)',
  '(has(self.install) && has(self.install.env) ? self.install.env.map(k, ' +
    `size(k) + 8 + ${b64('self.install.env[k]')}).sum() : 0)`,
  '(has(self.install) && has(self.install.envVars) ? self.install.envVars.map(e, has(e.value) ? ' +
    `size(e.name) + 8 + ${b64('e.value')} : 0).sum() : 0)`,
].join(' + ');

/**
 * CEL: decimal digits of a non-negative int `v` (up to 6 digits) from a constant list, because
 * `string(int)` has an unbounded estimated size and makes any messageExpression exceed the
 * API server's cost budget.
 */
function digitsExpr(v: string): string {
  const d = "['0','1','2','3','4','5','6','7','8','9']";
  const parts = [100000, 10000, 1000, 100, 10].map((p) => `(${v} >= ${p} ? ${d}[${v} / ${p} % 10] : '')`);
  return `${parts.join(' + ')} + ${d}[${v} % 10]`;
}

const commandSizeRule = {
  rule: `${userContentExpr} <= ${USER_CONTENT_BUDGET_BYTES}`,
  messageExpression:
    `'hooks, health-check script, env and artifact URL exceed the ${COMMAND_LIMIT_BYTES}-byte RunCommand limit ` +
    `(${USER_CONTENT_BUDGET_BYTES} bytes of Base64 user content) by ' + ${digitsExpr(`(${userContentExpr} - ${USER_CONTENT_BUDGET_BYTES})`)} + ` +
    `' bytes; move long scripts into the artifact and call them from the hooks'`,
  reason: 'FieldValueInvalid',
  fieldPath: '.hooks',
};

export const ArtifactSchema = Type.Object(
  {
    url: Type.String({
      description:
        'HTTP(S) URL the instance downloads the artifact from (curl or wget on the host). A pre-signed query string is never shown in status, Events or logs.',
      pattern: '^https?://[^\\s\'"`$\\\\]+$',
      maxLength: 2048,
    }),
    sha256: Type.String({
      description: 'Lower-case hex SHA-256 of the artifact; the instance refuses a download that differs.',
      pattern: '^[a-f0-9]{64}$',
    }),
    format: Type.Optional(
      Type.Union([Type.Literal('tar.gz'), Type.Literal('zip'), Type.Literal('file')], {
        description:
          'tar.gz and zip are unpacked into the release directory; file is copied there as-is (named after the URL path).',
        default: 'tar.gz',
      }),
    ),
  },
  { description: 'The release artifact.' },
);

/** `install.appDir` characters: absolute, letters, digits, `.`, `_`, `-`, `/` and `{{ACS::InstanceId}}`. */
const APP_DIR_PATTERN = '^/([A-Za-z0-9._-]|\\{\\{ACS::InstanceId\\}\\}|/)*$';
const APP_DIR_RE = new RegExp(APP_DIR_PATTERN);
/** Env variable names (install.env keys): shell variable names, up to 64 characters. */
const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]{0,63}$';
const ENV_NAME_RE = new RegExp(ENV_NAME_PATTERN);

/**
 * The system directories an appDir may never be (its uninstall would remove their content). Every
 * one has a single segment, so the two-segment rule already refuses them; listed for the messages
 * and the docs. `/lib*` stands for /lib, /lib32, /lib64, /libx32.
 */
export const SYSTEM_ROOTS: readonly string[] = [
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/lib*',
  '/proc',
  '/root',
  '/sbin',
  '/sys',
  '/usr',
  '/var',
];

const APP_DIR_DOTS_MESSAGE = "install.appDir must not contain '.' or '..' segments";
const APP_DIR_DEPTH_MESSAGE =
  'install.appDir must be a directory of its own at least two segments deep, such as /opt/<application>, never a system root like ' +
  `${SYSTEM_ROOTS.join(', ')}`;

/**
 * CEL (admission) of `install.appDir`; {@link appDirProblem} is the runtime copy (objects stored
 * before a rule are not validated again).
 */
const APP_DIR_RULES = [
  {
    rule: "!self.split('/').exists(s, s == '.' || s == '..')",
    messageExpression: `"${APP_DIR_DOTS_MESSAGE} (got " + self + ")"`,
  },
  {
    rule: "self.split('/').filter(s, s != '').size() >= 2",
    messageExpression: `"${APP_DIR_DEPTH_MESSAGE} (got " + self + ")"`,
  },
];

/**
 * Why `appDir` (an `install.appDir`, or the default `/opt/<application>`) must not reach the host,
 * or undefined when it may: the CEL rules and pattern of the CRD, checked again at runtime.
 * @returns the same readable message as admission, naming the value.
 */
export function appDirProblem(appDir: string): string | undefined {
  if (appDir.length > 256 || !APP_DIR_RE.test(appDir))
    return `install.appDir must be an absolute path of letters, digits, '.', '_', '-', '/' and {{ACS::InstanceId}}, at most 256 characters (got ${appDir.slice(0, 300)})`;
  const segments = appDir.split('/');
  if (segments.some((x) => x === '.' || x === '..')) return `${APP_DIR_DOTS_MESSAGE} (got ${appDir})`;
  if (segments.filter((x) => x !== '').length < 2) return `${APP_DIR_DEPTH_MESSAGE} (got ${appDir})`;
  return undefined;
}

/**
 * Why an env variable name must not reach the wrapper (it becomes a bash variable name, unquoted),
 * or undefined when it may: the CRD's pattern, checked again at runtime.
 */
export function envNameProblem(name: string): string | undefined {
  return ENV_NAME_RE.test(name)
    ? undefined
    : `install.env name ${JSON.stringify(name.slice(0, 80))} is not a shell variable name (letters, digits, underscore; not starting with a digit; at most 64 characters)`;
}

const EnvSchema = Type.Unsafe<Record<string, string>>({
  type: 'object',
  description:
    'Environment variables of every hook and the health check (values never appear in status, Events or logs).',
  additionalProperties: { type: 'string', maxLength: 1024 },
  maxProperties: 32,
  'x-kubernetes-validations': [
    {
      rule: `self.all(k, k.matches('${ENV_NAME_PATTERN}'))`,
      message:
        'install.env keys must be shell variable names (letters, digits, underscore; not starting with a digit)',
    },
  ],
});

export { SecretKeySelectorSchema, type SecretKeySelector };

/**
 * One `install.envVars` entry, the Kubernetes `EnvVar` shape: `value` (inline, like `install.env`)
 * or `valueFrom.secretKeyRef`, never both.
 */
export const EnvVarSchema = Type.Object(
  {
    name: Type.String({
      description: 'Variable name (a shell variable name).',
      pattern: ENV_NAME_PATTERN,
    }),
    value: Type.Optional(
      Type.String({
        description: 'Inline value (sent in the command, like install.env). Prefer valueFrom for secrets.',
        maxLength: 1024,
      }),
    ),
    valueFrom: Type.Optional(
      Type.Object(
        { secretKeyRef: SecretKeySelectorSchema },
        {
          description:
            'Read from a Secret by the controller and delivered through one OOS encrypted parameter per AppRelease ({{oos-secret:…}}): never in the command text, status, Events, logs or the revision ID. At least 8 characters.',
        },
      ),
    ),
  },
  {
    'x-kubernetes-validations': [
      {
        rule: 'has(self.value) != has(self.valueFrom)',
        message: 'install.envVars entries take exactly one of value or valueFrom',
      },
    ],
  },
);
export type EnvVar = Static<typeof EnvVarSchema>;

export const InstallSchema = Type.Object(
  {
    appDir: Type.Optional(
      Type.String({
        description:
          'Absolute directory of the application on the host: releases/<revision> holds each release, current is a symlink to the running one, .ecsops/ the wrapper state; uninstall removes exactly these, then appDir if empty. At least two segments, no . or .. segment (so never /, /usr, /etc, /var, /opt or another system root). May contain {{ACS::InstanceId}}. Two AppReleases whose appDirs overlap on an instance conflict (ConflictingResource). Default /opt/<application>.',
        pattern: APP_DIR_PATTERN,
        maxLength: 256,
        'x-kubernetes-validations': APP_DIR_RULES,
      }),
    ),
    user: Type.Optional(
      Type.String({
        description: 'Linux user the wrapper and hooks run as (RunCommand Username). Default root.',
        pattern: '^[a-z_][a-z0-9_-]{0,31}$',
        default: 'root',
      }),
    ),
    keepReleases: Type.Optional(
      Type.Integer({
        description:
          'Releases kept on disk (the running one included); older ones are pruned. At least 2, so the previous release is there for a rollback in seconds.',
        minimum: 2,
        maximum: 20,
        default: 3,
      }),
    ),
    env: Type.Optional(EnvSchema),
    envVars: Type.Optional(
      Type.Array(EnvVarSchema, {
        description:
          'Environment variables in the Kubernetes EnvVar shape (value or valueFrom.secretKeyRef); names must differ from install.env keys.',
        maxItems: 32,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
      }),
    ),
  },
  {
    description: 'Where and how the release is installed.',
    'x-kubernetes-validations': [
      {
        rule: '!has(self.envVars) || !has(self.env) || self.envVars.all(e, !(e.name in self.env))',
        message: 'install.envVars names must differ from install.env keys',
      },
    ],
  },
);

export const HooksSchema = Type.Object(
  {
    stop: Type.Optional(HookSchema('stop (the PREVIOUS revision’s stop hook runs before the swap)', 120)),
    beforeInstall: Type.Optional(HookSchema('beforeInstall (before the current symlink is swapped)', 300)),
    afterInstall: Type.Optional(HookSchema('afterInstall (after the swap)', 300)),
    start: HookSchema('start (required)', 300),
    validate: Type.Optional(HookSchema('validate (after start, before the health check)', 120)),
  },
  { description: 'Shell hooks (Linux, bash), run in the release directory in this order.' },
);

export const HealthCheckSchema = Type.Object(
  {
    http: Type.Optional(
      Type.Object(
        {
          port: Type.Integer({ minimum: 1, maximum: 65535, description: 'Port on 127.0.0.1 of the host.' }),
          path: Type.Optional(
            Type.String({
              description: 'Request path.',
              pattern: '^/[A-Za-z0-9._~!$&()*+,;=:@%/?-]*$',
              maxLength: 256,
              default: '/',
            }),
          ),
          expectStatus: Type.Optional(
            Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
              description: 'HTTP status codes that mean healthy (default [200]).',
              minItems: 1,
              maxItems: 10,
            }),
          ),
        },
        {
          description:
            "GET http://<address>:<port><path> on the host (curl): the address is $ECS_PRIVATE_IP when set (the emulator's sandbox gives each instance its own), else 127.0.0.1.",
        },
      ),
    ),
    exec: Type.Optional(
      Type.Object(
        {
          script: Type.String({
            description: 'Shell script; exit 0 means healthy.',
            minLength: 1,
            maxLength: USER_CONTENT_BUDGET_BYTES,
          }),
        },
        { description: 'A script run on the host.' },
      ),
    ),
    initialDelaySeconds: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 600, default: 0, description: 'Wait before the first probe.' }),
    ),
    periodSeconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 300, default: 5, description: 'Seconds between probes.' }),
    ),
    timeoutSeconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 300, default: 5, description: 'Seconds one probe may take.' }),
    ),
    failureThreshold: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100,
        default: 3,
        description: 'Probes tried before the release is declared unhealthy (the first success wins).',
      }),
    ),
  },
  {
    description: 'Run on the host after start (and validate); exactly one of http or exec.',
    'x-kubernetes-validations': [
      {
        rule: 'has(self.http) != has(self.exec)',
        message: 'healthCheck must set exactly one of http or exec',
      },
    ],
  },
);

const countOrPercent = (field: string, min: number) => ({
  rule: `type(self) == int ? self >= ${min} : self.matches('${min === 0 ? '^(100|[1-9]?[0-9])%$' : '^(100|[1-9][0-9]?)%$'}')`,
  message: `${field} must be an integer >= ${min} or a percentage string between ${min === 0 ? '0' : '1'}% and 100%`,
});

export const StrategySchema = Type.Object(
  {
    batchSize: Type.Optional(
      IntOrString({
        description:
          'Instances per batch: an integer >= 1 or a percentage of the targeted instances ("25%", rounded up). Batches above 100 instances run as several RunCommand calls.',
        default: '25%',
        'x-kubernetes-validations': [countOrPercent('strategy.batchSize', 1)],
      }),
    ),
    canary: Type.Optional(
      Type.Object(
        {
          instances: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 100, default: 1, description: 'Size of the first batch.' }),
          ),
          pause: Type.Optional(
            Type.Boolean({
              description:
                'Hold after the canary batch until promoted (annotation ecsops.io/promote-requested-at) or pauseDuration passes.',
              default: true,
            }),
          ),
          pauseDuration: Type.Optional(
            Type.String({
              description:
                'With pause: continue by itself after this long (Go duration). Unset = wait for promote.',
              pattern: DURATION_PATTERN,
              maxLength: 32,
            }),
          ),
        },
        { description: 'A first batch of a few instances.' },
      ),
    ),
    pauseBetweenBatches: Type.Optional(
      Type.String({
        description: 'Wait between batches (Go duration, e.g. 30s). Default 0s.',
        pattern: DURATION_PATTERN,
        maxLength: 32,
      }),
    ),
    maxErrors: Type.Optional(
      IntOrString({
        description:
          "Failed instances tolerated per rollout before it fails (an integer >= 0 or a percentage of the targeted instances, rounded down; OOS's term). Default 0.",
        default: 0,
        'x-kubernetes-validations': [countOrPercent('strategy.maxErrors', 0)],
      }),
    ),
    zoneOrder: Type.Optional(ZoneOrderSchema()),
  },
  { description: 'How a new revision is rolled out.' },
);

export const AppReleaseSpecSchema = Type.Object(
  {
    regionId: RegionIdSchema,
    targets: TargetsSchema,
    allowKubernetesNodes: Type.Optional(AllowKubernetesNodesSchema),
    suspend: Type.Optional(
      Type.Boolean({
        description: 'When true the controller makes no cloud writes (it keeps reading state for status).',
        default: false,
      }),
    ),
    interval: Type.Optional(
      IntervalSchema(
        'How often targets and revision tags are re-read to enrol new instances and detect drift (Go duration, 10s to 24h). ±5% jitter.',
      ),
    ),
    application: Type.String({
      description:
        'Application name, a DNS-1123 label. One AppRelease per application per instance; the revision tag is ecsops.io/app.<application>.',
      pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
      maxLength: 63,
    }),
    version: Type.String({
      description:
        'Informational version shown in status and history. The revision is a hash of artifact, install, hooks and healthCheck.',
      minLength: 1,
      maxLength: 128,
    }),
    artifact: ArtifactSchema,
    install: Type.Optional(InstallSchema),
    hooks: HooksSchema,
    healthCheck: Type.Optional(HealthCheckSchema),
    strategy: Type.Optional(StrategySchema),
    analysis: Type.Optional(AnalysisSpecSchema),
    trafficControl: Type.Optional(TrafficControlSpecSchema),
    rollback: Type.Optional(
      Type.Object(
        {
          automatic: Type.Optional(
            Type.Boolean({
              description:
                'Roll every instance already moved to the new revision back to status.stableRevision when the rollout fails.',
              default: true,
            }),
          ),
        },
        { description: 'What happens when a rollout fails.' },
      ),
    ),
    paused: Type.Optional(
      Type.Boolean({
        description:
          'True holds the rollout before its next batch; false (or the promote annotation) continues.',
        default: false,
      }),
    ),
    deletionPolicy: Type.Optional(
      Type.Union([Type.Literal('Orphan'), Type.Literal('Uninstall')], {
        description:
          'Orphan leaves the application running; Uninstall runs the stop hook, removes what ecsops owns in appDir (releases/, .ecsops/, current; then appDir if empty) and the revision tag on every reachable instance before the object goes away.',
        default: 'Orphan',
      }),
    ),
    revisionHistoryLimit: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 100, default: 10, description: 'Entries kept in status.history.' }),
    ),
    progressDeadlineSeconds: Type.Optional(
      Type.Integer({
        minimum: 60,
        maximum: 86_400,
        default: 1800,
        description:
          'A rollout that makes no progress (no batch finishes) for this long fails (and is rolled back when automatic). Time spent paused does not count.',
      }),
    ),
  },
  {
    description: 'Desired state: which application revision runs on which instances, and how it gets there.',
    'x-kubernetes-validations': [
      commandSizeRule,
      zoneOrderInRegionRule('self.strategy', 'spec.strategy.zoneOrder'),
    ],
  },
);
export type AppReleaseSpec = Static<typeof AppReleaseSpecSchema>;

export const ReleasePhaseValues = [
  'Progressing',
  'Paused',
  'Succeeded',
  'Failed',
  'RollingBack',
  'RolledBack',
] as const;
export type ReleasePhase = (typeof ReleasePhaseValues)[number];

export const AppInstanceStateValues = [
  'Updated',
  'Pending',
  'InProgress',
  'Failed',
  'RolledBack',
  'Unreachable',
] as const;
export type AppInstanceState = (typeof AppInstanceStateValues)[number];

export const AppInstanceStatusSchema = Type.Object({
  ...instanceRowProperties,
  state: Type.Union(
    AppInstanceStateValues.map((v) => Type.Literal(v)),
    {
      description:
        'Updated: runs the current revision. Pending: not yet. InProgress: in a running batch. Failed: its deploy failed. RolledBack: moved back to the stable revision. Unreachable: stopped or Cloud Assistant offline.',
    },
  ),
  revision: Type.Optional(Type.String({ description: 'Revision running on the instance (its ECS tag).' })),
  step: Type.Optional(
    Type.String({ description: 'The wrapper step that failed (download, verify, start, health, ...).' }),
  ),
  exitCode: Type.Optional(Type.Integer({ description: 'Exit code of the failed step.' })),
  output: Type.Optional(
    Type.String({ description: 'Sanitized tail of the wrapper output (≤ 1 KiB).', maxLength: 1024 }),
  ),
});
export type AppInstanceStatus = Static<typeof AppInstanceStatusSchema>;

export const BatchStatusSchema = Type.Object({
  index: Type.Integer({ description: '0 = the canary (or first) batch.' }),
  size: Type.Integer({ description: 'Instances in the batch.' }),
  phase: Type.Union(
    ['Running', 'Succeeded', 'Failed'].map((v) => Type.Literal(v)),
    { description: 'Running, Succeeded or Failed.' },
  ),
  invokeIds: Type.Array(Type.String({ maxLength: 64 }), {
    description: 'Cloud Assistant invoke IDs of the batch (one per 100 instances).',
    maxItems: 100,
  }),
  failed: Type.Optional(Type.Integer({ description: 'Instances that failed.' })),
  instanceIds: Type.Optional(
    Type.Array(Type.String({ maxLength: 64 }), {
      description:
        'Instances of the batch, kept on the newest batch only: the analysis gate (spec.analysis) renders them into its queries.',
      maxItems: 10000,
    }),
  ),
  startTime: Type.Optional(Type.String({ format: 'date-time' })),
  finishTime: Type.Optional(Type.String({ format: 'date-time' })),
});
export type BatchStatus = Static<typeof BatchStatusSchema>;

/** Maximum batches kept in status.rollout.batches (the newest). */
export const MAX_BATCH_ROWS = 20;

export const RolloutStatusSchema = Type.Object(
  {
    revision: Type.String({ description: 'The revision being rolled out.' }),
    version: Type.Optional(Type.String()),
    /** Rollouts started so far (part of the ClientTokens). */
    sequence: Type.Integer({ description: 'Counts rollouts of this object (part of every ClientToken).' }),
    startTime: Type.String({ format: 'date-time' }),
    lastProgressTime: Type.String({
      format: 'date-time',
      description: 'Last batch start or finish (progressDeadlineSeconds counts from here, not while paused).',
    }),
    nextBatch: Type.Integer({ description: 'Index of the next batch to start.' }),
    failed: Type.Integer({ description: 'Instances that failed in this rollout (compared with maxErrors).' }),
    enrol: Type.Optional(
      Type.Boolean({
        description: 'True: this rollout enrols instances that lack the stable revision (no canary).',
      }),
    ),
    pausedAt: Type.Optional(Type.String({ format: 'date-time' })),
    pauseReason: Type.Optional(
      Type.String({ description: 'canary, spec or between (pauseBetweenBatches).' }),
    ),
    promoteHandled: Type.Optional(
      Type.String({ description: `Last value of ${PROMOTE_REQUESTED_ANNOTATION} acted on.` }),
    ),
    failure: Type.Optional(
      Type.Object({
        step: Type.Optional(Type.String()),
        instanceId: Type.Optional(Type.String()),
        exitCode: Type.Optional(Type.Integer()),
        message: Type.String({ maxLength: 2048 }),
      }),
    ),
    canaryPromoted: Type.Optional(
      Type.Boolean({ description: 'The canary pause ended (promoted, or pauseDuration passed).' }),
    ),
    rollback: Type.Optional(
      Type.Object(
        {
          to: Type.String({
            description: 'The revision rolled back to (status.stableRevision when it began), or none.',
          }),
          remaining: Type.Array(Type.String(), {
            description:
              'Instances not yet confirmed on that revision (recorded before the first RunCommand; unreachable ones stay until they are back).',
          }),
          total: Type.Integer({ description: 'Instances the rollback had to move back.' }),
          attempt: Type.Integer({
            description: 'Rollback RunCommand rounds sent so far (part of their ClientTokens).',
          }),
          invokeIds: Type.Array(Type.String({ maxLength: 64 }), {
            description: 'The newest rollback invoke IDs.',
            maxItems: 100,
          }),
          retryAt: Type.Optional(
            Type.String({
              format: 'date-time',
              description: 'When instances whose rollback failed are retried.',
            }),
          ),
        },
        { description: 'The rollback of this rollout, once it began.' },
      ),
    ),
    retrying: Type.Optional(
      Type.Object(
        {
          batch: Type.Integer({ description: 'The batch the instances belong to.' }),
          instanceIds: Type.Array(Type.String()),
          attempt: Type.Integer({ description: 'Download attempts made (1 = the batch itself).' }),
          notBefore: Type.String({ format: 'date-time' }),
          sent: Type.Optional(Type.Boolean({ description: 'The retry was started.' })),
        },
        {
          description:
            'Instances of the running batch whose download failed in transport (nothing changed on the host), re-sent with backoff before they count as failed.',
        },
      ),
    ),
    batches: Type.Array(BatchStatusSchema, { maxItems: MAX_BATCH_ROWS, description: 'The newest batches.' }),
  },
  { description: 'The rollout in progress (or the last one).' },
);
export type RolloutStatus = Static<typeof RolloutStatusSchema>;

export const StableReleaseSchema = Type.Object(
  {
    revision: Type.String(),
    version: Type.Optional(Type.String()),
    artifact: Type.Object({
      url: Type.String({
        description: 'The artifact URL with any query string removed (a pre-signed signature is never kept).',
      }),
      urlDigest: Type.Optional(
        Type.String({
          description:
            'SHA-256 (salted with the object UID) of the full URL when a query string was removed: the URL is used again only while the spec still carries it.',
        }),
      ),
      sha256: Type.String(),
      format: Type.String(),
    }),
    install: Type.Object({
      appDir: Type.Optional(Type.String()),
      user: Type.Optional(Type.String()),
      keepReleases: Type.Optional(Type.Integer()),
      envNames: Type.Optional(Type.Array(Type.String(), { maxItems: 32 })),
      envDigest: Type.Optional(
        Type.String({
          description:
            'SHA-256 (salted with the object UID) of the env values; values are never kept, they are taken from the spec while it still carries the same ones.',
        }),
      ),
      envVarsDigest: Type.Optional(
        Type.String({
          description:
            'SHA-256 (salted with the object UID) of install.envVars (names, inline values, Secret references); taken from the spec while it still carries the same ones. Secret values come from the OOS encrypted parameter.',
        }),
      ),
    }),
    hooks: HooksSchema,
    healthCheck: Type.Optional(HealthCheckSchema),
  },
  {
    description:
      'What the stable revision was built from (no secrets), so it can be deployed on an instance that never had it.',
  },
);
export type StableRelease = Static<typeof StableReleaseSchema>;

export const SecretParameterStatusSchema = Type.Object(
  {
    name: Type.String({
      description:
        'The OOS encrypted parameter (Parameter Store) that carries the Secret-sourced env values; owned by this object, deleted with it.',
    }),
    secretVersions: Type.Optional(
      Type.String({
        description:
          'The Secrets (name@resourceVersion, sorted; then ;refs= and a digest of the env name → Secret/key mapping) whose values the parameter holds, confirmed by OOS. Never values.',
        maxLength: 4096,
      }),
    ),
    redeployedVersions: Type.Optional(
      Type.String({
        description:
          'The secretVersions the instances of the current revision were last deployed with; a difference re-deploys them.',
        maxLength: 4096,
      }),
    ),
    refresh: Type.Optional(
      Type.Object(
        {
          secretVersions: Type.String({ maxLength: 4096 }),
          pending: Type.Array(Type.String(), { maxItems: 10000 }),
        },
        {
          description:
            'A re-deploy of the current revision after a Secret change, in batches: the instances still to re-deploy with secretVersions.',
        },
      ),
    ),
  },
  { description: 'Delivery of install.envVars valueFrom.secretKeyRef values.' },
);
export type SecretParameterStatus = Static<typeof SecretParameterStatusSchema>;

export const HistoryEntrySchema = Type.Object({
  revision: Type.String(),
  version: Type.Optional(Type.String()),
  result: Type.Union(
    ['Succeeded', 'Failed', 'RolledBack', 'Superseded'].map((v) => Type.Literal(v)),
    { description: 'Succeeded, Failed, RolledBack or Superseded.' },
  ),
  message: Type.Optional(Type.String({ maxLength: 1024 })),
  finished: Type.String({ format: 'date-time' }),
});
export type HistoryEntry = Static<typeof HistoryEntrySchema>;

export const AppReleaseStatusSchema = Type.Object({
  ...commonStatusProperties,
  phase: Type.Optional(
    Type.Union(
      ReleasePhaseValues.map((v) => Type.Literal(v)),
      { description: 'Progressing, Paused, Succeeded, Failed, RollingBack or RolledBack.' },
    ),
  ),
  currentRevision: Type.Optional(Type.String({ description: 'Revision of the current spec.' })),
  stableRevision: Type.Optional(Type.String({ description: 'The last revision whose rollout completed.' })),
  stableVersion: Type.Optional(Type.String()),
  stableRelease: Type.Optional(StableReleaseSchema),
  rollout: Type.Optional(RolloutStatusSchema),
  secretParameter: Type.Optional(SecretParameterStatusSchema),
  analysis: Type.Optional(AnalysisStatusSchema),
  trafficControl: Type.Optional(TrafficControlStatusSchema),
  summary: Type.Optional(
    Type.Object(
      {
        targeted: Type.Integer({ description: 'Instances matched by targets, minus exclusions.' }),
        updated: Type.Integer({ description: 'Instances on the current revision.' }),
        healthy: Type.Integer({
          description: 'Reachable instances on the current or stable revision that did not fail.',
        }),
        inProgress: Type.Integer({ description: 'Instances in a running batch.' }),
        failed: Type.Integer({ description: 'Instances whose deploy failed.' }),
        rolledBack: Type.Integer({ description: 'Instances rolled back to the stable revision.' }),
        pending: Type.Integer({ description: 'Reachable instances not yet on the current revision.' }),
        unreachable: Type.Integer({ description: 'Stopped instances or Cloud Assistant offline.' }),
      },
      { description: 'Counts over ALL targeted instances (status.instances is bounded).' },
    ),
  ),
  instances: Type.Optional(
    Type.Array(AppInstanceStatusSchema, {
      description: 'Per-instance rows, bounded (default 100): failed and in-progress first.',
    }),
  ),
  history: Type.Optional(
    Type.Array(HistoryEntrySchema, {
      description: 'Finished rollouts, newest first (spec.revisionHistoryLimit entries).',
      maxItems: 100,
    }),
  ),
  ...targetNodeStatusProperties,
  ...executionStatusProperties,
});
export type AppReleaseStatus = Static<typeof AppReleaseStatusSchema>;

export interface AppRelease {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: AppReleaseSpec;
  status?: AppReleaseStatus;
}
