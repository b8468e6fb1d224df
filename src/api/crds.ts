/**
 * Builds the CustomResourceDefinition objects from the TypeBox schemas in this folder.
 * `crds/*.yaml` are generated from these (`npm run crds`) and a unit test fails when they drift.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { GROUP, structural, toJsonSchema, VERSION } from './common.js';
import {
  ECS_EXTENSION_KIND,
  ECS_EXTENSION_PLURAL,
  EcsExtensionSpecSchema,
  EcsExtensionStatusSchema,
} from './ecsextension.js';
import {
  MAINTENANCE_WINDOW_KIND,
  MAINTENANCE_WINDOW_PLURAL,
  MaintenanceWindowSpecSchema,
  MaintenanceWindowStatusSchema,
} from './maintenancewindow.js';
import {
  PATCH_POLICY_KIND,
  PATCH_POLICY_PLURAL,
  PatchPolicySpecSchema,
  PatchPolicyStatusSchema,
} from './patchpolicy.js';
import {
  APP_RELEASE_KIND,
  APP_RELEASE_PLURAL,
  AppReleaseSpecSchema,
  AppReleaseStatusSchema,
} from './apprelease.js';
import {
  INSTANCE_DISRUPTION_BUDGET_KIND,
  INSTANCE_DISRUPTION_BUDGET_PLURAL,
  InstanceDisruptionBudgetSpecSchema,
  InstanceDisruptionBudgetStatusSchema,
} from './instancedisruptionbudget.js';

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CrdDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: TSchema;
  status: TSchema;
  printerColumns: PrinterColumn[];
  /** `Namespaced` (default) or `Cluster` (InstanceDisruptionBudget). */
  scope?: 'Namespaced' | 'Cluster';
}

