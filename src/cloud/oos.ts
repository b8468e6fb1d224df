/**
 * OOS (Operation Orchestration Service, API version 2019-06-01) operations of one region, on
 * top of {@link ApiCaller}. Parameter encodings follow the generated `@alicloud/oos20190601`
 * client (reference §2): `Parameters`, `Tags`, `TemplateNames`, `InstanceIds`, `PatchStatuses`
 * are JSON strings; all parameters travel in the query; `RegionId` is always sent.
 */
import type { ActionSafety, RegionCaller } from './caller.js';
import { CloudError } from './errors.js';
import {
  allPages,
  arr,
  bool,
  chunks,
  count,
  countMap,
  defined,
  jsonObject,
  jsonValue,
  num,
  obj,
  str,
  strings,
  tagList,
  tagMap,
  type Raw,
} from './convert.js';
import { extractParameters, parseTemplateContent } from './template.js';
import type {
  Execution,
  ExecutionLog,
  InstancePatch,
  InstancePatchState,
  ListAllExecutionsRequest,
  ListExecutionsRequest,
  ListPatchBaselinesRequest,
  ListTaskExecutionsRequest,
  ListTemplatesRequest,
  OosApi,
  PackageState,
  Page,
  PatchBaseline,
  ResourceExecutionStatus,
  SecretParameterInfo,
  SecretParameterRequest,
  StartExecutionRequest,
  TaskExecution,
  TemplateDetail,
  TemplateSummary,
  TemplateVersionInfo,
} from './types.js';

/** OOS API version. */
export const OOS_API_VERSION = '2019-06-01';

/** Every OOS action this layer calls, with its retry safety (see `caller.ts`). */
export const OOS_ACTIONS: Readonly<Record<string, ActionSafety>> = {
  StartExecution: 'idempotentWrite',
  ListExecutions: 'read',
  CancelExecution: 'naturallyIdempotentWrite',
  ListResourceExecutionStatus: 'read',
  ListTaskExecutions: 'read',
  ListExecutionLogs: 'read',
  ListTemplates: 'read',
  GetTemplate: 'read',
  ListTemplateVersions: 'read',
  ListInstancePackageStates: 'read',
  ListInstancePatchStates: 'read',
  ListInstancePatches: 'read',
  ListPatchBaselines: 'read',
  CreateSecretParameter: 'idempotentWrite',
  // The same value written again is the same state.
  UpdateSecretParameter: 'naturallyIdempotentWrite',
  GetSecretParameter: 'read',
  DeleteSecretParameter: 'naturallyIdempotentWrite',
};

/** Page size for list calls whose documented range includes 100. */
const MAX_RESULTS = 100;
/** `ListInstancePatchStates` takes at most 100 instance IDs per call. */
const PATCH_STATE_BATCH = 100;

function toExecution(r: Raw): Execution {
  return defined<Execution>({
    executionId: str(r['ExecutionId']) ?? '',
    templateName: str(r['TemplateName']) ?? '',
    templateId: str(r['TemplateId']),
    templateVersion: str(r['TemplateVersion']),
    mode: str(r['Mode']),
    loopMode: str(r['LoopMode']),
    safetyCheck: str(r['SafetyCheck']),
    status: str(r['Status']) ?? '',
    statusMessage: str(r['StatusMessage']),
    statusReason: str(r['StatusReason']),
    parameters: jsonObject(r['Parameters']),
    outputs: jsonObject(r['Outputs']),
    counters: countMap(r['Counters']),
    resourceStatus: countMap(r['ResourceStatus']),
    targets: jsonValue(r['Targets']),
    currentTasks: arr(r['CurrentTasks']).map((t) =>
      defined({
        taskName: str(t['TaskName']) ?? '',
        taskAction: str(t['TaskAction']),
        taskExecutionId: str(t['TaskExecutionId']),
      }),
    ),
    isParent: bool(r['IsParent']) ?? false,
    parentExecutionId: str(r['ParentExecutionId']),
    executedBy: str(r['ExecutedBy']),
    ramRole: str(r['RamRole']),
    description: str(r['Description']),
    tags: tagMap(r['Tags']),
    createDate: str(r['CreateDate']),
    startDate: str(r['StartDate']),
    endDate: str(r['EndDate']),
    updateDate: str(r['UpdateDate']),
  });
}

