/**
 * Condition types and reasons used by every ecsops kind (kstatus / Flux conventions,
 * DESIGN §4). Reasons are CamelCase constants; one place so docs and alerts can rely on them.
 */

// Condition types (Ready, Reconciling, Stalled) live in src/runtime/conditions.ts.

/** Ready=Unknown on the first visit, before anything was read. */
export const ProgressingReason = 'Progressing';
/** Reconciling=True after a transient error; the reconcile is retried with backoff. */
export const ProgressingWithRetryReason = 'ProgressingWithRetry';

// Ready=True reasons
export const InstalledReason = 'Installed';
export const NoTargetsReason = 'NoTargets';

// Ready=False / Reconciling=True reasons
export const InstallInProgressReason = 'InstallInProgress';
export const UninstallInProgressReason = 'UninstallInProgress';
export const InstallFailedReason = 'InstallFailed';
export const DriftDetectedReason = 'DriftDetected';
export const PendingReason = 'Pending';
export const SuspendedReason = 'Suspended';
export const RetryBackoffReason = 'RetryBackoff';
export const AllTargetsUnreachableReason = 'AllTargetsUnreachable';

// Stalled=True reasons (no progress without a spec change)
export const TemplateNotFoundReason = 'TemplateNotFound';
export const NotAPackageTemplateReason = 'NotAPackageTemplate';
export const ParameterNotDeclaredReason = 'ParameterNotDeclared';
export const MissingRequiredParameterReason = 'MissingRequiredParameter';
export const InvalidParameterValueReason = 'InvalidParameterValue';
export const InstanceNotFoundReason = 'InstanceNotFound';
export const PermissionDeniedReason = 'PermissionDenied';
export const InvalidCredentialsReason = 'InvalidCredentials';
export const InvalidSpecReason = 'InvalidSpec';
export const CloudRequestRejectedReason = 'CloudRequestRejected';
/** Another resource declares a different desired state for the same package on overlapping instances. */
export const ConflictingResourceReason = 'ConflictingResource';

/** Stalled: a Secret named by a secretKeyRef (or its key) does not exist; re-checked on a slow period. */
export const SecretNotFoundReason = 'SecretNotFound';
/** Stalled: the controller may not GET the Secret (bind ClusterRole ecsops-secret-reader in the namespace). */
export const SecretForbiddenReason = 'SecretForbidden';
/** Stalled: a Secret value is shorter than 8 characters, or the secret document exceeds 4,096 characters. */
export const InvalidSecretValueReason = 'InvalidSecretValue';

// Transient reasons
export const ThrottledReason = 'Throttled';
export const CloudUnavailableReason = 'CloudUnavailable';
export const NetworkErrorReason = 'NetworkError';
export const ConflictReason = 'Conflict';
/** Credentials could not be resolved or refreshed (expired STS token, metadata service down); retried. */
export const CredentialsUnavailableReason = 'CredentialsUnavailable';
/** A cloud failure the classification table does not know; retried with backoff. */
export const UnknownCloudErrorReason = 'UnknownCloudError';
/** The reconcile was stopped (shutdown or lost leadership). */
export const AbortedReason = 'Aborted';
/** Any other failure of a reconcile (a bug or an unexpected response); retried with backoff. */
export const ReconcileErrorReason = 'ReconcileError';
/** `status.excluded[].reason`: the instance is an ACK worker node (see src/controllers/shared/kubernetes-nodes.ts). */
export const KubernetesNodeReason = 'KubernetesNode';

/**
 * Stalled reasons re-checked on a slow period (a RAM policy or credential fix needs no spec
 * change), every other Stalled reason waits for a new generation or a reconcile request.
 */
export const RECHECKED_STALLED_REASONS: readonly string[] = [
  'PermissionDenied',
  'InvalidCredentials',
  'ConflictingResource',
  'BudgetUnsatisfiable',
  'LoadBalancerManagedByACK',
  'DrainCapacityUnsatisfiable',
];

// AppRelease reasons
/** Ready=True: every reachable target runs the current revision. */
export const RolloutSucceededReason = 'RolloutSucceeded';
/** Ready=False + Reconciling: batches of the current revision are rolling out. */
export const RolloutInProgressReason = 'RolloutInProgress';
/** Ready=False + Paused=True: held after the canary, by spec.paused, or between batches. */
export const RolloutPausedReason = 'RolloutPaused';
/** Ready=False: the rollout failed (rollback.automatic false, or a drift enrolment failed). */
export const RolloutFailedReason = 'RolloutFailed';
/** Ready=False + Reconciling: instances are being moved back to the stable revision. */
export const RollingBackReason = 'RollingBack';
/** Ready=False: the failed rollout was rolled back; the message names the failing step and instance. */
export const RolledBackReason = 'RolledBack';
/** Ready=False + Reconciling: the next batch waits for another resource's work on the same instances. */
export const WaitingForInstanceLockReason = 'WaitingForInstanceLock';
/** Paused=True reason when held by `spec.paused`. */
export const PausedBySpecReason = 'PausedBySpec';
/** Paused=True reason after the canary batch, until promoted. */
export const CanaryPauseReason = 'CanaryPause';
/** Stalled=True: an older AppRelease deploys the same application on overlapping instances. */
export const ConflictingReleaseReason = 'ConflictingRelease';

