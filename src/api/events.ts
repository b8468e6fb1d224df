/**
 * Event reasons and actions (events.k8s.io/v1 `reason` / `action`) emitted by every ecsops kind.
 * CamelCase constants in one place so alerts, docs and tests rely on them; the README's
 * "Events" table lists each one. Stalled reasons from `conditions.ts` are also emitted as
 * Warning Event reasons when a resource stalls.
 */

// Reasons (type Normal unless noted)
/** An OOS execution / Cloud Assistant invocation was started. */
export const ExecutionStartedEvent = 'ExecutionStarted';
/** An execution finished successfully on every instance of its batch. */
export const ExecutionSucceededEvent = 'ExecutionSucceeded';
/** Warning: an execution ended Failed / Cancelled or failed on some instances. */
export const ExecutionFailedEvent = 'ExecutionFailed';
/** Warning: instances that were unreachable at deletion were not uninstalled. */
export const UninstallSkippedEvent = 'UninstallSkipped';
/** The object was deleted while `spec.suspend` was true: the finalizer was removed without cloud writes. */
export const DeletedWhileSuspendedEvent = 'DeletedWhileSuspended';
/** An instance's execution failed because it became unreachable; it is not counted as Failed. */
export const InstanceUnreachableEvent = 'InstanceUnreachable';
/**
 * Warning: targeted instances are ACK worker nodes and are excluded from the resource's work
 * (PatchPolicy, AppRelease without spec.allowKubernetesNodes); emitted when the set changes.
 */
export const KubernetesNodesExcludedEvent = 'KubernetesNodesExcluded';
/**
 * Warning: targeted instances are ACK worker nodes and are acted on (EcsExtension, or a kind whose
 * spec.allowKubernetesNodes is true); emitted when the set changes.
 */
export const KubernetesNodesTargetedEvent = 'KubernetesNodesTargeted';

// Actions
export const StartExecutionAction = 'StartExecution';
export const TrackExecutionAction = 'TrackExecution';
export const ReconcileAction = 'Reconcile';
export const DeleteAction = 'Delete';

/** Every event reason above, for docs and tests. */
export const EVENT_REASONS = [
  ExecutionStartedEvent,
  ExecutionSucceededEvent,
  ExecutionFailedEvent,
  UninstallSkippedEvent,
  DeletedWhileSuspendedEvent,
  InstanceUnreachableEvent,
  KubernetesNodesExcludedEvent,
  KubernetesNodesTargetedEvent,
] as const;

/** Every event action above. */
export const EVENT_ACTIONS = [
  StartExecutionAction,
  TrackExecutionAction,
  ReconcileAction,
  DeleteAction,
] as const;

// AppRelease reasons and actions
/** A rollout of a new revision started (or an enrolment of instances lacking it). */
export const RolloutStartedEvent = 'RolloutStarted';
/** A batch of a rollout started. */
export const BatchStartedEvent = 'BatchStarted';
/** A batch finished on every instance. */
export const BatchSucceededEvent = 'BatchSucceeded';
/** Warning: a batch left instances failed; names the failing step and instance. */
export const BatchFailedEvent = 'BatchFailed';
/** The rollout holds (canary pause or spec.paused). */
export const RolloutPausedEvent = 'RolloutPaused';
/** The promote annotation (or pauseDuration) continued a paused rollout. */
export const RolloutPromotedEvent = 'RolloutPromoted';
/** Every targeted instance runs the new revision. */
export const RolloutSucceededEvent = 'RolloutSucceeded';
/** Warning: the rollout failed (maxErrors exceeded, health check, progress deadline). */
export const RolloutFailedEvent = 'RolloutFailed';
/** Warning: instances are being rolled back to the stable revision. */
export const RollbackStartedEvent = 'RollbackStarted';
/** Warning: the rollback finished; the fleet runs the stable revision. */
export const RolledBackEvent = 'RolledBack';
/** A newer spec superseded a rollout in progress. */
export const RolloutSupersededEvent = 'RolloutSuperseded';
/** The next batch waits for another resource's work on the same instances (cross-kind lock). */
export const WaitingForInstanceLockEvent = 'WaitingForInstanceLock';
/** A Secret referenced by install.envVars changed: the current revision is re-deployed with the new values. */
export const SecretsRotatedEvent = 'SecretsRotated';
/** Warning: a metric of spec.analysis failed after a batch (metric, query, value, condition). */
export const AnalysisFailedEvent = 'AnalysisFailed';
/** The analysis after a batch passed (every metric measured `count` times within its limits). */
export const AnalysisSucceededEvent = 'AnalysisSucceeded';

