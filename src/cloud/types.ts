/**
 * Plain, typed request/response objects of the Alibaba Cloud access layer, and the
 * `OosApi` / `EcsApi` interfaces that controllers depend on.
 *
 * Conventions (all implementations of these interfaces must follow them):
 * - Every object is a plain camelCase object: never an SDK model instance.
 * - Fields that the API returns as JSON strings (OOS `Parameters`, `Outputs`, `Properties`, ...)
 *   arrive parsed; a string that is not valid JSON is kept as `{ raw: "<text>" }`.
 * - Counts returned as strings (`"3"`) are numbers; `"true"` / `"false"` are booleans.
 * - ECS tags (`TagKey` / `TagValue` on output) are `{ key, value }`; OOS tags are the map
 *   (`Record<string, string>`) that OOS itself uses on both request and response.
 * - Dates stay ISO-8601 strings exactly as the API returned them (e.g. `2019-05-16T10:26:14Z`).
 * - Durations are named by unit (`timeoutSeconds`).
 * - Methods that say "all pages" follow `NextToken` until the API returns none.
 * - Every method rejects with a `CloudError` (see `errors.ts`) and nothing else.
 *
 * This module must never import Kubernetes types.
 */
import type { RegionFleet } from './fleet.js';

/** Alibaba Cloud product served by this layer (`actiontrail`: `LookupEvents` only, actiontrail.ts). */
export type CloudProduct = 'oos' | 'ecs' | 'actiontrail' | 'slb' | 'alb';

/** One page of a `NextToken`/`MaxResults` paged list. `nextToken` is absent on the last page. */
export interface Page<T> {
  items: T[];
  nextToken?: string;
}

/** ECS-style tag. On ECS output the API spells it `TagKey`/`TagValue`; here it is `{ key, value }`. */
export interface Tag {
  key: string;
  value: string;
}

/** Tag filter: `value` omitted matches any value of `key` (ECS `Tag.N.Key` without `Tag.N.Value`). */
export interface TagFilter {
  key: string;
  value?: string;
}

// ---------------------------------------------------------------------------------------------
// OOS (2019-06-01)
// ---------------------------------------------------------------------------------------------

/** OOS execution status. Terminal: `Success`, `Failed`, `Cancelled`. */
export type ExecutionStatus =
  | 'Started'
  | 'Queued'
  | 'Running'
  | 'Waiting'
  | 'Success'
  | 'Failed'
  | 'Cancelled'
  // OOS may add values; keep the union open without losing autocompletion.
  | (string & {});

/** Execution statuses after which OOS does no further work. */
export const TERMINAL_EXECUTION_STATUSES: readonly string[] = ['Success', 'Failed', 'Cancelled'];

/** A task currently running inside an execution (`CurrentTasks[]`). */
export interface CurrentTask {
  taskName: string;
  taskAction?: string;
  taskExecutionId?: string;
}

/**
 * An OOS execution as returned by `StartExecution` (`Execution`) or `ListExecutions`
 * (`Executions[]`, a flat array). `parameters` is parsed whether OOS sent a JSON string
 * (StartExecution) or an object (ListExecutions).
 */
export interface Execution {
  executionId: string;
  templateName: string;
  templateId?: string;
  templateVersion?: string;
  mode?: string;
  loopMode?: string;
  safetyCheck?: string;
  status: ExecutionStatus;
  statusMessage?: string;
  statusReason?: string;
  /** Template parameters the execution was started with. */
  parameters: Record<string, unknown>;
  /** Parsed `Outputs` (empty object when the execution has none yet). */
  outputs: Record<string, unknown>;
  /** `Counters`, e.g. `{ Total: 2, Success: 1, Failed: 0 }`. */
  counters: Record<string, number>;
  /** Parsed `ResourceStatus`, e.g. `{ Success: 1 }` (ListExecutions only). */
  resourceStatus: Record<string, number>;
  /** Parsed `Targets` (ListExecutions only), e.g. `{ ResourceType, Filters: [...] }`. */
  targets?: unknown;
  currentTasks: CurrentTask[];
  isParent: boolean;
  parentExecutionId?: string;
  executedBy?: string;
  ramRole?: string;
  description?: string;
  /** OOS tags (a map on both request and response). */
  tags: Record<string, string>;
  createDate?: string;
  startDate?: string;
  endDate?: string;
  updateDate?: string;
}

