import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';

/** A tag given in a seed: either `{ key, value }` or the Alibaba spelling `{ Key, Value }`. */
export type SeedTag = { key: string; value?: string } | { Key: string; Value?: string };

/** A patch that an instance is missing until a patch install runs. */
export interface SeedPatch {
  kbId: string;
  title?: string;
  /** e.g. `Security`, `Bugfix`; default `Security`. */
  classification?: string;
  /** e.g. `Critical`, `Important`; default `Important`. */
  severity?: string;
  /** Installing it leaves the instance `InstalledPendingReboot` until a reboot; default: kernel / Windows cumulative updates. */
  rebootRequired?: boolean;
}

/**
 * A package already installed on an instance when the seed is applied: the package state OOS
 * `ListInstancePackageStates` reports until an execution changes it.
 */
export interface SeedInstalledPackage {
  /** Package template name; it must exist once the seed is merged (seeded or public). */
  name: string;
  /** Template version; default the template's latest. */
  version?: string;
  /** Recorded package parameters (not validated, so a seed can model drift). Default `{}`. */
  parameters?: Record<string, unknown>;
}

/** Instance status values of ECS DescribeInstances. */
export type InstanceStatus = 'Running' | 'Stopped' | 'Starting' | 'Stopping' | 'Pending';

/** One explicit instance of a seed. `instanceId` must match `^i-[a-z0-9]+$`. */
export interface SeedInstance {
  instanceId: string;
  instanceName?: string;
  zoneId?: string;
  status?: InstanceStatus;
  osType?: 'linux' | 'windows';
  osName?: string;
  /** Map `{ env: prod }` or list of `{ key, value }`. */
  tags?: Record<string, string> | SeedTag[];
  cloudAssistantOnline?: boolean;
  cloudAssistantVersion?: string;
  /** Patches this instance is missing, or a number N to synthesise N patches. */
  patches?: SeedPatch[] | number;
  /** Packages already installed (one package state per entry). */
  installed?: SeedInstalledPackage[];
  /** Primary private IPv4 address; default: allocated (see `CloudState.addInstances`). */
  privateIpAddress?: string;
}

/**
 * A generated fleet: `count` instances with IDs `${idPrefix}${zero-padded index}` (index from
 * `startIndex`, default 1; width = max(4, digits of the last index)), so IDs are deterministic.
 */
export interface SeedGenerate extends Omit<SeedInstance, 'instanceId' | 'instanceName'> {
  count: number;
  idPrefix?: string;
  startIndex?: number;
  /** Zones cycled round-robin; default `[<region>-h]`. */
  zones?: string[];
}

/** Declared parameter of a template version (OOS template `Parameters` entry). */
export interface SeedParameterDecl {
  Type: 'String' | 'Number' | 'Boolean' | 'List' | 'Json';
  Default?: unknown;
  AllowedValues?: unknown[];
  Description?: string;
  /** Number parameters: inclusive bounds (OOS `MinValue` / `MaxValue`). */
  MinValue?: number;
  MaxValue?: number;
}

/** One version of a package template. */
export interface SeedTemplateVersion {
  /** `v1`, `v2` … ; default `v<position>`. */
  version?: string;
  versionName?: string;
  parameters?: Record<string, SeedParameterDecl>;
}

/** An OOS Package template (TemplateType `Package`). */
export interface SeedPackageTemplate {
  name: string;
  /** Object (serialised to a JSON string like the real `Description`) or string. */
  description?: string | Record<string, unknown>;
  shareType?: 'Public' | 'Private';
  versions: SeedTemplateVersion[];
}

/** Per-region part of a seed. */
export interface SeedRegion {
  instances?: SeedInstance[];
  generate?: SeedGenerate | SeedGenerate[];
}

/**
 * The emulator's seed document (YAML or JSON). Merging a seed adds or replaces instances by ID
 * and package templates by name.
 */
export interface Seed {
  regions?: Record<string, SeedRegion>;
  packageTemplates?: SeedPackageTemplate[];
}

/**
 * Reads and parses a YAML (or JSON) seed file.
 * @throws Error when the file cannot be read or is not a mapping.
 */
export async function loadSeedFile(path: string): Promise<Seed> {
  return parseSeed(await readFile(path, 'utf8'));
}

/**
 * Parses seed text (YAML superset of JSON).
 * @throws Error when the document is not a mapping.
 */
export function parseSeed(text: string): Seed {
  const doc = parse(text) as unknown;
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error('seed document must be a mapping');
  return doc as Seed;
}

/** Normalises seed tags to a `key → value` map. */
export function normalizeTags(tags: SeedInstance['tags']): Record<string, string> {
  if (!tags) return {};
  if (Array.isArray(tags)) {
    const out: Record<string, string> = {};
    for (const t of tags) {
      if ('key' in t) out[t.key] = t.value ?? '';
      else out[t.Key] = t.Value ?? '';
    }
    return out;
  }
  return Object.fromEntries(Object.entries(tags).map(([k, v]) => [k, String(v)]));
}

/** Expands a generated fleet into explicit instances (deterministic IDs). */
export function expandGenerate(regionId: string, g: SeedGenerate): SeedInstance[] {
  const start = g.startIndex ?? 1;
  const last = start + g.count - 1;
  const width = Math.max(4, String(last).length);
  const prefix = g.idPrefix ?? 'i-gen';
  const zones = g.zones && g.zones.length > 0 ? g.zones : [`${regionId}-h`];
  const out: SeedInstance[] = [];
  for (let i = 0; i < g.count; i++) {
    const n = start + i;
    const { count: _c, idPrefix: _p, startIndex: _s, zones: _z, ...rest } = g;
    out.push({
      ...rest,
      instanceId: `${prefix}${String(n).padStart(width, '0')}`,
      instanceName: `${prefix.replace(/^i-/, '')}-${n}`,
      zoneId: g.zoneId ?? zones[i % zones.length],
    });
  }
  return out;
}
