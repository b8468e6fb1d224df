/**
 * Query templating of analysis metrics: `{{instanceIds}}`, `{{instanceIdsRegex}}`, `{{ips}}`,
 * `{{ipsRegex}}`, `{{zones}}`, `{{zonesRegex}}`, `{{batch}}` (src/api/analysis.ts
 * `QUERY_PLACEHOLDERS`) are replaced by the gated batch's facts.
 *
 * The plain forms are comma-separated (`i-a,i-b`); the `Regex` forms are an alternation for a
 * PromQL label matcher (`i-a|i-b`) whose dots are written `[.]` (`127[.]10[.]0[.]1`), so the
 * result needs no backslash and is the same inside a double-quoted, single-quoted or back-quoted
 * PromQL string. Every value is checked against its character set first (instance IDs
 * `[a-z0-9-]`, IPs `[0-9a-f.:]`, zone IDs `[a-z0-9-]`), so a rendered query never gains a quote,
 * brace or regex operator from the facts.
 */
import { QUERY_PLACEHOLDERS, type QueryPlaceholder } from '../../../api/analysis.js';

/** The facts of the batch (or execution) an analysis gates. */
export interface AnalysisContext {
  /** ECS instance IDs of the batch. */
  instanceIds: readonly string[];
  /** Their primary private IPs (IPv4 or IPv6), where known. */
  ips: readonly string[];
  /** Their zone IDs (distinct). */
  zones: readonly string[];
  /** Batch index (AppRelease; 0 = canary or first batch) or execution index (PatchPolicy). */
  batch: number;
}

const PLACEHOLDER_RE = /\{\{([^{}]*)\}\}/g;
const SAFE = {
  instanceIds: /^[a-z0-9-]+$/,
  ips: /^[0-9a-fA-F.:]+$/,
  zones: /^[a-z0-9-]+$/,
} as const;

function checked(kind: keyof typeof SAFE, values: readonly string[]): string[] {
  const out = [...new Set(values)];
  for (const v of out)
    if (!SAFE[kind].test(v))
      throw new Error(`${kind} value ${JSON.stringify(v.slice(0, 80))} is not a valid ID`);
  return out;
}

const regex = (values: string[]) => values.map((v) => v.replaceAll('.', '[.]')).join('|');

/** The placeholders of `template` that are not in QUERY_PLACEHOLDERS (e.g. `{{instanceId}}`). */
export function unknownPlaceholders(template: string): string[] {
  const known = new Set<string>(QUERY_PLACEHOLDERS);
  return [...template.matchAll(PLACEHOLDER_RE)].map((m) => m[1] ?? '').filter((p) => !known.has(p));
}

/**
 * `template` with every placeholder replaced (written exactly `{{name}}`, no spaces, as admission
 * requires).
 * @throws Error when the template uses an unknown placeholder (admission rejects these; objects
 *   stored before the rule are checked here) or a context value has characters outside its ID set.
 */
export function renderQuery(template: string, context: AnalysisContext): string {
  const unknown = unknownPlaceholders(template);
  if (unknown.length > 0)
    throw new Error(
      `unknown query placeholder {{${unknown[0]}}}; use ${QUERY_PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')}`,
    );
  const ids = checked('instanceIds', context.instanceIds);
  const ips = checked('ips', context.ips);
  const zones = checked('zones', context.zones);
  const values: Record<QueryPlaceholder, string> = {
    instanceIds: ids.join(','),
    instanceIdsRegex: regex(ids),
    ips: ips.join(','),
    ipsRegex: regex(ips),
    zones: zones.join(','),
    zonesRegex: regex(zones),
    batch: String(Math.trunc(context.batch)),
  };
  return template.replace(PLACEHOLDER_RE, (_m, name: string) => values[name as QueryPlaceholder]);
}
