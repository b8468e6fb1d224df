/**
 * The one table of the Alibaba Cloud RAM actions ecsops needs, per kind and feature, and the RAM
 * policy documents rendered from it (docs/deploy.md §4, the Helm chart's README,
 * `ecsops ram-policy`, the emulator's RAM tests).
 *
 * Two parts:
 * - {@link CONTROLLER_ACTIONS}: every action the cloud layer can call (`OOS_ACTIONS` in oos.ts,
 *   `ECS_ACTIONS` in ecs.ts, `ACTIONTRAIL_ACTIONS` in actiontrail.ts, `SLB_ACTIONS` in slb.ts,
 *   `ALB_ACTIONS` in alb.ts —
 *   test/unit/cloud/ram-actions.test.ts fails when they drift apart),
 *   with the kinds and features that call it. Actions no controller path calls (API surface kept
 *   for tools and tests) have no kinds and stay out of the policies.
 * - {@link TEMPLATE_ACTIONS}: per public OOS template the controller starts, what the template's
 *   own steps call. ecsops starts executions with an empty `OOSAssumeRole`, so OOS runs those
 *   steps with the caller's identity and the caller's policy must allow them too. Each list says
 *   where it came from (the template source in github.com/aliyun/oos-templates and the OOS docs).
 *
 * RAM action names are `product:Action` with the product in lower case (RAM compares the product
 * prefix case-insensitively); `Resource` is `*` (narrow it per region as docs/deploy.md §4 shows).
 * A data module without imports: the emulator reads the template lists to enforce them.
 */
/** The kinds whose reconcilers call Alibaba Cloud (MaintenanceWindow calls nothing). */
export const RAM_KINDS = ['EcsExtension', 'PatchPolicy', 'AppRelease', 'MaintenanceWindow'] as const;
export type RamKind = (typeof RAM_KINDS)[number];

/** Products whose actions appear in the policies. */
export type RamProduct = 'oos' | 'ecs' | 'kms' | 'oss' | 'actiontrail' | 'slb' | 'alb';

/** One action the controller itself calls through the cloud layer. */
export interface ControllerAction {
  product: RamProduct;
  /** API action name, e.g. `StartExecution`. */
  action: string;
  /** Kinds that call it, each with the features (code paths) that do, e.g. `drift`, `deletion`. */
  kinds: Partial<Record<RamKind, readonly string[]>>;
  /** Other callers with the user's own credentials (not the controller), e.g. `ecsops plan`. */
  tools?: readonly string[];
  /**
   * Set while the action is planned but not in the cloud layer yet (the table lists it so the
   * policy is right the day it lands; the table test tolerates it missing from the cloud layer).
   */
  pending?: string;
  /**
   * Set when the controller works without the action (it stops calling it on a permission error
   * and something else covers): what happens without it. Rendered in the docs' table.
   */
  optional?: string;
}

/** `optional` text of the traffic-control rows (rendered in the docs' table). */
const TRAFFIC_CONTROL_ONLY =
  'only with `spec.trafficControl` naming a group of that product (`slb:` CLB, `alb:` ALB); denied: the batch stalls with the permission error before any weight changes';

/**
 * Every action of the cloud layer (plus planned ones, see `pending`), with who calls it. Features:
 * `targets` (tag / ID resolution and Cloud Assistant state), `install` / `update` / `uninstall`,
 * `scan`, `tracking` (polling started executions), `adoption` (finding executions a previous
 * controller started, by tag), `drift` (re-reading live state), `deletion` (finalizer work),
 * `window` (a PatchPolicy install cancelled when its window closes, `install.cancelAtWindowEnd`),
 * `snapshot` (checking the pre-install snapshots), `changeFeed` (the fleet view's region-wide
 * listing of what changed since its last read, fleet.ts; its ActionTrail part runs with
 * `--actiontrail` only and is optional: when RAM denies `actiontrail:LookupEvents` the controller
 * stops reading it and the full resync catches direct writes), `deploy` / `rollback` (AppRelease Cloud
 * Assistant commands), `deadline` (AppRelease in-flight deploys stopped when
 * `progressDeadlineSeconds` passes), `revision` (the AppRelease revision tag on each instance;
 * removed by `deletionPolicy: Uninstall`), `secretEnv` (AppRelease env from Secrets),
 * `trafficControl` (AppRelease batches and PatchPolicy reboots with `spec.trafficControl`: drain
 * CLB vServer groups / ALB server groups, read the load balancer's health, restore; needed only
 * for the products `spec.trafficControl` names).
 */
