/**
 * `EcsExtension` (ecsops.io/v1alpha1): "OOS extension package P (version V, parameters X) is
 * installed on these ECS instances". Gaps are closed with OOS StartExecution of
 * `ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL`; live state is read with OOS
 * ListInstancePackageStates (DESIGN §1).
 */
import { Type, type Static } from '@sinclair/typebox';
import {
  commonSpecProperties,
  commonStatusProperties,
  DRIFT_INTERVAL_DESCRIPTION,
  DriftDetectionSchema,
  executionStatusProperties,
  FreeFormObject,
  instanceRowProperties,
  IntervalSchema,
  stateFreshnessStatusProperties,
  targetNodeStatusProperties,
  type ObjectMeta,
} from './common.js';

export type { TrackedExecution } from './common.js';

export const ECS_EXTENSION_KIND = 'EcsExtension';
export const ECS_EXTENSION_PLURAL = 'ecsextensions';
/** The public OOS template that installs, uninstalls and updates extension packages. */
export const CONFIGURE_PACKAGE_TEMPLATE = 'ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL';

export const EcsExtensionSpecSchema = Type.Object(
  {
    ...commonSpecProperties,
    interval: Type.Optional(IntervalSchema(DRIFT_INTERVAL_DESCRIPTION)),
    driftDetection: Type.Optional(DriftDetectionSchema),
    packageName: Type.String({
      description:
        'OOS Package template name, e.g. ACS-Extension-node-1853370294850618 (see OOS ListTemplates with TemplateType=Package).',
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
      minLength: 1,
      maxLength: 200,
    }),
    packageVersion: Type.Optional(
      Type.String({
        description:
          'Package template version to install (v1, v2, ...). Unset = the latest version, resolved on every reconcile and recorded in status.resolvedPackageVersion.',
        pattern: '^v[0-9]+$',
        maxLength: 16,
      }),
    ),
    parameters: Type.Optional(
      FreeFormObject({
        description:
          "The package template's own parameters (validated against the template's declared Parameters; unknown or missing required ones make the resource Stalled).",
        maxProperties: 64,
      }),
    ),
    deletionPolicy: Type.Optional(
      Type.Union([Type.Literal('Orphan'), Type.Literal('Uninstall')], {
        description:
          'What happens to installed packages when the resource is deleted: Orphan leaves them, Uninstall removes them from every reachable instance before the object goes away.',
        default: 'Orphan',
      }),
    ),
    mode: Type.Optional(
      Type.Union([Type.Literal('Enforce'), Type.Literal('Observe')], {
        description: 'Enforce closes gaps; Observe only reports drift and never starts executions.',
        default: 'Enforce',
      }),
    ),
  },
  { description: 'Desired state: which package, which version and parameters, on which instances.' },
);
export type EcsExtensionSpec = Static<typeof EcsExtensionSpecSchema>;

export const InstanceStateValues = ['Installed', 'Pending', 'InProgress', 'Failed', 'Unreachable'] as const;
export type InstanceState = (typeof InstanceStateValues)[number];

export const ExtensionInstanceStatusSchema = Type.Object({
  ...instanceRowProperties,
  state: Type.Union(
    InstanceStateValues.map((v) => Type.Literal(v)),
    {
      description:
        'Installed: desired version present. Pending: missing or outdated, not yet started. InProgress: in a running execution. Failed: last execution failed here. Unreachable: stopped or Cloud Assistant offline.',
    },
  ),
  version: Type.Optional(Type.String({ description: 'Installed package template version, if any.' })),
});
export type ExtensionInstanceStatus = Static<typeof ExtensionInstanceStatusSchema>;

export const EcsExtensionStatusSchema = Type.Object({
  ...commonStatusProperties,
  resolvedPackageVersion: Type.Optional(
    Type.String({ description: 'The package template version being enforced (the pin, or latest).' }),
  ),
  summary: Type.Optional(
    Type.Object(
      {
        targeted: Type.Integer({ description: 'Instances matched by targets, minus exclusions.' }),
        installed: Type.Integer({ description: 'Targets with the desired version installed.' }),
        pending: Type.Integer({
          description: 'Reachable targets missing the package or on another version.',
        }),
        inProgress: Type.Integer({ description: 'Targets in a running execution.' }),
        failed: Type.Integer({ description: 'Targets whose last execution failed.' }),
        unreachable: Type.Integer({
          description: 'Stopped targets or targets with Cloud Assistant offline.',
        }),
      },
      { description: 'Counts over ALL targeted instances (status.instances is bounded).' },
    ),
  ),
  instances: Type.Optional(
    Type.Array(ExtensionInstanceStatusSchema, {
      description: 'Per-instance rows, bounded (default 100): failed and in-progress first.',
    }),
  ),
  ...stateFreshnessStatusProperties,
  ...targetNodeStatusProperties,
  ...executionStatusProperties,
});
export type EcsExtensionStatus = Static<typeof EcsExtensionStatusSchema>;

export interface EcsExtension {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: EcsExtensionSpec;
  status?: EcsExtensionStatus;
}
