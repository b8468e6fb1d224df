import type { ActionContext, ActionHandler } from './context.js';
import type { ExecutionRecord, ItemResult } from './engine.js';
import { ApiError, invalidParameter, missingParameter } from './errors.js';
import type { PageLimits } from './params.js';
import { paginate } from './params.js';
import { SECRET_PARAMETER_ACTIONS } from './secrets.js';
import { isoNow } from './state.js';
import type { TemplateRecord, TemplateVersionRecord } from './templates.js';
import { templateContent } from './templates.js';
import { childExecutionId, childExecutions, childExecutionView } from './children.js';

/** OOS API version served. */
export const OOS_VERSION = '2019-06-01';

const L_10_100: PageLimits = { min: 10, max: 100, def: 50 };
const L_20_100: PageLimits = { min: 20, max: 100, def: 50 };
const L_1_100: PageLimits = { min: 1, max: 100, def: 50 };

function counters(e: ExecutionRecord): Record<string, number> {
  const c = {
    Total: e.items.length,
    Success: 0,
    Failed: 0,
    Running: 0,
    Cancelled: 0,
    Skipped: 0,
    Waiting: 0,
  };
  for (const i of e.items) {
    if (i.status === 'Success') c.Success++;
    else if (i.status === 'Failed') c.Failed++;
    else if (i.status === 'Running') c.Running++;
    else if (i.status === 'Cancelled') c.Cancelled++;
    else if (i.status === 'Skipped') c.Skipped++;
    else c.Waiting++;
  }
  return c;
}

function resourceStatus(e: ExecutionRecord): string {
  const m: Record<string, number> = {};
  for (const i of e.items)
    if (i.status !== 'Pending' && i.status !== 'Skipped') m[i.status] = (m[i.status] ?? 0) + 1;
  return JSON.stringify(m);
}

function loopTask(ctx: ActionContext, e: ExecutionRecord): { name: string; action: string } {
  return ctx.state.templates.get(e.templateName)?.loopTask ?? { name: 'loop', action: 'ACS::Loop' };
}

function currentTasks(ctx: ActionContext, e: ExecutionRecord): Array<Record<string, string>> {
  if (e.status !== 'Running') return [];
  const t = loopTask(ctx, e);
  return [{ TaskName: t.name, TaskAction: t.action, TaskExecutionId: `${e.executionId}.t0002` }];
}

/** The execution view shared by StartExecution (Parameters as string) and ListExecutions (map). */
function executionView(
  ctx: ActionContext,
  e: ExecutionRecord,
  parametersAsString: boolean,
): Record<string, unknown> {
  return {
    ExecutionId: e.executionId,
    TemplateName: e.templateName,
    TemplateId: e.templateId,
    TemplateVersion: e.templateVersion,
    Mode: e.mode,
    LoopMode: e.loopMode,
    SafetyCheck: e.safetyCheck,
    Status: e.status,
    StatusMessage: e.statusMessage,
    StatusReason: e.statusMessage,
    Parameters: parametersAsString ? JSON.stringify(e.parameters) : e.parameters,
    Outputs: JSON.stringify(e.outputs),
    Counters: counters(e),
    ResourceStatus: resourceStatus(e),
    Targets: JSON.stringify({ ResourceType: 'ALIYUN::ECS::Instance', Filters: [e.targets] }),
    CurrentTasks: currentTasks(ctx, e),
    IsParent: e.items.some((i) => i.taskExecutionId !== ''),
    ParentExecutionId: '',
    ExecutedBy: 'emulator',
    RamRole: String(e.parameters['OOSAssumeRole'] ?? ''),
    Category: 'Other',
    CreateDate: e.createDate,
    StartDate: e.startDate,
    EndDate: e.endDate,
    UpdateDate: e.updateDate,
    Description: e.description,
    ResourceGroupId: e.resourceGroupId,
    Tags: e.tags,
  };
}