/** OOS `Mode` of `StartExecution`. */
export type ExecutionMode = 'Automatic' | 'FailurePause' | 'Debug';

/** Request of OOS `StartExecution`. Always carries a `clientToken` (idempotency, ≤64 ASCII). */
export interface StartExecutionRequest {
  templateName: string;
  /** Default: the latest version. */
  templateVersion?: string;
  /** Template parameters; serialized as the JSON string OOS expects. */
  parameters: Record<string, unknown>;
  /** Idempotency token: the same token returns the same execution. */
  clientToken: string;
  /** OOS execution tags, e.g. `{ 'ecsops.io/owner-uid': '...' }`. */
  tags?: Record<string, string>;
  /** Default `Automatic`. */
  mode?: ExecutionMode;
  /** Default here: `Skip` (unattended); OOS's own default needs manual approval. */
  safetyCheck?: 'Skip' | 'ConfirmEveryHighRiskAction';
  description?: string;
}

/** Filters of OOS `ListExecutions` (one page). */
export interface ListExecutionsRequest {
  executionId?: string;
  /** Substring match on the template name (OOS semantics). */
  templateName?: string;
  status?: ExecutionStatus;
  parentExecutionId?: string;
  /** Instance ID the execution operated on (`ResourceId`). */
  resourceId?: string;
  tags?: Record<string, string>;
  /** Only executions that ended at or after this time (`EndDateAfter`, ISO 8601 UTC). */
  endDateAfter?: string;
  /** Only executions that started at or after this time (`StartDateAfter`, ISO 8601 UTC). */
  startDateAfter?: string;
  /** List child executions too (`IncludeChildExecution`; OOS default false). */
  includeChildExecution?: boolean;
  nextToken?: string;
  /** 10–100; default 50 (OOS). */
  maxResults?: number;
}

/** Filters of `listAllExecutions` (all pages). */
export type ListAllExecutionsRequest = Omit<ListExecutionsRequest, 'nextToken' | 'maxResults'>;

/** Per-resource (per-instance) result of an execution (`ListResourceExecutionStatus`). */
export interface ResourceExecutionStatus {
  /** Usually an instance ID (`i-...`). */
  resourceId: string;
  status: string;
  /** Parsed `Outputs`, e.g. `{ commandOutput: 'hello\n' }`. */
  outputs: Record<string, unknown>;
  executionId?: string;
  executionTime?: string;
}

/** Request of OOS `ListTaskExecutions` (all pages are fetched). */
export interface ListTaskExecutionsRequest {
  executionId: string;
  taskName?: string;
  /** Include loop children (one per `LoopItem`). Default false (OOS). */
  includeChildTaskExecution?: boolean;
  /** List the children of this loop parent task execution. */
  parentTaskExecutionId?: string;
  status?: string;
}

/** One task execution (`TaskExecutions[]`). */
export interface TaskExecution {
  taskExecutionId: string;
  executionId: string;
  taskName: string;
  taskAction?: string;
  status: string;
  statusMessage?: string;
  /** Parsed `Properties` (task input). */
  properties: Record<string, unknown>;
  /** Parsed `Outputs`. */
  outputs: Record<string, unknown>;
  extraData?: Record<string, unknown>;
  /** Loop item of a loop child, usually an instance ID. */
  loopItem?: string;
  loop?: Record<string, unknown>;
  loopBatchNumber?: number;
  childExecutionId?: string;
  parentTaskExecutionId?: string;
  createDate?: string;
  startDate?: string;
  endDate?: string;
  updateDate?: string;
}

/** One line of `ListExecutionLogs`. */
export interface ExecutionLog {
  timestamp: string;
  message: string;
  logType?: string;
  taskExecutionId?: string;
}

