/**
 * Schemas and types shared by every ecsops kind (API group `ecsops.io`, version `v1alpha1`).
 *
 * These TypeBox schemas are the single source of truth: TypeScript types are derived with
 * `Static<>`, and `crds/*.yaml` is generated from them (`npm run crds`; a test fails when the
 * committed YAML drifts). They must stay Kubernetes *structural* schemas: no `anyOf` of types,
 * no `patternProperties`; free-form maps use `x-kubernetes-preserve-unknown-fields`.
 */
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { Condition } from '../runtime/conditions.js';

export type { Condition };

export const GROUP = 'ecsops.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Finalizer that holds deletion until cleanup (DESIGN §3). */
export const FINALIZER = 'ecsops.io/cleanup';
/** Flux-style on-demand reconcile annotation; its value is echoed to status.lastHandledReconcileAt. */
export const RECONCILE_REQUESTED_ANNOTATION = 'ecsops.io/reconcile-requested-at';
/** OOS execution tag naming the owning resource's UID (DESIGN §3 idempotency). */
export const OWNER_UID_TAG = 'ecsops.io/owner-uid';
export const OWNER_KIND_TAG = 'ecsops.io/owner-kind';
export const OWNER_NAME_TAG = 'ecsops.io/owner';

/** Alibaba Cloud instance ID, e.g. `i-bp67acfmxazb4p****` (lower-case alphanumerics after `i-`). */
export const INSTANCE_ID_PATTERN = '^i-[a-z0-9]+$';
/** Alibaba Cloud region ID, e.g. `cn-hangzhou`, `ap-southeast-1`, `cn-shanghai-finance-1`. */
export const REGION_ID_PATTERN = '^[a-z]{2,4}(-[a-z0-9]+){1,3}$';
/** Go-style duration as used by Flux `interval` (e.g. `30s`, `10m`, `1h30m`). */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';

/** Integer or string (`x-kubernetes-int-or-string`), e.g. `10` or `"25%"`. */
export function IntOrString(options: Record<string, unknown>) {
  // maxLength bounds the string form: without it the API server's CEL rejection echoes the whole
  // value (a 1 MiB string gave a 1 MiB error message; found by the chaos suite, R4).
  return Type.Unsafe<number | string>({ 'x-kubernetes-int-or-string': true, maxLength: 16, ...options });
}

/** A free-form JSON object kept as-is by the API server. */
export function FreeFormObject(options: Record<string, unknown>) {
  return Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    'x-kubernetes-preserve-unknown-fields': true,
    ...options,
  });
}

export const RegionIdSchema = Type.String({
  description: 'Alibaba Cloud region ID of every targeted instance, e.g. cn-hangzhou.',
  pattern: REGION_ID_PATTERN,
  maxLength: 64,
});

const InstanceIdSchema = Type.String({ pattern: INSTANCE_ID_PATTERN, maxLength: 64 });

export const TagSchema = Type.Object({
  key: Type.String({ description: 'ECS tag key.', minLength: 1, maxLength: 128 }),
  value: Type.Optional(
    Type.String({ description: 'ECS tag value; omitted = any value of the key.', maxLength: 128 }),
  ),
});
export type Tag = Static<typeof TagSchema>;

export const TargetsSchema = Type.Object(
  {
    instanceIds: Type.Optional(
      Type.Array(InstanceIdSchema, {
        description: 'Explicit ECS instance IDs (pattern ^i-[a-z0-9]+$).',
        minItems: 1,
        maxItems: 10000,
        'x-kubernetes-list-type': 'set',
      }),
    ),
    tags: Type.Optional(
      Type.Array(TagSchema, {
        description:
          'Instances carrying all of these ECS tags. Re-resolved on every reconcile, so newly tagged instances are enrolled automatically.',
        minItems: 1,
        maxItems: 20,
      }),
    ),
    excludeInstanceIds: Type.Optional(
      Type.Array(InstanceIdSchema, {
        description: 'Instance IDs never acted on, even when matched by instanceIds or tags.',
        maxItems: 10000,
        'x-kubernetes-list-type': 'set',
      }),
    ),
  },
  {
    description: 'Which instances the resource applies to: exactly one of instanceIds or tags.',
    'x-kubernetes-validations': [
      {
        rule: 'has(self.instanceIds) != has(self.tags)',
        message: 'exactly one of targets.instanceIds or targets.tags must be set',
      },
    ],
  },
);
export type Targets = Static<typeof TargetsSchema>;

