import type { InstanceStatus, Seed, SeedInstance, SeedParameterDecl, SeedPatch } from './seed.js';
import { expandGenerate, normalizeTags } from './seed.js';
import type { TemplateRecord } from './templates.js';
import { publicTemplates, templateIdFor } from './templates.js';

/** An emulated ECS instance. */
export interface InstanceRecord {
  instanceId: string;
  instanceName: string;
  regionId: string;
  zoneId: string;
  status: InstanceStatus;
  osType: 'linux' | 'windows';
  osName: string;
  tags: Record<string, string>;
  cloudAssistantOnline: boolean;
  cloudAssistantVersion: string;
  creationTime: string;
  instanceType: string;
  /** Patches of this instance and their state (Missing until installed). */
  patches: PatchRecord[];
}

/** One patch of an instance, as ListInstancePatches reports it. */
export interface PatchRecord {
  kbId: string;
  title: string;
  classification: string;
  severity: string;
  status: 'Missing' | 'Installed' | 'InstalledPendingReboot' | 'Failed';
  installedTime: string;
}

/** Installed package state of one (instance, package template). */
export interface PackageStateRecord {
  instanceId: string;
  templateName: string;
  templateVersion: string;
  parameters: Record<string, unknown>;
  configurationInfo: string;
  updateTime: string;
}

/** Last patch operation summary of an instance (ListInstancePatchStates). */
export interface PatchStateRecord {
  instanceId: string;
  baselineId: string;
  operationType: 'scan' | 'install';
  operationStartTime: string;
  operationEndTime: string;
}

/** A system-disk snapshot created by a patch install with whetherCreateSnapshot. */
export interface SnapshotRecord {
  snapshotId: string;
  snapshotName: string;
  regionId: string;
  instanceId: string;
  sourceDiskId: string;
  retentionDays: number;
  creationTime: string;
  status: 'progressing' | 'accomplished' | 'failed';
  executionId: string;
}

/** A default public patch baseline. */
export interface PatchBaselineRecord {
  id: string;
  name: string;
  operationSystem: string;
}

/** Validation of a value against a declared template parameter; returns an error text or undefined. */
export function checkParameterValue(
  name: string,
  decl: SeedParameterDecl,
  value: unknown,
): string | undefined {
  if (decl.AllowedValues && decl.AllowedValues.length > 0) {
    if (!decl.AllowedValues.some((a) => JSON.stringify(a) === JSON.stringify(value))) {
      return `parameter "${name}" value ${JSON.stringify(value)} is not one of the AllowedValues ${JSON.stringify(decl.AllowedValues)}`;
    }
  }
  switch (decl.Type) {
    case 'Number':
      if (
        typeof value !== 'number' &&
        !(typeof value === 'string' && value !== '' && !isNaN(Number(value)))
      ) {
        return `parameter "${name}" must be a Number`;
      }
      break;
    case 'Boolean':
      if (typeof value !== 'boolean' && value !== 'true' && value !== 'false') {
        return `parameter "${name}" must be a Boolean`;
      }
      break;
    case 'List':
      if (!Array.isArray(value)) return `parameter "${name}" must be a List`;
      break;
    default:
      break;
  }
  return undefined;
}

/**
 * Validates a parameter map against declared Parameters: every given name must be declared and
 * every declared parameter without a Default must be given. Returns the first problem or undefined.
 */
export function validateParameters(
  declared: Record<string, SeedParameterDecl>,
  given: Record<string, unknown>,
): string | undefined {
  for (const name of Object.keys(given)) {
    const decl = declared[name];
    if (!decl) {
      const names = Object.keys(declared);
      return `parameter "${name}" is not declared by the template (declared: ${names.length ? names.join(', ') : 'none'})`;
    }
    const err = checkParameterValue(name, decl, given[name]);
    if (err) return err;
  }
  for (const [name, decl] of Object.entries(declared)) {
    if (!('Default' in decl) && !(name in given)) return `required parameter "${name}" is missing`;
  }
  return undefined;
}

/** Maps an instance's OS to the default public patch baseline's OperationSystem. */
export function baselineOsFor(inst: InstanceRecord): string {
  if (inst.osType === 'windows') return 'Windows';
  const n = inst.osName.toLowerCase();
  if (n.includes('ubuntu')) return 'Ubuntu';
  if (n.includes('centos')) return 'CentOS';
  if (n.includes('debian')) return 'Debian';
  if (n.includes('red hat') || n.includes('redhat')) return 'RedhatEnterpriseLinux';
  if (n.includes('anolis')) return 'Anolis';
  if (n.includes('alma')) return 'AlmaLinux';
  return 'AliyunLinux';
}

const BASELINE_OS = [
  'Windows',
  'Ubuntu',
  'CentOS',
  'Debian',
  'AliyunLinux',
  'RedhatEnterpriseLinux',
  'Anolis',
  'AlmaLinux',
];

/** The default public baselines, one per OperationSystem (`ACS-<OS>-DefaultPatchBaseline`). */
export function defaultBaselines(): PatchBaselineRecord[] {
  return BASELINE_OS.map((os) => ({
    id: `pb-${templateIdFor(os).slice(2, 18)}`,
    name: `ACS-${os}-DefaultPatchBaseline`,
    operationSystem: os,
  }));
}

