/**
 * ECS (API version 2014-05-26) operations of one region, on top of {@link ApiCaller}:
 * instances, Cloud Assistant (RunCommand and its invocations) and snapshots. Encodings follow
 * the generated `@alicloud/ecs20140526` client: `InstanceIds` / `SnapshotIds` are JSON array
 * strings, `InstanceId` lists are repeat lists (`InstanceId.N`), `Tag` lists are `Tag.N.Key` /
 * `Tag.N.Value`. `RegionId` is always sent.
 */
import type { ActionSafety, RegionCaller } from './caller.js';
import { CloudError } from './errors.js';
import {
  allPages,
  base64Text,
  bool,
  chunks,
  defined,
  num,
  obj,
  str,
  tagList,
  wrapped,
  type Raw,
} from './convert.js';
import type {
  CloudAssistantStatus,
  DescribeInstancesRequest,
  DescribeInvocationResultsRequest,
  DescribeInvocationsRequest,
  DescribeSnapshotsRequest,
  EcsApi,
  Instance,
  Invocation,
  InvocationResult,
  InvokeInstance,
  RunCommandRequest,
  RunCommandResult,
  Snapshot,
  Tag,
  TagFilter,
} from './types.js';

/** ECS API version. */
export const ECS_API_VERSION = '2014-05-26';

/** Every ECS action this layer calls, with its retry safety (see `caller.ts`). */
export const ECS_ACTIONS: Readonly<Record<string, ActionSafety>> = {
  DescribeInstances: 'read',
  DescribeCloudAssistantStatus: 'read',
  RunCommand: 'idempotentWrite',
  DescribeInvocations: 'read',
  DescribeInvocationResults: 'read',
  StopInvocation: 'naturallyIdempotentWrite',
  DescribeSnapshots: 'read',
  // Overwriting tags is harmless to repeat, but the calls carry no ClientToken: the AppRelease
  // reconciler re-applies them until they succeed (it keeps the finished work tracked until then).
  TagResources: 'naturallyIdempotentWrite',
  UntagResources: 'naturallyIdempotentWrite',
};

/** Documented limits. */
const INSTANCE_ID_BATCH = 100; // DescribeInstances InstanceIds, RunCommand InstanceId.N
const CLOUD_ASSISTANT_BATCH = 50; // DescribeCloudAssistantStatus (MaxResults 1–50)
const STOP_INVOCATION_BATCH = 50; // StopInvocation InstanceId.N ≤ 50
const SNAPSHOT_ID_BATCH = 100; // DescribeSnapshots SnapshotIds ≤ 100
const MAX_TAG_FILTERS = 20;
const TAG_RESOURCE_BATCH = 50; // TagResources / UntagResources ResourceId.N ≤ 50

function tagParams(
  tags: TagFilter[] | undefined,
  action: string,
): Array<{ Key: string; Value?: string }> | undefined {
  if (!tags || tags.length === 0) return undefined;
  if (tags.length > MAX_TAG_FILTERS)
    throw invalid(action, `at most ${MAX_TAG_FILTERS} tag filters are allowed, got ${tags.length}`);
  return tags.map((t) => (t.value === undefined ? { Key: t.key } : { Key: t.key, Value: t.value }));
}

function invalid(action: string, message: string): CloudError {
  return new CloudError({
    code: 'InvalidParameter',
    message,
    action,
    product: 'ecs',
    kind: 'permanent',
    category: 'invalidParameter',
  });
}

/**
 * The primary private IP of a DescribeInstances row: `VpcAttributes.PrivateIpAddress.IpAddress[0]`,
 * else the first `NetworkInterfaces.NetworkInterface[].PrimaryIpAddress`
 * (https://help.aliyun.com/zh/ecs/developer-reference/api-ecs-2014-05-26-describeinstances).
 */
function privateIpOf(r: Raw): string | undefined {
  const ips = obj(obj(r['VpcAttributes'])['PrivateIpAddress'])['IpAddress'];
  const first = Array.isArray(ips) ? str(ips[0]) : str(ips);
  return first ?? str(wrapped(r['NetworkInterfaces'], 'NetworkInterface')[0]?.['PrimaryIpAddress']);
}