export type TemplateType = 'Automation' | 'State' | 'Package';

/** Filters of OOS `ListTemplates` (all pages are fetched). */
export interface ListTemplatesRequest {
  templateType?: TemplateType;
  /** Substring match (OOS semantics). */
  templateName?: string;
  shareType?: 'Public' | 'Private';
}

/** A template as listed by `ListTemplates` (and the `Template` object of `GetTemplate`). */
export interface TemplateSummary {
  templateName: string;
  templateId?: string;
  templateVersion?: string;
  versionName?: string;
  templateType?: string;
  templateFormat?: string;
  /** Free text; for public extension packages a JSON string with `en`, `zh-cn`, ... */
  description?: string;
  shareType?: string;
  category?: string;
  createdBy?: string;
  createdDate?: string;
  updatedBy?: string;
  updatedDate?: string;
  /** sha256 of the content. */
  hash?: string;
  tags: Record<string, string>;
}

/** One declared parameter of a template (`Parameters.<name>` in the template content). */
export interface TemplateParameter {
  /** `String` | `Number` | `Boolean` | `List` | `Json` (as declared). */
  type: string;
  default?: unknown;
  allowedValues?: unknown[];
  description?: string;
  /** True when the parameter declares no `Default`. */
  required: boolean;
  minValue?: number;
  maxValue?: number;
  maxLength?: number;
  allowedPattern?: string;
}

/** OOS `GetTemplate`: metadata plus top-level `Content` parsed (JSON or YAML). */
export interface TemplateDetail extends TemplateSummary {
  /** The raw template body as returned (`Content`). */
  content: string;
  /** The parsed template body (`FormatVersion`, `Parameters`, `Tasks`, ...). */
  document: Record<string, unknown>;
  /** Declared parameters by name (empty when the template declares none). */
  parameters: Record<string, TemplateParameter>;
}

/** One version of a template (`ListTemplateVersions`). */
export interface TemplateVersionInfo {
  templateVersion: string;
  versionName?: string;
  description?: string;
  templateFormat?: string;
  updatedBy?: string;
  updatedDate?: string;
}

/** A package recorded as installed on an instance (`ListInstancePackageStates` → `PackageStates[]`). */
export interface PackageState {
  templateName: string;
  templateId?: string;
  templateVersion?: string;
  templateVersionName?: string;
  templateCategory?: string;
  publisher?: string;
  description?: string;
  /** Parsed `Parameters` the package was installed with. */
  parameters: Record<string, unknown>;
  configurationInfo?: string;
  updateTime?: string;
}

/** Per-instance patch summary (`ListInstancePatchStates`); counts converted to numbers. */
export interface InstancePatchState {
  instanceId: string;
  baselineId?: string;
  patchGroup?: string;
  ownerInformation?: string;
  /** `scan` | `install`. */
  operationType?: string;
  operationStartTime?: string;
  operationEndTime?: string;
  installedCount: number;
  installedOtherCount: number;
  installedPendingRebootCount: number;
  installedRejectedCount: number;
  missingCount: number;
  failedCount: number;
}

/** One patch on one instance (`ListInstancePatches` → `Patches[]`). */
export interface InstancePatch {
  title: string;
  kbId?: string;
  classification?: string;
  severity?: string;
  /** `Installed` | `Missing` | `InstalledPendingReboot` | `Failed` | `InstalledRejected` | ... */
  status: string;
  installedTime?: string;
}

/** Filters of OOS `ListPatchBaselines` (all pages are fetched). */
export interface ListPatchBaselinesRequest {
  operationSystem?: string;
  shareType?: 'Public' | 'Private';
  name?: string;
}

/** A patch baseline (`ListPatchBaselines` → `PatchBaselines[]`). */
export interface PatchBaseline {
  id: string;
  name: string;
  operationSystem: string;
  isDefault: boolean;
  shareType?: string;
  description?: string;
  approvedPatches: string[];
  approvedPatchesEnableNonSecurity?: boolean;
  sources: string[];
  tags: Tag[];
  createdBy?: string;
  createdDate?: string;
  updatedBy?: string;
  updatedDate?: string;
}