/** CEL: an int-or-string that is an integer >= min, or a percentage string 1%..100% (0% when min is 0). */
function countOrPercentRule(field: string, min: number) {
  const pct = min === 0 ? '^(100|[1-9]?[0-9])%$' : '^(100|[1-9][0-9]?)%$';
  return {
    rule: `type(self) == int ? self >= ${min} : self.matches('${pct}')`,
    message: `${field} must be an integer >= ${min} or a percentage string between ${min === 0 ? '0' : '1'}% and 100%`,
  };
}

export const RateControlSchema = Type.Object(
  {
    concurrency: Type.Optional(
      IntOrString({
        description:
          'How many instances OOS works on at once: an integer >= 1 or a percentage of the batch ("25%"). Passed to OOS rateControl.Concurrency.',
        default: 10,
        'x-kubernetes-validations': [countOrPercentRule('concurrency', 1)],
      }),
    ),
    maxErrors: Type.Optional(
      IntOrString({
        description:
          'How many instances may fail before OOS stops the execution: an integer >= 0 or a percentage ("10%"). Passed to OOS rateControl.MaxErrors.',
        default: 0,
        'x-kubernetes-validations': [countOrPercentRule('maxErrors', 0)],
      }),
    ),
  },
  { description: 'OOS rate control for each execution (Mode Concurrency).' },
);
export type RateControl = Static<typeof RateControlSchema>;

/** Bounds of `spec.interval` (admission, CEL `duration()`; the reconciler clamps stored values too). */
export const MIN_INTERVAL = '10s';
export const MAX_INTERVAL = '24h';
export const MIN_INTERVAL_MS = 10_000;
export const MAX_INTERVAL_MS = 24 * 3_600_000;

/** `spec.interval`: a Go duration between {@link MIN_INTERVAL} and {@link MAX_INTERVAL}. */
export function IntervalSchema(
  description = 'How often live state is re-read to detect drift (Go duration, e.g. 10m; 10s to 24h). ±5% jitter.',
) {
  return Type.String({
    description,
    default: '10m',
    pattern: DURATION_PATTERN,
    maxLength: 32,
    'x-kubernetes-validations': [
      {
        rule: `duration(self) >= duration('${MIN_INTERVAL}')`,
        message: `interval must be at least ${MIN_INTERVAL} (a shorter period would spend the region's API quota on re-reads)`,
      },
      {
        rule: `duration(self) <= duration('${MAX_INTERVAL}')`,
        message: `interval must be at most ${MAX_INTERVAL}`,
      },
    ],
  });
}

/** Values of `spec.driftDetection` (EcsExtension, PatchPolicy); the fleet view's `DriftDetection`. */
export const DRIFT_DETECTION_VALUES = ['ChangeFeed', 'PerInstance'] as const;
export type DriftDetectionMode = (typeof DRIFT_DETECTION_VALUES)[number];
/** The default of `spec.driftDetection`. */
export const DEFAULT_DRIFT_DETECTION: DriftDetectionMode = 'ChangeFeed';

/**
 * `spec.driftDetection` of the kinds that read per-instance state (EcsExtension package states,
 * PatchPolicy patch states): how the region's shared view keeps that state fresh, and what it costs.
 */
export const DriftDetectionSchema = Type.Union(
  DRIFT_DETECTION_VALUES.map((v) => Type.Literal(v)),
  {
    description:
      "How drift is detected. ChangeFeed (default): each interval, one region-wide listing of the OOS executions (and, where enabled, ActionTrail events) that started or ended since the last listing, shared by every resource; only instances they touched, new instances, instances in a failed or unknown state, and instances whose last read is older than the controller's --full-resync-period (default 10h) are re-read one by one, so a steady fleet costs a few calls per interval instead of one per instance. PerInstance: every instance's state is re-read one by one each interval (OOS ListInstancePackageStates takes one instance per call; ListInstancePatchStates 100), the cost grows with the fleet; pick it for a few instances whose state is changed by something that leaves no OOS execution and no ActionTrail event and must be seen within one interval.",
    default: DEFAULT_DRIFT_DETECTION,
  },
);

/**
 * `spec.interval` of the kinds with {@link DriftDetectionSchema}: what the period means depends on
 * the drift detection mode.
 */
