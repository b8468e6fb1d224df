import type {
  InstanceStatus,
  Seed,
  SeedInstalledPackage,
  SeedInstance,
  SeedParameterDecl,
  SeedPatch,
} from './seed.js';
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
  /**
   * Primary private IPv4 address (DescribeInstances `VpcAttributes.PrivateIpAddress.IpAddress[0]`
   * and `NetworkInterfaces.NetworkInterface[0].PrimaryIpAddress`): from the seed, else allocated
   * in the state's address prefix (`172.16.x.y`; sandbox mode `127.<net>.x.y`, a loopback address
   * the instance's processes can bind).
   */
  privateIpAddress: string;
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
  /** Installing it leaves the instance pending a reboot. */
  rebootRequired: boolean;
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
  /** Counts by patch status as of the operation (a scan refreshes them), e.g. `{ Missing: 3 }`. */
  counts: Record<string, number>;
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
      if (
        (decl.MinValue !== undefined && Number(value) < decl.MinValue) ||
        (decl.MaxValue !== undefined && Number(value) > decl.MaxValue)
      ) {
        return `parameter "${name}" value ${JSON.stringify(value)} is out of range [${decl.MinValue ?? '-inf'}, ${decl.MaxValue ?? 'inf'}]`;
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

/** An OOS encrypted parameter (`CreateSecretParameter`); the value is held in memory only. */
export interface SecretParameterRecord {
  name: string;
  value: string;
  keyId: string;
  description: string;
  parameterVersion: number;
  tags: Record<string, string>;
  createdDate: string;
  updatedDate: string;
  /** ClientToken of the create, when one was given. */
  clientToken?: string;
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
  /**
   * Instances released from the fleet (control API `POST /regions/:r/instances/:id/release`):
   * instance ID → when, milliseconds since the epoch. They are no longer in `instances`.
   */
  readonly released = new Map<string, number>();
  /** OOS encrypted parameters (Parameter Store), by name. See secrets.ts. */
  readonly secretParameters = new Map<string, SecretParameterRecord>();
  constructor(readonly regionId: string) {}

  /** Whether `instanceId` was in this region's fleet and has been released. */
  isReleased(instanceId: string): boolean {
    return this.released.has(instanceId) && !this.instances.has(instanceId);
  }
}

/**
 * The emulator's cloud state: regions → instances, templates, package states, patch states and
 * snapshots. Executions and invocations live in their engines.
 */
export class CloudState {
  readonly regions = new Map<string, RegionState>();
  readonly templates = new Map<string, TemplateRecord>();
  readonly baselines = defaultBaselines();
  /** Next index of the private IP allocator (see {@link CloudState.addInstances}). */
  private ipIndex = 0;
  /** Private IP addresses given out (never reused, released instances' included). */
  private readonly usedIps = new Set<string>();

  /**
   * @param ipPrefix first two octets of allocated private IP addresses: `172.16` (a VPC range,
   *   default) or, in sandbox mode, `127.<net>` (loopback: every address of 127.0.0.0/8 is local
   *   on Linux).
   */
  constructor(readonly ipPrefix = '172.16') {
    for (const t of publicTemplates()) this.templates.set(t.name, t);
  }

  /** The next free address `<prefix>.x.y` (x 0–255, y 1–254), in allocation order. */
  private nextPrivateIp(): string {
    const used = this.usedIps;
    for (;;) {
      const n = this.ipIndex++;
      if (n >= 256 * 254) throw new Error(`no free private IP address left in ${this.ipPrefix}.0.0/16`);
      const ip = `${this.ipPrefix}.${Math.floor(n / 254)}.${(n % 254) + 1}`;
      if (!used.has(ip)) return ip;
    }
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

  /**
   * Releases an instance as ECS does (e.g. auto scaling scale-in): it leaves the fleet and its
   * package and patch states are gone (snapshots stay). Running work on it is ended by the
   * engines (see `EmulatorCore.releaseInstance`).
   * @returns the released instance, or undefined when it is not in the region's fleet.
   */
  releaseInstance(regionId: string, instanceId: string): InstanceRecord | undefined {
    const r = this.region(regionId);
    const inst = r.instances.get(instanceId);
    if (!inst) return undefined;
    r.instances.delete(instanceId);
    for (const [k, st] of r.packageStates) if (st.instanceId === instanceId) r.packageStates.delete(k);
    r.patchStates.delete(instanceId);
    r.released.set(instanceId, Date.now());
    return inst;
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
   * Merges a seed: package templates are added or replaced by name, then instances by ID (with
   * the package states of their `installed` packages).
   * @throws Error on an instance ID that does not match `^i-[a-z0-9]+$`, a template without
   *   versions, or an `installed` package whose template or version does not exist.
   */
  applySeed(seed: Seed): void {
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
    // After the templates, so `installed` packages may name a template of the same seed.
    for (const [regionId, rs] of Object.entries(seed.regions ?? {})) {
      const gens = rs.generate === undefined ? [] : Array.isArray(rs.generate) ? rs.generate : [rs.generate];
      const all = [...gens.flatMap((g) => expandGenerate(regionId, g)), ...(rs.instances ?? [])];
      this.addInstances(regionId, all);
    }
  }

  /**
   * Adds (or replaces) instances in a region; each `installed` package sets that instance's
   * package state (other package states of a replaced instance are kept). An instance keeps the
   * private IP address it had (or the seed's `privateIpAddress`); a new one gets the next free
   * address of {@link CloudState.ipPrefix}, so IPs follow seed order and are reproducible.
   * @throws Error on an invalid instance ID or an `installed` package whose Package template or
   *   version does not exist.
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
        privateIpAddress:
          si.privateIpAddress ?? r.instances.get(si.instanceId)?.privateIpAddress ?? this.nextPrivateIp(),
        patches: makePatches(osType, si.patches),
      };
      this.usedIps.add(rec.privateIpAddress);
      const installed = (si.installed ?? []).map((p) => this.installedState(rec.instanceId, p));
      r.instances.set(rec.instanceId, rec);
      r.released.delete(rec.instanceId);
      for (const st of installed) r.packageStates.set(`${st.instanceId}/${st.templateName}`, st);
      out.push(rec);
    }
    return out;
  }

  /** The package state a seeded `installed` entry records. @throws Error on an unknown template or version. */
  private installedState(instanceId: string, p: SeedInstalledPackage): PackageStateRecord {
    const t = this.templates.get(p.name);
    if (!t || t.type !== 'Package') {
      throw new Error(`instance ${instanceId}: installed package template ${p.name} does not exist`);
    }
    const v =
      p.version === undefined
        ? t.versions[t.versions.length - 1]
        : t.versions.find((x) => x.version === p.version);
    if (!v) throw new Error(`instance ${instanceId}: package template ${p.name} has no version ${p.version}`);
    return {
      instanceId,
      templateName: t.name,
      templateVersion: v.version,
      parameters: { ...(p.parameters ?? {}) },
      configurationInfo: '',
      updateTime: SEED_TIME.replace('T00:00Z', 'T00:00:00Z'),
    };
  }
}

/**
 * A synthesised patch inventory of `n` patches, by OS: Linux cycles kernel (Important, reboot),
 * openssl (Critical), systemd (Moderate) and a bugfix (Low); Windows cycles cumulative updates
 * (Critical, reboot), .NET (Important) and Defender definitions (Moderate).
 */
function synthesise(osType: 'linux' | 'windows', n: number): SeedPatch[] {
  const linux = [
    { name: 'kernel', classification: 'Security', severity: 'Important', rebootRequired: true },
    { name: 'openssl', classification: 'Security', severity: 'Critical', rebootRequired: false },
    { name: 'systemd', classification: 'Security', severity: 'Moderate', rebootRequired: false },
    { name: 'tzdata', classification: 'Bugfix', severity: 'Low', rebootRequired: false },
  ];
  const windows = [
    {
      name: 'Cumulative Update for Windows Server 2022',
      classification: 'Security Updates',
      severity: 'Critical',
      rebootRequired: true,
    },
    {
      name: 'Cumulative Update for .NET Framework',
      classification: 'Security Updates',
      severity: 'Important',
      rebootRequired: false,
    },
    {
      name: 'Security Intelligence Update for Microsoft Defender',
      classification: 'Definition Updates',
      severity: 'Moderate',
      rebootRequired: false,
    },
  ];
  return Array.from({ length: n }, (_, i) => {
    if (osType === 'windows') {
      const t = windows[i % windows.length] as (typeof windows)[number];
      const kb = `KB50${String(36000 + i).padStart(5, '0')}`;
      return {
        kbId: kb,
        title: `${t.name} (${kb})`,
        classification: t.classification,
        severity: t.severity,
        rebootRequired: t.rebootRequired,
      };
    }
    const t = linux[i % linux.length] as (typeof linux)[number];
    // The first synthesised patch keeps the historical kernel-patch-1 name.
    const kbId = t.name === 'kernel' ? `kernel-patch-${i + 1}.x86_64` : `${t.name}-${i + 1}.x86_64`;
    return {
      kbId,
      title:
        t.name === 'kernel'
          ? `kernel-patch-${i + 1}.x86_64:5.10.134-${i + 1}.al8`
          : `${kbId}:3.0.${i + 1}-1.al8`,
      classification: t.classification,
      severity: t.severity,
      rebootRequired: t.rebootRequired,
    };
  });
}

function makePatches(osType: 'linux' | 'windows', p: SeedPatch[] | number | undefined): PatchRecord[] {
  if (p === undefined) return [];
  const list: SeedPatch[] = typeof p === 'number' ? synthesise(osType, p) : p;
  return list.map((s) => ({
    kbId: s.kbId,
    title: s.title ?? s.kbId,
    classification: s.classification ?? 'Security',
    severity: s.severity ?? 'Important',
    status: 'Missing',
    installedTime: '',
    rebootRequired: s.rebootRequired ?? /kernel|cumulative update for windows/i.test(s.title ?? s.kbId),
  }));
}

/** Counts of an instance's patches by status (what a scan records). */
export function patchStatusCounts(patches: readonly PatchRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of patches) counts[p.status] = (counts[p.status] ?? 0) + 1;
  return counts;
}

let clock: () => Date = () => new Date();

/**
 * Replaces the emulator's wall clock for the timestamps it reports (execution dates, patch
 * operation times, snapshot creation times) — e.g. a test's fake clock, so times the emulator
 * reports and times a controller computes agree. Modelled durations still run on real timers
 * scaled by `timeScale`. Process-wide; call with no argument to restore the real clock.
 */
export function setEmulatorClock(now?: () => Date): void {
  clock = now ?? (() => new Date());
}

/** Alibaba-style UTC timestamp without milliseconds: `2024-06-01T00:00:00Z`. */
export function isoNow(): string {
  return clock()
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z');
}