/** OOS (2019-06-01) operations of one region. Every call sends `RegionId`. */
export interface OosApi {
  readonly regionId: string;
  /** `StartExecution` (idempotent by `clientToken`). */
  startExecution(req: StartExecutionRequest): Promise<Execution>;
  /** `ListExecutions`, one page. An unknown execution ID yields an empty page (OOS has no GetExecution). */
  listExecutions(req: ListExecutionsRequest): Promise<Page<Execution>>;
  /** `ListExecutions`, all pages. */
  listAllExecutions(req: ListAllExecutionsRequest): Promise<Execution[]>;
  /** `ListExecutions` filtered by `ExecutionId`; `undefined` when OOS does not know it. */
  getExecution(executionId: string): Promise<Execution | undefined>;
  /** `CancelExecution`. */
  cancelExecution(executionId: string): Promise<void>;
  /** `ListResourceExecutionStatus`, all pages. */
  listResourceExecutionStatus(executionId: string): Promise<ResourceExecutionStatus[]>;
  /** `ListTaskExecutions`, all pages. */
  listTaskExecutions(req: ListTaskExecutionsRequest): Promise<TaskExecution[]>;
  /** `ListExecutionLogs`, all pages. */
  listExecutionLogs(executionId: string, taskExecutionId?: string): Promise<ExecutionLog[]>;
  /** `ListTemplates`, all pages. */
  listTemplates(req?: ListTemplatesRequest): Promise<TemplateSummary[]>;
  /** `GetTemplate` with `Content` parsed and `Parameters` extracted. */
  getTemplate(name: string, version?: string): Promise<TemplateDetail>;
  /** `ListTemplateVersions`, all pages. */
  listTemplateVersions(name: string): Promise<TemplateVersionInfo[]>;
  /** `ListInstancePackageStates` for ONE instance, all pages. */
  listInstancePackageStates(instanceId: string, templateNames?: string[]): Promise<PackageState[]>;
  /** `ListInstancePatchStates`, instance IDs sent in chunks of 100, all pages. */
  listInstancePatchStates(instanceIds: string[]): Promise<InstancePatchState[]>;
  /** `ListInstancePatches` for ONE instance, optionally filtered by patch status, all pages. */
  listInstancePatches(instanceId: string, statuses?: string[]): Promise<InstancePatch[]>;
  /** `ListPatchBaselines`, all pages. */
  listPatchBaselines(req?: ListPatchBaselinesRequest): Promise<PatchBaseline[]>;
  /**
   * `CreateSecretParameter` (Parameter Store encrypted parameter, `Type=Secret`), idempotent by
   * `clientToken`. @throws CloudError `EntityAlreadyExists*` when the name is taken.
   */
  createSecretParameter(req: SecretParameterRequest): Promise<SecretParameterInfo>;
  /** `UpdateSecretParameter` (new value). @throws CloudError notFound when it does not exist. */
  updateSecretParameter(name: string, value: string): Promise<SecretParameterInfo>;
  /** `GetSecretParameter` WITHOUT decryption (metadata only); `undefined` when it does not exist. */
  getSecretParameter(name: string): Promise<SecretParameterInfo | undefined>;
  /** `DeleteSecretParameter`; an unknown name is success (already gone). */
  deleteSecretParameter(name: string): Promise<void>;
}

/** Request of OOS `CreateSecretParameter`. The value is never logged. */
export interface SecretParameterRequest {
  /** Letters, digits, `-`, `_`; ≤ 180 characters; no ALIYUN/ACS/ALIBABA/ALICLOUD/OOS prefix. */
  name: string;
  /** ≤ 4,096 characters. */
  value: string;
  description?: string;
  /** KMS key ID; default: the account's default service key. */
  keyId?: string;
  /** ≤ 64 characters. */
  clientToken?: string;
  tags?: Record<string, string>;
}

/** An OOS encrypted parameter's metadata (never its value). */
export interface SecretParameterInfo {
  name: string;
  parameterVersion?: number;
  updatedDate?: string;
}