function toTaskExecution(r: Raw): TaskExecution {
  const loop = r['Loop'];
  const extra = r['ExtraData'];
  return defined<TaskExecution>({
    taskExecutionId: str(r['TaskExecutionId']) ?? '',
    executionId: str(r['ExecutionId']) ?? '',
    taskName: str(r['TaskName']) ?? '',
    taskAction: str(r['TaskAction']),
    status: str(r['Status']) ?? '',
    statusMessage: str(r['StatusMessage']),
    properties: jsonObject(r['Properties']),
    outputs: jsonObject(r['Outputs']),
    extraData: extra === undefined || extra === null || extra === '' ? undefined : jsonObject(extra),
    loopItem: str(r['LoopItem']),
    loop: loop === undefined || loop === null || loop === '' ? undefined : jsonObject(loop),
    loopBatchNumber: num(r['LoopBatchNumber']),
    childExecutionId: str(r['ChildExecutionId']),
    parentTaskExecutionId: str(r['ParentTaskExecutionId']),
    createDate: str(r['CreateDate']),
    startDate: str(r['StartDate']),
    endDate: str(r['EndDate']),
    updateDate: str(r['UpdateDate']),
  });
}

function toSecretParameter(r: Raw, name: string): SecretParameterInfo {
  return defined<SecretParameterInfo>({
    name: str(r['Name']) ?? name,
    parameterVersion: num(r['ParameterVersion']),
    updatedDate: str(r['UpdatedDate']),
  });
}

function toTemplateSummary(r: Raw): TemplateSummary {
  return defined<TemplateSummary>({
    templateName: str(r['TemplateName']) ?? '',
    templateId: str(r['TemplateId']),
    templateVersion: str(r['TemplateVersion']),
    versionName: str(r['VersionName']),
    templateType: str(r['TemplateType']),
    templateFormat: str(r['TemplateFormat']),
    description: str(r['Description']),
    shareType: str(r['ShareType']),
    category: str(r['Category']),
    createdBy: str(r['CreatedBy']),
    createdDate: str(r['CreatedDate']),
    updatedBy: str(r['UpdatedBy']),
    updatedDate: str(r['UpdatedDate']),
    hash: str(r['Hash']),
    tags: tagMap(r['Tags']),
  });
}

function toPackageState(r: Raw): PackageState {
  return defined<PackageState>({
    templateName: str(r['TemplateName']) ?? '',
    templateId: str(r['TemplateId']),
    templateVersion: str(r['TemplateVersion']),
    templateVersionName: str(r['TemplateVersionName']),
    templateCategory: str(r['TemplateCategory']),
    publisher: str(r['Publisher']),
    description: str(r['Description']),
    parameters: jsonObject(r['Parameters']),
    configurationInfo: str(r['ConfigurationInfo']),
    updateTime: str(r['UpdateTime']),
  });
}

function toPatchState(r: Raw): InstancePatchState {
  return defined<InstancePatchState>({
    instanceId: str(r['InstanceId']) ?? '',
    baselineId: str(r['BaselineId']),
    patchGroup: str(r['PatchGroup']),
    ownerInformation: str(r['OwnerInformation']),
    operationType: str(r['OperationType']),
    operationStartTime: str(r['OperationStartTime']),
    operationEndTime: str(r['OperationEndTime']),
    installedCount: count(r['InstalledCount']),
    installedOtherCount: count(r['InstalledOtherCount']),
    installedPendingRebootCount: count(r['InstalledPendingRebootCount']),
    installedRejectedCount: count(r['InstalledRejectedCount']),
    missingCount: count(r['MissingCount']),
    failedCount: count(r['FailedCount']),
  });
}

function toPatchBaseline(r: Raw): PatchBaseline {
  return defined<PatchBaseline>({
    id: str(r['Id']) ?? '',
    name: str(r['Name']) ?? '',
    operationSystem: str(r['OperationSystem']) ?? '',
    isDefault: bool(r['IsDefault']) ?? false,
    shareType: str(r['ShareType']),
    description: str(r['Description']),
    approvedPatches: strings(jsonValue(r['ApprovedPatches'])),
    approvedPatchesEnableNonSecurity: bool(r['ApprovedPatchesEnableNonSecurity']),
    sources: strings(jsonValue(r['Sources'])),
    tags: tagList(r['Tags']),
    createdBy: str(r['CreatedBy']),
    createdDate: str(r['CreatedDate']),
    updatedBy: str(r['UpdatedBy']),
    updatedDate: str(r['UpdatedDate']),
  });
}

/** Non-empty map → JSON string, else undefined (omitted from the query). */
function jsonMap(m: Record<string, unknown> | undefined): string | undefined {
  return m && Object.keys(m).length > 0 ? JSON.stringify(m) : undefined;
}

/** OOS client of one region. Construct through `createCloudClients`. */
export class OosClient implements OosApi {
  constructor(private readonly caller: RegionCaller) {}