function toInstance(r: Raw): Instance {
  return defined<Instance>({
    instanceId: str(r['InstanceId']) ?? '',
    instanceName: str(r['InstanceName']),
    hostName: str(r['HostName']),
    regionId: str(r['RegionId']) ?? '',
    zoneId: str(r['ZoneId']),
    status: str(r['Status']) ?? '',
    osType: str(r['OSType']),
    osName: str(r['OSName']),
    osNameEn: str(r['OSNameEn']),
    imageId: str(r['ImageId']),
    instanceType: str(r['InstanceType']),
    cpu: num(r['Cpu']),
    memory: num(r['Memory']),
    creationTime: str(r['CreationTime']),
    startTime: str(r['StartTime']),
    expiredTime: str(r['ExpiredTime']),
    resourceGroupId: str(r['ResourceGroupId']),
    vpcId: str(obj(r['VpcAttributes'])['VpcId']),
    privateIpAddress: privateIpOf(r),
    tags: tagList(r['Tags']),
  });
}

function toInvokeInstance(r: Raw): InvokeInstance {
  return defined<InvokeInstance>({
    instanceId: str(r['InstanceId']) ?? '',
    invocationStatus: str(r['InvocationStatus']) ?? '',
    exitCode: num(r['ExitCode']),
    output: base64Text(r['Output']),
    dropped: num(r['Dropped']),
    errorCode: str(r['ErrorCode']),
    errorInfo: str(r['ErrorInfo']),
    repeats: num(r['Repeats']),
    creationTime: str(r['CreationTime']),
    startTime: str(r['StartTime']),
    finishTime: str(r['FinishTime']),
    stopTime: str(r['StopTime']),
    updateTime: str(r['UpdateTime']),
  });
}

function toInvocation(r: Raw): Invocation {
  return defined<Invocation>({
    invokeId: str(r['InvokeId']) ?? '',
    commandId: str(r['CommandId']),
    commandName: str(r['CommandName']),
    commandType: str(r['CommandType']),
    commandContent: base64Text(r['CommandContent']),
    invocationStatus: str(r['InvocationStatus']) ?? '',
    timeoutSeconds: num(r['Timeout']),
    repeatMode: str(r['RepeatMode']),
    creationTime: str(r['CreationTime']),
    tags: tagList(r['Tags']),
    instances: wrapped(r['InvokeInstances'], 'InvokeInstance').map(toInvokeInstance),
  });
}

function toInvocationResult(r: Raw): InvocationResult {
  return defined<InvocationResult>({
    invokeId: str(r['InvokeId']) ?? '',
    commandId: str(r['CommandId']),
    instanceId: str(r['InstanceId']) ?? '',
    invocationStatus: str(r['InvocationStatus']) ?? '',
    invokeRecordStatus: str(r['InvokeRecordStatus']),
    exitCode: num(r['ExitCode']),
    output: base64Text(r['Output']) ?? '',
    dropped: num(r['Dropped']),
    errorCode: str(r['ErrorCode']),
    errorInfo: str(r['ErrorInfo']),
    repeats: num(r['Repeats']),
    startTime: str(r['StartTime']),
    finishedTime: str(r['FinishedTime']),
    stopTime: str(r['StopTime']),
  });
}

function toSnapshot(r: Raw): Snapshot {
  return defined<Snapshot>({
    snapshotId: str(r['SnapshotId']) ?? '',
    snapshotName: str(r['SnapshotName']),
    status: str(r['Status']) ?? '',
    progress: num(r['Progress']),
    sourceDiskId: str(r['SourceDiskId']),
    sourceDiskType: str(r['SourceDiskType']),
    sourceDiskSize: num(r['SourceDiskSize']),
    creationTime: str(r['CreationTime']),
    retentionDays: num(r['RetentionDays']),
    regionId: str(r['RegionId']),
    usage: str(r['Usage']),
    category: str(r['Category']),
    tags: tagList(r['Tags']),
  });
}

/** ECS client of one region. Construct through `createCloudClients`. */
export class EcsClient implements EcsApi {
  constructor(private readonly caller: RegionCaller) {}

  get regionId(): string {
    return this.caller.regionId;
  }

  /**
   * ECS `DescribeInstances`: `InstanceIds` (JSON array) in batches of 100, tag filters as
   * `Tag.N.Key/Value` (≤ 20), `NextToken` pages with `MaxResults` 100. With no IDs, lists every
   * instance matching the other filters. Rejects with `CloudError` `InvalidParameter` (client
   * side) for more than 20 tag filters.
   */
  async describeInstances(req: DescribeInstancesRequest = {}): Promise<Instance[]> {
    const tags = tagParams(req.tags, 'DescribeInstances');
    const idBatches: Array<string[] | undefined> =
      req.instanceIds === undefined ? [undefined] : chunks(req.instanceIds, INSTANCE_ID_BATCH);
    const out: Instance[] = [];
    for (const ids of idBatches) {
      const instances = await allPages({ product: 'ecs', action: 'DescribeInstances' }, async (nextToken) => {
        const body = await this.caller.call('DescribeInstances', {
          InstanceIds: ids ? JSON.stringify(ids) : undefined,
          Tag: tags,
          Status: req.status,
          MaxResults: INSTANCE_ID_BATCH,
          NextToken: nextToken,
        });
        return defined({
          items: wrapped(body['Instances'], 'Instance').map(toInstance),
          nextToken: str(body['NextToken']),
        });
      });
      out.push(...instances);
    }
    return out;
  }