export const RolloutAction = 'Rollout';
export const PromoteAction = 'Promote';
export const RollbackAction = 'Rollback';
/** The action of analysis Events (AppRelease and PatchPolicy). */
export const AnalysisAction = 'Analysis';

/** AppRelease event reasons, for docs and tests. */
export const APP_RELEASE_EVENT_REASONS = [
  RolloutStartedEvent,
  BatchStartedEvent,
  BatchSucceededEvent,
  BatchFailedEvent,
  RolloutPausedEvent,
  RolloutPromotedEvent,
  RolloutSucceededEvent,
  RolloutFailedEvent,
  RollbackStartedEvent,
  RolledBackEvent,
  RolloutSupersededEvent,
  WaitingForInstanceLockEvent,
  AnalysisFailedEvent,
  AnalysisSucceededEvent,
] as const;

// PatchPolicy and MaintenanceWindow (reasons; type Normal unless noted)
/** A scan round started (by the schedule, the scan annotation or a missed run at start-up). */
export const ScanStartedEvent = 'ScanStarted';
/** Every scan execution of the round finished successfully. */
export const ScanCompletedEvent = 'ScanCompleted';
/** Warning: a scan round finished with failed instances or executions. */
export const ScanFailedEvent = 'ScanFailed';
/** Install executions started in a maintenance window (one Event per batch). */
export const InstallStartedEvent = 'InstallStarted';
/** Every install batch of the window occurrence finished successfully. */
export const InstallCompletedEvent = 'InstallCompleted';
/** Warning: install batches of the window occurrence failed on some instances. */
export const InstallFailedEvent = 'InstallFailed';
/** A maintenance window occurrence opened (installs may start). */
export const WindowOpenedEvent = 'WindowOpened';
/** A maintenance window occurrence closed (no new batch starts; running ones finish unless cancelled). */
export const WindowClosedEvent = 'WindowClosed';
/** Running install executions were cancelled at the window's end (install.cancelAtWindowEnd). */
export const ExecutionsCancelledEvent = 'ExecutionsCancelled';
export const ScanAction = 'Scan';
export const InstallAction = 'Install';
export const WindowAction = 'Window';
/** Every PatchPolicy / MaintenanceWindow Event reason, for docs and tests. */
export const PATCH_EVENT_REASONS = [
  ScanStartedEvent,
  ScanCompletedEvent,
  ScanFailedEvent,
  InstallStartedEvent,
  InstallCompletedEvent,
  InstallFailedEvent,
  WindowOpenedEvent,
  WindowClosedEvent,
  ExecutionsCancelledEvent,
  AnalysisFailedEvent,
  AnalysisSucceededEvent,
] as const;

/** spec.trafficControl: instances taken out of their load balancers' rotation (Normal). */
export const BackendsDrainedEvent = 'BackendsDrained';
/** spec.trafficControl: instances put back with their original weights (Normal). */
export const BackendsRestoredEvent = 'BackendsRestored';
/** spec.trafficControl: the load balancer did not report a put-back instance healthy in time (Warning). */
export const BackendUnhealthyEvent = 'BackendUnhealthy';
/** Event action of traffic control writes. */
export const TrafficControlAction = 'TrafficControl';
