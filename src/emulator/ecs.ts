import type { ActionContext, ActionHandler } from './context.js';
import { ApiError, invalidParameter, missingParameter } from './errors.js';
import type { InvocationRecord, InvokeInstanceRecord } from './invocations.js';
import { invocationStatus } from './invocations.js';
import type { PageLimits } from './params.js';
import { paginate } from './params.js';
import { referencedParameters } from './sandbox.js';
import { isoNow, type InstanceRecord } from './state.js';

/** ECS API version served. */
export const ECS_VERSION = '2014-05-26';

const L_INSTANCES: PageLimits = { min: 10, max: 100, def: 10, clampLow: true };
const L_1_50: PageLimits = { min: 1, max: 50, def: 10 };
const L_SNAPSHOTS: PageLimits = { min: 1, max: 100, def: 10 };

function tagSet(tags: Record<string, string>) {
  return { Tag: Object.entries(tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })) };
}

function instanceView(i: InstanceRecord): Record<string, unknown> {
  return {
    InstanceId: i.instanceId,
    InstanceName: i.instanceName,
    HostName: i.instanceName,
    RegionId: i.regionId,
    ZoneId: i.zoneId,
    Status: i.status,
    OSType: i.osType,
    OSName: i.osName,
    OSNameEn: i.osName,
    ImageId:
      i.osType === 'windows'
        ? 'win2022_21H2_x64_dtc_en-us_40G_alibase_20240101.vhd'
        : 'aliyun_3_x64_20G_alibase_20240101.vhd',
    InstanceType: i.instanceType,
    Cpu: 2,
    Memory: 8192,
    CreationTime: i.creationTime,
    StartTime: i.creationTime,
    ExpiredTime: '2099-12-31T15:59Z',
    InstanceChargeType: 'PostPaid',
    ResourceGroupId: '',
    VpcAttributes: {
      VpcId: 'vpc-emulator',
      VSwitchId: 'vsw-emulator',
      PrivateIpAddress: { IpAddress: [i.privateIpAddress] },
    },
    NetworkInterfaces: {
      NetworkInterface: [
        {
          NetworkInterfaceId: `eni-${i.instanceId.slice(2)}`,
          Type: 'Primary',
          PrimaryIpAddress: i.privateIpAddress,
          PrivateIpSets: { PrivateIpSet: [{ PrivateIpAddress: i.privateIpAddress, Primary: true }] },
        },
      ],
    },
    Tags: tagSet(i.tags),
  };
}

function requireRegion(ctx: ActionContext): string {
  if (ctx.params.str('RegionId') === undefined) throw missingParameter('RegionId');
  return ctx.regionId;
}

function wildcard(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return re.test(value);
}

const describeInstances: ActionHandler = (ctx) => {
  const p = ctx.params;
  const region = ctx.state.region(requireRegion(ctx));
  const ids = p.jsonStringArray('InstanceIds', 100);
  const tags = p.objList('Tag');
  if (tags.length > 20) throw invalidParameter('Tag', 'at most 20 tags');
  const status = p.oneOf('Status', ['Pending', 'Running', 'Starting', 'Stopping', 'Stopped'] as const);
  const zone = p.str('ZoneId');
  const name = p.str('InstanceName');
  const ips = p.jsonStringArray('PrivateIpAddresses', 100);
  const list = [...region.instances.values()].filter(
    (i) =>
      (ids === undefined || ids.includes(i.instanceId)) &&
      (ips === undefined || ips.includes(i.privateIpAddress)) &&
      (status === undefined || i.status === status) &&
      (zone === undefined || i.zoneId === zone) &&
      (name === undefined || wildcard(name, i.instanceName)) &&
      tags.every(
        (t) =>
          t['Key'] !== undefined &&
          t['Key'] in i.tags &&
          (t['Value'] === undefined || i.tags[t['Key']] === t['Value']),
      ),
  );
  let items: InstanceRecord[];
  let nextToken = '';
  let pageNumber = 1;
  let pageSize: number;
  if (p.str('NextToken') !== undefined || p.str('MaxResults') !== undefined) {
    const page = paginate(p, list, L_INSTANCES, `DI:${region.regionId}`);
    items = page.items;
    nextToken = page.nextToken;
    pageSize = page.maxResults;
  } else {
    pageNumber = p.int('PageNumber', { min: 1 }) ?? 1;
    pageSize = p.int('PageSize', { min: 1, max: 100 }) ?? 10;
    items = list.slice((pageNumber - 1) * pageSize, pageNumber * pageSize);
  }
  return {
    TotalCount: list.length,
    PageNumber: pageNumber,
    PageSize: pageSize,
    NextToken: nextToken,
    Instances: { Instance: items.map(instanceView) },
  };
};