function needExecution(ctx: ActionContext): ExecutionRecord {
  const id = ctx.params.required('ExecutionId');
  const e = ctx.executions.get(id);
  if (!e) throw new ApiError(404, 'EntityNotExists.Execution', `The execution "${id}" does not exist.`);
  return e;
}

function needTemplate(ctx: ActionContext): { t: TemplateRecord; v: TemplateVersionRecord } {
  const name = ctx.params.required('TemplateName');
  const t = ctx.state.templates.get(name);
  if (!t) throw new ApiError(404, 'EntityNotExists.Template', `The template "${name}" does not exist.`);
  const want = ctx.params.str('TemplateVersion');
  const v = want ? t.versions.find((x) => x.version === want) : t.versions[t.versions.length - 1];
  if (!v)
    throw new ApiError(404, 'EntityNotExists.Template', `The template "${name}" has no version "${want}".`);
  return { t, v };
}

function templateView(t: TemplateRecord, v: TemplateVersionRecord): Record<string, unknown> {
  return {
    TemplateName: t.name,
    TemplateId: t.templateId,
    TemplateVersion: v.version,
    VersionName: v.versionName,
    TemplateType: t.type,
    TemplateFormat: 'JSON',
    Description: t.description,
    ShareType: t.shareType,
    Category: 'Other',
    CreatedBy: t.createdBy,
    CreatedDate: t.createdDate,
    UpdatedBy: t.createdBy,
    UpdatedDate: v.updatedDate,
    Hash: '',
    HasTrigger: false,
    IsFavorite: false,
    Popularity: t.shareType === 'Public' ? 10 : -1,
    TotalExecutionCount: t.shareType === 'Public' ? -1 : 0,
    Publisher: t.createdBy === 'ACS' ? 'Alibaba Cloud' : '',
    Constraints: '',
    ResourceGroupId: '',
    Tags: {},
  };
}

function taskView(
  e: ExecutionRecord,
  it: ItemResult,
  parentId: string,
  task: { name: string; action: string },
) {
  return {
    TaskExecutionId: it.taskExecutionId,
    ExecutionId: e.executionId,
    TaskName: task.name,
    TaskAction: task.action,
    Status: it.status,
    StatusMessage: it.statusMessage,
    Properties: JSON.stringify({ instanceId: it.instanceId }),
    Outputs: JSON.stringify(it.outputs),
    ExtraData: {},
    LoopItem: it.instanceId,
    Loop: {},
    LoopBatchNumber: 0,
    ChildExecutionId: childExecutionId(e.executionId, it.index),
    ParentTaskExecutionId: parentId,
    TemplateId: e.templateId,
    CreateDate: it.startDate,
    StartDate: it.startDate,
    EndDate: it.endDate,
    UpdateDate: it.endDate || it.startDate,
  };
}

const startExecution: ActionHandler = (ctx) => {
  const p = ctx.params;
  const templateName = p.str('TemplateName');
  if (templateName === undefined) {
    if (p.str('TemplateContent') || p.str('TemplateURL')) {
      throw invalidParameter('TemplateContent', 'inline templates are not supported by the emulator');
    }
    throw missingParameter('TemplateName');
  }
  const parameters = p.jsonObject('Parameters') ?? {};
  const tags = p.jsonObject('Tags') ?? {};
  const clientToken = p.str('ClientToken');
  if (clientToken !== undefined && clientToken.length > 64)
    throw invalidParameter('ClientToken', 'at most 64 characters');
  const e = ctx.executions.start({
    regionId: ctx.regionId,
    templateName,
    templateVersion: p.str('TemplateVersion'),
    parameters,
    mode: p.oneOf('Mode', ['Automatic', 'FailurePause', 'Debug'] as const),
    loopMode: p.oneOf('LoopMode', ['Automatic', 'FirstBatchPause', 'EveryBatchPause'] as const),
    safetyCheck: p.oneOf('SafetyCheck', ['ConfirmEveryHighRiskAction', 'Skip'] as const),
    clientToken,
    tags: Object.fromEntries(Object.entries(tags).map(([k, v]) => [k, String(v)])),
    description: p.str('Description'),
    resourceGroupId: p.str('ResourceGroupId'),
  });
  return { Execution: executionView(ctx, e, true) };
};