export const CONTROLLER_ACTIONS: readonly ControllerAction[] = [
  // OOS
  {
    product: 'oos',
    action: 'StartExecution',
    kinds: { EcsExtension: ['install', 'update', 'uninstall', 'deletion'], PatchPolicy: ['scan', 'install'] },
  },
  {
    product: 'oos',
    action: 'ListExecutions',
    kinds: {
      EcsExtension: ['tracking', 'adoption', 'changeFeed'],
      PatchPolicy: ['tracking', 'adoption', 'changeFeed'],
    },
  },
  { product: 'oos', action: 'CancelExecution', kinds: { PatchPolicy: ['window'] } },
  { product: 'oos', action: 'ListResourceExecutionStatus', kinds: {} },
  {
    product: 'oos',
    action: 'ListTaskExecutions',
    kinds: { EcsExtension: ['tracking'], PatchPolicy: ['tracking'] },
  },
  { product: 'oos', action: 'ListExecutionLogs', kinds: {} },
  { product: 'oos', action: 'ListTemplates', kinds: {} },
  { product: 'oos', action: 'GetTemplate', kinds: { EcsExtension: ['install', 'update'] }, tools: ['plan'] },
  { product: 'oos', action: 'ListTemplateVersions', kinds: {} },
  {
    product: 'oos',
    action: 'ListInstancePackageStates',
    kinds: { EcsExtension: ['drift'] },
    tools: ['plan'],
  },
  { product: 'oos', action: 'ListInstancePatchStates', kinds: { PatchPolicy: ['drift'] }, tools: ['plan'] },
  { product: 'oos', action: 'ListInstancePatches', kinds: { PatchPolicy: ['drift'] } },
  { product: 'oos', action: 'ListPatchBaselines', kinds: {} },
  // OOS Parameter Store (AppRelease env from Secrets, src/controllers/apprelease/secrets.ts): one
  // encrypted parameter per AppRelease, written when a Secret is first read or rotated, deleted in
  // the deletion path. GetSecretParameter is the instances' call (INSTANCE_ROLE_ACTIONS); the
  // cloud layer's metadata read is used by tests only.
  { product: 'oos', action: 'CreateSecretParameter', kinds: { AppRelease: ['secretEnv'] } },
  { product: 'oos', action: 'UpdateSecretParameter', kinds: { AppRelease: ['secretEnv'] } },
  { product: 'oos', action: 'GetSecretParameter', kinds: {} },
  { product: 'oos', action: 'DeleteSecretParameter', kinds: { AppRelease: ['secretEnv', 'deletion'] } },
  // ActionTrail (optional: `--actiontrail`; without the permission the change feed stops reading it)
  {
    product: 'actiontrail',
    action: 'LookupEvents',
    kinds: { EcsExtension: ['changeFeed'] },
    optional:
      'with `--actiontrail` (default true) the change feed reads `UpdateInstancePackageState` events; denied or `--actiontrail=false`: direct writes are caught by the full resync (`--full-resync-period`)',
  },
  // CLB (SLB 2014-05-15) and ALB (2020-06-16): traffic control only (docs/reference-load-balancers.md)
  {
    product: 'slb',
    action: 'DescribeVServerGroupAttribute',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'slb',
    action: 'DescribeLoadBalancerListeners',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'slb',
    action: 'DescribeHealthStatus',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'slb',
    action: 'ListTagResources',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'slb',
    action: 'SetVServerGroupAttribute',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'slb',
    action: 'AddVServerGroupBackendServers',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'slb',
    action: 'RemoveVServerGroupBackendServers',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'alb',
    action: 'ListServerGroups',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'alb',
    action: 'ListServerGroupServers',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'alb',
    action: 'ListListeners',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'alb',
    action: 'ListTagResources',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'alb',
    action: 'GetListenerHealthStatus',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'alb',
    action: 'UpdateServerGroupServersAttribute',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'alb',
    action: 'AddServersToServerGroup',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  {
    product: 'alb',
    action: 'RemoveServersFromServerGroup',
    kinds: { AppRelease: ['trafficControl'], PatchPolicy: ['trafficControl'] },
    optional: TRAFFIC_CONTROL_ONLY,
  },
  // ECS
  {
    product: 'ecs',
    action: 'DescribeInstances',
    kinds: { EcsExtension: ['targets'], PatchPolicy: ['targets'], AppRelease: ['targets'] },
    tools: ['plan'],
  },
  {
    product: 'ecs',
    action: 'DescribeCloudAssistantStatus',
    kinds: { EcsExtension: ['targets'], PatchPolicy: ['targets'], AppRelease: ['targets'] },
    tools: ['plan'],
  },
  { product: 'ecs', action: 'RunCommand', kinds: { AppRelease: ['deploy', 'rollback', 'deletion'] } },
  {
    product: 'ecs',
    action: 'DescribeInvocations',
    kinds: { AppRelease: ['tracking', 'adoption'] },
  },
  { product: 'ecs', action: 'DescribeInvocationResults', kinds: {} },
  { product: 'ecs', action: 'StopInvocation', kinds: { AppRelease: ['deadline'] } },
  { product: 'ecs', action: 'DescribeSnapshots', kinds: { PatchPolicy: ['snapshot'] } },
  { product: 'ecs', action: 'TagResources', kinds: { AppRelease: ['revision'] } },
  { product: 'ecs', action: 'UntagResources', kinds: { AppRelease: ['deletion'] } },
];

/**
 * Actions the caller must also be allowed for another call to succeed: the OOS API reference's
 * "Associated operation" (dependent action) of the call, stated on its page as "make sure that you
 * have the permissions to call the … operation of KMS". The emulator enforces them
 * ({@link dependentActionsOf}): the call answers `Forbidden.RAM` naming the dependent action.
 */
export interface AssociatedAction {
  product: RamProduct;
  action: string;
  /** The call that needs it, `product:Action`. */
  of: string;
  kinds: Partial<Record<RamKind, readonly string[]>>;
  source: string;
}

const OOS_API_DOCS = 'https://alibabacloud.com/help/en/oos/developer-reference';

/**
 * Dependent actions of the controller's calls (AppRelease secretEnv: Parameter Store encrypted
 * parameters are KMS secrets). Read 2026-12 from the API reference pages (English and Chinese).
 */
export const ASSOCIATED_ACTIONS: readonly AssociatedAction[] = [
  {
    product: 'kms',
    action: 'CreateSecret',
    of: 'oos:CreateSecretParameter',
    kinds: { AppRelease: ['secretEnv'] },
    source: `${OOS_API_DOCS}/api-oos-2019-06-01-createsecretparameter ("Make sure that you have the permissions to call the CreateSecret operation of Key Management Service (KMS)")`,
  },
  {
    product: 'kms',
    action: 'PutSecretValue',
    of: 'oos:UpdateSecretParameter',
    kinds: { AppRelease: ['secretEnv'] },
    source: `${OOS_API_DOCS}/api-oos-2019-06-01-updatesecretparameter (the page says "the UpdateSecretValue operation of KMS", a name KMS's API does not have; KMS stores a new secret value with PutSecretValue, https://www.alibabacloud.com/help/en/kms/key-management-service/developer-reference/api-kms-2016-01-20-putsecretvalue — to confirm on a real account)`,
  },
  {
    product: 'kms',
    action: 'DeleteSecret',
    of: 'oos:DeleteSecretParameter',
    kinds: { AppRelease: ['secretEnv', 'deletion'] },
    source: `${OOS_API_DOCS}/api-oos-2019-06-01-deletesecretparameter ("This operation requires permission to call the Key Management Service (KMS) DeleteSecret API")`,
  },
];

/** One action the instances' RAM role needs (not the controller's identity). */
export interface InstanceRoleAction {
  product: RamProduct;
  action: string;
  kinds: Partial<Record<RamKind, readonly string[]>>;
  why: string;
  source: string;
}

/**
 * What the ECS instances' own RAM role (the instance RAM role the Cloud Assistant agent signs
 * with) needs: for AppRelease secretEnv, the agent resolves `{{oos-secret:NAME}}` on the host
 * right before the command runs, reading the encrypted parameter with decryption
 * (https://www.alibabacloud.com/help/en/ecs/user-guide/use-encryption-parameters and the
 * GetSecretParameter page). Not part of the controller's policy: `ramPolicyFor` leaves them out,
 * {@link instanceRolePolicyFor} renders them.
 */
export const INSTANCE_ROLE_ACTIONS: readonly InstanceRoleAction[] = [
  {
    product: 'oos',
    action: 'GetSecretParameter',
    kinds: { AppRelease: ['secretEnv'] },
    why: 'Cloud Assistant resolves `{{oos-secret:…}}` in the deploy / rollback command on the host',
    source: `${OOS_API_DOCS}/api-oos-2019-06-01-getsecretparameter`,
  },
  {
    product: 'kms',
    action: 'GetSecretValue',
    kinds: { AppRelease: ['secretEnv'] },
    why: 'dependent action of `oos:GetSecretParameter` with decryption',
    source: `${OOS_API_DOCS}/api-oos-2019-06-01-getsecretparameter ("ensure that you have the permissions to call the GetSecretValue API operation of Key Management Service (KMS)")`,
  },
];

/** `kms:GetSecretValue` as the dependent action of `oos:GetSecretParameter` (instance role). */
const INSTANCE_ROLE_DEPENDENT: readonly AssociatedAction[] = [
  {
    product: 'kms',
    action: 'GetSecretValue',
    of: 'oos:GetSecretParameter',
    kinds: {},
    source: INSTANCE_ROLE_ACTIONS[1]!.source,
  },
];

/**
 * Dependent actions by the call that needs them: lowercased `product:Action` → `product:Action`
 * names in table order ({@link ASSOCIATED_ACTIONS}, then {@link INSTANCE_ROLE_DEPENDENT}).
 */
const DEPENDENT_ACTIONS: ReadonlyMap<string, readonly string[]> = (() => {
  const byCall = new Map<string, string[]>();
  for (const d of [...ASSOCIATED_ACTIONS, ...INSTANCE_ROLE_DEPENDENT]) {
    const of = d.of.toLowerCase();
    byCall.set(of, [...(byCall.get(of) ?? []), ramActionName(d)]);
  }
  return byCall;
})();

/**
 * The dependent actions RAM also checks for `action` (`product:Action`, case-insensitive), from
 * {@link ASSOCIATED_ACTIONS} and {@link INSTANCE_ROLE_DEPENDENT}; empty for most actions.
 * @returns a shared list: do not modify it.
 */
export function dependentActionsOf(action: string): readonly string[] {
  return DEPENDENT_ACTIONS.get(action.toLowerCase()) ?? [];
}

/**
 * The instance RAM role policy `kinds` need ({@link INSTANCE_ROLE_ACTIONS}); an empty Statement
 * list when none (every kind but AppRelease).
 */
export function instanceRolePolicyFor(kinds: readonly RamKind[] = RAM_KINDS): RamPolicyDocument {
  const actions = [
    ...new Set(
      INSTANCE_ROLE_ACTIONS.filter((a) => kinds.some((k) => a.kinds[k] !== undefined)).map(ramActionName),
    ),
  ].sort(byName);
  return allowPolicy(actions);
}

/** When a template step runs (the template's own `When` / `Choice`). */
export type TemplateStepWhen =
  | 'always'
  /** ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL `action: update` only. */
  | 'update'
  /** ACS-ECS-BulkyApplyPatchBaseline `action: install` with `whetherCreateSnapshot: true`. */
  | 'snapshot'
  /** ACS-ECS-BulkyApplyPatchBaseline `action: install` with `rebootIfNeed: true`. */
  | 'rebootCheck'
  /** ... and the instance has patches installed pending a reboot. */
  | 'reboot';

/** One action a template step calls with the caller's identity. */
export interface TemplateAction {
  product: RamProduct;
  action: string;
  /** The template step (task name or nested action) that calls it. */
  step: string;
  when: TemplateStepWhen;
}

/** The actions one public OOS template calls, and where that list came from. */
export interface TemplateActions {
  /** Kinds that start executions of it. */
  kinds: readonly RamKind[];
  /** URLs / documents the list was read from. */
  sources: readonly string[];
  actions: readonly TemplateAction[];
}

/** `ACS::ECS::RunCommand` as the template sources show it (create, invoke, wait, read, delete). */
const RUN_COMMAND_STEP = (step: string, when: TemplateStepWhen = 'always'): TemplateAction[] => [
  { product: 'ecs', action: 'RunCommand', step, when },
  { product: 'ecs', action: 'CreateCommand', step, when },
  { product: 'ecs', action: 'InvokeCommand', step, when },
  { product: 'ecs', action: 'DescribeInvocations', step, when },
  { product: 'ecs', action: 'DescribeInvocationResults', step, when },
  { product: 'ecs', action: 'DeleteCommand', step, when },
];

const TEMPLATES_REPO = 'https://github.com/aliyun/oos-templates/blob/master';

/**
 * Per public template the controller starts (`src/api/ecsextension.ts` `CONFIGURE_PACKAGE_TEMPLATE`,
 * `src/api/patchpolicy.ts` `APPLY_PATCH_BASELINE_TEMPLATE`), the actions its steps call.
 * AppRelease runs Cloud Assistant commands directly (no template); MaintenanceWindow calls nothing.
 */
export const TEMPLATE_ACTIONS: Readonly<Record<string, TemplateActions>> = {
  'ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL': {
    kinds: ['EcsExtension'],
    sources: [
      `${TEMPLATES_REPO}/PublicTemplates/JSON/ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL.json (ACS::SelectTargets, loop of ACS::ECS::ConfigureOOSPackageWithTemporaryURLFullActions)`,
      `${TEMPLATES_REPO}/CloudProductActions/ECS/YAML/ACS::ECS::ConfigureOOSPackageWithTemporaryURLFullActions.yml (commit c9a96d0: OOS ListInstancePackageStates on update)`,
      `${TEMPLATES_REPO}/CloudProductActions/ECS/YAML/ACS::ECS::ConfigureOOSPackageWithTemporaryURL.yml (commit 87c0b04: ECS DescribeInstances, DescribeCloudAssistantStatus, ACS::ECS::RunCommand, OOS GetTemplate, ACS::ECS::DownloadOSSFileAndRunCommand, OOS UpdateInstancePackageState)`,
      `${TEMPLATES_REPO}/CloudProductActions/ECS/YAML/ACS::ECS::RunCommand.yml (commit 0226a86: ECS CreateCommand, InvokeCommand, DescribeInvocations, DescribeInvocationResults, DeleteCommand; newer versions call RunCommand)`,
      'https://www.alibabacloud.com/help/en/oos/user-guide/acs-ecs-configureoospackagewithtemporaryurl',
      'oss:GetObject for the package download: the RAM list of the Alibaba Cloud ecs-install-extension guide (not in the template source itself: the temporary URL may be signed by OOS; kept until verified)',
    ],
    actions: [
      {
        product: 'ecs',
        action: 'DescribeInstances',
        step: 'getInstance (ACS::SelectTargets)',
        when: 'always',
      },
      {
        product: 'ecs',
        action: 'DescribeInstances',
        step: 'waitForEcsRunning, queryInstanceOSType',
        when: 'always',
      },
      {
        product: 'ecs',
        action: 'DescribeCloudAssistantStatus',
        step: 'waitForCloudAssistantRunning',
        when: 'always',
      },
      ...RUN_COMMAND_STEP('FetchEcsInfoLinux, downloadAndRun, DeletePackage (ACS::ECS::RunCommand)'),
      { product: 'oos', action: 'GetTemplate', step: 'queryTemplate', when: 'always' },
      { product: 'oss', action: 'GetObject', step: 'downloadAndRun (package download)', when: 'always' },
      {
        product: 'oos',
        action: 'UpdateInstancePackageState',
        step: 'UpdateInstancePackageState',
        when: 'always',
      },
      { product: 'oos', action: 'ListInstancePackageStates', step: 'GetTemplateOldVersion', when: 'update' },
    ],
  },
  'ACS-ECS-BulkyApplyPatchBaseline': {
    kinds: ['PatchPolicy'],
    sources: [
      `${TEMPLATES_REPO}/PublicTemplates/YAML/ACS-ECS-BulkyApplyPatchBaseline.yml (ACS::SelectTargets, loop of ACS::ECS::ApplyPatchBaseline)`,
      `${TEMPLATES_REPO}/CloudProductActions/ECS/YAML/ACS::ECS::ApplyPatchBaseline.yml (commit 48dd266: DescribeDisks + ACS::ECS::CreateSnapshot when whetherCreateSnapshot; DescribeInstances; ACS::ECS::RunCommandForApplyPatchBaseline; with rebootIfNeed: OOS ListInstancePatchStates, then RebootInstance, DescribeInstances, DescribeCloudAssistantStatus when a reboot is pending)`,
      'https://alibabacloud.com/help/en/oos/user-guide/acs-ecs-scheduleapplypatchbaseline (RAM policy list: ecs CreateSnapshot, DescribeCloudAssistantStatus, DescribeDisks, DescribeInstances, DescribeInvocationResults, DescribeInvocations, DescribeManagedInstances, DescribeSnapshots, InvokeCommand, RebootInstance, RunCommand)',
    ],
    actions: [
      {
        product: 'ecs',
        action: 'DescribeInstances',
        step: 'getInstance (ACS::SelectTargets)',
        when: 'always',
      },
      { product: 'ecs', action: 'DescribeInstances', step: 'queryInstanceOSType', when: 'always' },
      ...RUN_COMMAND_STEP('applyLinuxPatchBaseline (ACS::ECS::RunCommandForApplyPatchBaseline)'),
      { product: 'ecs', action: 'DescribeDisks', step: 'getSystemDisk', when: 'snapshot' },
      {
        product: 'ecs',
        action: 'CreateSnapshot',
        step: 'createSnapshot (ACS::ECS::CreateSnapshot)',
        when: 'snapshot',
      },
      {
        product: 'ecs',
        action: 'DescribeSnapshots',
        step: 'createSnapshot (waits for the snapshot)',
        when: 'snapshot',
      },
      {
        product: 'oos',
        action: 'ListInstancePatchStates',
        step: 'listInstancePatchStates',
        when: 'rebootCheck',
      },
      { product: 'ecs', action: 'RebootInstance', step: 'rebootInstance', when: 'reboot' },
      { product: 'ecs', action: 'DescribeInstances', step: 'untilInstanceReady', when: 'reboot' },
      {
        product: 'ecs',
        action: 'DescribeCloudAssistantStatus',
        step: 'describeCloudAssistantStatus',
        when: 'reboot',
      },
    ],
  },
};

/** `product:Action` as a RAM policy names it. */
export function ramActionName(a: { product: RamProduct; action: string }): string {
  return `${a.product}:${a.action}`;
}

/** Sort order of policy actions: product, then action name. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The RAM actions the controller's identity needs for `kinds` (controller calls, their dependent
 * actions, and the template steps of the templates they start), deduplicated and sorted. Pending
 * actions are included (the policy is right the day they land); actions no controller path calls
 * are not, nor the instance role's ({@link instanceRolePolicyFor}).
 */
export function ramActionsFor(kinds: readonly RamKind[] = RAM_KINDS): string[] {
  const out = new Set<string>();
  for (const a of CONTROLLER_ACTIONS) {
    if (kinds.some((k) => a.kinds[k] !== undefined)) out.add(ramActionName(a));
  }
  for (const t of Object.values(TEMPLATE_ACTIONS)) {
    if (!t.kinds.some((k) => kinds.includes(k))) continue;
    for (const a of t.actions) out.add(ramActionName(a));
  }
  for (const a of ASSOCIATED_ACTIONS) {
    if (kinds.some((k) => a.kinds[k] !== undefined)) out.add(ramActionName(a));
  }
  return [...out].sort(byName);
}

/** A RAM policy document (policy language version 1). */
export interface RamPolicyDocument {
  Version: '1';
  Statement: Array<{ Effect: 'Allow' | 'Deny'; Action: string[]; Resource: string | string[] }>;
}

/**
 * The minimal RAM policy for `kinds`: one Allow statement over {@link ramActionsFor}, Resource `*`.
 * A set of kinds that needs no action (MaintenanceWindow alone) gets an empty Statement list.
 */
export function ramPolicyFor(kinds: readonly RamKind[] = RAM_KINDS): RamPolicyDocument {
  return allowPolicy(ramActionsFor(kinds));
}

/**
 * A RAM policy document allowing `actions` (`product:Action`, kept in the given order) on Resource
 * `*` in one statement; no statement when `actions` is empty.
 */
function allowPolicy(actions: string[]): RamPolicyDocument {
  return {
    Version: '1',
    Statement: actions.length > 0 ? [{ Effect: 'Allow', Action: actions, Resource: '*' }] : [],
  };
}

/**
 * The actions a template step group calls, for the emulator's enforcement inside executions.
 * @returns `product:Action` names, deduplicated, in table order.
 */
export function templateStepActions(templateName: string, when: TemplateStepWhen): string[] {
  const t = TEMPLATE_ACTIONS[templateName];
  if (!t) return [];
  return [...new Set(t.actions.filter((a) => a.when === when).map(ramActionName))];
}

/** Every RAM action any policy of the table grants, with the rows it comes from (for the docs). */
export function ramActionRows(): Array<{
  action: string;
  kinds: string;
  why: string;
}> {
  const rows = new Map<string, { kinds: Set<string>; why: string[] }>();
  const row = (name: string) => {
    let r = rows.get(name);
    if (!r) rows.set(name, (r = { kinds: new Set(), why: [] }));
    return r;
  };
  for (const a of CONTROLLER_ACTIONS) {
    const ks = Object.entries(a.kinds) as Array<[RamKind, readonly string[]]>;
    if (ks.length === 0) continue;
    const r = row(ramActionName(a));
    for (const [k, features] of ks) {
      r.kinds.add(k);
      r.why.push(
        `${k}: ${features.join(', ')}${a.pending ? ' (pending)' : ''}${a.optional ? ` (optional: ${a.optional})` : ''}`,
      );
    }
  }
  for (const [name, t] of Object.entries(TEMPLATE_ACTIONS)) {
    for (const a of t.actions) {
      const r = row(ramActionName(a));
      for (const k of t.kinds) r.kinds.add(k);
      const w = `${name} step ${a.step}${a.when === 'always' ? '' : ` (${a.when})`}`;
      if (!r.why.includes(w)) r.why.push(w);
    }
  }
  for (const a of ASSOCIATED_ACTIONS) {
    const r = row(ramActionName(a));
    for (const [k, features] of Object.entries(a.kinds) as Array<[RamKind, readonly string[]]>) {
      r.kinds.add(k);
      r.why.push(`${k}: ${features.join(', ')}, with \`${a.of}\` (${a.source})`);
    }
  }
  return [...rows.entries()]
    .sort(([a], [b]) => byName(a, b))
    .map(([action, r]) => ({
      action,
      kinds: RAM_KINDS.filter((k) => r.kinds.has(k)).join(', '),
      why: r.why.join('; '),
    }));
}