const readyColumns: PrinterColumn[] = [
  { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason' },
];
const tailColumns: PrinterColumn[] = [
  {
    name: 'Message',
    type: 'string',
    priority: 1,
    jsonPath: '.status.conditions[?(@.type=="Ready")].message',
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

export const definitions: CrdDefinition[] = [
  {
    kind: ECS_EXTENSION_KIND,
    plural: ECS_EXTENSION_PLURAL,
    singular: 'ecsextension',
    shortNames: ['ecsext'],
    description:
      'EcsExtension declares that an OOS extension package (version, parameters) is installed on a set of ECS instances. The ecsops controller closes gaps with OOS executions of ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL.',
    spec: EcsExtensionSpecSchema,
    status: EcsExtensionStatusSchema,
    printerColumns: [
      ...readyColumns,
      { name: 'Installed', type: 'integer', jsonPath: '.status.summary.installed' },
      { name: 'Targeted', type: 'integer', jsonPath: '.status.summary.targeted' },
      { name: 'Failed', type: 'integer', jsonPath: '.status.summary.failed', priority: 1 },
      { name: 'Unreachable', type: 'integer', jsonPath: '.status.summary.unreachable', priority: 1 },
      { name: 'Version', type: 'string', jsonPath: '.status.resolvedPackageVersion', priority: 1 },
      ...tailColumns,
    ],
  },
  // AppRelease
  {
    kind: APP_RELEASE_KIND,
    plural: APP_RELEASE_PLURAL,
    singular: 'apprelease',
    shortNames: ['apprel'],
    description:
      'AppRelease declares that version V of an application, from an artifact with a known sha256, runs on a set of ECS instances, installed and started by shell hooks. The ecsops controller rolls it out in batches (canary, pause, promote) with ECS Cloud Assistant RunCommand, checks health, rolls back automatically and records the revision on each instance as an ECS tag.',
    spec: AppReleaseSpecSchema,
    status: AppReleaseStatusSchema,
    printerColumns: [
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Updated', type: 'integer', jsonPath: '.status.summary.updated' },
      { name: 'Targeted', type: 'integer', jsonPath: '.status.summary.targeted' },
      { name: 'Revision', type: 'string', jsonPath: '.status.currentRevision' },
      { name: 'Version', type: 'string', jsonPath: '.spec.version', priority: 1 },
      { name: 'Stable', type: 'string', jsonPath: '.status.stableRevision', priority: 1 },
      { name: 'Failed', type: 'integer', jsonPath: '.status.summary.failed', priority: 1 },
      ...tailColumns,
    ],
  },
  // PatchPolicy and MaintenanceWindow
  {
    kind: PATCH_POLICY_KIND,
    plural: PATCH_POLICY_PLURAL,
    singular: 'patchpolicy',
    shortNames: ['patchpol'],
    description:
      'PatchPolicy declares that a set of ECS instances is scanned for missing patches on a schedule and patched inside a maintenance window, with snapshot and reboot rules. The ecsops controller runs OOS executions of ACS-ECS-BulkyApplyPatchBaseline and reports per-instance compliance.',
    spec: PatchPolicySpecSchema,
    status: PatchPolicyStatusSchema,
    printerColumns: [
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      {
        name: 'Compliant',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="Compliant")].status',
      },
      { name: 'NonCompliant', type: 'integer', jsonPath: '.status.summary.nonCompliant' },
      { name: 'Targeted', type: 'integer', jsonPath: '.status.summary.targeted' },
      { name: 'Next Window', type: 'string', jsonPath: '.status.window.nextOpen' },
      {
        name: 'Reason',
        type: 'string',
        priority: 1,
        jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
      },
      { name: 'Pending Reboot', type: 'integer', priority: 1, jsonPath: '.status.summary.pendingReboot' },
      { name: 'Failed', type: 'integer', priority: 1, jsonPath: '.status.summary.failed' },
      { name: 'Next Scan', type: 'string', priority: 1, jsonPath: '.status.nextScan' },
      ...tailColumns,
    ],
  },
  {
    kind: MAINTENANCE_WINDOW_KIND,
    plural: MAINTENANCE_WINDOW_PLURAL,
    singular: 'maintenancewindow',
    shortNames: ['mw'],
    description:
      'MaintenanceWindow declares when changes may start (cron opening time, duration, IANA time zone, blackout dates). PatchPolicies reference it by name; its status shows whether it is open and when it next opens and closes.',
    spec: MaintenanceWindowSpecSchema,
    status: MaintenanceWindowStatusSchema,
    printerColumns: [
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Open', type: 'boolean', jsonPath: '.status.open' },
      { name: 'Next Open', type: 'string', jsonPath: '.status.nextOpen' },
      { name: 'Next Close', type: 'string', jsonPath: '.status.nextClose' },
      { name: 'Schedule', type: 'string', priority: 1, jsonPath: '.spec.schedule' },
      { name: 'Duration', type: 'string', priority: 1, jsonPath: '.spec.duration' },
      { name: 'Time Zone', type: 'string', priority: 1, jsonPath: '.spec.timeZone' },
      ...tailColumns,
    ],
  },
  {
    kind: INSTANCE_DISRUPTION_BUDGET_KIND,
    plural: INSTANCE_DISRUPTION_BUDGET_PLURAL,
    singular: 'instancedisruptionbudget',
    shortNames: ['idb'],
    scope: 'Cluster',
    description:
      'InstanceDisruptionBudget caps how many of the ECS instances it selects (region and tags) may be disrupted at once across every ecsops kind: an integer or a percentage, optionally per zone. Cluster-scoped: instances belong to no namespace.',
    spec: InstanceDisruptionBudgetSpecSchema,
    status: InstanceDisruptionBudgetStatusSchema,
    printerColumns: [
      { name: 'Selected', type: 'integer', jsonPath: '.status.selected' },
      { name: 'Allowed', type: 'integer', jsonPath: '.status.allowed' },
      { name: 'Unavailable', type: 'integer', jsonPath: '.status.unavailable' },
      {
        name: 'Ready',
        type: 'string',
        priority: 1,
        jsonPath: '.status.conditions[?(@.type=="Ready")].status',
      },
      { name: 'Max Unavailable', type: 'string', priority: 1, jsonPath: '.spec.maxUnavailable' },
      { name: 'Per Zone', type: 'boolean', priority: 1, jsonPath: '.spec.perZone' },
      ...tailColumns,
    ],
  },
];

/** The schema default of every kind's `status`: a generation the controller has not yet observed. */
export const STATUS_DEFAULT = Object.freeze({ observedGeneration: 0 });

/** The CRD object (apiextensions.k8s.io/v1) for one definition. */
export function buildCrd(def: CrdDefinition): Record<string, unknown> {
  const root = Type.Object(
    {
      apiVersion: Type.Optional(
        Type.String({ description: 'APIVersion of this object (ecsops.io/v1alpha1).' }),
      ),
      kind: Type.Optional(Type.String({ description: `Kind of this object (${def.kind}).` })),
      metadata: Type.Optional(Type.Object({})),
      spec: def.spec,
      status: Type.Optional(def.status),
    },
    { description: def.description },
  );
  const schema = structural(toJsonSchema(root)) as Record<string, unknown>;
  // metadata must be a bare `type: object` for the API server to apply ObjectMeta validation.
  (schema.properties as Record<string, unknown>).metadata = { type: 'object' };
  // A new object is stored with `status.observedGeneration: 0` (generation starts at 1), so kstatus,
  // `kubectl wait` and Argo CD read it as InProgress before the controller's first status write,
  // never as Current (a status-less object reads as Current).
  const status = (schema.properties as Record<string, Record<string, unknown>>).status;
  if (status) status.default = { ...STATUS_DEFAULT };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${def.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: def.scope ?? 'Namespaced',
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: ['ecsops'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns,
          schema: { openAPIV3Schema: schema },
        },
      ],
    },
  };
}

/** File name under crds/ for a definition, e.g. `ecsops.io_ecsextensions.yaml`. */
export function crdFileName(def: CrdDefinition): string {
  return `${GROUP}_${def.plural}.yaml`;
}