/** Fixed creation time of seeded instances, so results are reproducible. */
const SEED_TIME = '2024-06-01T00:00Z';

/** Per-region instance/package/patch state. */
export class RegionState {
  readonly instances = new Map<string, InstanceRecord>();
  /** key `${instanceId}/${templateName}` */
  readonly packageStates = new Map<string, PackageStateRecord>();
  readonly patchStates = new Map<string, PatchStateRecord>();
  readonly snapshots: SnapshotRecord[] = [];
  constructor(readonly regionId: string) {}
}

/**
 * The emulator's cloud state: regions → instances, templates, package states, patch states and
 * snapshots. Executions and invocations live in their engines.
 */
export class CloudState {
  readonly regions = new Map<string, RegionState>();
  readonly templates = new Map<string, TemplateRecord>();
  readonly baselines = defaultBaselines();

  constructor() {
    for (const t of publicTemplates()) this.templates.set(t.name, t);
  }

  /** The region's state, created on first use (any region ID is accepted). */
  region(regionId: string): RegionState {
    let r = this.regions.get(regionId);
    if (!r) {
      r = new RegionState(regionId);
      this.regions.set(regionId, r);
    }
    return r;
  }

  /** Finds an instance in any region. */
  findInstance(instanceId: string): InstanceRecord | undefined {
    for (const r of this.regions.values()) {
      const i = r.instances.get(instanceId);
      if (i) return i;
    }
    return undefined;
  }

  /**
   * Merges a seed: instances are added or replaced by ID, package templates by name.
   * @throws Error on an instance ID that does not match `^i-[a-z0-9]+$` or a template without versions.
   */
  applySeed(seed: Seed): void {
    for (const [regionId, rs] of Object.entries(seed.regions ?? {})) {
      const gens = rs.generate === undefined ? [] : Array.isArray(rs.generate) ? rs.generate : [rs.generate];
      const all = [...gens.flatMap((g) => expandGenerate(regionId, g)), ...(rs.instances ?? [])];
      this.addInstances(regionId, all);
    }
    for (const pt of seed.packageTemplates ?? []) {
      if (!pt.name || !Array.isArray(pt.versions) || pt.versions.length === 0) {
        throw new Error(`package template ${pt.name ?? '?'} needs a name and at least one version`);
      }
      const description =
        typeof pt.description === 'string' ? pt.description : JSON.stringify(pt.description ?? {});
      this.templates.set(pt.name, {
        name: pt.name,
        templateId: templateIdFor(pt.name),
        type: 'Package',
        shareType: pt.shareType ?? 'Public',
        createdBy: pt.shareType === 'Private' ? 'emulator' : 'ACS',
        description,
        createdDate: SEED_TIME.replace('T00:00Z', 'T00:00:00Z'),
        versions: pt.versions.map((v, i) => ({
          version: v.version ?? `v${i + 1}`,
          versionName: v.versionName ?? '',
          parameters: v.parameters ?? {},
          updatedDate: '2024-06-01T00:00:00Z',
        })),
      });
    }
  }

  /**
   * Adds (or replaces) instances in a region.
   * @throws Error on an invalid instance ID.
   */
  addInstances(regionId: string, list: SeedInstance[]): InstanceRecord[] {
    const r = this.region(regionId);
    const out: InstanceRecord[] = [];
    for (const si of list) {
      if (!/^i-[a-z0-9]+$/.test(si.instanceId)) throw new Error(`invalid instance ID ${si.instanceId}`);
      const osType = si.osType ?? 'linux';
      const rec: InstanceRecord = {
        instanceId: si.instanceId,
        instanceName: si.instanceName ?? si.instanceId,
        regionId,
        zoneId: si.zoneId ?? `${regionId}-h`,
        status: si.status ?? 'Running',
        osType,
        osName: si.osName ?? (osType === 'windows' ? 'Windows Server 2022' : 'Alibaba Cloud Linux 3'),
        tags: normalizeTags(si.tags),
        cloudAssistantOnline: si.cloudAssistantOnline ?? true,
        cloudAssistantVersion: si.cloudAssistantVersion ?? '2.2.3.857',
        creationTime: SEED_TIME,
        instanceType: 'ecs.g7.large',
        patches: makePatches(si.instanceId, si.patches),
      };
      r.instances.set(rec.instanceId, rec);
      out.push(rec);
    }
    return out;
  }
}

function makePatches(instanceId: string, p: SeedPatch[] | number | undefined): PatchRecord[] {
  if (p === undefined) return [];
  const list: SeedPatch[] =
    typeof p === 'number'
      ? Array.from({ length: p }, (_, i) => ({
          kbId: `kernel-patch-${i + 1}.x86_64`,
          title: `kernel-patch-${i + 1}.x86_64:5.10.134-${i + 1}.al8`,
        }))
      : p;
  void instanceId;
  return list.map((s) => ({
    kbId: s.kbId,
    title: s.title ?? s.kbId,
    classification: s.classification ?? 'Security',
    severity: s.severity ?? 'Important',
    status: 'Missing',
    installedTime: '',
  }));
}

/** Alibaba-style UTC timestamp without milliseconds: `2024-06-01T00:00:00Z`. */
export function isoNow(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