// ---------------------------------------------------------------------------------------------
// ECS (2014-05-26)
// ---------------------------------------------------------------------------------------------

/** Request of ECS `DescribeInstances` (all pages are fetched). */
export interface DescribeInstancesRequest {
  /** Sent in batches of 100 (`InstanceIds` JSON array). */
  instanceIds?: string[];
  /** At most 20 tag filters (`Tag.N.Key` / `Tag.N.Value`). */
  tags?: TagFilter[];
  /** `Pending` | `Running` | `Starting` | `Stopping` | `Stopped`. */
  status?: string;
}

/** An ECS instance (`Instances.Instance[]`). */
export interface Instance {
  instanceId: string;
  instanceName?: string;
  hostName?: string;
  regionId: string;
  zoneId?: string;
  /** `Pending` | `Running` | `Starting` | `Stopping` | `Stopped`. */
  status: string;
  /** `linux` | `windows` (lower-case, as ECS returns it). */
  osType?: string;
  osName?: string;
  osNameEn?: string;
  imageId?: string;
  instanceType?: string;
  cpu?: number;
  /** MiB. */
  memory?: number;
  creationTime?: string;
  startTime?: string;
  expiredTime?: string;
  resourceGroupId?: string;
  vpcId?: string;
  /** Primary private IP (VPC), e.g. for analysis queries' `{{ips}}`. */
  privateIpAddress?: string;
  tags: Tag[];
}

/** Cloud Assistant agent state of one instance (`DescribeCloudAssistantStatus`). */
export interface CloudAssistantStatus {
  instanceId: string;
  /** `CloudAssistantStatus === "true"`: heartbeat within the last 2 minutes. */
  online: boolean;
  /** Empty/absent when the agent is not installed or not running. */
  cloudAssistantVersion?: string;
  lastHeartbeatTime?: string;
  lastInvokedTime?: string;
  activeTaskCount?: number;
  invocationCount?: number;
  osType?: string;
  supportSessionManager?: boolean;
}

export type CommandType = 'RunShellScript' | 'RunPowerShellScript' | 'RunBatScript';

/** Request of ECS `RunCommand`. */
export interface RunCommandRequest {
  type: CommandType;
  /** Script text (or Base64 when `contentEncoding` is `Base64`). */
  commandContent: string;
  /** 1–100 instance IDs. */
  instanceIds: string[];
  /** Default 60 (ECS). */
  timeoutSeconds?: number;
  /** Idempotency token (≤64 ASCII). Without it the call is never retried. */
  clientToken?: string;
  name?: string;
  description?: string;
  contentEncoding?: 'PlainText' | 'Base64';
  workingDir?: string;
  username?: string;
  tags?: Tag[];
  /** `EnableParameter`: Cloud Assistant substitutes `{{name}}` from `parameters` and built-ins such as `{{ACS::InstanceId}}`. */
  enableParameter?: boolean;
  /** Custom parameter values (sent as a JSON string); only with `enableParameter`. */
  parameters?: Record<string, string>;
  /** `Process` (default) or `ProcessTree`: what a timeout or StopInvocation kills. */
  terminationMode?: 'Process' | 'ProcessTree';
}

/** Result of ECS `RunCommand`. */
export interface RunCommandResult {
  /** `c-...` */
  commandId: string;
  /** `t-...` */
  invokeId: string;
}

/** Filters of ECS `DescribeInvocations` (all pages are fetched). */
export interface DescribeInvocationsRequest {
  invokeId?: string;
  instanceId?: string;
  commandId?: string;
  invokeStatus?: string;
  /** Include per-instance `output` (needs `invokeId` and/or `instanceId`). */
  includeOutput?: boolean;
  tags?: TagFilter[];
}

