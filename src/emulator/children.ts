import { createHash } from 'node:crypto';
import type { ExecutionRecord, ItemResult } from './engine.js';
import type { CloudState } from './state.js';
import { templateIdFor } from './templates.js';

/**
 * One child execution of a bulky execution's loop: OOS runs each loop item of a template-type
 * action (`ACS::ECS::ConfigureOOSPackageWithTemporaryURLFullActions`, `ACS::ECS::RunCommand`,
 * `ACS::ECS::ApplyPatchBaseline`) as a child execution of the parent (docs/emulator.md "Change
 * feed facts"). The emulator derives them from the parent's started loop items; they have no state
 * of their own.
 */
export interface ChildExecution {
  executionId: string;
  parent: ExecutionRecord;
  item: ItemResult;
  /** The loop task's action, which names the child template (assumption, see docs). */
  templateName: string;
}

/** Parent parameters that select or pace the loop; a child gets the rest plus its instanceId. */
const LOOP_ONLY_PARAMETERS = new Set(['targets', 'rateControl', 'orderId']);

/** Deterministic `exec-` ID of the child of `parentId` for loop item `index`. */
export function childExecutionId(parentId: string, index: number): string {
  return `exec-${createHash('sha256').update(`${parentId}/${index}`).digest('hex').slice(0, 17)}`;
}

/** Child executions of `e`: one per loop item that started (never-started items have none). */
export function childExecutions(state: CloudState, e: ExecutionRecord): ChildExecution[] {
  const action = state.templates.get(e.templateName)?.loopTask?.action ?? 'ACS::Loop';
  return e.items
    .filter((i) => i.taskExecutionId !== '')
    .map((item) => ({
      executionId: childExecutionId(e.executionId, item.index),
      parent: e,
      item,
      templateName: action,
    }));
}

/** ListExecutions view of a child execution (same fields as a parent's). */
export function childExecutionView(c: ChildExecution): Record<string, unknown> {
  const e = c.parent;
  const it = c.item;
  const parameters: Record<string, unknown> = { instanceId: it.instanceId };
  for (const [k, v] of Object.entries(e.parameters)) if (!LOOP_ONLY_PARAMETERS.has(k)) parameters[k] = v;
  const done = (s: string) => (it.status === s ? 1 : 0);
  return {
    ExecutionId: c.executionId,
    TemplateName: c.templateName,
    TemplateId: templateIdFor(c.templateName),
    TemplateVersion: 'v1',
    Mode: e.mode,
    LoopMode: e.loopMode,
    SafetyCheck: e.safetyCheck,
    Status: it.status,
    StatusMessage: it.statusMessage,
    StatusReason: it.statusMessage,
    Parameters: parameters,
    Outputs: JSON.stringify(it.outputs),
    Counters: {
      Total: 1,
      Success: done('Success'),
      Failed: done('Failed'),
      Running: done('Running'),
      Cancelled: done('Cancelled'),
      Skipped: 0,
      Waiting: 0,
    },
    ResourceStatus: JSON.stringify({ [it.status]: 1 }),
    Targets: '',
    CurrentTasks: [],
    IsParent: false,
    ParentExecutionId: e.executionId,
    ExecutedBy: 'emulator',
    RamRole: String(e.parameters['OOSAssumeRole'] ?? ''),
    Category: 'Other',
    CreateDate: it.startDate,
    StartDate: it.startDate,
    EndDate: it.endDate,
    UpdateDate: it.endDate || it.startDate,
    Description: '',
    ResourceGroupId: e.resourceGroupId,
    Tags: {},
  };
}
