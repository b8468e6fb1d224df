/**
 * The tag key ecsops records the owning Kubernetes object's UID under (the same value as
 * `OWNER_UID_TAG` in src/api/common.ts; the emulator imports nothing outside src/emulator).
 */
export const OWNER_UID_TAG = 'ecsops.io/owner-uid';

/**
 * What one API request mentions, read from its flat RPC parameters: every instance ID it names
 * and every tag it carries. Used to scope scripted faults and for the request log.
 */
export interface RequestScope {
  /**
   * Instance IDs, deduplicated, in first-seen order, from `InstanceId`, `InstanceId.N`,
   * `InstanceIds` (JSON array, or `InstanceIds.N`), `ResourceId`, `ResourceId.N`, `ResourceIds`
   * (JSON array or `ResourceIds.N`) and, for OOS StartExecution, the `targets.ResourceIds` inside
   * the `Parameters` JSON.
   */
  instanceIds: string[];
  /**
   * Tags (key → value; '' when no value is given), from ECS `Tag.N.Key` / `Tag.N.Value` and
   * `ResourceTag.N.Key` / `.Value`, and the OOS `Tags` JSON object (StartExecution, ListExecutions).
   */
  tags: Record<string, string>;
  /**
   * Top-level string (and number / boolean, stringified) values of the `Parameters` JSON object:
   * OOS StartExecution template parameters (`action`), ECS RunCommand custom parameters
   * (`action`, `revision`). Lets a scripted fault pick one kind of start.
   */
  parameters?: Record<string, string>;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined || text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/**
 * Reads the {@link RequestScope} of one request from its flat parameters (query and form body
 * merged). Never throws: malformed JSON parameters are ignored here (the action handler reports them).
 */
export function requestScope(raw: Readonly<Record<string, string>>): RequestScope {
  const ids: string[] = [];
  const add = (id: string) => {
    if (id !== '' && !ids.includes(id)) ids.push(id);
  };
  const indexed: Array<[number, string]> = [];
  const tagParts = new Map<string, { key?: string; value?: string }>();
  for (const [k, v] of Object.entries(raw)) {
    const list = /^(?:InstanceIds?|ResourceIds?)\.(\d+)$/.exec(k);
    if (list) {
      indexed.push([Number(list[1]), v]);
      continue;
    }
    if (k === 'InstanceId' || k === 'ResourceId') {
      add(v);
      continue;
    }
    if (k === 'InstanceIds' || k === 'ResourceIds') {
      const parsed = parseJson(v);
      if (Array.isArray(parsed)) strings(parsed).forEach(add);
      else if (parsed === undefined && /^i-[a-z0-9]+$/.test(v)) add(v);
      continue;
    }
    const tag = /^((?:Resource)?Tag\.\d+)\.(Key|Value)$/.exec(k);
    if (tag) {
      const part = tagParts.get(tag[1] as string) ?? {};
      if (tag[2] === 'Key') part.key = v;
      else part.value = v;
      tagParts.set(tag[1] as string, part);
    }
  }
  for (const [, v] of indexed.sort((a, b) => a[0] - b[0])) add(v);
  const params = parseJson(raw['Parameters']);
  const parameters: Record<string, string> = {};
  if (params && typeof params === 'object' && !Array.isArray(params)) {
    for (const [k, v] of Object.entries(params as Record<string, unknown>))
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') parameters[k] = String(v);
    const t = (params as Record<string, unknown>)['targets'];
    const targets = typeof t === 'string' ? parseJson(t) : t;
    if (targets && typeof targets === 'object' && !Array.isArray(targets)) {
      strings((targets as Record<string, unknown>)['ResourceIds']).forEach(add);
    }
  }
  const tags: Record<string, string> = {};
  for (const p of tagParts.values()) if (p.key !== undefined) tags[p.key] = p.value ?? '';
  const oosTags = parseJson(raw['Tags']);
  if (oosTags && typeof oosTags === 'object' && !Array.isArray(oosTags)) {
    for (const [k, v] of Object.entries(oosTags as Record<string, unknown>)) tags[k] = String(v);
  }
  return { instanceIds: ids, tags, ...(Object.keys(parameters).length > 0 ? { parameters } : {}) };
}