export const DRIFT_INTERVAL_DESCRIPTION =
  "How often the resource is reconciled and the region's change feed is read (driftDetection ChangeFeed; with PerInstance every instance is re-read this often). Each instance is re-read one by one at least every --full-resync-period of the controller (default 10h) in either mode. Go duration, e.g. 10m; 10s to 24h; ±5% jitter.";

/**
 * `status.stateFreshness` (EcsExtension, PatchPolicy): how fresh the resource's view of its
 * targets' state is. Written only when the mode changes or the sweep time moves by at least half
 * the full-resync period, so a steady fleet costs no status write per interval.
 */
export const StateFreshnessSchema = Type.Object(
  {
    driftDetection: Type.Union(
      DRIFT_DETECTION_VALUES.map((v) => Type.Literal(v)),
      { description: 'The spec.driftDetection the time below was recorded for.' },
    ),
    lastFullResyncTime: Type.Optional(
      Type.String({
        format: 'date-time',
        description:
          "Every reachable target's state was read one by one (not only through the change feed) at or after this time. Moves forward only in steps of at least half the controller's --full-resync-period (it may lag the newest sweep by that much); absent until the first read. ecsops_state_oldest_read_age_seconds has the exact age.",
      }),
    ),
  },
  {
    description:
      "How fresh this resource's view of its targets' state is: the drift detection mode and the last full one-by-one read.",
  },
);
export type StateFreshness = Static<typeof StateFreshnessSchema>;

/** Status fields of the kinds with {@link DriftDetectionSchema}. */
export const stateFreshnessStatusProperties = {
  stateFreshness: Type.Optional(StateFreshnessSchema),
};

/** A Kubernetes `SecretKeySelector`: one key of a Secret in the resource's namespace. */
export const SecretKeySelectorSchema = Type.Object(
  {
    name: Type.String({
      description: 'Name of the Secret, in the namespace of the resource.',
      pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
      maxLength: 253,
    }),
    key: Type.String({
      description: 'Key of the Secret data.',
      pattern: '^[-._a-zA-Z0-9]+$',
      maxLength: 253,
    }),
  },
  { description: 'A key of a Kubernetes Secret.' },
);
export type SecretKeySelector = Static<typeof SecretKeySelectorSchema>;

/** Common spec fields (DESIGN §1). */
export const commonSpecProperties = {
  regionId: RegionIdSchema,
  targets: TargetsSchema,
  rateControl: Type.Optional(RateControlSchema),
  suspend: Type.Optional(
    Type.Boolean({
      description: 'When true the controller makes no cloud writes (it keeps reading state for status).',
      default: false,
    }),
  ),
  interval: Type.Optional(IntervalSchema()),
};

export const ConditionSchema = Type.Unsafe<Condition>(
  Type.Object({
    type: Type.String({ description: 'Condition type: Ready, Reconciling or Stalled.', maxLength: 316 }),
    status: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')], {
      description: 'True, False or Unknown.',
    }),
    observedGeneration: Type.Optional(Type.Integer({ description: 'Generation the condition was set for.' })),
    lastTransitionTime: Type.String({
      format: 'date-time',
      description: 'When status, reason or message last changed.',
    }),
    reason: Type.String({ description: 'CamelCase reason.', maxLength: 1024 }),
    message: Type.String({ description: 'Human-readable detail.', maxLength: 32768 }),
  }),
);

export const commonStatusProperties = {
  observedGeneration: Type.Optional(
    Type.Integer({ description: 'The generation whose reconcile last completed.' }),
  ),
  conditions: Type.Optional(
    Type.Array(ConditionSchema, {
      description: 'kstatus conditions: Ready (always), Reconciling and Stalled (only while True).',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    }),
  ),
  lastHandledReconcileAt: Type.Optional(
    Type.String({ description: `Last value of the ${RECONCILE_REQUESTED_ANNOTATION} annotation handled.` }),
  ),
};

/**
 * An OOS execution or Cloud Assistant invocation a resource has in flight (DESIGN §3). Compact on
 * purpose: the instance batch is not stored (OOS `ListExecutions` returns it in the execution's
 * parameters; ECS `DescribeInvocations` in its per-instance list), so a 20,000-instance target
 * keeps its object far below etcd's 1.5 MiB limit.
 */
