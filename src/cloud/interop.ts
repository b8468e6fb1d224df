/**
 * CommonJS default-export interop for the `@alicloud/*` packages (compiled with `__esModule`).
 * Under Node.js ESM the default import is `module.exports` and the class is at `.default`;
 * under Vite/vitest the default import is already the class. This returns the class in both.
 */
export function cjsDefault<T>(mod: { default: T }): T {
  const inner = (mod as unknown as { default?: unknown }).default;
  return (typeof inner === 'function' ? inner : mod) as T;
}