  /**
   * ECS `DescribeCloudAssistantStatus`: `InstanceId.N` in batches of 50, all pages.
   * `CloudAssistantStatus` `"true"` becomes `online: true`.
   */
  async describeCloudAssistantStatus(instanceIds: string[]): Promise<CloudAssistantStatus[]> {
    const out: CloudAssistantStatus[] = [];
    for (const ids of chunks(instanceIds, CLOUD_ASSISTANT_BATCH)) {
      const statuses = await allPages(
        { product: 'ecs', action: 'DescribeCloudAssistantStatus' },
        async (nextToken) => {
          const body = await this.caller.call('DescribeCloudAssistantStatus', {
            InstanceId: ids,
            MaxResults: CLOUD_ASSISTANT_BATCH,
            NextToken: nextToken,
          });
          const items = wrapped(body['InstanceCloudAssistantStatusSet'], 'InstanceCloudAssistantStatus').map(
            (r) =>
              defined<CloudAssistantStatus>({
                instanceId: str(r['InstanceId']) ?? '',
                online: bool(r['CloudAssistantStatus']) ?? false,
                cloudAssistantVersion: str(r['CloudAssistantVersion']),
                lastHeartbeatTime: str(r['LastHeartbeatTime']),
                lastInvokedTime: str(r['LastInvokedTime']),
                activeTaskCount: num(r['ActiveTaskCount']),
                invocationCount: num(r['InvocationCount']),
                osType: str(r['OSType']),
                supportSessionManager: bool(r['SupportSessionManager']),
              }),
          );
          return defined({ items, nextToken: str(body['NextToken']) });
        },
      );
      out.push(...statuses);
    }
    return out;
  }

  /**
   * ECS `RunCommand` (create and run a Cloud Assistant command in one call) on 1–100
   * instances. Retried after transient failures only when `clientToken` is set. Rejects with
   * `CloudError` `InvalidParameter` (client side) for 0 or more than 100 instances.
   */
  async runCommand(req: RunCommandRequest): Promise<RunCommandResult> {
    if (req.instanceIds.length === 0 || req.instanceIds.length > INSTANCE_ID_BATCH) {
      throw invalid(
        'RunCommand',
        `RunCommand takes 1–${INSTANCE_ID_BATCH} instance IDs, got ${req.instanceIds.length}`,
      );
    }
    const body = await this.caller.call('RunCommand', {
      Type: req.type,
      CommandContent: req.commandContent,
      InstanceId: req.instanceIds,
      Timeout: req.timeoutSeconds,
      ClientToken: req.clientToken,
      Name: req.name,
      Description: req.description,
      ContentEncoding: req.contentEncoding,
      WorkingDir: req.workingDir,
      Username: req.username,
      Tag: req.tags?.map((t) => ({ Key: t.key, Value: t.value })),
      EnableParameter: req.enableParameter,
      Parameters: req.parameters ? JSON.stringify(req.parameters) : undefined,
      TerminationMode: req.terminationMode,
    });
    return { commandId: str(body['CommandId']) ?? '', invokeId: str(body['InvokeId']) ?? '' };
  }

  /**
   * ECS `DescribeInvocations`, all pages (`MaxResults` 50). Sends `ContentEncoding=Base64`
   * and decodes `CommandContent` and per-instance `Output` to UTF-8 text.
   */
  async describeInvocations(req: DescribeInvocationsRequest): Promise<Invocation[]> {
    const tags = tagParams(req.tags, 'DescribeInvocations');
    return allPages({ product: 'ecs', action: 'DescribeInvocations' }, async (nextToken) => {
      const body = await this.caller.call('DescribeInvocations', {
        InvokeId: req.invokeId,
        InstanceId: req.instanceId,
        CommandId: req.commandId,
        InvokeStatus: req.invokeStatus,
        IncludeOutput: req.includeOutput,
        ContentEncoding: 'Base64',
        Tag: tags,
        MaxResults: 50,
        NextToken: nextToken,
      });
      return defined({
        items: wrapped(body['Invocations'], 'Invocation').map(toInvocation),
        nextToken: str(body['NextToken']),
      });
    });
  }

