/**
 * RAM policy enforcement of the emulator: a policy document given at start (`--ram-policy FILE`,
 * `EmulatorOptions.ramPolicy`) or set through the control API (`PUT /ram-policy`) decides every
 * API call (ECS and OOS) and every call an OOS template step makes inside an execution (the
 * template lists of src/cloud/ram-actions.ts; executions run with the caller's identity, as with
 * an empty `OOSAssumeRole`).
 *
 * Evaluation, as RAM documents it (policy language version 1): a statement matches when one of its
 * `Action` patterns matches `product:Action` — `*` matches any run of characters, `?` one; the
 * comparison is case-insensitive (RAM treats action names so) — and its `Resource` is `*` (the
 * emulator does not model resource ARNs: any other Resource is rejected when the policy is set).
 * An explicit `Deny` wins over any `Allow`; with no matching Allow the call is implicitly denied.
 * No policy = everything allowed (the emulator's default).
 *
 * A denied API call answers what Alibaba Cloud answers a RAM denial: HTTP 403, `Code`
 * `Forbidden.RAM`, `Message` "User not authorized to operate on the specified resource, or this API
 * doesn't support RAM." (github.com/alibaba/packer-provider/issues/34 shows the 403 and the text for
 * ECS; the reference's ERRSHAPE body), plus `AccessDeniedDetail` with `AuthAction`, `NoPermissionType`
 * (`ImplicitDeny` / `ExplicitDeny`) and `PolicyType` as RAM's access-denied diagnostics carry them.
 * A denied template step fails its loop item with the same code and message.
 *
 * Dependent actions ("associated operations" of the API reference; `dependentActionsOf` in
 * src/cloud/ram-actions.ts): a call is allowed only when its dependent actions are allowed too —
 * `oos:CreateSecretParameter` needs `kms:CreateSecret`, `oos:UpdateSecretParameter`
 * `kms:PutSecretValue`, `oos:DeleteSecretParameter` `kms:DeleteSecret`, `oos:GetSecretParameter`
 * `kms:GetSecretValue`. A denied dependent action answers the same 403 `Forbidden.RAM` with
 * `AccessDeniedDetail.AuthAction` naming the KMS action (the message names it too, in brackets, so
 * a caller that keeps only the message still sees which permission is missing).
 */
import { dependentActionsOf } from '../cloud/ram-actions.js';
import { ApiError } from './errors.js';

/** One statement of a RAM policy document. */
interface RamStatement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
}

/** A RAM policy document (`Version` "1"). */
interface RamPolicy {
  Version: string;
  Statement: RamStatement[];
}

/** Alibaba Cloud's message for `Forbidden.RAM`. */
const FORBIDDEN_RAM_MESSAGE =
  "User not authorized to operate on the specified resource, or this API doesn't support RAM.";

/** Outcome of one decision. */
type RamDecision = 'Allow' | 'ImplicitDeny' | 'ExplicitDeny';

function asList(v: unknown, what: string): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw new Error(`RAM policy: ${what} must be a string or a list of strings`);
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'i');
}

interface Compiled {
  effect: 'Allow' | 'Deny';
  actions: RegExp[];
}

/**
 * Validates and compiles `doc` (a parsed JSON policy document).
 * @throws Error naming the problem: not an object, `Version` other than "1", a statement without
 *   `Effect` Allow/Deny or `Action`, a `Resource` other than `*`.
 */
function compileRamPolicy(doc: unknown): Compiled[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new Error('RAM policy: expected a JSON object');
  const d = doc as Record<string, unknown>;
  if (String(d['Version']) !== '1') throw new Error('RAM policy: Version must be "1"');
  const stmts = d['Statement'];
  if (!Array.isArray(stmts)) throw new Error('RAM policy: Statement must be a list');
  return stmts.map((s: unknown, i) => {
    if (typeof s !== 'object' || s === null) throw new Error(`RAM policy: Statement[${i}] is not an object`);
    const st = s as Record<string, unknown>;
    if (st['Effect'] !== 'Allow' && st['Effect'] !== 'Deny')
      throw new Error(`RAM policy: Statement[${i}].Effect must be Allow or Deny`);
    const resources = asList(st['Resource'] ?? '*', `Statement[${i}].Resource`);
    if (!resources.every((r) => r === '*'))
      throw new Error(`RAM policy: Statement[${i}].Resource: the emulator models only "*"`);
    return {
      effect: st['Effect'],
      actions: asList(st['Action'], `Statement[${i}].Action`).map(globToRegExp),
    };
  });
}

