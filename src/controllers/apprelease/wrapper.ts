/**
 * The AppRelease wrapper: one bash script per batch, sent with ECS Cloud Assistant `RunCommand`
 * (`RunShellScript`, `EnableParameter=true`). It is rendered here from the spec — a header of
 * shell variables (user content Base64-encoded, so no quoting, heredoc or `{{…}}` parameter
 * clashes are possible) followed by the fixed {@link WRAPPER_BODY}.
 *
 * On the host, per `install.appDir`:
 *
 *   appDir/releases/<revision>/          the unpacked artifact (hooks run here)
 *   appDir/releases/<revision>.ecsops/   its hooks, env (mode 600), health check, `complete` marker
 *   appDir/current -> releases/<rev>     swapped atomically (symlink + rename(2))
 *   appDir/.ecsops/                      lock, history (activation order), logs, last-result marker
 *
 * Actions (`{{action}}` custom parameter): `deploy` — download, verify sha256 (refused before
 * anything changes), unpack, the PREVIOUS revision's stop hook, beforeInstall, swap, afterInstall,
 * start, validate, health, prune to `keepReleases`; a revision already on disk skips the download
 * (idempotent). `rollback` — to a revision on disk: stop, swap, start, health (seconds); to one not
 * on disk: deployed like `deploy` when the command carries its artifact, else a failure at step
 * download (never a success that leaves nothing running); to `none`: stop and remove `current`.
 * `uninstall` — stop, remove what the wrapper owns (`releases/`, `.ecsops/`, `current`), then
 * `rmdir` appDir (left in place, not a failure, when it holds anything else).
 *
 * Secrets: with {@link WrapperInput.secretParameter}, the header carries
 * `SECRET_ENV='{{oos-secret:<name>}}'`, resolved by Cloud Assistant on the instance. Step `secrets`
 * parses it (lines `KEY=<base64>`, no eval, a malformed line fails the step), exports the values
 * to the hooks and the exec health check only (never written by the wrapper, never printed), and
 * every line the wrapper prints from the hook log has each value replaced by `***` before it is
 * cut to 300 characters (Cloud Assistant keeps its own copy of the output).
 *
 * Output: one marker line per step, `ecsops-step <name> rc=<n> ms=<n>`, and a last line
 * `ecsops-result action=<a> revision=<r> result=ok|failed [step=<name> rc=<n>]` (also written to
 * appDir/.ecsops/last-result). Hook output goes to a log on the host; its last 20 lines are printed
 * when a step fails, so the output stays far below Cloud Assistant's 24 KB cap.
 *
 * Nothing from the controller's credentials is ever part of the command: only the spec is.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { COMMAND_LIMIT_BYTES, HOOK_ORDER, type AppReleaseSpec, type HookName } from '../../api/apprelease.js';

/** Wrapper actions (the `{{action}}` custom parameter). */
export type WrapperAction = 'deploy' | 'rollback' | 'uninstall';

/** Default hook timeouts, seconds (also the CRD defaults). */
export const DEFAULT_HOOK_TIMEOUT: Readonly<Record<HookName, number>> = {
  stop: 120,
  beforeInstall: 300,
  afterInstall: 300,
  start: 300,
  validate: 120,
};
/** Seconds allowed for download, verify and unpack in a deploy's RunCommand `Timeout`. */
export const DOWNLOAD_ALLOWANCE_SECONDS = 600;

/**
 * wrapper.sh as sent: its full-line comments dropped (bytes count against the 16 KB command
 * limit), except `# shellcheck` directives, and without indentation (see {@link unindent}). The
 * directives before its first command apply to the whole script: they are returned apart, for
 * {@link renderCommand} to put right after the shebang (so the rendered command lints the same).
 */
export function prepareWrapperBody(source: string): { directives: string[]; body: string } {
  const directives: string[] = [];
  const body: string[] = [];
  for (const raw of source.split('\n')) {
    const line = raw.trimStart();
    const directive = /^#\s*shellcheck\s/.test(line);
    if (body.length === 0 && (line === '' || (line.startsWith('#') && !directive))) continue;
    if (body.length === 0 && directive) {
      directives.push(line);
      continue;
    }
    if (line.startsWith('#') && !directive) continue;
    body.push(raw);
  }
  return { directives, body: unindent(body.join('\n')) };
}

