/**
 * `PatchPolicy` (ecsops.io/v1alpha1): "these ECS instances are scanned for missing patches on
 * schedule S and patched inside maintenance window W, with snapshot and reboot rules". Work is
 * done by OOS StartExecution of `ACS-ECS-BulkyApplyPatchBaseline` (`action` scan / install, at
 * most 50 instances per execution); compliance is read with OOS ListInstancePatchStates (batches
 * of 100) and ListInstancePatches (DESIGN §1).
 */
import { Type, type Static } from '@sinclair/typebox';
import { AnalysisSpecSchema, AnalysisStatusSchema } from './analysis.js';
import { TrafficControlSpecSchema, TrafficControlStatusSchema } from './traffic.js';
import {
  AllowKubernetesNodesSchema,
  commonSpecProperties,
  commonStatusProperties,
  DRIFT_INTERVAL_DESCRIPTION,
  DriftDetectionSchema,
  executionStatusProperties,
  instanceRowProperties,
  IntervalSchema,
  stateFreshnessStatusProperties,
  targetNodeStatusProperties,
  type ObjectMeta,
} from './common.js';
import {
  CronScheduleSchema,
  SkippedOccurrenceSchema,
  TimeZoneSchema,
  windowProperties,
} from './maintenancewindow.js';
import { ZoneOrderSchema, zoneOrderInRegionRule } from './zone-order.js';

export const PATCH_POLICY_KIND = 'PatchPolicy';
export const PATCH_POLICY_PLURAL = 'patchpolicies';
/** The public OOS template that scans for and installs patches with the OS's default patch baseline. */
export const APPLY_PATCH_BASELINE_TEMPLATE = 'ACS-ECS-BulkyApplyPatchBaseline';
/** Annotation that runs a scan now; its value is echoed to status.lastHandledScanAt. */
export const SCAN_REQUESTED_ANNOTATION = 'ecsops.io/scan-requested-at';
/** At most this many missing patches are listed per status row. */
export const MAX_ROW_PATCHES = 5;

const ScanSchema = Type.Object(
  {
    schedule: CronScheduleSchema(
      'scan.schedule',
      'When to scan: 5-field cron in timeZone, e.g. "0 3 * * *". A scan missed while the controller was down runs once at start-up (never a burst).',
    ),
    timeZone: Type.Optional(TimeZoneSchema('scan.timeZone')),
  },
  { description: 'Scheduled patch scans (OOS ACS-ECS-BulkyApplyPatchBaseline action scan).' },
);

const InlineWindowSchema = Type.Object(windowProperties('install.maintenanceWindow'), {
  description: 'An inline maintenance window (same fields as a MaintenanceWindow spec).',
});

const SnapshotSchema = Type.Object(
  {
    enabled: Type.Optional(
      Type.Boolean({
        description: 'Create a system-disk snapshot before installing (template whetherCreateSnapshot).',
        default: false,
      }),
    ),
    retentionDays: Type.Optional(
      Type.Integer({
        description: 'Days the snapshot is kept (template retentionDays), 1-65536.',
        minimum: 1,
        maximum: 65536,
        default: 7,
      }),
    ),
  },
  { description: 'Snapshots taken before installing; their IDs and expiry appear in status rows.' },
);

const InstallSchema = Type.Object(
  {
    maintenanceWindow: Type.Optional(InlineWindowSchema),
    maintenanceWindowRef: Type.Optional(
      Type.Object(
        {
          name: Type.String({
            description: 'Name of a MaintenanceWindow in the same namespace.',
            minLength: 1,
            maxLength: 253,
          }),
        },
        { description: 'A MaintenanceWindow object in this namespace (shared by many policies).' },
      ),
    ),
    rebootIfNeeded: Type.Optional(
      Type.Boolean({
        description:
          'Reboot instances whose patches need it (template rebootIfNeed). When false such instances are PendingReboot, not compliant.',
        default: false,
      }),
    ),
    snapshot: Type.Optional(SnapshotSchema),
    minRemaining: Type.Optional(
      Type.String({
        description:
          'Do not start a batch with less window left than this (Go duration, e.g. 30m). Running executions are left to finish unless cancelAtWindowEnd.',
        default: '30m',
        maxLength: 32,
        'x-kubernetes-validations': [
          {
            rule: "duration(self) >= duration('0s') && duration(self) <= duration('168h')",
            message: 'install.minRemaining must be a duration between 0s and 168h, e.g. 30m',
          },
        ],
      }),
    ),
    cancelAtWindowEnd: Type.Optional(
      Type.Boolean({
        description:
          'Cancel running install executions (OOS CancelExecution) when the window closes, instead of letting them finish.',
        default: false,
      }),
    ),
    parallelBatches: Type.Optional(
      Type.Integer({
        description:
          'Install executions (of at most 50 instances each) running at once; rateControl applies inside each. Default 1.',
        minimum: 1,
        maximum: 20,
        default: 1,
      }),
    ),
    zoneOrder: Type.Optional(ZoneOrderSchema()),
  },
  {
    description:
      'Install missing patches inside a maintenance window. Absent = scan only (compliance reporting).',
    'x-kubernetes-validations': [
      {
        rule: 'has(self.maintenanceWindow) != has(self.maintenanceWindowRef)',
        message: 'install must set exactly one of maintenanceWindow or maintenanceWindowRef',
      },
      {
        rule: '!has(self.maintenanceWindow) || !has(self.minRemaining) || duration(self.minRemaining) < duration(self.maintenanceWindow.duration)',
        message: 'install.minRemaining (default 30m) must be shorter than install.maintenanceWindow.duration',
      },
    ],
  },
);

