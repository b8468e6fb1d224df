/**
 * Parsing of OOS template content (`GetTemplate` → top-level `Content`, JSON or YAML, format
 * `OOS-2019-06-01`) and extraction of its declared `Parameters`.
 */
import { parse as parseYaml } from 'yaml';
import { num, obj, str, type Raw } from './convert.js';
import type { TemplateParameter } from './types.js';

/**
 * Parses template `content` as JSON when `format` is `JSON` (or the text starts with `{`),
 * else as YAML. Returns the document object. Throws `Error` with the parser's message when the
 * content is not a JSON/YAML mapping.
 */
export function parseTemplateContent(content: string, format?: string): Raw {
  const text = content.trim();
  const json = format?.toUpperCase() === 'JSON' || (format === undefined && text.startsWith('{'));
  const doc: unknown = json ? JSON.parse(text) : parseYaml(text);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new Error('template content is not a mapping');
  }
  return doc as Raw;
}

/** A template `Description`/`Label` may be text or a per-language map (`{ en, zh-cn }`). */
function text(v: unknown): string | undefined {
  const s = str(v);
  if (s !== undefined) return s;
  const m = obj(v);
  return (
    str(m['en']) ??
    str(m['en-us']) ??
    Object.values(m)
      .map(str)
      .find((x) => x !== undefined)
  );
}

/**
 * Extracts `Parameters` of a parsed template document: name → `{ type, default?,
 * allowedValues?, description?, required, minValue?, maxValue?, maxLength?, allowedPattern? }`.
 * `required` is true when no `Default` is declared. `type` defaults to `String`.
 */
export function extractParameters(doc: Raw): Record<string, TemplateParameter> {
  const out: Record<string, TemplateParameter> = {};
  for (const [name, rawDef] of Object.entries(obj(doc['Parameters']))) {
    const def = obj(rawDef);
    const p: TemplateParameter = { type: str(def['Type']) ?? 'String', required: !('Default' in def) };
    if ('Default' in def) p.default = def['Default'];
    if (Array.isArray(def['AllowedValues'])) p.allowedValues = def['AllowedValues'] as unknown[];
    const description = text(def['Description']) ?? text(def['Label']);
    if (description !== undefined) p.description = description;
    const minValue = num(def['MinValue']);
    if (minValue !== undefined) p.minValue = minValue;
    const maxValue = num(def['MaxValue']);
    if (maxValue !== undefined) p.maxValue = maxValue;
    const maxLength = num(def['MaxLength']);
    if (maxLength !== undefined) p.maxLength = maxLength;
    const pattern = str(def['AllowedPattern']);
    if (pattern !== undefined) p.allowedPattern = pattern;
    out[name] = p;
  }
  return out;
}