  /**
   * ECS `DescribeInvocationResults`, all pages (`MaxResults` 50); reads
   * `Invocation.InvocationResults.InvocationResult[]` and decodes `Output` from Base64.
   */
  async describeInvocationResults(req: DescribeInvocationResultsRequest): Promise<InvocationResult[]> {
    return allPages({ product: 'ecs', action: 'DescribeInvocationResults' }, async (nextToken) => {
      const body = await this.caller.call('DescribeInvocationResults', {
        InvokeId: req.invokeId,
        InstanceId: req.instanceId,
        ContentEncoding: 'Base64',
        MaxResults: 50,
        NextToken: nextToken,
      });
      const inv = obj(body['Invocation']);
      return defined({
        items: wrapped(inv['InvocationResults'], 'InvocationResult').map(toInvocationResult),
        nextToken: str(inv['NextToken']) ?? str(body['NextToken']),
      });
    });
  }

  /**
   * ECS `StopInvocation`; `InstanceId.N` split into calls of at most 50. Without instance IDs
   * the whole invocation is stopped. Not retried after an ambiguous failure.
   */
  async stopInvocation(invokeId: string, instanceIds?: string[]): Promise<void> {
    const batches: Array<string[] | undefined> =
      instanceIds && instanceIds.length > 0 ? chunks(instanceIds, STOP_INVOCATION_BATCH) : [undefined];
    for (const ids of batches) {
      await this.caller.call('StopInvocation', { InvokeId: invokeId, InstanceId: ids });
    }
  }

  /**
   * ECS `TagResources` on instances: `ResourceId.N` in calls of at most 50, `Tag.N.Key/Value`
   * (1–20; existing keys are overwritten, so a retry is harmless). Rejects with `CloudError`
   * `InvalidParameter` (client side) for 0 or more than 20 tags.
   */
  async tagResources(instanceIds: string[], tags: Tag[]): Promise<void> {
    if (tags.length === 0 || tags.length > MAX_TAG_FILTERS)
      throw invalid('TagResources', `TagResources takes 1–${MAX_TAG_FILTERS} tags, got ${tags.length}`);
    for (const ids of chunks(instanceIds, TAG_RESOURCE_BATCH)) {
      await this.caller.call('TagResources', {
        ResourceType: 'instance',
        ResourceId: ids,
        Tag: tags.map((t) => ({ Key: t.key, Value: t.value })),
      });
    }
  }

  /** ECS `UntagResources` on instances: `ResourceId.N` in calls of at most 50, `TagKey.N` (1–20). */
  async untagResources(instanceIds: string[], tagKeys: string[]): Promise<void> {
    if (tagKeys.length === 0 || tagKeys.length > MAX_TAG_FILTERS)
      throw invalid(
        'UntagResources',
        `UntagResources takes 1–${MAX_TAG_FILTERS} tag keys, got ${tagKeys.length}`,
      );
    for (const ids of chunks(instanceIds, TAG_RESOURCE_BATCH)) {
      await this.caller.call('UntagResources', {
        ResourceType: 'instance',
        ResourceId: ids,
        TagKey: tagKeys,
      });
    }
  }

  /** ECS `DescribeSnapshots`, all pages (`MaxResults` 100); `SnapshotIds` in JSON batches of 100. */
  async describeSnapshots(req: DescribeSnapshotsRequest): Promise<Snapshot[]> {
    const tags = tagParams(req.tags, 'DescribeSnapshots');
    const idBatches: Array<string[] | undefined> =
      req.snapshotIds === undefined ? [undefined] : chunks(req.snapshotIds, SNAPSHOT_ID_BATCH);
    const out: Snapshot[] = [];
    for (const ids of idBatches) {
      const snapshots = await allPages({ product: 'ecs', action: 'DescribeSnapshots' }, async (nextToken) => {
        const body = await this.caller.call('DescribeSnapshots', {
          InstanceId: req.instanceId,
          DiskId: req.diskId,
          SnapshotIds: ids ? JSON.stringify(ids) : undefined,
          Tag: tags,
          Status: req.status,
          MaxResults: SNAPSHOT_ID_BATCH,
          NextToken: nextToken,
        });
        return defined({
          items: wrapped(body['Snapshots'], 'Snapshot').map(toSnapshot),
          nextToken: str(body['NextToken']),
        });
      });
      out.push(...snapshots);
    }
    return out;
  }
}
