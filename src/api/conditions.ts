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

// Transient reasons
export const ThrottledReason = 'Throttled';
export const CloudUnavailableReason = 'CloudUnavailable';
export const NetworkErrorReason = 'NetworkError';
export const ConflictReason = 'Conflict';
