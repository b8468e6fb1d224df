/**
 * `spec.analysis` and `status.analysis` of AppRelease and PatchPolicy (issue 22): a metric gate
 * evaluated after every AppRelease batch (and during the canary pause) and between PatchPolicy
 * install executions. Shaped after Argo Rollouts' `AnalysisTemplate` metrics
 * (https://argo-rollouts.readthedocs.io/en/stable/features/analysis/), with a Prometheus
 * instant query (`GET /api/v1/query`, https://prometheus.io/docs/prometheus/latest/querying/api/)
 * as the only provider; Alibaba Cloud Managed Service for Prometheus speaks the same HTTP API.
 *
 * Defined once here; both kinds embed {@link AnalysisSpecSchema} / {@link AnalysisStatusSchema}.
 * The engine is src/controllers/shared/analysis/gate.ts.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DURATION_PATTERN, SecretKeySelectorSchema } from './common.js';

/** Placeholders a metric query may use; each is replaced by the gated batch's facts (gate.ts `renderQuery`). */
export const QUERY_PLACEHOLDERS = [
  'instanceIds',
  'instanceIdsRegex',
  'ips',
  'ipsRegex',
  'zones',
  'zonesRegex',
  'batch',
] as const;
export type QueryPlaceholder = (typeof QUERY_PLACEHOLDERS)[number];

/** Bounds (admission) of a metric's `interval`. */
export const MIN_ANALYSIS_INTERVAL = '1s';
export const MAX_ANALYSIS_INTERVAL = '1h';
/** Upper bound (admission) of `bakeTime`. */
export const MAX_BAKE_TIME = '24h';
/** Most metrics per analysis. */
export const MAX_ANALYSIS_METRICS = 10;
/** Longest query (characters, before rendering). */
export const MAX_QUERY_LENGTH = 4096;
/** Longest success/failure condition (characters). */
export const MAX_CONDITION_LENGTH = 1024;

/** The http(s) base URL rule: no user info (credentials), query string or fragment. */
const PROMETHEUS_URL_PATTERN = '^https?://[^/@\\s?#]+(/[^\\s?#]*)?$';

const placeholderList = QUERY_PLACEHOLDERS.map((p) => `{{${p}}}`);

export const PrometheusConnectionSchema = Type.Object(
  {
    url: Type.String({
      description:
        'Base URL of a Prometheus-compatible HTTP API (http or https; e.g. http://prometheus.monitoring:9090 or the Alibaba Cloud Managed Service for Prometheus HTTP API URL). Instant queries are sent to <url>/api/v1/query. No user info, query string or fragment: put a token in bearerTokenSecretRef.',
      minLength: 1,
      maxLength: 2048,
      'x-kubernetes-validations': [
        {
          // Backslashes doubled: the pattern sits in a CEL string literal.
          rule: `self.matches('${PROMETHEUS_URL_PATTERN.replaceAll('\\', '\\\\')}')`,
          message:
            'analysis.prometheus.url must be an http:// or https:// URL without user info, query string or fragment, e.g. http://prometheus.monitoring:9090',
        },
      ],
    }),
    bearerTokenSecretRef: Type.Optional(
      Type.Object(SecretKeySelectorSchema.properties, {
        description:
          'A Secret key (in the resource namespace) holding a bearer token sent as "Authorization: Bearer <token>". Read with the same RBAC as install.envVars secrets (ClusterRole ecsops-secret-reader bound in the namespace). Never logged or shown.',
      }),
    ),
    caSecretRef: Type.Optional(
      Type.Object(SecretKeySelectorSchema.properties, {
        description:
          'A Secret key (in the resource namespace) holding the PEM CA bundle that signs the https server certificate (default: the system CAs).',
      }),
    ),
    timeoutSeconds: Type.Optional(
      Type.Integer({
        description:
          'Seconds before a query is abandoned (the measurement is inconclusive). Also sent to Prometheus as the query timeout.',
        minimum: 1,
        maximum: 60,
        default: 10,
      }),
    ),
  },
  { description: 'How to reach Prometheus.' },
);
export type PrometheusConnection = Static<typeof PrometheusConnectionSchema>;