  get regionId(): string {
    return this.caller.regionId;
  }

  /**
   * OOS `StartExecution`. `Parameters` and `Tags` are sent as JSON strings; `SafetyCheck`
   * defaults to `Skip` (unattended runs) and `Mode` to `Automatic`. The same `clientToken`
   * returns the existing execution (OOS idempotency), which is why this write is retried.
   * Rejects with `CloudError` (e.g. `EntityNotExists.Template`, `InvalidParameter`).
   */
  async startExecution(req: StartExecutionRequest): Promise<Execution> {
    const body = await this.caller.call('StartExecution', {
      TemplateName: req.templateName,
      TemplateVersion: req.templateVersion,
      Parameters: JSON.stringify(req.parameters ?? {}),
      ClientToken: req.clientToken,
      Tags: jsonMap(req.tags),
      Mode: req.mode ?? 'Automatic',
      SafetyCheck: req.safetyCheck ?? 'Skip',
      Description: req.description,
    });
    return toExecution(obj(body['Execution']));
  }

  /** OOS `ListExecutions`, one page (`Executions` is a flat array; `MaxResults` 10–100). */
  async listExecutions(req: ListExecutionsRequest): Promise<Page<Execution>> {
    const body = await this.caller.call('ListExecutions', {
      ExecutionId: req.executionId,
      TemplateName: req.templateName,
      Status: req.status,
      ParentExecutionId: req.parentExecutionId,
      ResourceId: req.resourceId,
      Tags: jsonMap(req.tags),
      EndDateAfter: req.endDateAfter,
      StartDateAfter: req.startDateAfter,
      IncludeChildExecution: req.includeChildExecution,
      NextToken: req.nextToken,
      MaxResults: req.maxResults,
    });
    return defined({ items: arr(body['Executions']).map(toExecution), nextToken: str(body['NextToken']) });
  }

  /** OOS `ListExecutions`, following `NextToken` with pages of 100. */
  async listAllExecutions(req: ListAllExecutionsRequest): Promise<Execution[]> {
    return allPages({ product: 'oos', action: 'ListExecutions' }, (nextToken) =>
      this.listExecutions({ ...req, maxResults: MAX_RESULTS, ...(nextToken ? { nextToken } : {}) }),
    );
  }

  /** OOS `ListExecutions` by `ExecutionId` (OOS has no GetExecution); `undefined` if unknown. */
  async getExecution(executionId: string): Promise<Execution | undefined> {
    const page = await this.listExecutions({ executionId });
    return page.items.find((e) => e.executionId === executionId);
  }

  /** OOS `CancelExecution`. Not retried after an ambiguous failure (no ClientToken). */
  async cancelExecution(executionId: string): Promise<void> {
    await this.caller.call('CancelExecution', { ExecutionId: executionId });
  }

  /** OOS `ListResourceExecutionStatus`, all pages: the per-instance result of an execution. */
  async listResourceExecutionStatus(executionId: string): Promise<ResourceExecutionStatus[]> {
    return allPages({ product: 'oos', action: 'ListResourceExecutionStatus' }, async (nextToken) => {
      const body = await this.caller.call('ListResourceExecutionStatus', {
        ExecutionId: executionId,
        MaxResults: MAX_RESULTS,
        NextToken: nextToken,
      });
      const items = arr(body['ResourceExecutionStatus']).map((r) =>
        defined<ResourceExecutionStatus>({
          resourceId: str(r['ResourceId']) ?? '',
          status: str(r['Status']) ?? '',
          outputs: jsonObject(r['Outputs']),
          executionId: str(r['ExecutionId']),
          executionTime: str(r['ExecutionTime']),
        }),
      );
      return defined({ items, nextToken: str(body['NextToken']) });
    });
  }

  /** OOS `ListTaskExecutions`, all pages (loop children carry `loopItem`). */
  async listTaskExecutions(req: ListTaskExecutionsRequest): Promise<TaskExecution[]> {
    return allPages({ product: 'oos', action: 'ListTaskExecutions' }, async (nextToken) => {
      const body = await this.caller.call('ListTaskExecutions', {
        ExecutionId: req.executionId,
        TaskName: req.taskName,
        IncludeChildTaskExecution: req.includeChildTaskExecution,
        ParentTaskExecutionId: req.parentTaskExecutionId,
        Status: req.status,
        MaxResults: MAX_RESULTS,
        NextToken: nextToken,
      });
      return defined({
        items: arr(body['TaskExecutions']).map(toTaskExecution),
        nextToken: str(body['NextToken']),
      });
    });
  }