// Analysis gates (spec.analysis on AppRelease and PatchPolicy)
/**
 * Ready=False: a metric of spec.analysis failed after a batch (AppRelease: the rollout is rolled
 * back; PatchPolicy: the window's remaining install executions do not start). The message names
 * the metric, its query, the measured value and the condition.
 */
export const AnalysisFailedReason = 'AnalysisFailed';
/**
 * Ready=False + Reconciling: the analysis after a batch could not decide (Prometheus unreachable,
 * an error, or neither condition met); the next batch waits, never proceeds.
 */
export const AnalysisInconclusiveReason = 'AnalysisInconclusive';

// PatchPolicy and MaintenanceWindow
/** Condition type of PatchPolicy: every reachable target has no missing, failed or pending-reboot patches. */
export const CompliantCondition = 'Compliant';
/** Ready=True: the policy runs its scans and installs as scheduled. */
export const OperatingReason = 'Operating';
/** Ready=False / Reconciling=True while scan executions run. */
export const ScanInProgressReason = 'ScanInProgress';
/** Ready=False: the last scan failed on some reachable instances. */
export const ScanFailedReason = 'ScanFailed';
/** Compliant=True. */
export const AllCompliantReason = 'AllCompliant';
/** Compliant=False: some reachable instances miss patches, failed them or wait for a reboot. */
export const NonCompliantReason = 'NonCompliant';
/** Compliant=Unknown: some reachable instances were never scanned. */
export const NotScannedReason = 'NotScanned';
/** Stalled: a cron schedule the controller cannot use. */
export const InvalidScheduleReason = 'InvalidSchedule';
/** Stalled: a time zone name the controller's IANA database does not know. */
export const InvalidTimeZoneReason = 'InvalidTimeZone';
/** Stalled: a window duration, blackout date or minRemaining the controller cannot use. */
export const InvalidWindowReason = 'InvalidWindow';
/** Stalled (re-checked when the window appears): spec.install.maintenanceWindowRef names no MaintenanceWindow. */
export const MaintenanceWindowNotFoundReason = 'MaintenanceWindowNotFound';
/** MaintenanceWindow Ready=True while an occurrence is open. */
export const WindowOpenReason = 'WindowOpen';
/** MaintenanceWindow Ready=True while closed (status.nextOpen says when it opens). */
export const WindowClosedReason = 'WindowClosed';

// InstanceDisruptionBudget (every acting kind, and the budget's own status)
/**
 * Ready=False + Reconciling=True: a start would take more instances than a budget allows; the
 * message names the budget and its usage, e.g. `budget web-zone-a: 3/3 unavailable in cn-hangzhou-h`.
 */
export const WaitingForDisruptionBudgetReason = 'WaitingForDisruptionBudget';
/**
 * Stalled=True (re-checked when a budget changes): a budget can never admit the start —
 * `maxUnavailable` resolves to 0 for the instances, or a start that cannot be split (an AppRelease
 * rollback) is larger than the budget allows.
 */
export const BudgetUnsatisfiableReason = 'BudgetUnsatisfiable';
/** InstanceDisruptionBudget Ready=True: selection resolved; status shows usage. */
export const BudgetResolvedReason = 'BudgetResolved';

/** spec.trafficControl (issue 24): a batch waits until its instances are out of their load balancers' rotation. */
export const DrainingReason = 'Draining';
/** spec.trafficControl: a batch waits for the load balancer to report its instances healthy again. */
export const WaitingForLoadBalancerHealthReason = 'WaitingForLoadBalancerHealth';
/** spec.trafficControl: the capacity guard (maxDrained, minHealthyBackends) keeps instances in rotation for now. */
export const WaitingForDrainCapacityReason = 'WaitingForDrainCapacity';
/** Stalled: a load balancer of spec.trafficControl is managed by ACK's cloud controller manager (tag ack.aliyun.com). */
export const LoadBalancerManagedByACKReason = 'LoadBalancerManagedByACK';
/** Stalled: the capacity guard can never admit an instance (e.g. a group smaller than minHealthyBackends + 1). */
export const DrainCapacityUnsatisfiableReason = 'DrainCapacityUnsatisfiable';