const EXEC_STATUSES = [
  'Running',
  'Started',
  'Success',
  'Failed',
  'Waiting',
  'Cancelled',
  'Pending',
  'Skipped',
  'Queued',
] as const;

/** A row ListExecutions filters and sorts: a parent execution or a child of its loop. */
interface ExecutionRow {
  executionId: string;
  templateName: string;
  status: string;
  startDate: string;
  endDate: string;
  tags: Record<string, string>;
  resourceIds: string[];
  parentId: string;
  view: () => Record<string, unknown>;
}

/** ISO 8601 UTC time filter value → ms; throws `InvalidParameter` when unparsable. */
function timeFilter(ctx: ActionContext, name: string): number | undefined {
  const v = ctx.params.str(name);
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw invalidParameter(name, 'expected an ISO 8601 time like 2019-05-16T10:26:14Z');
  return t;
}

/**
 * ListExecutions (docs/emulator.md "Change feed facts"): `TemplateName` is a contains match on the
 * executed template's name; `StartDateAfter`/`EndDateAfter` are `>=`, `StartDateBefore`/
 * `EndDateBefore` `<=` (an execution without an end date never matches an end-date filter); child
 * executions (one per started loop item, children.ts) are listed only with
 * `IncludeChildExecution=true`, with `ParentExecutionId` (its children only) or by `ExecutionId`.
 */
const listExecutions: ActionHandler = (ctx) => {
  const p = ctx.params;
  const id = p.str('ExecutionId');
  const name = p.str('TemplateName');
  const status = p.oneOf('Status', EXEC_STATUSES);
  const tags = p.jsonObject('Tags');
  const resourceId = p.str('ResourceId');
  const parent = p.str('ParentExecutionId');
  const includeChildren = p.bool('IncludeChildExecution') ?? false;
  const sortField = p.oneOf('SortField', ['StartDate', 'EndDate', 'Status'] as const, 'StartDate') as string;
  const order = p.oneOf('SortOrder', ['Descending', 'Ascending'] as const, 'Descending');
  const startAfter = timeFilter(ctx, 'StartDateAfter');
  const startBefore = timeFilter(ctx, 'StartDateBefore');
  const endAfter = timeFilter(ctx, 'EndDateAfter');
  const endBefore = timeFilter(ctx, 'EndDateBefore');
  const rows: ExecutionRow[] = [];
  for (const e of ctx.executions.executions) {
    if (e.regionId !== ctx.regionId) continue;
    rows.push({
      executionId: e.executionId,
      templateName: e.templateName,
      status: e.status,
      startDate: e.startDate,
      endDate: e.endDate,
      tags: e.tags,
      resourceIds: e.items.map((i) => i.instanceId),
      parentId: '',
      view: () => executionView(ctx, e, false),
    });
    for (const c of childExecutions(ctx.state, e)) {
      rows.push({
        executionId: c.executionId,
        templateName: c.templateName,
        status: c.item.status,
        startDate: c.item.startDate,
        endDate: c.item.endDate,
        tags: {},
        resourceIds: [c.item.instanceId],
        parentId: e.executionId,
        view: () => childExecutionView(c),
      });
    }
  }
  const at = (d: string) => (d === '' ? undefined : Date.parse(d));
  let list = rows.filter((r) => {
    const started = at(r.startDate);
    const ended = at(r.endDate);
    return (
      (parent !== undefined
        ? r.parentId === parent
        : r.parentId === '' || includeChildren || (id !== undefined && r.executionId === id)) &&
      (id === undefined || r.executionId === id) &&
      (name === undefined || r.templateName.includes(name)) &&
      (status === undefined || r.status === status) &&
      (resourceId === undefined || r.resourceIds.includes(resourceId)) &&
      (startAfter === undefined || (started !== undefined && started >= startAfter)) &&
      (startBefore === undefined || (started !== undefined && started <= startBefore)) &&
      (endAfter === undefined || (ended !== undefined && ended >= endAfter)) &&
      (endBefore === undefined || (ended !== undefined && ended <= endBefore)) &&
      (tags === undefined || Object.entries(tags).every(([k, v]) => r.tags[k] === String(v)))
    );
  });
  const key = (r: ExecutionRow) =>
    sortField === 'EndDate' ? r.endDate : sortField === 'Status' ? r.status : r.startDate;
  // Stable sort on creation order as the tie breaker (newest first when descending).
  list = list
    .map((r, i) => ({ r, i }))
    .sort((a, b) => {
      const c = key(a.r) < key(b.r) ? -1 : key(a.r) > key(b.r) ? 1 : a.i - b.i;
      return order === 'Ascending' ? c : -c;
    })
    .map((x) => x.r);
  const page = paginate(p, list, L_10_100, 'ListExecutions');
  return {
    TotalCount: page.total,
    MaxResults: page.maxResults,
    NextToken: page.nextToken,
    Executions: page.items.map((r) => r.view()),
  };
};