export const AnalysisMetricSchema = Type.Object(
  {
    name: Type.String({
      description: 'Name of the metric (unique in the analysis), shown in status and condition messages.',
      pattern: '^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$',
      maxLength: 63,
    }),
    query: Type.String({
      description: `PromQL instant query. May use ${placeholderList.join(' ')}: the gated batch's instance IDs, private IPs and zones, comma-separated, or as a regex alternation (a|b, dots as [.]) for a label matcher such as instance_id=~"{{instanceIdsRegex}}"; {{batch}} is the batch (or execution) index. Write it so it always returns a sample (e.g. "sum(...) or vector(0)"): no sample is inconclusive.`,
      minLength: 1,
      maxLength: MAX_QUERY_LENGTH,
      'x-kubernetes-validations': [
        {
          rule: `self.findAll('\\\\{\\\\{[^{}]*\\\\}\\\\}').all(p, p in [${placeholderList.map((p) => `'${p}'`).join(', ')}])`,
          message: `analysis metric query may only use the placeholders ${placeholderList.join(', ')}`,
        },
      ],
    }),
    interval: Type.Optional(
      Type.String({
        description: `Time between two measurements of this metric (Go duration, ${MIN_ANALYSIS_INTERVAL} to ${MAX_ANALYSIS_INTERVAL}).`,
        default: '30s',
        pattern: DURATION_PATTERN,
        maxLength: 32,
        'x-kubernetes-validations': [
          {
            rule: `duration(self) >= duration('${MIN_ANALYSIS_INTERVAL}') && duration(self) <= duration('${MAX_ANALYSIS_INTERVAL}')`,
            message: `analysis metric interval must be a duration between ${MIN_ANALYSIS_INTERVAL} and ${MAX_ANALYSIS_INTERVAL}, e.g. 30s`,
          },
        ],
      }),
    ),
    count: Type.Optional(
      Type.Integer({
        description:
          'Conclusive measurements (successful or failed) to take, one per interval; the metric passes when all are taken within failureLimit. Inconclusive ones do not count.',
        minimum: 1,
        maximum: 1000,
        default: 1,
      }),
    ),
    successCondition: Type.Optional(
      Type.String({
        description:
          'CEL expression over `result` (a number for a scalar or a one-sample vector, else a list: result[0], result.all(r, r < 0.05), size(result)) and `results` (always a list); isNaN(x) is available. Example: result < 0.05. False counts as a failure unless failureCondition is also set (then it is inconclusive).',
        minLength: 1,
        maxLength: MAX_CONDITION_LENGTH,
      }),
    ),
    failureCondition: Type.Optional(
      Type.String({
        description:
          'CEL expression over `result` / `results` (as successCondition) that marks a measurement failed, e.g. result > 0.05. Checked first.',
        minLength: 1,
        maxLength: MAX_CONDITION_LENGTH,
      }),
    ),
    failureLimit: Type.Optional(
      Type.Integer({
        description: 'Failed measurements tolerated; one more fails the analysis. Less than count.',
        minimum: 0,
        maximum: 999,
        default: 0,
      }),
    ),
    inconclusiveLimit: Type.Optional(
      Type.Integer({
        description:
          'Inconclusive measurements tolerated (Prometheus unreachable, 5xx, timeout, no sample, or neither condition met); one more fails the analysis. Inconclusive never passes the gate: the rollout waits.',
        minimum: 0,
        maximum: 1000,
        default: 0,
      }),
    ),
  },
  {
    description: 'One measured metric.',
    'x-kubernetes-validations': [
      {
        rule: 'has(self.successCondition) || has(self.failureCondition)',
        message: 'each analysis metric needs a successCondition or a failureCondition (or both)',
      },
      {
        rule: '(has(self.failureLimit) ? self.failureLimit : 0) < (has(self.count) ? self.count : 1)',
        message:
          'analysis metric failureLimit must be less than count (with failureLimit >= count the metric could never fail)',
      },
    ],
  },
);
export type AnalysisMetric = Static<typeof AnalysisMetricSchema>;

