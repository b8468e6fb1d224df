/**
 * `spec.trafficControl` and `status.trafficControl` of AppRelease and PatchPolicy (issue 24): each
 * batch's instances are taken out of rotation in the listed CLB vServer groups and ALB server
 * groups before the batch acts, and put back with their original port and weight once it is done
 * and the load balancer reports them healthy. The same idea as AWS CodeDeploy's
 * `WITH_TRAFFIC_CONTROL` and the OOS public template `ACS-ECS-BulkyRunCommandInSLBVServerGroup`
 * (CLB only, one instance at a time, no health wait).
 *
 * Defined once here; both kinds embed {@link TrafficControlSpecSchema} /
 * {@link TrafficControlStatusSchema}. The mechanism is src/controllers/shared/traffic.ts; API facts
 * are in docs/reference-load-balancers.md.
 */
import { Type, type Static } from '@sinclair/typebox';
import { IntOrString } from './common.js';

/** Most server groups one resource drains from. */
export const MAX_SERVER_GROUPS = 10;
/** Default `drainSeconds`. */
export const DEFAULT_DRAIN_SECONDS = 30;
/** Default `healthyTimeoutSeconds`. */
export const DEFAULT_HEALTHY_TIMEOUT_SECONDS = 300;
/** Default `maxDrained` (per group; at least 1 backend is always allowed out). */
export const DEFAULT_MAX_DRAINED = '25%';
/** Default `minHealthyBackends`. */
export const DEFAULT_MIN_HEALTHY_BACKENDS = 1;

export const ServerGroupRefSchema = Type.Object(
  {
    type: Type.Union([Type.Literal('CLB'), Type.Literal('ALB')], {
      description:
        'CLB: a Classic Load Balancer vServer group (rsp-…). ALB: an Application Load Balancer server group (sgp-…).',
    }),
    serverGroupId: Type.String({
      description:
        'The vServer group ID (CLB, e.g. rsp-bp1d0a0g3uql8) or server group ID (ALB, e.g. sgp-8ilqs4axp6fnhk2wbp).',
      minLength: 4,
      maxLength: 64,
      pattern: '^(rsp|sgp)-[a-z0-9]+$',
    }),
  },
  {
    'x-kubernetes-validations': [
      {
        rule: "(self.type == 'CLB') == self.serverGroupId.startsWith('rsp-')",
        message:
          'trafficControl.serverGroups: a CLB vServer group ID starts with rsp-, an ALB server group ID with sgp-',
      },
    ],
  },
);
export type ServerGroupRef = Static<typeof ServerGroupRefSchema>;

export const TrafficControlSpecSchema = Type.Object(
  {
    serverGroups: Type.Array(ServerGroupRefSchema, {
      description:
        "Load balancer server groups (in spec.regionId) the instances serve behind. Before a batch acts, each of its instances that is a backend of a group is taken out of rotation (weight 0, or removed when the group's scheduler ignores weights), and put back with its original port and weight once the batch is done. Groups of load balancers managed by ACK's cloud controller manager (tag ack.aliyun.com) are refused: the cluster would revert the weights.",
      minItems: 1,
      maxItems: MAX_SERVER_GROUPS,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['serverGroupId'],
    }),
    drainSeconds: Type.Optional(
      Type.Integer({
        description:
          'Seconds to wait after an instance is out of rotation before the batch acts (connection draining: weight 0 stops new connections; open keep-alive connections finish). For ALB the wait starts once the load balancer shows the change applied (ListServerGroupServers Available).',
        minimum: 0,
        maximum: 3600,
        default: DEFAULT_DRAIN_SECONDS,
      }),
    ),
    healthyTimeoutSeconds: Type.Optional(
      Type.Integer({
        description:
          'After an instance is put back, seconds within which the load balancer must report it healthy (CLB DescribeHealthStatus, ALB GetListenerHealthStatus); otherwise the instance fails its batch (AppRelease rolls back as for any failed batch).',
        minimum: 10,
        maximum: 3600,
        default: DEFAULT_HEALTHY_TIMEOUT_SECONDS,
      }),
    ),
    maxDrained: Type.Optional(
      IntOrString({
        description:
          "Most backends of one group out of rotation at once (counting backends at weight 0 and those this resource removed): an integer >= 1 or a percentage of the group's backends, rounded down, at least 1. Batches are cut to fit. Default 25%.",
        default: DEFAULT_MAX_DRAINED,
        'x-kubernetes-validations': [
          {
            rule: "type(self) == int ? self >= 1 : self.matches('^(100|[1-9][0-9]?)%$')",
            message:
              'trafficControl.maxDrained must be an integer >= 1 or a percentage string between 1% and 100%',
          },
        ],
      }),
    ),
    minHealthyBackends: Type.Optional(
      Type.Integer({
        description:
          'Never take an instance out of a group when fewer than this many backends the load balancer reports healthy would remain in rotation. Default 1.',
        minimum: 0,
        maximum: 1000,
        default: DEFAULT_MIN_HEALTHY_BACKENDS,
      }),
    ),
  },
  {
    description:
      'Take each batch out of its load balancers before acting and put it back, healthy, after (AppRelease: deploy and rollback batches; PatchPolicy: install executions that may reboot).',
  },
);
export type TrafficControlSpec = Static<typeof TrafficControlSpecSchema>;

export const DrainedBackendSchema = Type.Object({
  type: Type.Union([Type.Literal('CLB'), Type.Literal('ALB')]),
  serverGroupId: Type.String({ maxLength: 64 }),
  instanceId: Type.String({ maxLength: 64 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  weight: Type.Integer({
    description: 'The original weight, recorded before the first change: what restore writes back.',
    minimum: 0,
    maximum: 100,
  }),
  description: Type.Optional(
    Type.String({ maxLength: 256, description: 'The original backend description (re-added with it).' }),
  ),
  mode: Type.Union([Type.Literal('Weight'), Type.Literal('Remove')], {
    description: 'Weight: set to 0 (the scheduler honours weights). Remove: removed and re-added.',
  }),
  since: Type.String({ format: 'date-time', description: 'When the original was recorded.' }),
});
export type DrainedBackend = Static<typeof DrainedBackendSchema>;

export const TrafficControlStatusSchema = Type.Object(
  {
    backends: Type.Optional(
      Type.Array(DrainedBackendSchema, {
        description:
          'Backends this resource has taken (or is about to take) out of rotation, with their original weights, recorded before the first change. A controller that restarts restores exactly these; they are written back even while suspend is true and on deletion.',
        maxItems: 1000,
      }),
    ),
  },
  { description: 'Load balancer backends out of rotation (spec.trafficControl).' },
);
export type TrafficControlStatus = Static<typeof TrafficControlStatusSchema>;