/** Per-instance part of an invocation (`InvokeInstances.InvokeInstance[]`). */
export interface InvokeInstance {
  instanceId: string;
  /** `Pending` | `Running` | `Success` | `Failed` | `Timeout` | `Stopped` | ... */
  invocationStatus: string;
  exitCode?: number;
  /** Decoded from Base64 (UTF-8). */
  output?: string;
  /** Bytes of output cut by ECS (output is capped at 24 KB). */
  dropped?: number;
  errorCode?: string;
  errorInfo?: string;
  repeats?: number;
  creationTime?: string;
  startTime?: string;
  finishTime?: string;
  stopTime?: string;
  updateTime?: string;
}

/** One Cloud Assistant invocation (`Invocations.Invocation[]`). */
export interface Invocation {
  invokeId: string;
  commandId?: string;
  commandName?: string;
  commandType?: string;
  /** Decoded from Base64 (UTF-8). */
  commandContent?: string;
  /** Overall status: `Pending` | `Scheduled` | `Running` | `Success` | `Failed` | `PartialFailed` | `Stopping` | `Stopped`. */
  invocationStatus: string;
  timeoutSeconds?: number;
  repeatMode?: string;
  creationTime?: string;
  tags: Tag[];
  instances: InvokeInstance[];
}

/** Filters of ECS `DescribeInvocationResults` (all pages are fetched). */
export interface DescribeInvocationResultsRequest {
  invokeId: string;
  instanceId?: string;
}

/** Per-instance result (`Invocation.InvocationResults.InvocationResult[]`). */
export interface InvocationResult {
  invokeId: string;
  commandId?: string;
  instanceId: string;
  invocationStatus: string;
  invokeRecordStatus?: string;
  exitCode?: number;
  /** Decoded from Base64 (UTF-8); empty string when there is none. */
  output: string;
  dropped?: number;
  errorCode?: string;
  errorInfo?: string;
  repeats?: number;
  startTime?: string;
  finishedTime?: string;
  stopTime?: string;
}

/** Filters of ECS `DescribeSnapshots` (all pages are fetched). */
export interface DescribeSnapshotsRequest {
  instanceId?: string;
  diskId?: string;
  /** Sent in batches of 100 (`SnapshotIds` JSON array). */
  snapshotIds?: string[];
  tags?: TagFilter[];
  /** `progressing` | `accomplished` | `failed` | `all` (default). */
  status?: string;
}

/** An ECS snapshot (`Snapshots.Snapshot[]`). */
export interface Snapshot {
  snapshotId: string;
  snapshotName?: string;
  /** `progressing` | `accomplished` | `failed`. */
  status: string;
  /** Percent 0–100 (parsed from `"100%"`). */
  progress?: number;
  sourceDiskId?: string;
  sourceDiskType?: string;
  /** GiB. */
  sourceDiskSize?: number;
  creationTime?: string;
  retentionDays?: number;
  regionId?: string;
  usage?: string;
  category?: string;
  tags: Tag[];
}

/** ECS (2014-05-26) operations of one region. Every call sends `RegionId`. */
export interface EcsApi {
  readonly regionId: string;
  /** `DescribeInstances`: IDs in batches of 100, `NextToken` pages of `MaxResults` 100. */
  describeInstances(req?: DescribeInstancesRequest): Promise<Instance[]>;
  /** `DescribeCloudAssistantStatus`: IDs in batches of 50, all pages. */
  describeCloudAssistantStatus(instanceIds: string[]): Promise<CloudAssistantStatus[]>;
  /** `RunCommand` (≤100 instances; retried only when `clientToken` is set). */
  runCommand(req: RunCommandRequest): Promise<RunCommandResult>;
  /** `DescribeInvocations`, all pages. */
  describeInvocations(req: DescribeInvocationsRequest): Promise<Invocation[]>;
  /** `DescribeInvocationResults`, all pages; `output` decoded from Base64. */
  describeInvocationResults(req: DescribeInvocationResultsRequest): Promise<InvocationResult[]>;
  /** `StopInvocation` (instance IDs ≤50 per call; larger lists are split). */
  stopInvocation(invokeId: string, instanceIds?: string[]): Promise<void>;
  /** `DescribeSnapshots`, all pages. */
  describeSnapshots(req: DescribeSnapshotsRequest): Promise<Snapshot[]>;
  /**
   * `TagResources` (ResourceType `instance`): adds or overwrites `tags` (≤ 20) on `instanceIds`,
   * sent in calls of at most 50 resources.
   */
  tagResources(instanceIds: string[], tags: Tag[]): Promise<void>;
  /** `UntagResources` (ResourceType `instance`): removes `tagKeys` (≤ 20) from `instanceIds`, 50 per call. */
  untagResources(instanceIds: string[], tagKeys: string[]): Promise<void>;
}