export const PatchPolicySpecSchema = Type.Object(
  {
    ...commonSpecProperties,
    interval: Type.Optional(IntervalSchema(DRIFT_INTERVAL_DESCRIPTION)),
    driftDetection: Type.Optional(DriftDetectionSchema),
    scan: Type.Optional(ScanSchema),
    install: Type.Optional(InstallSchema),
    analysis: Type.Optional(AnalysisSpecSchema),
    trafficControl: Type.Optional(TrafficControlSpecSchema),
    allowKubernetesNodes: Type.Optional(AllowKubernetesNodesSchema),
  },
  {
    description:
      'Which instances are scanned when, and patched inside which window, with which snapshot and reboot rules.',
    'x-kubernetes-validations': [zoneOrderInRegionRule('self.install', 'spec.install.zoneOrder')],
  },
);
export type PatchPolicySpec = Static<typeof PatchPolicySpecSchema>;

export const PatchInstanceStateValues = [
  'Compliant',
  'NonCompliant',
  'PendingReboot',
  'Failed',
  'Unreachable',
  'Unscanned',
  'Patching',
] as const;
export type PatchInstanceState = (typeof PatchInstanceStateValues)[number];

const SnapshotRefSchema = Type.Object({
  snapshotId: Type.String({ description: 'ECS snapshot ID (s-...) to restore from.', maxLength: 64 }),
  createdAt: Type.Optional(Type.String({ format: 'date-time' })),
  expiresAt: Type.Optional(
    Type.String({ format: 'date-time', description: 'creation time + retentionDays.' }),
  ),
});
export type SnapshotRef = Static<typeof SnapshotRefSchema>;

const MissingPatchSchema = Type.Object({
  title: Type.String({ maxLength: 256 }),
  kbId: Type.Optional(Type.String({ maxLength: 128 })),
  classification: Type.Optional(Type.String({ maxLength: 64 })),
  severity: Type.Optional(Type.String({ maxLength: 64 })),
  status: Type.Optional(Type.String({ maxLength: 64 })),
});
export type MissingPatch = Static<typeof MissingPatchSchema>;

export const PatchInstanceStatusSchema = Type.Object({
  ...instanceRowProperties,
  state: Type.Union(
    PatchInstanceStateValues.map((v) => Type.Literal(v)),
    {
      description:
        'Compliant: no missing, failed or pending-reboot patches. NonCompliant: missing or failed patches. PendingReboot: installed, waiting for a reboot (rebootIfNeeded false). Failed: the last install execution failed here. Unreachable: stopped or Cloud Assistant offline. Unscanned: never scanned. Patching: in a running install execution.',
    },
  ),
  missingCount: Type.Optional(Type.Integer()),
  failedCount: Type.Optional(Type.Integer()),
  pendingRebootCount: Type.Optional(Type.Integer()),
  installedCount: Type.Optional(Type.Integer()),
  lastScanTime: Type.Optional(
    Type.String({ format: 'date-time', description: 'End of the last scan (OperationType scan).' }),
  ),
  lastInstallTime: Type.Optional(
    Type.String({ format: 'date-time', description: 'End of the last install (OperationType install).' }),
  ),
  nonCompliantSince: Type.Optional(
    Type.String({ format: 'date-time', description: 'When the controller first saw patches missing here.' }),
  ),
  snapshots: Type.Optional(
    Type.Array(SnapshotRefSchema, {
      description: 'Snapshots taken before the last install on this instance.',
      maxItems: 4,
    }),
  ),
  missingPatches: Type.Optional(
    Type.Array(MissingPatchSchema, {
      description: 'Up to 5 missing / failed / pending-reboot patches (OOS ListInstancePatches).',
      maxItems: 5,
    }),
  ),
});
export type PatchInstanceStatus = Static<typeof PatchInstanceStatusSchema>;