const WRAPPER = prepareWrapperBody(readFileSync(new URL('./wrapper.sh', import.meta.url), 'utf8'));

/**
 * The fixed part of the script, from wrapper.sh next to this module (bash ≥ 4; GNU coreutils; curl
 * or wget; tar/unzip as needed). The build copies wrapper.sh next to the compiled wrapper.js
 * (package.json `build`).
 */
export const WRAPPER_BODY = WRAPPER.body;

/**
 * `script` without leading indentation (bytes count against the 16 KB command limit). A line
 * continued from a line ending in `\` keeps one space, so words stay apart. The body has no
 * multi-line quoted strings or heredocs, where indentation would matter.
 */
function unindent(script: string): string {
  const lines = script.split('\n');
  return lines.map((l, i) => (lines[i - 1]?.endsWith('\\') ? ` ${l.trimStart()}` : l.trimStart())).join('\n');
}

/** What a command is rendered from. */
export interface WrapperInput {
  action: WrapperAction;
  /** The revision to deploy / roll back to (`none`: roll back to nothing). */
  revision: string;
  /** The spec of that revision (for a rollback: the stable revision's, see stable.ts). */
  spec: AppReleaseSpec;
  /**
   * Rollback only: carry the artifact, hooks and env so a host without the release on disk
   * deploys it (default false: such a host fails at step download).
   */
  fetch?: boolean;
  /** `namespace/name`, for the comment line. */
  owner: string;
  /**
   * Name of the OOS secret parameter holding this resource's secret env document (lines
   * `KEY=<base64 of value>`), or undefined when it has none. Rendered as
   * `SECRET_ENV='{{oos-secret:<name>}}'`, which Cloud Assistant resolves on the instance
   * (RunCommand `EnableParameter=true`); the wrapper exports the decoded values to the hooks
   * only and redacts them from everything it prints.
   */
  secretParameter?: string;
}

/**
 * OOS secret parameter names: up to 180 letters, digits, `-` and `_` (ALIYUN::OOS::SecretParameter,
 * https://www.alibabacloud.com/help/en/ros/developer-reference/aliyun-oos-secretparameter).
 */
const SECRET_PARAMETER_NAME = /^[A-Za-z0-9_-]{1,180}$/;

/**
 * The `[name, value]` pairs sent in the command, sorted by name: every `install.env` entry and
 * every `install.envVars` entry with an inline `value`. An entry without one (`valueFrom`, taken
 * from a Secret) is skipped: it is delivered through the secret parameter, never the command.
 */