const cancelExecution: ActionHandler = (ctx) => {
  ctx.executions.cancel(needExecution(ctx));
  return {};
};

const listResourceExecutionStatus: ActionHandler = (ctx) => {
  const e = needExecution(ctx);
  const rows = e.items
    .filter((i) => i.status !== 'Pending' && i.status !== 'Skipped')
    .map((i) => ({
      ResourceId: i.instanceId,
      Status: i.status,
      Outputs: JSON.stringify(i.outputs),
      ExecutionId: e.executionId,
      ExecutionTime: i.startDate,
    }));
  const page = paginate(ctx.params, rows, L_10_100, `LRES:${e.executionId}`);
  return { MaxResults: page.maxResults, NextToken: page.nextToken, ResourceExecutionStatus: page.items };
};

const listTaskExecutions: ActionHandler = (ctx) => {
  const p = ctx.params;
  const e = needExecution(ctx);
  const task = loopTask(ctx, e);
  const loopId = `${e.executionId}.t0002`;
  const started = e.items.filter((i) => i.taskExecutionId !== '');
  const top: Array<Record<string, unknown>> = [
    {
      TaskExecutionId: `${e.executionId}.t0001`,
      ExecutionId: e.executionId,
      TaskName: 'getInstance',
      TaskAction: 'ACS::SelectTargets',
      Status: 'Success',
      StatusMessage: '',
      Properties: JSON.stringify({ Filters: [e.targets] }),
      Outputs: JSON.stringify({ Instances: e.items.map((i) => i.instanceId) }),
      ExtraData: {},
      LoopItem: '',
      Loop: {},
      LoopBatchNumber: 0,
      ChildExecutionId: '',
      ParentTaskExecutionId: '',
      TemplateId: e.templateId,
      CreateDate: e.createDate,
      StartDate: e.startDate,
      EndDate: e.startDate,
      UpdateDate: e.startDate,
    },
  ];
  if (e.status !== 'Started') {
    const c = counters(e);
    const loopStatus = e.status === 'Running' ? 'Running' : e.status;
    top.push({
      TaskExecutionId: loopId,
      ExecutionId: e.executionId,
      TaskName: task.name,
      TaskAction: task.action,
      Status: loopStatus,
      StatusMessage: e.status === 'Running' ? '' : e.statusMessage,
      Properties: '{}',
      Outputs: JSON.stringify(e.outputs),
      ExtraData: {},
      LoopItem: '',
      Loop: {
        Items: e.items.length,
        Success: c.Success,
        Failed: c.Failed,
        Running: c.Running,
        Cancelled: c.Cancelled,
      },
      LoopBatchNumber: 0,
      ChildExecutionId: '',
      ParentTaskExecutionId: '',
      TemplateId: e.templateId,
      CreateDate: e.startDate,
      StartDate: e.startDate,
      EndDate: e.endDate,
      UpdateDate: e.updateDate,
    });
  }
  const children = started.map((i) => taskView(e, i, loopId, task));
  const parentFilter = p.str('ParentTaskExecutionId');
  const includeChildren = p.bool('IncludeChildTaskExecution') ?? false;
  let rows: Array<Record<string, unknown>>;
  if (parentFilter !== undefined) rows = children.filter((c) => c.ParentTaskExecutionId === parentFilter);
  else rows = includeChildren ? [...top, ...children] : top;
  const taskId = p.str('TaskExecutionId');
  const taskName = p.str('TaskName');
  const status = p.str('Status');
  const taskAction = p.str('TaskAction');
  rows = rows.filter(
    (r) =>
      (taskId === undefined || r['TaskExecutionId'] === taskId) &&
      (taskName === undefined || r['TaskName'] === taskName) &&
      (taskAction === undefined || r['TaskAction'] === taskAction) &&
      (status === undefined || r['Status'] === status),
  );
  const page = paginate(p, rows, L_20_100, `LTE:${e.executionId}`);
  return { MaxResults: page.maxResults, NextToken: page.nextToken, TaskExecutions: page.items };
};

