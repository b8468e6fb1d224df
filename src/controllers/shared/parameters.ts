/**
 * Validation of user-supplied template parameters against an OOS template's declared
 * `Parameters` (GetTemplate Content). Pure: returns the first problem found, or undefined.
 */
import {
  InvalidParameterValueReason,
  MissingRequiredParameterReason,
  ParameterNotDeclaredReason,
} from '../../api/conditions.js';
import type { TemplateParameter } from '../../cloud/types.js';

export interface ParameterProblem {
  reason: string;
  message: string;
}

function typeMatches(type: string, value: unknown): boolean {
  switch (type) {
    case 'String':
      return typeof value === 'string';
    case 'Number':
      return (
        typeof value === 'number' ||
        (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)))
      );
    case 'Boolean':
      return typeof value === 'boolean' || value === 'true' || value === 'false';
    case 'List':
      return Array.isArray(value);
    case 'Json':
      return typeof value === 'object' && value !== null;
    default:
      return true;
  }
}

/**
 * Checks `values` against `declared`:
 * - a key the template does not declare → `ParameterNotDeclared`;
 * - a declared parameter without a Default that is missing → `MissingRequiredParameter`;
 * - a value of the wrong Type or outside AllowedValues → `InvalidParameterValue`.
 * @param what e.g. `package template ACS-Extension-node-… v3` (used in messages).
 */
export function validateParameters(
  values: Record<string, unknown>,
  declared: Record<string, TemplateParameter>,
  what: string,
): ParameterProblem | undefined {
  const undeclared = Object.keys(values)
    .filter((k) => !(k in declared))
    .sort();
  if (undeclared.length > 0) {
    const known = Object.keys(declared).sort();
    return {
      reason: ParameterNotDeclaredReason,
      message: `parameter(s) ${undeclared.join(', ')} not declared by ${what} (declared: ${known.length > 0 ? known.join(', ') : 'none'})`,
    };
  }
  const missing = Object.entries(declared)
    .filter(([name, p]) => p.required && !(name in values))
    .map(([name]) => name)
    .sort();
  if (missing.length > 0) {
    return {
      reason: MissingRequiredParameterReason,
      message: `required parameter(s) ${missing.join(', ')} of ${what} not set in spec.parameters`,
    };
  }
  for (const [name, value] of Object.entries(values)) {
    const p = declared[name];
    if (!p) continue;
    if (!typeMatches(p.type, value)) {
      return {
        reason: InvalidParameterValueReason,
        message: `parameter ${name} of ${what} must be of type ${p.type}`,
      };
    }
    // OOS receives parameters as JSON text, so "2" matches an allowed 2 and "true" matches true.
    const same = (a: unknown): boolean =>
      JSON.stringify(a) === JSON.stringify(value) ||
      (typeof a !== 'object' && typeof value !== 'object' && String(a) === String(value));
    if (p.allowedValues && p.allowedValues.length > 0 && !p.allowedValues.some(same)) {
      return {
        reason: InvalidParameterValueReason,
        message: `parameter ${name} of ${what} must be one of ${p.allowedValues.map((a) => JSON.stringify(a)).join(', ')}`,
      };
    }
  }
  return undefined;
}