function notFoundIds(ids: string[]): ApiError {
  return new ApiError(
    404,
    'InvalidInstanceIds.NotFound',
    `The specified instance IDs do not exist: ${ids.join(', ')}.`,
  );
}

const describeCloudAssistantStatus: ActionHandler = (ctx) => {
  const p = ctx.params;
  const region = ctx.state.region(requireRegion(ctx));
  const ids = p.list('InstanceId');
  const os = p.oneOf('OSType', ['Windows', 'Linux', 'FreeBSD'] as const);
  let list: InstanceRecord[];
  if (ids.length > 0) {
    // A released instance is unknown to ECS like an ID never seen: InvalidInstanceIds.NotFound
    // for the whole call (the reference's only documented error of this API).
    const missing = ids.filter((id) => !region.instances.has(id));
    if (missing.length > 0) throw notFoundIds(missing);
    list = ids.flatMap((id) => region.instances.get(id) ?? []);
  } else list = [...region.instances.values()];
  list = list.filter((i) => os === undefined || i.osType === os.toLowerCase());
  const page =
    ids.length > 0
      ? { items: list, nextToken: '', maxResults: list.length, total: list.length }
      : paginate(p, list, L_1_50, `DCAS:${region.regionId}`);
  return {
    TotalCount: page.total,
    PageNumber: 1,
    PageSize: page.maxResults,
    NextToken: page.nextToken,
    InstanceCloudAssistantStatusSet: {
      InstanceCloudAssistantStatus: page.items.map((i) => {
        const up = i.cloudAssistantOnline && i.status === 'Running';
        const invs = ctx.invocations.invocations.filter((v) =>
          v.instances.some((x) => x.instanceId === i.instanceId),
        );
        return {
          InstanceId: i.instanceId,
          CloudAssistantStatus: up ? 'true' : 'false',
          CloudAssistantVersion: i.cloudAssistantOnline ? i.cloudAssistantVersion : '',
          LastHeartbeatTime: up ? isoNow() : '',
          LastInvokedTime: invs.at(-1)?.creationTime ?? '',
          ActiveTaskCount: invs.filter((v) =>
            v.instances.some(
              (x) => x.instanceId === i.instanceId && (x.status === 'Pending' || x.status === 'Running'),
            ),
          ).length,
          InvocationCount: invs.length,
          OSType: i.osType === 'windows' ? 'Windows' : 'Linux',
          SupportSessionManager: true,
        };
      }),
    },
  };
};

const COMMAND_TYPES = ['RunShellScript', 'RunBatScript', 'RunPowerShellScript'] as const;

