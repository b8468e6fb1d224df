/**
 * OOS Parameter Store encrypted parameters (2019-06-01 `CreateSecretParameter`,
 * `UpdateSecretParameter`, `GetSecretParameter`, `DeleteSecretParameter`) and their resolution in
 * Cloud Assistant commands (`{{oos-secret:NAME}}`), as documented (docs/emulator.md, "Encrypted
 * parameters"):
 *
 * - Name: letters, digits, `-`, `_` (the console also allows `/` paths; not modelled), at most 180
 *   characters, not starting with ALIYUN, ACS, ALIBABA, ALICLOUD or OOS (case-insensitive here).
 * - Value: at most 4,096 characters. KeyId: default "the default service CMK" (not modelled: the
 *   value is kept in memory, never logged by the request log).
 * - ClientToken (≤ 64 characters): a create repeated with the same token answers the same parameter.
 * - A name already taken answers `EntityAlreadyExists.SecretParameter` (400); an unknown one
 *   `EntityNotExists.SecretParameter` (404). These codes are the emulator's choice (the API
 *   reference lists no error codes for these actions); clients treat any `EntityAlreadyExists*` /
 *   `*NotExists*` as such.
 */
import type { ActionHandler } from './context.js';
import { ApiError, invalidParameter } from './errors.js';
import { isoNow, type RegionState, type SecretParameterRecord } from './state.js';

/** Reserved name prefixes of Parameter Store names. */
const RESERVED_PARAMETER_PREFIXES = ['ALIYUN', 'ACS', 'ALIBABA', 'ALICLOUD', 'OOS'] as const;
/** Longest parameter name, characters. */
const MAX_PARAMETER_NAME = 180;
/** Longest encrypted parameter value, characters. */
const MAX_SECRET_VALUE = 4096;

function checkName(name: string): void {
  if (name.length > MAX_PARAMETER_NAME)
    throw invalidParameter('Name', `at most ${MAX_PARAMETER_NAME} characters`);
  if (!/^[A-Za-z0-9_-]+$/.test(name))
    throw invalidParameter('Name', 'only letters, digits, hyphens and underscores');
  const upper = name.toUpperCase();
  if (RESERVED_PARAMETER_PREFIXES.some((p) => upper.startsWith(p)))
    throw invalidParameter('Name', `must not start with ${RESERVED_PARAMETER_PREFIXES.join(', ')}`);
}

function checkValue(value: string): void {
  if (value.length > MAX_SECRET_VALUE)
    throw invalidParameter('Value', `at most ${MAX_SECRET_VALUE} characters`);
}

function notFound(name: string): ApiError {
  return new ApiError(
    404,
    'EntityNotExists.SecretParameter',
    `The secret parameter "${name}" does not exist.`,
  );
}

/** The parameter's view without its value (Create/Update answers). */
function view(r: SecretParameterRecord, withValue: boolean): Record<string, unknown> {
  return {
    Name: r.name,
    Id: `sp-${Buffer.from(r.name).toString('hex').slice(0, 16)}`,
    Type: 'Secret',
    KeyId: r.keyId,
    Description: r.description,
    ParameterVersion: r.parameterVersion,
    CreatedDate: r.createdDate,
    UpdatedDate: r.updatedDate,
    CreatedBy: 'emulator',
    UpdatedBy: 'emulator',
    ShareType: 'Private',
    Tags: r.tags,
    ...(withValue ? { Value: r.value } : {}),
  };
}

function tagsOf(raw: unknown): Record<string, string> {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw invalidParameter('Tags', 'expected a JSON object');
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v)]));
}

const createSecretParameter: ActionHandler = (ctx) => {
  const p = ctx.params;
  const name = p.required('Name');
  checkName(name);
  const value = p.required('Value');
  checkValue(value);
  const type = p.oneOf('Type', ['Secret'] as const, 'Secret');
  void type;
  const token = p.str('ClientToken');
  if (token !== undefined && token.length > 64)
    throw invalidParameter('ClientToken', 'at most 64 characters');
  const region = ctx.state.region(ctx.regionId);
  const prev = region.secretParameters.get(name);
  if (prev) {
    if (token !== undefined && prev.clientToken === token) return { Parameter: view(prev, false) };
    throw new ApiError(
      400,
      'EntityAlreadyExists.SecretParameter',
      `The secret parameter "${name}" already exists.`,
    );
  }
  const now = isoNow();
  const rec: SecretParameterRecord = {
    name,
    value,
    keyId: p.str('KeyId') ?? 'default-service-cmk',
    description: p.str('Description') ?? '',
    parameterVersion: 1,
    tags: tagsOf(p.json('Tags')),
    createdDate: now,
    updatedDate: now,
    ...(token !== undefined ? { clientToken: token } : {}),
  };
  region.secretParameters.set(name, rec);
  return { Parameter: view(rec, false) };
};

const updateSecretParameter: ActionHandler = (ctx) => {
  const p = ctx.params;
  const name = p.required('Name');
  const value = p.required('Value');
  checkValue(value);
  const rec = ctx.state.region(ctx.regionId).secretParameters.get(name);
  if (!rec) throw notFound(name);
  if (rec.value !== value) {
    rec.value = value;
    rec.parameterVersion += 1;
  }
  const d = p.str('Description');
  if (d !== undefined) rec.description = d;
  rec.updatedDate = isoNow();
  return { Parameter: view(rec, false) };
};

const getSecretParameter: ActionHandler = (ctx) => {
  const p = ctx.params;
  const name = p.required('Name');
  const rec = ctx.state.region(ctx.regionId).secretParameters.get(name);
  if (!rec) throw notFound(name);
  return { Parameter: view(rec, p.bool('WithDecryption') === true) };
};

const deleteSecretParameter: ActionHandler = (ctx) => {
  const name = ctx.params.required('Name');
  const region = ctx.state.region(ctx.regionId);
  if (!region.secretParameters.delete(name)) throw notFound(name);
  return {};
};

/** The OOS Parameter Store actions of this module. */
export const SECRET_PARAMETER_ACTIONS: Record<string, ActionHandler> = {
  CreateSecretParameter: createSecretParameter,
  UpdateSecretParameter: updateSecretParameter,
  GetSecretParameter: getSecretParameter,
  DeleteSecretParameter: deleteSecretParameter,
};

/** `{{oos-secret:NAME}}` (spaces allowed around the parts, as the Cloud Assistant agent's pattern). */
const SECRET_REF = /\{\{\s*oos-secret\s*:\s*([\w.-]+)\s*\}\}/g;

/** Names of the encrypted parameters `content` references, sorted and unique. */
function referencedSecretParameters(content: string): string[] {
  return [...new Set([...content.matchAll(SECRET_REF)].map((m) => m[1] ?? ''))].sort();
}

/**
 * Resolves every `{{oos-secret:NAME}}` of `content` from the region's parameters, as the Cloud
 * Assistant agent does on the instance right before it runs the script.
 * @returns the resolved script, or `{ missing }` naming the first parameter that does not exist.
 */
export function resolveSecretParameters(
  content: string,
  region: RegionState,
): { script: string } | { missing: string } {
  for (const name of referencedSecretParameters(content))
    if (!region.secretParameters.has(name)) return { missing: name };
  return {
    script: content.replace(
      SECRET_REF,
      (_all, name: string) => region.secretParameters.get(name)?.value ?? '',
    ),
  };
}
