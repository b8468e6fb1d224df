/**
 * The controller runtime: workqueue, informers, manager, leader election, status/finalizer writes,
 * conditions, error classes, Events, logger. Knows nothing about Alibaba Cloud.
 */
export { FakeClock, realClock, sleep } from './clock.js';
export type { Clock, TimerHandle } from './clock.js';
export * from './conditions.js';
export { Controller, jitter } from './controller.js';
export type {
  ControllerOptions,
  ReconcileContext,
  ReconcileRequest,
  ReconcileResult,
  Reconciler,
} from './controller.js';
export { ReconcileError, StalledError, TransientError, isStalled, isTransient, reasonOf } from './errors.js';
export { EventRecorder } from './events.js';
export type { EventRecorderOptions, EventSink, EventType } from './events.js';
export { CustomResourceInformer, objectKey, resourcePath, splitKey } from './informer.js';
export type { CustomResourceInformerOptions, CustomResourceRef, InformerCache } from './informer.js';
export { LeaderElector, leaderElectionTimingsError } from './leader-election.js';
export type { LeaderCallbacks, LeaderElectionTimings, LeaderElectorOptions } from './leader-election.js';
export { REDACT_PATHS, createLogger } from './logger.js';
export type { LogLevel, Logger, LoggerOptions } from './logger.js';
export { Manager, generationChangedPredicate } from './manager.js';
export type { ControllerHandle, ControllerSpec, ManagerDeps, ManagerLeaderElection } from './manager.js';
export { RECONCILE_RESULTS, controllerRuntimeMetrics, initControllerMetrics } from './metrics.js';
export type { ControllerRuntimeMetrics, QueueMetrics, WorkqueueMetricsProvider } from './metrics.js';
export { sanitizeError, sanitizeText, truncate, truncateBytes } from './sanitize.js';
export {
  StatusPatcher,
  isNewerResourceVersion,
  jsonEqual,
  kubeErrorMessage,
  statusMergePatch,
} from './status.js';
export type { ObjectWithStatus, PatchStatusResult, StatusPatcherOptions } from './status.js';
export {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  QueuePriority,
  Workqueue,
  defaultRateLimiter,
} from './workqueue.js';
export type { RateLimiter, RateLimiterOptions, WorkqueueOptions } from './workqueue.js';