const runCommand: ActionHandler = (ctx) => {
  const p = ctx.params;
  const regionId = requireRegion(ctx);
  const region = ctx.state.region(regionId);
  const type = p.required('Type');
  if (!(COMMAND_TYPES as readonly string[]).includes(type))
    throw invalidParameter('Type', `expected one of ${COMMAND_TYPES.join(', ')}`);
  const raw = p.required('CommandContent');
  const enc = (p.str('ContentEncoding') ?? 'PlainText').toLowerCase() === 'base64' ? 'Base64' : 'PlainText';
  const content = enc === 'Base64' ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  const limit = (p.bool('KeepCommand') ?? false) ? 18 * 1024 : 24 * 1024;
  if (Buffer.from(content).toString('base64').length > limit) {
    throw invalidParameter('CommandContent', `Base64-encoded content exceeds ${limit / 1024} KB`);
  }
  let ids = p.list('InstanceId');
  const resourceTags = p.objList('ResourceTag');
  if (ids.length > 0 && resourceTags.length > 0)
    throw invalidParameter('InstanceId', 'InstanceId and ResourceTag are mutually exclusive');
  if (resourceTags.length > 0) {
    ids = [...region.instances.values()]
      .filter((i) =>
        resourceTags.every(
          (t) =>
            t['Key'] !== undefined &&
            i.tags[t['Key']] !== undefined &&
            (t['Value'] === undefined || i.tags[t['Key']] === t['Value']),
        ),
      )
      .map((i) => i.instanceId);
  }
  if (ids.length === 0) throw missingParameter('InstanceId');
  if (ids.length > 100) throw invalidParameter('InstanceId', 'at most 100 instances');
  const missing = ids.filter((id) => !region.instances.has(id));
  if (missing.length > 0)
    throw new ApiError(
      404,
      'InvalidInstance.NotFound',
      `The specified instance does not exist: ${missing.join(', ')}.`,
    );
  const timeout = p.int('Timeout', { min: 10, max: 86400 }) ?? 60;
  const clientToken = p.str('ClientToken');
  if (clientToken !== undefined && clientToken.length > 64)
    throw invalidParameter('ClientToken', 'at most 64 characters');
  const parameters = p.jsonObject('Parameters') ?? {};
  const enableParameter = p.bool('EnableParameter') ?? false;
  if (enableParameter) {
    const undefinedNames = referencedParameters(content).filter(
      (n) => !Object.prototype.hasOwnProperty.call(parameters, n),
    );
    if (undefinedNames.length > 0)
      throw invalidParameter('Parameters', `no value for custom parameter(s) ${undefinedNames.join(', ')}`);
    if (Object.keys(parameters).length > 20)
      throw invalidParameter('Parameters', 'at most 20 custom parameters');
  }
  p.oneOf('TerminationMode', ['Process', 'ProcessTree'] as const);
  const tags: Record<string, string> = {};
  for (const t of p.objList('Tag')) if (t['Key'] !== undefined) tags[t['Key']] = t['Value'] ?? '';
  const { inv } = ctx.invocations.start({
    tags,
    regionId,
    instanceIds: ids,
    type,
    content,
    timeoutSec: timeout,
    name: p.str('Name'),
    workingDir: p.str('WorkingDir'),
    username: p.str('Username'),
    parameters,
    enableParameter,
    clientToken,
  });
  return { CommandId: inv.commandId, InvokeId: inv.invokeId };
};

function encodeOut(s: string, enc: string): string {
  return enc === 'PlainText' ? s : Buffer.from(s).toString('base64');
}

function outputEncoding(ctx: ActionContext): string {
  const v = (ctx.params.str('ContentEncoding') ?? 'Base64').toLowerCase();
  return v === 'plaintext' ? 'PlainText' : 'Base64';
}

function invokeInstanceView(
  r: InvokeInstanceRecord,
  enc: string,
  includeOutput: boolean,
): Record<string, unknown> {
  return {
    InstanceId: r.instanceId,
    InvocationStatus: r.status,
    InstanceInvokeStatus:
      r.status === 'Success' || r.status === 'Failed' || r.status === 'Timeout' ? 'Finished' : r.status,
    ExitCode: r.exitCode ?? undefined,
    Output: includeOutput ? encodeOut(r.output, enc) : '',
    Dropped: r.dropped ?? 0,
    ErrorCode: r.errorCode,
    ErrorInfo: r.errorInfo,
    Repeats: r.status === 'Pending' || r.status === 'Invalid' ? 0 : 1,
    CreationTime: r.creationTime,
    StartTime: r.startTime,
    FinishTime: r.finishTime,
    StopTime: r.stopTime,
    UpdateTime: r.updateTime,
    Timed: false,
  };
}

