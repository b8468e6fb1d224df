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
 * `uninstall` — stop, remove appDir.
 *
 * Output: one marker line per step, `ecsops-step <name> rc=<n> ms=<n>`, and a last line
 * `ecsops-result action=<a> revision=<r> result=ok|failed [step=<name> rc=<n>]` (also written to
 * appDir/.ecsops/last-result). Hook output goes to a log on the host; its last 20 lines are printed
 * when a step fails, so the output stays far below Cloud Assistant's 24 KB cap.
 *
 * Nothing from the controller's credentials is ever part of the command: only the spec is.
 */
import { createHash } from 'node:crypto';
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
 * The fixed part of the script (bash ≥ 4; GNU coreutils; curl or wget; tar/unzip as needed).
 * Written with `$\{` where bash has `${` (a template literal would substitute it); restored below,
 * and sent without its indentation (see {@link unindent}).
 */
export const WRAPPER_BODY = unindent(
  String.raw`set -u
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
d64() { printf '%s' "$1" | base64 -d; }
now_ms() { date +%s%3N; }
REL_DIR="$APP_DIR/releases"
STATE="$APP_DIR/.ecsops"
LOG=/dev/null
finish() {
  local line="ecsops-result action=$ACTION revision=$REV result=$1"
  [ "$1" = ok ] || line="$line step=$2 rc=$3"
  [ -d "$STATE" ] && echo "$line" >"$STATE/last-result"
  if [ "$1" != ok ] && [ -f "$LOG" ]; then
    echo "--- last lines of $LOG ---"
    tail -n 20 "$LOG" | cut -c1-300
  fi
  echo "$line"
  [ "$1" = ok ] && exit 0
  exit "$3"
}
step() {
  local name=$1 t0 rc
  shift
  t0=$(now_ms)
  "$@"
  rc=$?
  echo "ecsops-step $name rc=$rc ms=$(($(now_ms) - t0))"
  [ "$rc" -eq 0 ] || finish failed "$name" "$rc"
}
prepare() {
  mkdir -p "$REL_DIR" "$STATE/logs" || return 1
  LOG="$STATE/logs/$REV-$ACTION.log"
  : >"$LOG" || return 1
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$STATE/lock" && flock -w 600 9 || return 1
  fi
  CUR=""
  if [ -L "$APP_DIR/current" ]; then CUR=$(basename "$(readlink "$APP_DIR/current")"); fi
  return 0
}
run_in() {
  local rev=$1 timeout=$2 file=$3
  (
    cd "$REL_DIR/$rev" || exit 1
    export APP_DIR ECSOPS_INSTANCE_ID ECSOPS_APPLICATION="$APP" ECSOPS_REVISION="$rev"
    export ECSOPS_RELEASE_DIR="$REL_DIR/$rev" ECSOPS_PREVIOUS_REVISION="$CUR"
    set -a
    [ -f "$REL_DIR/$rev.ecsops/env" ] && . "$REL_DIR/$rev.ecsops/env"
    set +a
    exec timeout -k 5 "$timeout" bash "$file"
  ) >>"$LOG" 2>&1 </dev/null
}
run_hook() {
  local meta="$REL_DIR/$2.ecsops"
  [ -f "$meta/hooks/$1.sh" ] || return 0
  echo "=== $1 ($2) ===" >>"$LOG"
  run_in "$2" "$(cat "$meta/hooks/$1.timeout" 2>/dev/null || echo 300)" "$meta/hooks/$1.sh"
}
health() {
  local meta="$REL_DIR/$1.ecsops" i=1 code
  [ -f "$meta/health.conf" ] || return 0
  . "$meta/health.conf"
  [ "$HK" = none ] && return 0
  sleep "$HDELAY"
  while :; do
    if [ "$HK" = http ]; then
      code=$(curl -s -o /dev/null -m "$HTIMEOUT" -w '%{http_code}' "http://127.0.0.1:$HPORT$HPATH" 2>>"$LOG")
      echo "health probe $i: HTTP $code" >>"$LOG"
      case " $HEXPECT " in *" $code "*) return 0 ;; esac
    else
      echo "=== health probe $i ===" >>"$LOG"
      run_in "$1" "$HTIMEOUT" "$meta/hooks/health.sh" && return 0
    fi
    [ "$i" -ge "$HTHRESH" ] && return 1
    i=$((i + 1))
    sleep "$HPERIOD"
  done
}
fetch() {
  local url
  url=$(d64 "$URL_B64")
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 --retry-connrefused --connect-timeout 10 -o "$1" "$url" 2>>"$LOG"
  else
    wget -q -t 3 --retry-connrefused -T 30 -O "$1" "$url" 2>>"$LOG"
  fi
}
verify() {
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$SHA256" ] && return 0
  echo "sha256 mismatch: want $SHA256, got $got; release refused"
  rm -rf "$TMP"
  return 1
}
unpack() {
  local h v t k
  mkdir -p "$TMP/root" "$TMP/meta/hooks" || return 1
  case "$FORMAT" in
    tar.gz) tar -xzf "$TMP/artifact" -C "$TMP/root" ;;
    zip) unzip -q "$TMP/artifact" -d "$TMP/root" ;;
    *) cp "$TMP/artifact" "$TMP/root/$FILE_NAME" ;;
  esac >>"$LOG" 2>&1 || return 1
  for h in stop beforeInstall afterInstall start validate; do
    v="H_$h"
    t="T_$h"
    if [ -n "$\{!v:-}" ]; then
      d64 "$\{!v}" >"$TMP/meta/hooks/$h.sh" && echo "$\{!t}" >"$TMP/meta/hooks/$h.timeout" || return 1
    fi
  done
  [ -n "$HEXEC_B64" ] && d64 "$HEXEC_B64" >"$TMP/meta/hooks/health.sh"
  printf 'HK=%q\nHPORT=%q\nHPATH=%q\nHEXPECT=%q\nHDELAY=%q\nHPERIOD=%q\nHTIMEOUT=%q\nHTHRESH=%q\n' \
    "$HK" "$HPORT" "$(d64 "$HPATH_B64")" "$HEXPECT" "$HDELAY" "$HPERIOD" "$HTIMEOUT" "$HTHRESH" >"$TMP/meta/health.conf"
  (
    umask 077
    : >"$TMP/meta/env"
    for ((k = 0; k < $\{#E[@]}; k += 2)); do
      printf '%s=%q\n' "$\{E[k]}" "$(d64 "$\{E[k + 1]}")" >>"$TMP/meta/env"
    done
  ) || return 1
  rm -rf "$\{REL_DIR:?}/$REV" "$REL_DIR/$REV.ecsops"
  mv "$TMP/root" "$REL_DIR/$REV" && mv "$TMP/meta" "$REL_DIR/$REV.ecsops" &&
    touch "$REL_DIR/$REV.ecsops/complete" && rm -rf "$TMP"
}
stop_current() {
  [ -n "$CUR" ] && [ -d "$REL_DIR/$CUR" ] || return 0
  run_hook stop "$CUR"
}
swap() {
  ln -sfn "releases/$1" "$APP_DIR/.current.$$" && mv -Tf "$APP_DIR/.current.$$" "$APP_DIR/current"
}
unlink_current() {
  rm -f "$APP_DIR/current"
}
prune() {
  local -A keep=()
  local r d n=1
  keep[$REV]=1
  echo "$REV" >>"$STATE/history"
  tail -n 200 "$STATE/history" >"$STATE/history.tmp" && mv -f "$STATE/history.tmp" "$STATE/history"
  while read -r r; do
    [ -z "$r" ] && continue
    if [ -z "$\{keep[$r]:-}" ] && [ "$n" -lt "$KEEP" ]; then
      keep[$r]=1
      n=$((n + 1))
    fi
  done < <(tac "$STATE/history")
  for d in "$REL_DIR"/*.ecsops "$REL_DIR"/.tmp-*; do
    [ -e "$d" ] || continue
    r=$(basename "$d" .ecsops)
    case "$r" in .tmp-*) [ "$r" = ".tmp-$REV" ] || rm -rf "$d"; continue ;; esac
    [ -n "$\{keep[$r]:-}" ] || rm -rf "$\{REL_DIR:?}/$r" "$d"
  done
  return 0
}
download_release() {
  rm -rf "$TMP"
  mkdir -p "$TMP" || finish failed download 1
  step download fetch "$TMP/artifact"
  step verify verify "$TMP/artifact"
  step unpack unpack
}
install_release() {
  step stop stop_current
  step beforeInstall run_hook beforeInstall "$REV"
  step swap swap "$REV"
  step afterInstall run_hook afterInstall "$REV"
  step start run_hook start "$REV"
  step validate run_hook validate "$REV"
  step health health "$REV"
  step prune prune
  finish ok
}
step prepare prepare
TMP="$REL_DIR/.tmp-$REV"
case "$ACTION" in
  deploy)
    if [ -f "$REL_DIR/$REV.ecsops/complete" ]; then
      echo "ecsops: release $REV is already on disk"
    else
      download_release
    fi
    install_release
    ;;
  rollback)
    if [ "$REV" = none ]; then
      echo "ecsops: no stable revision; stopping $\{CUR:-nothing} and removing current"
      step stop stop_current
      step swap unlink_current
      finish ok
    fi
    if [ ! -f "$REL_DIR/$REV.ecsops/complete" ]; then
      if [ -z "$URL_B64" ]; then
        echo "ecsops: release $REV is not on disk and cannot be downloaded again"
        finish failed download 3
      fi
      echo "ecsops: release $REV is not on disk; deploying it"
      download_release
      install_release
    fi
    if [ "$CUR" != "$REV" ]; then
      step stop stop_current
      step swap swap "$REV"
    fi
    step start run_hook start "$REV"
    step health health "$REV"
    step prune prune
    finish ok
    ;;
  uninstall)
    step stop stop_current
    step remove rm -rf "$APP_DIR"
    finish ok
    ;;
  *)
    echo "ecsops: unknown action $ACTION"
    finish failed prepare 2
    ;;
esac
`.replaceAll('$\\{', '${'),
);

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
  for (const [k, v] of Object.entries(spec.install?.env ?? {})) n += k.length + 8 + b64Size(v);
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
    `# ecsops AppRelease ${input.owner}: ${input.action} revision ${input.revision}`,
    `ACTION=${q('{{action}}')}`,
    `REV=${q('{{revision}}')}`,
    `APP=${q(spec.application)}`,
    `APP_DIR=${q(appDirOf(spec))}`,
    `ECSOPS_INSTANCE_ID=${q('{{ACS::InstanceId}}')}`,
    `KEEP=${spec.install?.keepReleases ?? 3}`,
    'E=()',
  ];
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
    for (const [k, v] of Object.entries(spec.install?.env ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)))
      lines.push(`E+=(${k} ${b64(v)})`);
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