  /** OOS `ListExecutionLogs`, all pages. */
  async listExecutionLogs(executionId: string, taskExecutionId?: string): Promise<ExecutionLog[]> {
    return allPages({ product: 'oos', action: 'ListExecutionLogs' }, async (nextToken) => {
      const body = await this.caller.call('ListExecutionLogs', {
        ExecutionId: executionId,
        TaskExecutionId: taskExecutionId,
        MaxResults: MAX_RESULTS,
        NextToken: nextToken,
      });
      const items = arr(body['ExecutionLogs']).map((r) =>
        defined<ExecutionLog>({
          timestamp: str(r['Timestamp']) ?? '',
          message: str(r['Message']) ?? '',
          logType: str(r['LogType']),
          taskExecutionId: str(r['TaskExecutionId']),
        }),
      );
      return defined({ items, nextToken: str(body['NextToken']) });
    });
  }

  /** OOS `ListTemplates`, all pages (`TemplateName` is a substring filter on the OOS side). */
  async listTemplates(req: ListTemplatesRequest = {}): Promise<TemplateSummary[]> {
    return allPages({ product: 'oos', action: 'ListTemplates' }, async (nextToken) => {
      const body = await this.caller.call('ListTemplates', {
        TemplateType: req.templateType,
        TemplateName: req.templateName,
        ShareType: req.shareType,
        MaxResults: MAX_RESULTS,
        NextToken: nextToken,
      });
      return defined({
        items: arr(body['Templates']).map(toTemplateSummary),
        nextToken: str(body['NextToken']),
      });
    });
  }

  /**
   * OOS `GetTemplate`. Reads the top-level `Content` (a sibling of `Template`), parses it as
   * JSON or YAML per `TemplateFormat`, and extracts the declared `Parameters`. Rejects with
   * `CloudError` `EntityNotExists.Template` (notFound) when the template does not exist, and
   * with permanent `CloudError` `InvalidTemplateContent` when `Content` cannot be parsed.
   */
  async getTemplate(name: string, version?: string): Promise<TemplateDetail> {
    const body = await this.caller.call('GetTemplate', { TemplateName: name, TemplateVersion: version });
    const summary = toTemplateSummary(obj(body['Template']));
    const content = typeof body['Content'] === 'string' ? body['Content'] : '';
    let document: Raw = {};
    if (content !== '') {
      try {
        document = parseTemplateContent(content, summary.templateFormat);
      } catch (err) {
        throw new CloudError({
          code: 'InvalidTemplateContent',
          message: `template ${name} content is neither JSON nor YAML: ${err instanceof Error ? err.message : String(err)}`,
          action: 'GetTemplate',
          product: 'oos',
          kind: 'permanent',
          category: 'other',
        });
      }
    }
    return {
      ...summary,
      templateName: summary.templateName || name,
      content,
      document,
      parameters: extractParameters(document),
    };
  }

  /** OOS `ListTemplateVersions`, all pages. */
  async listTemplateVersions(name: string): Promise<TemplateVersionInfo[]> {
    return allPages({ product: 'oos', action: 'ListTemplateVersions' }, async (nextToken) => {
      const body = await this.caller.call('ListTemplateVersions', {
        TemplateName: name,
        MaxResults: MAX_RESULTS,
        NextToken: nextToken,
      });
      const items = arr(body['TemplateVersions']).map((r) =>
        defined<TemplateVersionInfo>({
          templateVersion: str(r['TemplateVersion']) ?? '',
          versionName: str(r['VersionName']),
          description: str(r['Description']),
          templateFormat: str(r['TemplateFormat']),
          updatedBy: str(r['UpdatedBy']),
          updatedDate: str(r['UpdatedDate']),
        }),
      );
      return defined({ items, nextToken: str(body['NextToken']) });
    });
  }

  /**
   * OOS `ListInstancePackageStates` for one instance, all pages; reads `PackageStates[]`.
   * `TemplateNames` is sent as a JSON array string. An entry means "recorded as installed".
   */
  async listInstancePackageStates(instanceId: string, templateNames?: string[]): Promise<PackageState[]> {
    return allPages({ product: 'oos', action: 'ListInstancePackageStates' }, async (nextToken) => {
      const body = await this.caller.call('ListInstancePackageStates', {
        InstanceId: instanceId,
        TemplateNames: templateNames && templateNames.length > 0 ? JSON.stringify(templateNames) : undefined,
        NextToken: nextToken,
      });
      return defined({
        items: arr(body['PackageStates']).map(toPackageState),
        nextToken: str(body['NextToken']),
      });
    });
  }