function filterInvocations(ctx: ActionContext): InvocationRecord[] {
  const p = ctx.params;
  const regionId = requireRegion(ctx);
  const invokeId = p.str('InvokeId');
  const instanceId = p.str('InstanceId');
  const commandId = p.str('CommandId');
  const commandType = p.str('CommandType');
  const name = p.str('CommandName');
  const tagFilters = p.objList('Tag');
  return ctx.invocations.invocations
    .filter(
      (v) =>
        v.regionId === regionId &&
        (invokeId === undefined || v.invokeId === invokeId) &&
        (commandId === undefined || v.commandId === commandId) &&
        (commandType === undefined || v.type === commandType) &&
        (name === undefined || v.name === name) &&
        (instanceId === undefined || v.instances.some((x) => x.instanceId === instanceId)) &&
        tagFilters.every(
          (t) =>
            t['Key'] !== undefined &&
            v.tags[t['Key']] !== undefined &&
            (t['Value'] === undefined || v.tags[t['Key']] === t['Value']),
        ),
    )
    .reverse();
}

const describeInvocations: ActionHandler = (ctx) => {
  const p = ctx.params;
  const enc = outputEncoding(ctx);
  const includeOutput = p.bool('IncludeOutput') ?? false;
  const instanceId = p.str('InstanceId');
  const status = p.str('InvokeStatus');
  const list = filterInvocations(ctx).filter((v) => status === undefined || invocationStatus(v) === status);
  const page = paginate(p, list, L_1_50, 'DescribeInvocations');
  return {
    TotalCount: page.total,
    PageNumber: 1,
    PageSize: page.maxResults,
    NextToken: page.nextToken,
    Invocations: {
      Invocation: page.items.map((v) => {
        const st = invocationStatus(v);
        return {
          InvokeId: v.invokeId,
          CommandId: v.commandId,
          CommandName: v.name,
          CommandType: v.type,
          CommandContent: Buffer.from(v.content).toString('base64'),
          CommandDescription: '',
          Parameters: JSON.stringify(v.parameters),
          Timeout: v.timeoutSec,
          RepeatMode: 'Once',
          Frequency: '',
          Timed: false,
          WorkingDir: v.workingDir,
          Username: v.username,
          CreationTime: v.creationTime,
          InvocationStatus: st,
          InvokeStatus: st === 'Success' || st === 'Failed' || st === 'PartialFailed' ? 'Finished' : st,
          Tags: { Tag: Object.entries(v.tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })) },
          InvokeInstances: {
            InvokeInstance: v.instances
              .filter((x) => instanceId === undefined || x.instanceId === instanceId)
              .map((x) => invokeInstanceView(x, enc, includeOutput)),
          },
        };
      }),
    },
  };
};