export const AnalysisSpecSchema = Type.Object(
  {
    prometheus: PrometheusConnectionSchema,
    bakeTime: Type.Optional(
      Type.String({
        description: `Wait after each batch (after its health checks) before the first measurement (Go duration, 0s to ${MAX_BAKE_TIME}).`,
        default: '0s',
        pattern: DURATION_PATTERN,
        maxLength: 32,
        'x-kubernetes-validations': [
          {
            rule: `duration(self) <= duration('${MAX_BAKE_TIME}')`,
            message: `analysis.bakeTime must be a duration between 0s and ${MAX_BAKE_TIME}, e.g. 2m`,
          },
        ],
      }),
    ),
    metrics: Type.Array(AnalysisMetricSchema, {
      description:
        'The metrics measured; the gate passes when every metric passes, and fails when one fails.',
      minItems: 1,
      maxItems: MAX_ANALYSIS_METRICS,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    }),
  },
  {
    description:
      'A metric gate: Prometheus queries measured after every batch (AppRelease; also during the canary pause) or between install executions (PatchPolicy, which then runs them one at a time). A failure stops the rollout (AppRelease rolls back when rollback.automatic); an unreachable Prometheus is inconclusive: the rollout waits, and fails past inconclusiveLimit.',
  },
);
export type AnalysisSpec = Static<typeof AnalysisSpecSchema>;

/** `status.analysis.phase`. Inconclusive: still running, and a metric's last measurement was inconclusive. */
export const AnalysisPhaseValues = ['Running', 'Inconclusive', 'Successful', 'Failed'] as const;
export type AnalysisPhase = (typeof AnalysisPhaseValues)[number];

/** Outcome of one measurement. */
export const MeasurementOutcomeValues = ['Successful', 'Failed', 'Inconclusive'] as const;
export type MeasurementOutcome = (typeof MeasurementOutcomeValues)[number];

export const MetricStatusSchema = Type.Object({
  name: Type.String({ description: 'The metric (spec.analysis.metrics[].name).', maxLength: 63 }),
  measurements: Type.Integer({ description: 'Measurements taken, inconclusive ones included.' }),
  successes: Type.Integer({ description: 'Successful measurements.' }),
  failures: Type.Integer({ description: 'Failed measurements.' }),
  inconclusives: Type.Integer({ description: 'Inconclusive measurements.' }),
  lastOutcome: Type.Optional(
    Type.Union(
      MeasurementOutcomeValues.map((v) => Type.Literal(v)),
      { description: 'Successful, Failed or Inconclusive.' },
    ),
  ),
  lastValue: Type.Optional(
    Type.String({ description: 'The last measured value (a number, or a list of numbers).', maxLength: 256 }),
  ),
  lastError: Type.Optional(
    Type.String({ description: 'Why the last measurement was inconclusive (sanitized).', maxLength: 512 }),
  ),
  nextAt: Type.Optional(
    Type.String({
      format: 'date-time',
      description: 'When the next measurement is due (absent once the metric is done).',
    }),
  ),
});
export type MetricStatus = Static<typeof MetricStatusSchema>;

export const AnalysisFailureSchema = Type.Object(
  {
    metric: Type.String({ maxLength: 63 }),
    query: Type.String({ description: 'The rendered query (sanitized).', maxLength: 2048 }),
    value: Type.String({ description: 'The measured value, or the last error.', maxLength: 512 }),
    condition: Type.String({
      description:
        'What failed: failureCondition <expr> met, successCondition <expr> not met, or inconclusiveLimit <n> exceeded.',
      maxLength: 1100,
    }),
  },
  { description: 'Why the analysis failed.' },
);
export type AnalysisFailure = Static<typeof AnalysisFailureSchema>;

export const AnalysisStatusSchema = Type.Object(
  {
    runId: Type.String({
      description:
        'What this analysis gates: the batch (AppRelease) or execution (PatchPolicy) it runs after.',
      maxLength: 128,
    }),
    phase: Type.Union(
      AnalysisPhaseValues.map((v) => Type.Literal(v)),
      {
        description:
          'Running, Inconclusive (running; a last measurement was inconclusive), Successful or Failed.',
      },
    ),
    startedAt: Type.String({ format: 'date-time' }),
    bakeUntil: Type.Optional(
      Type.String({ format: 'date-time', description: 'No measurement before this time (bakeTime).' }),
    ),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
    metrics: Type.Array(MetricStatusSchema, { maxItems: MAX_ANALYSIS_METRICS }),
    failure: Type.Optional(AnalysisFailureSchema),
    message: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { description: 'Progress of the metric gate of the current batch or execution (spec.analysis).' },
);
export type AnalysisStatus = Static<typeof AnalysisStatusSchema>;