  /**
   * OOS `ListInstancePatchStates`: `InstanceIds` as a JSON array string in chunks of 100, all
   * pages of each chunk. String counts become numbers.
   */
  async listInstancePatchStates(instanceIds: string[]): Promise<InstancePatchState[]> {
    const out: InstancePatchState[] = [];
    for (const batch of chunks(instanceIds, PATCH_STATE_BATCH)) {
      const states = await allPages(
        { product: 'oos', action: 'ListInstancePatchStates' },
        async (nextToken) => {
          const body = await this.caller.call('ListInstancePatchStates', {
            InstanceIds: JSON.stringify(batch),
            NextToken: nextToken,
          });
          return defined({
            items: arr(body['InstancePatchStates']).map(toPatchState),
            nextToken: str(body['NextToken']),
          });
        },
      );
      out.push(...states);
    }
    return out;
  }

  /** OOS `ListInstancePatches` for one instance, all pages; `PatchStatuses` as a JSON array string. */
  async listInstancePatches(instanceId: string, statuses?: string[]): Promise<InstancePatch[]> {
    return allPages({ product: 'oos', action: 'ListInstancePatches' }, async (nextToken) => {
      const body = await this.caller.call('ListInstancePatches', {
        InstanceId: instanceId,
        PatchStatuses: statuses && statuses.length > 0 ? JSON.stringify(statuses) : undefined,
        MaxResults: MAX_RESULTS,
        NextToken: nextToken,
      });
      const items = arr(body['Patches']).map((r) =>
        defined<InstancePatch>({
          title: str(r['Title']) ?? '',
          kbId: str(r['KBId']),
          classification: str(r['Classification']),
          severity: str(r['Severity']),
          status: str(r['Status']) ?? '',
          installedTime: str(r['InstalledTime']),
        }),
      );
      return defined({ items, nextToken: str(body['NextToken']) });
    });
  }

  /**
   * OOS `CreateSecretParameter` (`Type=Secret`; `Tags` as a JSON object string). Idempotent by
   * `ClientToken`: a re-send after a lost answer returns the same parameter. The value travels in
   * the request only; the answer and every log line carry the name alone.
   * @throws CloudError `EntityAlreadyExists*` (another create with a different token made it).
   */
  async createSecretParameter(req: SecretParameterRequest): Promise<SecretParameterInfo> {
    const body = await this.caller.call('CreateSecretParameter', {
      Name: req.name,
      Value: req.value,
      Type: 'Secret',
      Description: req.description,
      KeyId: req.keyId,
      ClientToken: req.clientToken,
      Tags: req.tags && Object.keys(req.tags).length > 0 ? JSON.stringify(req.tags) : undefined,
    });
    return toSecretParameter(obj(body['Parameter']), req.name);
  }

  /** OOS `UpdateSecretParameter` (a new value). @throws CloudError notFound when it does not exist. */
  async updateSecretParameter(name: string, value: string): Promise<SecretParameterInfo> {
    const body = await this.caller.call('UpdateSecretParameter', { Name: name, Value: value });
    return toSecretParameter(obj(body['Parameter']), name);
  }

  /** OOS `GetSecretParameter` without `WithDecryption` (metadata only); undefined when not found. */
  async getSecretParameter(name: string): Promise<SecretParameterInfo | undefined> {
    try {
      const body = await this.caller.call('GetSecretParameter', { Name: name, WithDecryption: false });
      return toSecretParameter(obj(body['Parameter']), name);
    } catch (err) {
      if (err instanceof CloudError && err.category === 'notFound') return undefined;
      throw err;
    }
  }

  /** OOS `DeleteSecretParameter`; a parameter that does not exist (any notFound code) is success. */
  async deleteSecretParameter(name: string): Promise<void> {
    try {
      await this.caller.call('DeleteSecretParameter', { Name: name });
    } catch (err) {
      if (err instanceof CloudError && err.category === 'notFound') return;
      throw err;
    }
  }

  /** OOS `ListPatchBaselines`, all pages. */
  async listPatchBaselines(req: ListPatchBaselinesRequest = {}): Promise<PatchBaseline[]> {
    return allPages({ product: 'oos', action: 'ListPatchBaselines' }, async (nextToken) => {
      const body = await this.caller.call('ListPatchBaselines', {
        OperationSystem: req.operationSystem,
        ShareType: req.shareType,
        Name: req.name,
        MaxResults: MAX_RESULTS,
        NextToken: nextToken,
      });
      return defined({
        items: arr(body['PatchBaselines']).map(toPatchBaseline),
        nextToken: str(body['NextToken']),
      });
    });
  }
}
