/**
 * Public surface of the Alibaba Cloud access layer. Controllers import types from here and
 * receive `CloudClients` through their constructor; only `main.ts` calls `createCloudClients`.
 */
export * from './types.js';
export {
  CloudError,
  isCloudError,
  isAborted,
  classifyCode,
  type CloudErrorKind,
  type CloudErrorCategory,
} from './errors.js';
export {
  createCloudClients,
  CLOUD_DEFAULTS,
  type CloudOptions,
  type CloudDeps,
  type CloudLayer,
} from './factory.js';
export {
  checkCredentials,
  createCredentialsProvider,
  CREDENTIAL_CHAIN_HELP,
  type CredentialIdentity,
  type StaticCredential,
} from './credentials.js';
export type { CloudLogger } from './caller.js';
export { OOS_ACTIONS } from './oos.js';
export {
  RegionFleet,
  ACTIVE_EXECUTION_STATUSES,
  type ReadOptions,
  type ClientOptions,
  type InstanceView,
  type DriftDetection,
  DEFAULT_FULL_RESYNC_MS,
} from './fleet.js';
export { PRIORITY, RateGate } from './limiter.js';
export { ECS_ACTIONS } from './ecs.js';
export { ACTIONTRAIL_ACTIONS, LOOKUP_MAX_EVENTS, LOOKUP_MAX_PAGES } from './actiontrail.js';
export { instancesOf } from './change-feed.js';
export { SLB_ACTIONS, CLB_SERVERS_PER_CALL, clbHealthState } from './slb.js';
export {
  ALB_ACTIONS,
  ALB_UPDATE_SERVERS_PER_CALL,
  ALB_ADD_REMOVE_SERVERS_PER_CALL,
  albHealthState,
} from './alb.js';
export { WEIGHTED_SCHEDULERS, weightZeroDrains, backendKey } from './lb-common.js';
