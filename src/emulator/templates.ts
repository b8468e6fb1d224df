import { createHash } from 'node:crypto';
import type { SeedParameterDecl } from './seed.js';

/** Name of the public template that installs/uninstalls/updates OOS packages (extensions). */
export const CONFIGURE_PACKAGE_TEMPLATE = 'ACS-ECS-BulkyConfigureOOSPackageWithTemporaryURL';
/** Name of the public template that scans for / installs patches. */
export const APPLY_PATCH_TEMPLATE = 'ACS-ECS-BulkyApplyPatchBaseline';
/** Name of the public template that runs a Cloud Assistant command on many instances. */
export const RUN_COMMAND_TEMPLATE = 'ACS-ECS-BulkyRunCommand';

const RATE_CONTROL_DEFAULT = { Mode: 'Concurrency', MaxErrors: 0, Concurrency: 10 };

/** One template version as stored by the emulator. */
export interface TemplateVersionRecord {
  version: string;
  versionName: string;
  parameters: Record<string, SeedParameterDecl>;
  updatedDate: string;
}

/** An OOS template (public Automation or seeded Package). */
export interface TemplateRecord {
  name: string;
  templateId: string;
  type: 'Automation' | 'Package';
  shareType: 'Public' | 'Private';
  createdBy: string;
  description: string;
  createdDate: string;
  versions: TemplateVersionRecord[];
  /** Per-instance loop task name of the bulky templates (for ListTaskExecutions). */
  loopTask?: { name: string; action: string };
}

/** Deterministic `t-` template ID derived from the name. */
export function templateIdFor(name: string): string {
  return `t-${createHash('sha256').update(name).digest('hex').slice(0, 14)}`;
}

const EPOCH = '2024-01-01T00:00:00Z';

function automation(
  name: string,
  description: string,
  parameters: Record<string, SeedParameterDecl>,
  loopTask: { name: string; action: string },
): TemplateRecord {
  return {
    name,
    templateId: templateIdFor(name),
    type: 'Automation',
    shareType: 'Public',
    createdBy: 'ACS',
    description,
    createdDate: EPOCH,
    versions: [{ version: 'v1', versionName: '', parameters, updatedDate: EPOCH }],
    loopTask,
  };
}

/** The three public bulky templates with the Parameters the reference documents (§5). */
export function publicTemplates(): TemplateRecord[] {
  const regionId: SeedParameterDecl = { Type: 'String', Default: '{{ ACS::RegionId }}' };
  const rateControl: SeedParameterDecl = { Type: 'Json', Default: RATE_CONTROL_DEFAULT };
  const role: SeedParameterDecl = { Type: 'String', Default: '' };
  return [
    automation(
      CONFIGURE_PACKAGE_TEMPLATE,
      'Bulky install, uninstall or update an OOS package (extension) with a temporary URL',
      {
        regionId,
        action: { Type: 'String', Default: 'install', AllowedValues: ['install', 'uninstall', 'update'] },
        packageName: { Type: 'String', Description: 'Package template name' },
        packageVersion: { Type: 'String', Default: '' },
        targets: {
          Type: 'Json',
          Default: { Type: 'ResourceIds', ResourceIds: [], RegionId: '{{ regionId }}' },
        },
        orderId: { Type: 'String', Default: '' },
        rateControl,
        parameters: { Type: 'Json', Default: {} },
        OOSAssumeRole: role,
      },
      { name: 'configurePackage', action: 'ACS::ECS::ConfigureOOSPackageWithTemporaryURLFullActions' },
    ),
    automation(
      APPLY_PATCH_TEMPLATE,
      'Bulky scan for or install patches with the default patch baseline',
      {
        regionId,
        resourceType: {
          Type: 'String',
          Default: 'ALIYUN::ECS::Instance',
          AllowedValues: ['ALIYUN::ECS::Instance', 'ALIYUN::ECS::ManagedInstance', 'ALIYUN::ECD::Desktop'],
        },
        targets: { Type: 'Json' },
        action: { Type: 'String', Default: 'install', AllowedValues: ['install', 'scan'] },
        whetherCreateSnapshot: { Type: 'Boolean', Default: false },
        retentionDays: { Type: 'Number', Default: 7, MinValue: 1, MaxValue: 65536 },
        rebootIfNeed: { Type: 'Boolean', Default: false },
        rateControl,
        OOSAssumeRole: role,
        timeout: { Type: 'Number', Default: 7200 },
      },
      { name: 'applyPatchBaseline', action: 'ACS::ECS::ApplyPatchBaseline' },
    ),
    automation(
      RUN_COMMAND_TEMPLATE,
      'Bulky run a Cloud Assistant command',
      {
        regionId,
        resourceType: {
          Type: 'String',
          Default: 'ALIYUN::ECS::Instance',
          AllowedValues: ['ALIYUN::ECS::Instance', 'ALIYUN::ECS::ManagedInstance'],
        },
        targets: {
          Type: 'Json',
          Default: { Type: 'ResourceIds', ResourceIds: [], RegionId: '{{ regionId }}' },
        },
        commandType: {
          Type: 'String',
          Default: 'RunShellScript',
          AllowedValues: [
            'RunShellScript',
            'RunPythonScript',
            'RunPerlScript',
            'RunBatScript',
            'RunPowerShellScript',
          ],
        },
        commandContent: { Type: 'String' },
        workingDir: { Type: 'String', Default: '' },
        timeout: { Type: 'Number', Default: 600 },
        enableParameter: { Type: 'Boolean', Default: false },
        username: { Type: 'String', Default: '' },
        windowsPasswordName: { Type: 'String', Default: '' },
        rateControl,
        OOSAssumeRole: role,
      },
      { name: 'runCommand', action: 'ACS::ECS::RunCommand' },
    ),
  ];
}

/** The template body (`Content`) GetTemplate returns: an OOS-2019-06-01 JSON document. */
export function templateContent(t: TemplateRecord, v: TemplateVersionRecord): string {
  const body: Record<string, unknown> = {
    FormatVersion: 'OOS-2019-06-01',
    Description: t.description,
    Parameters: v.parameters,
  };
  if (t.type === 'Package') {
    body['Packages'] = [
      {
        Platform: 'Linux',
        Architecture: 'x86_64',
        InstallScript: 'echo install',
        UninstallScript: 'echo uninstall',
      },
    ];
  } else if (t.loopTask) {
    body['Tasks'] = [
      { Name: 'getInstance', Action: 'ACS::SelectTargets', Properties: { Filters: ['{{ targets }}'] } },
      {
        Name: t.loopTask.name,
        Action: t.loopTask.action,
        Loop: { RateControl: '{{ rateControl }}', Items: '{{ getInstance.Instances }}' },
      },
    ];
  }
  return JSON.stringify(body);
}