const describeInvocationResults: ActionHandler = (ctx) => {
  const p = ctx.params;
  const enc = outputEncoding(ctx);
  const instanceId = p.str('InstanceId');
  const recordStatus = p.str('InvokeRecordStatus');
  const rows = filterInvocations(ctx).flatMap((v) =>
    v.instances.filter((x) => instanceId === undefined || x.instanceId === instanceId).map((x) => ({ v, x })),
  );
  const filtered = rows.filter(({ x }) => {
    if (recordStatus === undefined) return true;
    const finished = !['Pending', 'Running'].includes(x.status);
    if (recordStatus === 'Finished') return finished;
    if (recordStatus === 'Running') return !finished;
    return x.status === recordStatus;
  });
  const page = paginate(p, filtered, L_1_50, 'DescribeInvocationResults');
  return {
    Invocation: {
      TotalCount: page.total,
      PageNumber: 1,
      PageSize: page.maxResults,
      NextToken: page.nextToken,
      InvocationResults: {
        InvocationResult: page.items.map(({ v, x }) => ({
          InvokeId: v.invokeId,
          CommandId: v.commandId,
          InstanceId: x.instanceId,
          InvocationStatus: x.status,
          InvokeRecordStatus: ['Pending', 'Running'].includes(x.status) ? 'Running' : 'Finished',
          ExitCode: x.exitCode ?? undefined,
          Output: encodeOut(x.output, enc),
          Dropped: x.dropped ?? 0,
          ErrorCode: x.errorCode,
          ErrorInfo: x.errorInfo,
          Repeats: x.status === 'Pending' || x.status === 'Invalid' ? 0 : 1,
          StartTime: x.startTime,
          FinishedTime: x.finishTime,
          StopTime: x.stopTime,
          Username: v.username,
          Tags: { Tag: Object.entries(v.tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })) },
        })),
      },
    },
  };
};

const stopInvocation: ActionHandler = (ctx) => {
  requireRegion(ctx);
  const id = ctx.params.required('InvokeId');
  const inv = ctx.invocations.get(id);
  if (!inv || inv.regionId !== ctx.regionId)
    throw new ApiError(404, 'InvalidInvokeId.NotFound', `The specified invocation "${id}" does not exist.`);
  const ids = ctx.params.list('InstanceId');
  if (ids.length > 50) throw invalidParameter('InstanceId', 'at most 50 instances');
  ctx.invocations.stop(inv, ids);
  return {};
};

const describeSnapshots: ActionHandler = (ctx) => {
  const p = ctx.params;
  const region = ctx.state.region(requireRegion(ctx));
  const instanceId = p.str('InstanceId');
  const diskId = p.str('DiskId');
  const ids = p.jsonStringArray('SnapshotIds', 100);
  const status = p.oneOf('Status', ['progressing', 'accomplished', 'failed', 'all'] as const, 'all');
  const name = p.str('SnapshotName');
  const list = region.snapshots.filter(
    (s) =>
      (instanceId === undefined || s.instanceId === instanceId) &&
      (diskId === undefined || s.sourceDiskId === diskId) &&
      (ids === undefined || ids.includes(s.snapshotId)) &&
      (name === undefined || s.snapshotName === name) &&
      (status === 'all' || s.status === status),
  );
  const page = paginate(p, list, L_SNAPSHOTS, `DS:${region.regionId}`);
  return {
    TotalCount: page.total,
    PageNumber: 1,
    PageSize: page.maxResults,
    NextToken: page.nextToken,
    Snapshots: {
      Snapshot: page.items.map((s) => ({
        SnapshotId: s.snapshotId,
        SnapshotName: s.snapshotName,
        Status: s.status,
        Progress: s.status === 'accomplished' ? '100%' : '0%',
        SourceDiskId: s.sourceDiskId,
        SourceDiskType: 'system',
        SourceDiskSize: '40',
        CreationTime: s.creationTime,
        RetentionDays: s.retentionDays,
        RegionId: s.regionId,
        Usage: 'none',
        Category: 'standard',
        InstantAccess: false,
        Encrypted: false,
        Available: s.status === 'accomplished',
        Description: `Created by OOS execution ${s.executionId} before patch install on ${s.instanceId}`,
        Tags: { Tag: [] },
      })),
    },
  };
};

/** Tags an ECS resource may carry (TagResources fails beyond it). */
export const MAX_TAGS_PER_RESOURCE = 20;