const OperationSchema = Type.Object({
  trigger: Type.Optional(
    Type.String({ description: 'Schedule, Requested (annotation) or Window.', maxLength: 32 }),
  ),
  scheduledTime: Type.Optional(Type.String({ format: 'date-time' })),
  windowOpensAt: Type.Optional(Type.String({ format: 'date-time' })),
  startTime: Type.String({ format: 'date-time' }),
  endTime: Type.Optional(Type.String({ format: 'date-time' })),
  result: Type.Union(
    ['Running', 'Succeeded', 'PartiallyFailed', 'Failed', 'Cancelled'].map((v) => Type.Literal(v)),
    { description: 'Running until every execution ended.' },
  ),
  executionCount: Type.Optional(Type.Integer()),
  executionIds: Type.Optional(
    Type.Array(Type.String(), { description: 'The first 10 executions.', maxItems: 10 }),
  ),
  instances: Type.Optional(Type.Integer({ description: 'Instances the operation was started on.' })),
  succeeded: Type.Optional(Type.Integer()),
  failed: Type.Optional(Type.Integer()),
  cancelled: Type.Optional(
    Type.Integer({ description: 'Instances not patched because the window closed (cancelled or skipped).' }),
  ),
  cancelRequestedAt: Type.Optional(
    Type.String({
      format: 'date-time',
      description:
        'When CancelExecution was sent for every install execution of this occurrence (window closed, cancelAtWindowEnd).',
    }),
  ),
  message: Type.Optional(Type.String({ maxLength: 1024 })),
  lastExecutionInstanceIds: Type.Optional(
    Type.Array(Type.String({ maxLength: 64 }), {
      description:
        'Instances of the newest install execution, with spec.analysis (the gate renders them into its queries).',
      maxItems: 50,
    }),
  ),
});
export type PatchOperation = Static<typeof OperationSchema>;

export const PatchPolicyStatusSchema = Type.Object({
  ...commonStatusProperties,
  summary: Type.Optional(
    Type.Object(
      {
        targeted: Type.Integer({ description: 'Instances matched by targets, minus exclusions.' }),
        compliant: Type.Integer(),
        nonCompliant: Type.Integer(),
        pendingReboot: Type.Integer(),
        failed: Type.Integer(),
        unreachable: Type.Integer(),
        unscanned: Type.Integer(),
        patching: Type.Integer(),
      },
      { description: 'Counts over ALL targeted instances (status.instances is bounded).' },
    ),
  ),
  instances: Type.Optional(
    Type.Array(PatchInstanceStatusSchema, {
      description:
        'Per-instance rows, bounded (default 100): failed, patching, unreachable and non-compliant first.',
    }),
  ),
  lastScan: Type.Optional(OperationSchema),
  lastInstall: Type.Optional(OperationSchema),
  analysis: Type.Optional(AnalysisStatusSchema),
  trafficControl: Type.Optional(TrafficControlStatusSchema),
  nextScan: Type.Optional(Type.String({ format: 'date-time', description: 'Next scheduled scan.' })),
  lastScheduledScanTime: Type.Optional(
    Type.String({
      format: 'date-time',
      description: 'The scheduled time of the last scan started by the schedule (CronJob lastScheduleTime).',
    }),
  ),
  lastHandledScanAt: Type.Optional(
    Type.String({ description: `Last value of the ${SCAN_REQUESTED_ANNOTATION} annotation handled.` }),
  ),
  window: Type.Optional(
    Type.Object(
      {
        name: Type.Optional(Type.String({ description: 'The referenced MaintenanceWindow, if any.' })),
        open: Type.Boolean(),
        opensAt: Type.Optional(Type.String({ format: 'date-time' })),
        closesAt: Type.Optional(Type.String({ format: 'date-time', description: 'While open.' })),
        nextOpen: Type.Optional(Type.String({ format: 'date-time' })),
        skipped: Type.Optional(SkippedOccurrenceSchema),
        message: Type.Optional(Type.String({ maxLength: 512 })),
      },
      { description: 'The install window as of the last reconcile.' },
    ),
  ),
  complianceCheckedAt: Type.Optional(
    Type.String({
      format: 'date-time',
      description:
        'Last compliance check that read a patch state (OOS ListInstancePatchStates) of a target; checks answered from the change feed without a read leave it (see stateFreshness).',
    }),
  ),
  ...stateFreshnessStatusProperties,
  ...targetNodeStatusProperties,
  ...executionStatusProperties,
});
export type PatchPolicyStatus = Static<typeof PatchPolicyStatusSchema>;

export interface PatchPolicy {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: PatchPolicySpec;
  status?: PatchPolicyStatus;
}
