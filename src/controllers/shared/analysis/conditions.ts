/**
 * `successCondition` / `failureCondition` of an analysis metric: CEL expressions (the language of
 * Kubernetes `x-kubernetes-validations`, https://github.com/google/cel-spec) over the measured
 * value, evaluated with `@marcbachmann/cel-js` (a parser and tree-walking evaluator: no `eval`,
 * no `new Function`, no access to JavaScript objects beyond the two variables below).
 *
 * Variables:
 * - `result`: a number (CEL double) for a scalar or a one-sample vector; otherwise the list of
 *   the samples' values (`result[0]`, `result.all(r, r < 0.05)`, `size(result)`).
 * - `results`: always the list (a scalar is a one-element list).
 * Functions beyond standard CEL: `isNaN(double)`, `isInf(double)`.
 * Prometheus' `NaN`, `+Inf`, `-Inf` become the doubles NaN, +∞, −∞ (every comparison with NaN is
 * false, so `result < 0.05` is false for NaN: write `isNaN(result) || result < 0.05` to accept it).
 */
import { Environment } from '@marcbachmann/cel-js';

type Compiled = (context: Record<string, unknown>) => unknown;

const env = new Environment({ limits: { maxAstNodes: 500, maxDepth: 32, maxListElements: 100 } })
  .registerVariable('result', 'dyn')
  .registerVariable('results', 'list<double>')
  .registerFunction('isNaN(double): bool', (x: number) => Number.isNaN(x))
  .registerFunction('isInf(double): bool', (x: number) => x === Infinity || x === -Infinity);

const MAX_CACHED = 256;
const cache = new Map<string, Compiled>();

/** One line of a cel-js error (its message carries a multi-line source excerpt). */
function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return (msg.split('\n')[0] ?? '').trim() || 'invalid expression';
}

function compile(expression: string): Compiled {
  const hit = cache.get(expression);
  if (hit) return hit;
  const parsed = env.parse(expression);
  const checked = parsed.check();
  if (!checked.valid) throw new Error(oneLine(checked.error));
  if (checked.type !== 'bool' && checked.type !== 'dyn')
    throw new Error(`the expression is of type ${checked.type}, not bool`);
  if (cache.size >= MAX_CACHED) cache.clear();
  const fn = parsed as unknown as Compiled;
  cache.set(expression, fn);
  return fn;
}

/**
 * Why `expression` cannot be a success/failure condition (a parse or type error, one line), or
 * undefined when it compiles to a bool (or dyn) expression over `result` / `results`.
 * Admission cannot parse CEL inside a string, so the controller checks this at runtime (Stalled).
 */
export function conditionProblem(expression: string): string | undefined {
  try {
    compile(expression);
    return undefined;
  } catch (err) {
    return oneLine(err);
  }
}

/**
 * Evaluates `expression` with `result` / `results` bound from `values` (see the module comment).
 * @param values the samples' values (at least one; a scalar is one value).
 * @returns the boolean value of the expression.
 * @throws Error (one-line message) when the expression does not compile, fails at run time
 *   (e.g. `result < 0.05` on a list, an index out of range) or yields a non-bool.
 */
export function evaluateCondition(expression: string, values: readonly number[]): boolean {
  const fn = compile(expression);
  const result = values.length === 1 ? values[0] : [...values];
  let out: unknown;
  try {
    out = fn({ result, results: [...values] });
  } catch (err) {
    const msg = oneLine(err);
    if (values.length !== 1 && msg.startsWith('no such overload'))
      throw new Error(
        `the query returned ${values.length} samples, so result is a list: use result[i] or result.all(r, ...), or aggregate in the query (${msg})`,
        { cause: err },
      );
    throw new Error(msg, { cause: err });
  }
  if (typeof out !== 'boolean') throw new Error(`the expression returned ${typeof out}, not bool`);
  return out;
}