export const TrackedExecutionSchema = Type.Object({
  executionId: Type.String({
    description: 'OOS execution ID (exec-...) or Cloud Assistant invoke ID (t-...); empty while `pending`.',
    maxLength: 128,
  }),
  pending: Type.Optional(
    Type.Boolean({
      description:
        'True from the moment the start was recorded until the cloud answered with an ID (the answer may have been lost): the next reconcile re-sends it with the same ClientToken or adopts what the owner tag lists before starting anything else.',
    }),
  ),
  generation: Type.Optional(Type.Integer({ description: 'The generation a pending start was decided for.' })),
  action: Type.String({
    description: 'What the work does, e.g. install, update, uninstall, scan.',
    maxLength: 64,
  }),
  round: Type.Optional(
    Type.Integer({ description: 'The execution round (status.executionSequence) that started it.' }),
  ),
  instanceCount: Type.Optional(Type.Integer({ description: 'Instances in the batch (at most 100).' })),
  instanceIds: Type.Optional(
    Type.Array(Type.String(), {
      description:
        'The batch of a pending start (so it can be re-sent with its ClientToken); otherwise absent: the batch is read back from the cloud (objects written by 0.1.0 carry it too).',
      maxItems: 100,
    }),
  ),
  clientToken: Type.String({ description: 'The ClientToken the work was started with.', maxLength: 64 }),
  startTime: Type.String({ format: 'date-time' }),
  trafficPhase: Type.Optional(
    Type.Union([Type.Literal('Draining'), Type.Literal('Restoring')], {
      description:
        'spec.trafficControl: Draining — the batch is out of rotation (or being taken out) and is sent once drainSeconds passed; Restoring — the work ended and its instances are back in rotation, waiting for the load balancer to report them healthy before the batch counts as done.',
    }),
  ),
  phaseSince: Type.Optional(
    Type.String({
      format: 'date-time',
      description:
        'Draining: when the load balancer confirmed every drain (the drainSeconds wait starts here). Restoring: when the originals were written back (healthyTimeoutSeconds counts from here).',
    }),
  ),
  lockKeys: Type.Optional(
    Type.String({
      description:
        'The per-instance lock this work holds while in flight: one 8-character key (48 bits of SHA-256 of the instance ID) per instance of the batch, concatenated (see src/controllers/shared/lock.ts).',
      maxLength: 800,
    }),
  ),
});
export type TrackedExecution = Static<typeof TrackedExecutionSchema>;

/** Maximum failed instance IDs remembered in status.retry.failed (the rest are counted in `omitted`). */
export const MAX_REMEMBERED_FAILURES = 5_000;

export const FailureGroupSchema = Type.Object({
  executionId: Type.Optional(Type.String({ description: 'The execution or invocation that failed.' })),
  message: Type.String({
    description: 'Sanitized failure message shared by these instances.',
    maxLength: 512,
  }),
  since: Type.String({ format: 'date-time', description: 'When the failure was recorded.' }),
  round: Type.Optional(Type.Integer({ description: 'The execution round that failed.' })),
  instanceIds: Type.Array(Type.String(), {
    description: 'Failed instances.',
    maxItems: MAX_REMEMBERED_FAILURES,
  }),
});
export type FailureGroup = Static<typeof FailureGroupSchema>;

export const RetryStatusSchema = Type.Object(
  {
    failures: Type.Integer({ description: 'Consecutive execution rounds that left instances Failed.' }),
    nextRetryTime: Type.Optional(
      Type.String({
        format: 'date-time',
        description:
          'Failed instances are retried after this time (absent while the failing round still runs).',
      }),
    ),
    countedRound: Type.Optional(
      Type.Integer({ description: 'The last round already counted in `failures` (a round counts once).' }),
    ),
    failed: Type.Optional(
      Type.Array(FailureGroupSchema, {
        description:
          'Every instance whose last execution failed, grouped by execution and message. Never cut for display (status.instances is); bounded by MAX_REMEMBERED_FAILURES IDs.',
      }),
    ),
    omitted: Type.Optional(
      Type.Integer({
        description: 'Failed instances beyond the remembered bound (not retried until a spec change).',
      }),
    ),
  },
  { description: 'Backoff for retrying failed instances, and the failure memory it applies to.' },
);
export type RetryStatus = Static<typeof RetryStatusSchema>;

/** Fields every per-instance status row has; kinds add their own (version, counts, ...). */
export const instanceRowProperties = {
  instanceId: Type.String({ maxLength: 64 }),
  executionId: Type.Optional(
    Type.String({
      description: 'Last OOS execution / Cloud Assistant invocation that acted on this instance.',
    }),
  ),
  message: Type.Optional(
    Type.String({ description: 'Short reason, e.g. the OOS task StatusMessage.', maxLength: 1024 }),
  ),
  lastTransitionTime: Type.Optional(Type.String({ format: 'date-time' })),
};