/** The emulator's current RAM policy (none = allow all), shared by the API server and the engine. */
export class RamGate {
  private compiled: Compiled[] | undefined;
  private doc: RamPolicy | undefined;

  /** @throws Error on an invalid document (see {@link compileRamPolicy}). */
  constructor(policy?: unknown) {
    if (policy !== undefined) this.set(policy);
  }

  /**
   * Replaces the policy; `undefined` removes it (allow all).
   * @throws Error on an invalid document; the previous policy stays.
   */
  set(policy: unknown): void {
    if (policy === undefined || policy === null) {
      this.compiled = undefined;
      this.doc = undefined;
      return;
    }
    this.compiled = compileRamPolicy(policy);
    this.doc = structuredClone(policy) as RamPolicy;
  }

  /** The policy document in force, or undefined. */
  get(): RamPolicy | undefined {
    return this.doc;
  }

  /** Decision for `product:Action` (e.g. `ecs:RunCommand`). Deny wins; default deny under a policy. */
  decide(action: string): RamDecision {
    if (!this.compiled) return 'Allow';
    let allowed = false;
    for (const s of this.compiled) {
      if (!s.actions.some((re) => re.test(action))) continue;
      if (s.effect === 'Deny') return 'ExplicitDeny';
      allowed = true;
    }
    return allowed ? 'Allow' : 'ImplicitDeny';
  }

  /**
   * @returns the first of `actions` the policy denies with its decision, or undefined when all are
   *   allowed.
   */
  firstDenied(actions: readonly string[]): { action: string; decision: RamDecision } | undefined {
    for (const action of actions) {
      const decision = this.decide(action);
      if (decision !== 'Allow') return { action, decision };
    }
    return undefined;
  }

  /**
   * @throws ApiError 403 `Forbidden.RAM` (see {@link ramDenied}) when `action` or one of its
   *   dependent actions (`dependentActionsOf`) is denied; the error names the denied one.
   */
  check(action: string): void {
    const decision = this.decide(action);
    if (decision !== 'Allow') throw ramDenied(action, decision);
    if (!this.compiled) return;
    const dep = this.firstDenied(dependentActionsOf(action));
    if (dep) throw ramDenied(dep.action, dep.decision, action);
  }
}

/**
 * The 403 `Forbidden.RAM` error Alibaba Cloud answers a denied `action`, with `AccessDeniedDetail`.
 * @param of the call `action` is a dependent action of (the message then names `action`).
 */
function ramDenied(action: string, decision: RamDecision, of?: string): ApiError {
  const message = of ? `${FORBIDDEN_RAM_MESSAGE} (${action}, needed by ${of})` : FORBIDDEN_RAM_MESSAGE;
  return new ApiError(403, 'Forbidden.RAM', message, {
    AccessDeniedDetail: {
      AuthAction: action,
      NoPermissionType: decision === 'ExplicitDeny' ? 'ExplicitDeny' : 'ImplicitDeny',
      PolicyType: 'AccountLevelIdentityBasedPolicy',
      AuthPrincipalType: 'SubUser',
      AuthPrincipalDisplayName: 'ecsops-emulator',
    },
  });
}

/**
 * The failure message of a loop item whose template step was denied, as OOS reports a failed task:
 * the API error code and message with the action named.
 */
export function ramDeniedStepMessage(action: string, step: string): string {
  return `Forbidden.RAM: ${FORBIDDEN_RAM_MESSAGE} (${action}, task ${step})`;
}
