/**
 * `InstanceDisruptionBudget` (ecsops.io/v1alpha1, cluster-scoped): "of the ECS instances this
 * selector matches in this region, at most `maxUnavailable` (an integer, or a percentage rounded
 * up as Kubernetes rounds a PodDisruptionBudget's maxUnavailable) may be disrupted at once, across
 * every kind" — optionally per zone. Named after PodDisruptionBudget; cluster-scoped because
 * instances belong to no namespace and a namespaced budget would let any namespace block everyone.
 *
 * An instance is unavailable while any resource holds it in the cross-kind per-instance lock (an
 * EcsExtension execution, a PatchPolicy install execution for its whole run, an AppRelease batch,
 * a deletion's uninstall). Every kind's start path consults every budget that selects an instance
 * before acting (src/controllers/shared/start.ts).
 */
import { Type, type Static } from '@sinclair/typebox';
import {
  commonStatusProperties,
  IntOrString,
  RegionIdSchema,
  TargetsSchema,
  type ObjectMeta,
} from './common.js';

export const INSTANCE_DISRUPTION_BUDGET_KIND = 'InstanceDisruptionBudget';
export const INSTANCE_DISRUPTION_BUDGET_PLURAL = 'instancedisruptionbudgets';

export const InstanceDisruptionBudgetSpecSchema = Type.Object(
  {
    regionId: { ...RegionIdSchema, description: 'Alibaba Cloud region ID of the selected instances.' },
    selector: {
      ...TargetsSchema,
      description:
        'Which instances the budget covers (the same shape as a resource\u2019s spec.targets): exactly one of instanceIds or tags, minus excludeInstanceIds. Tags are re-resolved on every budget reconcile.',
    },
    maxUnavailable: IntOrString({
      description:
        'How many selected instances may be disrupted at once: an integer >= 0, or a percentage string "0%".."100%" of the selected instances (of each zone with perZone), rounded UP as Kubernetes rounds a PodDisruptionBudget maxUnavailable percentage. 0 or "0%" blocks every start on the selected instances (the waiting resources become Stalled BudgetUnsatisfiable).',
      'x-kubernetes-validations': [
        {
          rule: "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",
          message: 'maxUnavailable must be an integer >= 0 or a percentage string between 0% and 100%',
        },
      ],
    }),
    perZone: Type.Optional(
      Type.Boolean({
        description:
          'When true, maxUnavailable applies to each zone\u2019s selected instances separately (a percentage is taken of each zone\u2019s count).',
        default: false,
      }),
    ),
  },
  { description: 'Which instances, and how many of them may be disrupted at once.' },
);
export type InstanceDisruptionBudgetSpec = Static<typeof InstanceDisruptionBudgetSpecSchema>;

/** Usage of one zone (status.zones[]). */
export const BudgetZoneStatusSchema = Type.Object({
  zoneId: Type.String({
    description: 'ECS zone ID ("" when DescribeInstances reported none).',
    maxLength: 64,
  }),
  selected: Type.Integer({ description: 'Selected instances in the zone.' }),
  unavailable: Type.Integer({ description: 'Selected instances of the zone held now.' }),
  allowed: Type.Optional(
    Type.Integer({ description: 'Instances of the zone that may be unavailable at once (perZone only).' }),
  ),
});

/** One holder of selected instances (status.holders[]). */
export const BudgetHolderSchema = Type.Object({
  kind: Type.String({ maxLength: 64 }),
  namespace: Type.String({ maxLength: 253 }),
  name: Type.String({ maxLength: 253 }),
  count: Type.Integer({ description: 'Selected instances it holds now.' }),
});

export const InstanceDisruptionBudgetStatusSchema = Type.Object({
  ...commonStatusProperties,
  selected: Type.Optional(
    Type.Integer({ description: 'Instances the selector matched at the last reconcile.' }),
  ),
  allowed: Type.Optional(
    Type.Integer({
      description:
        'Instances that may be unavailable at once: maxUnavailable resolved against selected (with perZone, the sum over zones; each zone\u2019s own figure is in zones[]).',
    }),
  ),
  unavailable: Type.Optional(
    Type.Integer({ description: 'Selected instances some resource holds now (disrupted).' }),
  ),
  zones: Type.Optional(
    Type.Array(BudgetZoneStatusSchema, {
      description: 'Selected and unavailable instances per zone, sorted by zone ID.',
      maxItems: 64,
    }),
  ),
  holders: Type.Optional(
    Type.Array(BudgetHolderSchema, {
      description:
        'Who holds selected instances now (kind, namespace, name, count); at most 50, largest first.',
      maxItems: 50,
    }),
  ),
});
export type InstanceDisruptionBudgetStatus = Static<typeof InstanceDisruptionBudgetStatusSchema>;

export interface InstanceDisruptionBudget {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: InstanceDisruptionBudgetSpec;
  status?: InstanceDisruptionBudgetStatus;
}