/** Status fields of kinds that run executions (tracked work, sequence, retry). */
export const executionStatusProperties = {
  executions: Type.Optional(
    Type.Array(TrackedExecutionSchema, {
      description:
        'Executions / invocations in flight; a restarted controller resumes them instead of starting new ones.',
    }),
  ),
  executionSequence: Type.Optional(
    Type.Integer({
      description:
        'Counts execution rounds started; part of each deterministic ClientToken so a crash before this status write reuses the same token.',
    }),
  ),
  retry: Type.Optional(RetryStatusSchema),
};

/**
 * `spec.allowKubernetesNodes` of the kinds doing disruptive work (PatchPolicy, AppRelease): the
 * opt-in that lets them act on ECS instances ACK tagged as its worker nodes (tag `ack.aliyun.com`
 * or `ack.alibabacloud.com/nodepool-id`; src/controllers/shared/kubernetes-nodes.ts).
 */
export const AllowKubernetesNodesSchema = Type.Boolean({
  description:
    'Act on targeted ECS instances that are ACK worker nodes (tag ack.aliyun.com or ack.alibabacloud.com/nodepool-id). Default false: they are excluded and listed in status.excluded, because a reboot or a deploy by ecsops bypasses the cluster drain. Set true only for nodes you drain yourself.',
  default: false,
});

export const ExcludedTargetsSchema = Type.Array(
  Type.Object({
    reason: Type.String({
      description: 'Why these targets are excluded: KubernetesNode (an ACK worker node).',
      maxLength: 64,
    }),
    count: Type.Integer({ description: 'How many targeted instances are excluded for this reason.' }),
    instanceIds: Type.Array(Type.String({ maxLength: 64 }), {
      description: 'The first excluded instance IDs (sorted; at most 10).',
      maxItems: 10,
    }),
    message: Type.Optional(
      Type.String({ description: 'What the reason means and how to opt in.', maxLength: 1024 }),
    ),
  }),
  {
    description:
      'Instances matched by spec.targets that the resource does not act on, grouped by reason. Not counted in summary.targeted.',
    maxItems: 8,
  },
);
export type ExcludedTargets = Static<typeof ExcludedTargetsSchema>;

export const KubernetesNodesStatusSchema = Type.Object(
  {
    count: Type.Integer({ description: 'Targeted instances that are ACK worker nodes.' }),
    instanceIds: Type.Array(Type.String({ maxLength: 64 }), {
      description: 'The first of them (sorted; at most 10).',
      maxItems: 10,
    }),
  },
  {
    description:
      'Targeted instances that are ACK worker nodes and ARE acted on (EcsExtension always; PatchPolicy and AppRelease only with spec.allowKubernetesNodes).',
  },
);
export type KubernetesNodesStatus = Static<typeof KubernetesNodesStatusSchema>;

/** Status fields recording the Kubernetes nodes among the targets (every kind). */
export const targetNodeStatusProperties = {
  excluded: Type.Optional(ExcludedTargetsSchema),
  kubernetesNodes: Type.Optional(KubernetesNodesStatusSchema),
};

/**
 * Object metadata. NB: custom objects arrive as raw JSON, so the Date-typed timestamps of
 * V1ObjectMeta are really RFC 3339 strings at run time; only test them for presence.
 */
export type ObjectMeta = V1ObjectMeta;

/** Removes TypeBox's symbol keys and returns plain JSON (for the CRD's openAPIV3Schema). */
export function toJsonSchema(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

/**
 * Converts a union of string literals (TypeBox `anyOf` of `const`) into the structural
 * `{type: string, enum: [...]}` form Kubernetes requires. Applied recursively by the CRD builder.
 */
export function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (node === null || typeof node !== 'object') return node;
  const obj = node as Record<string, unknown>;
  const anyOf = obj.anyOf as Array<Record<string, unknown>> | undefined;
  if (anyOf && anyOf.every((s) => typeof s.const === 'string')) {
    const { anyOf: _drop, ...rest } = obj;
    return { ...(structural(rest) as object), type: 'string', enum: anyOf.map((s) => s.const) };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'const') continue;
    out[k] = structural(v);
  }
  return out;
}