function checkTagText(what: 'Key' | 'Value', text: string): void {
  const code = what === 'Key' ? 'InvalidTagKey.Malformed' : 'InvalidTagValue.Malformed';
  if ((what === 'Key' && text.length === 0) || text.length > 128)
    throw new ApiError(
      400,
      code,
      `The tag ${what.toLowerCase()} must be ${what === 'Key' ? '1' : '0'}-128 characters.`,
    );
  if (/^(aliyun|acs:)/i.test(text) || /https?:\/\//i.test(text))
    throw new ApiError(
      400,
      code,
      `The tag ${what.toLowerCase()} must not start with aliyun or acs: and must not contain http:// or https://.`,
    );
}

/** The instances of a TagResources / UntagResources request (ResourceType instance, ResourceId.N ≤ 50). */
function taggedInstances(ctx: ActionContext): InstanceRecord[] {
  const p = ctx.params;
  const region = ctx.state.region(requireRegion(ctx));
  const type = p.required('ResourceType');
  if (type.toLowerCase() !== 'instance')
    throw invalidParameter('ResourceType', `only "instance" is modelled by the emulator, got "${type}"`);
  const ids = p.list('ResourceId');
  if (ids.length === 0) throw missingParameter('ResourceId');
  if (ids.length > 50) throw invalidParameter('ResourceId', 'at most 50 resources');
  const missing = ids.filter((id) => !region.instances.has(id));
  if (missing.length > 0)
    throw new ApiError(
      404,
      'InvalidResourceId.NotFound',
      `The specified resource does not exist: ${missing.join(', ')}.`,
    );
  return ids.map((id) => region.instances.get(id) as InstanceRecord);
}

/**
 * ECS `TagResources`: adds or overwrites tags (Tag.N, 1–20) on instances (ResourceId.N, 1–50). Fails
 * as a whole (nothing changes) when a key or value is malformed or an instance would exceed
 * {@link MAX_TAGS_PER_RESOURCE} tags.
 */
const tagResources: ActionHandler = (ctx) => {
  const instances = taggedInstances(ctx);
  const tags = ctx.params.objList('Tag');
  if (tags.length === 0) throw missingParameter('Tag.1.Key');
  if (tags.length > 20) throw invalidParameter('Tag', 'at most 20 tags');
  const add: Record<string, string> = {};
  for (const t of tags) {
    checkTagText('Key', t['Key'] ?? '');
    checkTagText('Value', t['Value'] ?? '');
    add[t['Key'] ?? ''] = t['Value'] ?? '';
  }
  for (const i of instances) {
    const count = new Set([...Object.keys(i.tags), ...Object.keys(add)]).size;
    if (count > MAX_TAGS_PER_RESOURCE)
      throw new ApiError(
        400,
        'InvalidTagCount',
        `The instance ${i.instanceId} would have ${count} tags; at most ${MAX_TAGS_PER_RESOURCE} are allowed.`,
      );
  }
  for (const i of instances) i.tags = { ...i.tags, ...add };
  return {};
};

/** ECS `UntagResources`: removes TagKey.N (1–20) from instances, or every tag with `All=true`. */
const untagResources: ActionHandler = (ctx) => {
  const instances = taggedInstances(ctx);
  const keys = ctx.params.list('TagKey');
  const all = ctx.params.bool('All') ?? false;
  if (keys.length === 0 && !all) throw missingParameter('TagKey.1');
  if (keys.length > 20) throw invalidParameter('TagKey', 'at most 20 tag keys');
  for (const i of instances) {
    i.tags = all ? {} : Object.fromEntries(Object.entries(i.tags).filter(([k]) => !keys.includes(k)));
  }
  return {};
};

/** ECS 2014-05-26 actions the emulator serves. */
export const ECS_ACTIONS: Record<string, ActionHandler> = {
  DescribeInstances: describeInstances,
  DescribeCloudAssistantStatus: describeCloudAssistantStatus,
  RunCommand: runCommand,
  DescribeInvocations: describeInvocations,
  DescribeInvocationResults: describeInvocationResults,
  StopInvocation: stopInvocation,
  DescribeSnapshots: describeSnapshots,
  TagResources: tagResources,
  UntagResources: untagResources,
};