const listExecutionLogs: ActionHandler = (ctx) => {
  const e = needExecution(ctx);
  const task = ctx.params.str('TaskExecutionId');
  const logType = ctx.params.str('LogType');
  const rows = e.logs
    .filter(
      (l) =>
        (task === undefined || l.taskExecutionId === task) &&
        (logType === undefined || l.logType === logType),
    )
    .map((l) => ({
      Timestamp: l.timestamp,
      Message: l.message,
      LogType: l.logType,
      TaskExecutionId: l.taskExecutionId,
    }));
  const page = paginate(ctx.params, rows, L_10_100, `LEL:${e.executionId}`);
  return {
    IsTruncated: page.nextToken !== '',
    MaxResults: page.maxResults,
    NextToken: page.nextToken,
    ExecutionLogs: page.items,
  };
};

const listTemplates: ActionHandler = (ctx) => {
  const p = ctx.params;
  const type = p.oneOf('TemplateType', ['Automation', 'State', 'Package'] as const);
  const share = p.oneOf('ShareType', ['Public', 'Private'] as const);
  const name = p.str('TemplateName');
  const createdBy = p.str('CreatedBy');
  const list = [...ctx.state.templates.values()]
    .filter(
      (t) =>
        (type === undefined || t.type === type) &&
        (share === undefined || t.shareType === share) &&
        (name === undefined || t.name.includes(name)) &&
        (createdBy === undefined || t.createdBy === createdBy),
    )
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const page = paginate(p, list, L_10_100, 'ListTemplates');
  return {
    MaxResults: page.maxResults,
    NextToken: page.nextToken,
    Templates: page.items.map((t) =>
      templateView(t, t.versions[t.versions.length - 1] as TemplateVersionRecord),
    ),
  };
};

const getTemplate: ActionHandler = (ctx) => {
  const { t, v } = needTemplate(ctx);
  return { Content: templateContent(t, v), Template: { ...templateView(t, v), SharedAccounts: '' } };
};

const listTemplateVersions: ActionHandler = (ctx) => {
  const name = ctx.params.required('TemplateName');
  const t = ctx.state.templates.get(name);
  if (!t) throw new ApiError(404, 'EntityNotExists.Template', `The template "${name}" does not exist.`);
  const rows = [...t.versions].reverse().map((v) => ({
    TemplateVersion: v.version,
    VersionName: v.versionName,
    Description: t.description,
    TemplateFormat: 'JSON',
    UpdatedBy: t.createdBy,
    UpdatedDate: v.updatedDate,
  }));
  const page = paginate(ctx.params, rows, L_10_100, `LTV:${name}`);
  return { MaxResults: page.maxResults, NextToken: page.nextToken, TemplateVersions: page.items };
};