export function literalEnv(spec: AppReleaseSpec): [string, string][] {
  const install = (spec.install ?? {}) as { env?: unknown; envVars?: unknown };
  const pairs: [string, string][] = [];
  const add = (k: unknown, v: unknown): void => {
    const value = typeof v === 'string' ? v : (v as { value?: unknown } | null | undefined)?.value;
    if (typeof k === 'string' && typeof value === 'string') pairs.push([k, value]);
  };
  if (install.env && typeof install.env === 'object')
    for (const [k, v] of Object.entries(install.env)) add(k, v);
  if (Array.isArray(install.envVars))
    for (const e of install.envVars as ({ name?: unknown } | null)[]) add(e?.name, e);
  return pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

/** Base64 bytes of a string (4 per 3, rounded up), as the CEL admission rule counts them. */
function b64Size(s: string): number {
  return Math.ceil(Buffer.byteLength(s, 'utf8') / 3) * 4;
}

/**
 * Bytes of Base64-encoded user content in a deploy command: artifact URL, hooks, the exec health
 * check and env (key + 8 + value). The CRD's CEL rule computes the same number (characters for
 * bytes; equal for ASCII) and rejects a spec above `USER_CONTENT_BUDGET_BYTES`.
 */
export function userContentBytes(spec: AppReleaseSpec): number {
  let n = b64Size(spec.artifact.url);
  for (const h of HOOK_ORDER) {
    const hook = spec.hooks[h];
    if (hook) n += b64Size(hook.script);
  }
  if (spec.healthCheck?.exec) n += b64Size(spec.healthCheck.exec.script);
  for (const [k, v] of literalEnv(spec)) n += k.length + 8 + b64Size(v);
  return n;
}

/** `install.appDir`, defaulting to `/opt/<application>`. */
export function appDirOf(spec: AppReleaseSpec): string {
  return spec.install?.appDir ?? `/opt/${spec.application}`;
}

/** The artifact's file name for `format: file`: the URL path's last segment, else `artifact`. */
export function artifactFileName(url: string): string {
  let name: string;
  try {
    name = new URL(url).pathname.split('/').pop() ?? '';
  } catch {
    name = '';
  }
  return /^[A-Za-z0-9._-]{1,128}$/.test(name) && name !== '.' && name !== '..' ? name : 'artifact';
}

/** Single-quotes a value for bash (only used for pattern-validated values and Base64). */
function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function healthLines(spec: AppReleaseSpec): string[] {
  const h = spec.healthCheck;
  const kind = h?.http ? 'http' : h?.exec ? 'exec' : 'none';
  return [
    `HK=${kind} HPORT=${h?.http?.port ?? 0} HPATH_B64=${q(b64(h?.http?.path ?? '/'))} HEXPECT=${q((h?.http?.expectStatus ?? [200]).join(' '))}`,
    `HDELAY=${h?.initialDelaySeconds ?? 0} HPERIOD=${h?.periodSeconds ?? 5} HTIMEOUT=${h?.timeoutSeconds ?? 5} HTHRESH=${h?.failureThreshold ?? 3}`,
    `HEXEC_B64=${q(h?.exec ? b64(h.exec.script) : '')}`,
  ];
}

/**
 * The command content of one batch (plaintext; `{{action}}`, `{{revision}}` and
 * `{{ACS::InstanceId}}` are substituted by Cloud Assistant). Rollback and uninstall commands carry
 * no artifact, hooks or env: they use what the release directory on the host holds.
 */
export function renderCommand(input: WrapperInput): string {
  const { spec } = input;
  const lines = [
    '#!/bin/bash',
    ...WRAPPER.directives,
    `# ecsops AppRelease ${input.owner}: ${input.action} revision ${input.revision}`,
    `ACTION=${q('{{action}}')}`,
    `REV=${q('{{revision}}')}`,
    `APP=${q(spec.application)}`,
    `APP_DIR=${q(appDirOf(spec))}`,
    `ECSOPS_INSTANCE_ID=${q('{{ACS::InstanceId}}')}`,
    `KEEP=${spec.install?.keepReleases ?? 3}`,
    'E=()',
  ];
  if (input.secretParameter !== undefined) {
    if (!SECRET_PARAMETER_NAME.test(input.secretParameter))
      throw new Error(`invalid OOS secret parameter name ${JSON.stringify(input.secretParameter)}`);
    lines.push(`SECRET_ENV=${q(`{{oos-secret:${input.secretParameter}}}`)}`);
  }
  if (input.action === 'deploy' || (input.action === 'rollback' && input.fetch === true)) {
    lines.push(
      `URL_B64=${q(b64(spec.artifact.url))}`,
      `SHA256=${q(spec.artifact.sha256)}`,
      `FORMAT=${q(spec.artifact.format ?? 'tar.gz')} FILE_NAME=${q(artifactFileName(spec.artifact.url))}`,
    );
    for (const h of HOOK_ORDER) {
      const hook = spec.hooks[h];
      if (hook)
        lines.push(`H_${h}=${q(b64(hook.script))} T_${h}=${hook.timeoutSeconds ?? DEFAULT_HOOK_TIMEOUT[h]}`);
    }
    lines.push(...healthLines(spec));
    for (const [k, v] of literalEnv(spec)) lines.push(`E+=(${k} ${b64(v)})`);
  } else {
    lines.push(`URL_B64='' SHA256='' FORMAT=file FILE_NAME=artifact`, ...healthLines(spec));
  }
  return `${lines.join('\n')}\n${WRAPPER_BODY}`;
}

/** The Cloud Assistant custom parameters of a command (`EnableParameter=true`). */
export function commandParameters(action: WrapperAction, revision: string): Record<string, string> {
  return { action, revision };
}

/**
 * RunCommand `Timeout` (seconds) of an action: the download allowance (deploy only), every hook's
 * timeout, and the health check's worst case (initial delay + threshold × (timeout + period)),
 * plus 60 s of slack.
 */
export function commandTimeoutSeconds(spec: AppReleaseSpec, action: WrapperAction): number {
  const hooks = HOOK_ORDER.reduce(
    (sum, h) => sum + (spec.hooks[h] ? (spec.hooks[h]?.timeoutSeconds ?? DEFAULT_HOOK_TIMEOUT[h]) : 0),
    0,
  );
  const h = spec.healthCheck;
  const health = h
    ? (h.initialDelaySeconds ?? 0) +
      (h.failureThreshold ?? 3) * ((h.timeoutSeconds ?? 5) + (h.periodSeconds ?? 5))
    : 0;
  const stop = spec.hooks.stop?.timeoutSeconds ?? DEFAULT_HOOK_TIMEOUT.stop;
  const base = action === 'deploy' ? DOWNLOAD_ALLOWANCE_SECONDS + hooks + stop : hooks + stop;
  return Math.min(86_400, base + health + 60);
}

/**
 * The revision of a spec: a hash of everything that changes what runs on the host (artifact,
 * install, hooks, healthCheck, application). `version`, strategy and targets are not part of it.
 * @returns 12 lower-case hex characters.
 */
export function revisionOf(spec: AppReleaseSpec): string {
  const canonical = JSON.stringify(
    sortKeys({
      application: spec.application,
      artifact: { ...spec.artifact, format: spec.artifact.format ?? 'tar.gz' },
      install: spec.install ?? {},
      hooks: spec.hooks,
      healthCheck: spec.healthCheck ?? null,
    }),
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 12);
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.keys(v as Record<string, unknown>)
      .sort()
      .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
  );
}