/**
 * Per-region access to OOS and ECS. Clients are cached per (product, region); every client of
 * one (product, region) shares one rate-limit queue.
 *
 * With `opts.signal`, the returned client's calls stop when the signal aborts: calls waiting in
 * the rate-limit queue are dropped unsent, a retry backoff is interrupted, no further retry, page
 * or batch is started, and an attempt already on the wire is abandoned (it may still complete on
 * the service; its result is discarded). Every call then rejects with a `CloudError` code
 * `Aborted` (transient, category `aborted`, not retryable; test with `isAborted`). A client
 * obtained with a signal is a cheap view, not cached: get one per reconcile.
 *
 * Both methods throw `TypeError` for a region ID that is not lower-case letters, digits and
 * hyphens.
 */
export interface CloudClients {
  oos(regionId: string, opts?: ClientViewOptions): OosApi;
  ecs(regionId: string, opts?: ClientViewOptions): EcsApi;
  /** The region's shared fleet view (see fleet.ts); one per region, created on first use. */
  fleet(regionId: string): RegionFleet;
  /**
   * Registers `listener` for executions any region's fleet view sees finished for the first time
   * (`RegionFleet.onExecutionsFinished`), in every region, present and future.
   * @returns a function that unregisters it.
   */
  onExecutionsFinished?(listener: (finished: readonly Execution[]) => void): () => void;
  /**
   * The CLB or ALB client of `regionId` (traffic control). Optional so test doubles of the
   * other products need not build one; the real cloud layer always has it.
   * @throws TypeError for an invalid region ID.
   */
  loadBalancer?(type: LoadBalancerType, regionId: string, opts?: ClientViewOptions): LoadBalancerApi;
}

/**
 * Options of a client view: `signal` (above), `owner`, the fairness key of the rate gate (e.g.
 * `EcsExtension/ns/name`), and `minPriority`, the lowest rate-gate priority of its calls
 * (limiter.ts `PRIORITY`; e.g. `interactive` while an object's new generation is reconciled).
 */
export interface ClientViewOptions {
  signal?: AbortSignal;
  owner?: string;
  minPriority?: number;
}

/** One ActionTrail management event (`LookupEvents`, 2020-07-06), compacted to what the change feed reads. */
export interface TrailEvent {
  eventId: string;
  /** The API name of an `ApiCall` event, e.g. `UpdateInstancePackageState`. */
  eventName: string;
  /** ISO 8601 UTC, seconds resolution. */
  eventTime: string;
  /** Resource names of the event (e.g. instance IDs); empty when the event names none. */
  resourceNames: string[];
  /** `requestParameters` of the call, values as strings. */
  requestParameters: Record<string, string>;
}

/** ActionTrail of one region (the change feed's source of direct writes that leave no execution). */
export interface ActionTrailApi {
  readonly regionId: string;
  /**
   * `LookupEvents` with `LookupAttribute.1` = `EventName`/`eventName`, `StartTime` = `startTime`
   * (ISO 8601 UTC), `EndTime` default now; every page (50 per call). Newest first.
   * @throws CloudError (e.g. `Forbidden.RAM` without `actiontrail:LookupEvents`).
   */
  lookupEvents(req: { eventName: string; startTime: string; endTime?: string }): Promise<TrailEvent[]>;
}

/** Load balancer product of a server group (traffic control; NLB is not served). */
export type LoadBalancerType = 'CLB' | 'ALB';