const listInstancePackageStates: ActionHandler = (ctx) => {
  const id = ctx.params.required('InstanceId');
  const names = ctx.params.jsonStringArray('TemplateNames');
  const region = ctx.state.region(ctx.regionId);
  if (region.isReleased(id)) {
    throw new ApiError(
      404,
      'EntityNotExists.Instance',
      `The instance "${id}" does not exist in ${ctx.regionId}.`,
    );
  }
  const rows = [...region.packageStates.values()]
    .filter((s) => s.instanceId === id && (names === undefined || names.includes(s.templateName)))
    .map((s) => {
      const t = ctx.state.templates.get(s.templateName);
      const v = t?.versions.find((x) => x.version === s.templateVersion);
      return {
        TemplateName: s.templateName,
        TemplateId: t?.templateId ?? '',
        TemplateVersion: s.templateVersion,
        TemplateVersionName: v?.versionName ?? '',
        TemplateCategory: 'Package',
        Publisher: t?.createdBy === 'ACS' ? 'Alibaba Cloud' : '',
        Description: t?.description ?? '',
        Parameters: JSON.stringify(s.parameters),
        ConfigurationInfo: s.configurationInfo,
        UpdateTime: s.updateTime,
      };
    });
  const page = paginate(ctx.params, rows, L_10_100, `LIPS:${id}`);
  return { MaxResults: String(page.maxResults), NextToken: page.nextToken, PackageStates: page.items };
};

const updateInstancePackageState: ActionHandler = (ctx) => {
  const p = ctx.params;
  const instanceId = p.required('InstanceId');
  const name = p.required('TemplateName');
  const action = p.required('ConfigureAction');
  if (action !== 'install' && action !== 'uninstall')
    throw invalidParameter('ConfigureAction', 'expected install or uninstall');
  const t = ctx.state.templates.get(name);
  if (!t) throw new ApiError(404, 'EntityNotExists.Template', `The template "${name}" does not exist.`);
  const region = ctx.state.region(ctx.regionId);
  if (!region.instances.has(instanceId)) {
    throw new ApiError(
      404,
      'EntityNotExists.Instance',
      `The instance "${instanceId}" does not exist in ${ctx.regionId}.`,
    );
  }
  const key = `${instanceId}/${name}`;
  if (action === 'uninstall') {
    region.packageStates.delete(key);
    return {};
  }
  const want = p.str('TemplateVersion');
  const v = want ? t.versions.find((x) => x.version === want) : t.versions[t.versions.length - 1];
  if (!v)
    throw new ApiError(404, 'EntityNotExists.Template', `The template "${name}" has no version "${want}".`);
  region.packageStates.set(key, {
    instanceId,
    templateName: name,
    templateVersion: v.version,
    parameters: p.jsonObject('Parameters') ?? {},
    configurationInfo: p.str('ConfigurationInfo') ?? '',
    updateTime: isoNow(),
  });
  return {};
};

/** The counts a patch operation recorded (strings, as OOS returns them). */
function patchCounts(counts: Record<string, number>) {
  const n = (status: string) => String(counts[status] ?? 0);
  return {
    InstalledCount: n('Installed'),
    InstalledOtherCount: '0',
    InstalledPendingRebootCount: n('InstalledPendingReboot'),
    InstalledRejectedCount: '0',
    MissingCount: n('Missing'),
    FailedCount: n('Failed'),
  };
}