/** One `ecsops-step` line. */
export interface StepMarker {
  name: string;
  rc: number;
  ms: number;
}

/** What the wrapper reported. */
export interface WrapperReport {
  steps: StepMarker[];
  /** From the `ecsops-result` line; undefined when the output has none (killed, timed out). */
  result?: { ok: boolean; step?: string; rc?: number };
  /** The failing step: the result's, else the last step with rc ≠ 0. */
  failedStep?: string;
}

/** Parses the wrapper's marker lines from (a tail of) its output. */
export function parseWrapperOutput(output: string | undefined): WrapperReport {
  const steps: StepMarker[] = [];
  let result: WrapperReport['result'];
  for (const line of (output ?? '').split('\n')) {
    const s = /^ecsops-step (\S+) rc=(\d+) ms=(-?\d+)\s*$/.exec(line);
    if (s) steps.push({ name: s[1] ?? '', rc: Number(s[2]), ms: Number(s[3]) });
    const r = /^ecsops-result action=\S+ revision=\S+ result=(ok|failed)(?: step=(\S+) rc=(\d+))?\s*$/.exec(
      line,
    );
    if (r) {
      result = { ok: r[1] === 'ok' };
      if (r[2] !== undefined) result.step = r[2];
      if (r[3] !== undefined) result.rc = Number(r[3]);
    }
  }
  const failedStep = result?.step ?? [...steps].reverse().find((s) => s.rc !== 0)?.name;
  return { steps, ...(result ? { result } : {}), ...(failedStep ? { failedStep } : {}) };
}

/** True when the rendered command fits Alibaba's command limit. */
export function fitsCommandLimit(command: string): boolean {
  return Buffer.byteLength(command, 'utf8') <= COMMAND_LIMIT_BYTES;
}

/** curl / wget exit codes of a transport failure (DNS, connect, timeout, TLS handshake, reset). */
const TRANSPORT_EXIT_CODES = new Set([4, 5, 6, 7, 18, 28, 35, 52, 55, 56]);

/**
 * True when a deploy failed downloading the artifact in transport (nothing changed on the host
 * yet): retried with backoff instead of counted. An HTTP error status (curl 22) or a sha256
 * mismatch (step verify) is not transient.
 */
export function isTransientDownloadFailure(report: WrapperReport, exitCode: number | undefined): boolean {
  if (report.failedStep !== 'download') return false;
  const rc = report.result?.rc ?? exitCode;
  return rc !== undefined && TRANSPORT_EXIT_CODES.has(rc);
}

/** The revision a successful wrapper run reports it left running (its `ecsops-result` line). */
export function reportedRevision(output: string | undefined): string | undefined {
  const lines = (output ?? '').split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^ecsops-result action=\S+ revision=(\S+) result=ok\s*$/.exec(lines[i] ?? '');
    if (m) return m[1];
  }
  return undefined;
}