/** One backend of a server group: an ECS instance on a port, with its weight. */
export interface ServerGroupBackend {
  instanceId: string;
  port: number;
  /** 0–100 (CLB and ALB). */
  weight: number;
  /**
   * ALB `ListServerGroupServers` `Status`: `Adding` | `Available` | `Configuring` | `Removing`
   * (a change is applied once it reads `Available` again). CLB backends are always `Available`.
   */
  status: string;
  description?: string;
}

/**
 * A CLB vServer group (`DescribeVServerGroupAttribute`) or ALB server group (`ListServerGroups`
 * + `ListServerGroupServers`), with what traffic control needs to judge it.
 */
export interface ServerGroupView {
  type: LoadBalancerType;
  regionId: string;
  serverGroupId: string;
  /** Load balancers using the group (CLB: the one it belongs to; ALB: `RelatedLoadBalancerIds`). */
  loadBalancerIds: string[];
  /**
   * Listeners forwarding to the group (ALB listener IDs for `GetListenerHealthStatus`; CLB
   * listener ports as text). Empty when no listener uses the group.
   */
  listenerIds: string[];
  /**
   * Scheduling algorithm, lower case (CLB: of the listeners using the group, e.g. `wrr`, `rr`,
   * `sch`; ALB: the group's `Scheduler`, e.g. `wrr`, `sch`, `uch`). `''` when unknown.
   */
  scheduler: string;
  /** Tags of the group's load balancers (ACK's cloud controller manager tags with `ack.aliyun.com`). */
  loadBalancerTags: Record<string, string>;
  /**
   * False when the load balancer runs no health check on the group (ALB `HealthCheckConfig
   * .HealthCheckEnabled` false: `GetListenerHealthStatus` then reports nothing useful); undefined
   * when the read does not tell (CLB: `DescribeHealthStatus` `unavailable` means "not enabled" or
   * "not triggered yet").
   */
  healthCheck?: boolean;
  backends: ServerGroupBackend[];
}

/** A backend's health as the load balancer's own health check reports it. */
export type BackendHealthState = 'Healthy' | 'Unhealthy' | 'Unknown';

/**
 * CLB (SLB API 2014-05-15) or ALB (API 2020-06-16) server groups of one region: the reads and
 * writes of traffic control (src/controllers/shared/traffic.ts). Write methods are safe to repeat
 * (a weight set twice, a backend added or removed twice, is not an error).
 */
export interface LoadBalancerApi {
  readonly type: LoadBalancerType;
  readonly regionId: string;
  /**
   * The group with its backends, schedulers, listeners and its load balancers' tags.
   * @throws CloudError (`ResourceNotFound`-like codes mapped to a permanent error when the group
   *   does not exist).
   */
  describeGroup(serverGroupId: string): Promise<ServerGroupView>;
  /**
   * Sets weights of existing backends (CLB `SetVServerGroupAttribute`, at most 20 servers per
   * call, chunked; ALB `UpdateServerGroupServersAttribute`, asynchronous: poll
   * {@link describeGroup} until each server is `Available`).
   */
  setWeights(
    serverGroupId: string,
    backends: ReadonlyArray<{ instanceId: string; port: number; weight: number }>,
  ): Promise<void>;
  /** Adds backends (CLB `AddVServerGroupBackendServers`; ALB `AddServersToServerGroup`, asynchronous). */
  addBackends(
    serverGroupId: string,
    backends: ReadonlyArray<{ instanceId: string; port: number; weight: number; description?: string }>,
  ): Promise<void>;
  /** Removes backends (CLB `RemoveVServerGroupBackendServers`; ALB `RemoveServersFromServerGroup`, asynchronous). */
  removeBackends(
    serverGroupId: string,
    backends: ReadonlyArray<{ instanceId: string; port: number }>,
  ): Promise<void>;
  /**
   * Health of the group's backends as the load balancer reports it (CLB `DescribeHealthStatus`
   * of the group's load balancer; ALB `GetListenerHealthStatus` of each listener in
   * `group.listenerIds`), keyed `instanceId:port`. A backend with no report is absent.
   */
  backendHealth(group: ServerGroupView): Promise<Map<string, BackendHealthState>>;
}