const listInstancePatchStates: ActionHandler = (ctx) => {
  const ids = ctx.params.jsonStringArray('InstanceIds', 100);
  const region = ctx.state.region(ctx.regionId);
  const rows = [...region.patchStates.values()]
    .filter((s) => ids === undefined || ids.includes(s.instanceId))
    .map((s) => ({
      InstanceId: s.instanceId,
      BaselineId: s.baselineId,
      PatchGroup: '',
      OwnerInformation: '',
      OperationType: s.operationType,
      OperationStartTime: s.operationStartTime,
      OperationEndTime: s.operationEndTime,
      ...patchCounts(s.counts),
    }));
  const page = paginate(ctx.params, rows, L_1_100, 'ListInstancePatchStates');
  return { MaxResults: page.maxResults, NextToken: page.nextToken, InstancePatchStates: page.items };
};

const listInstancePatches: ActionHandler = (ctx) => {
  const id = ctx.params.required('InstanceId');
  const statuses = ctx.params.jsonStringArray('PatchStatuses');
  const region = ctx.state.region(ctx.regionId);
  const inst = region.instances.get(id);
  if (!inst) {
    throw new ApiError(
      404,
      'EntityNotExists.Instance',
      `The instance "${id}" does not exist in ${ctx.regionId}.`,
    );
  }
  // Patch details exist only after a scan or install reported them.
  const rows = (region.patchStates.has(id) ? (inst?.patches ?? []) : [])
    .filter((x) => statuses === undefined || statuses.includes(x.status))
    .map((x) => ({
      Title: x.title,
      KBId: x.kbId,
      Classification: x.classification,
      Severity: x.severity,
      Status: x.status,
      InstalledTime: x.installedTime,
    }));
  const page = paginate(ctx.params, rows, L_1_100, `LIP:${id}`);
  return { MaxResults: page.maxResults, NextToken: page.nextToken, Patches: page.items };
};

const listPatchBaselines: ActionHandler = (ctx) => {
  const p = ctx.params;
  const name = p.str('Name');
  const os = p.str('OperationSystem');
  const share = p.oneOf('ShareType', ['Public', 'Private'] as const);
  const rows = ctx.state.baselines
    .filter(
      (b) =>
        (name === undefined || b.name.includes(name)) &&
        (os === undefined || b.operationSystem === os) &&
        (share === undefined || share === 'Public'),
    )
    .map((b) => ({
      Id: b.id,
      Name: b.name,
      OperationSystem: b.operationSystem,
      IsDefault: true,
      ShareType: 'Public',
      Description: `Default patch baseline for ${b.operationSystem}`,
      ApprovedPatches: [],
      ApprovedPatchesEnableNonSecurity: false,
      Sources: [],
      ResourceGroupId: '',
      Tags: [],
      CreatedBy: 'ACS',
      CreatedDate: '2024-01-01T00:00:00Z',
      UpdatedBy: 'ACS',
      UpdatedDate: '2024-01-01T00:00:00Z',
    }));
  const page = paginate(p, rows, L_1_100, 'ListPatchBaselines');
  return { MaxResults: page.maxResults, NextToken: page.nextToken, PatchBaselines: page.items };
};

/** OOS 2019-06-01 actions the emulator serves. */
export const OOS_ACTIONS: Record<string, ActionHandler> = {
  StartExecution: startExecution,
  ListExecutions: listExecutions,
  CancelExecution: cancelExecution,
  ListResourceExecutionStatus: listResourceExecutionStatus,
  ListTaskExecutions: listTaskExecutions,
  ListExecutionLogs: listExecutionLogs,
  ListTemplates: listTemplates,
  GetTemplate: getTemplate,
  ListTemplateVersions: listTemplateVersions,
  ListInstancePackageStates: listInstancePackageStates,
  UpdateInstancePackageState: updateInstancePackageState,
  ListInstancePatchStates: listInstancePatchStates,
  ListInstancePatches: listInstancePatches,
  ListPatchBaselines: listPatchBaselines,
  ...SECRET_PARAMETER_ACTIONS,
};
