#!/bin/bash
# The fixed body of the AppRelease wrapper (see wrapper.ts for the layout on the host, the actions
# and the output markers). wrapper.ts reads this file, drops these comment lines and the indentation
# (bytes count against the 16 KB command limit) and sends it after a header of variables:
#   ACTION REV APP APP_DIR ECSOPS_INSTANCE_ID KEEP E=(key b64 ...) URL_B64 SHA256 FORMAT FILE_NAME
#   H_<hook> T_<hook> HK HPORT HPATH_B64 HEXPECT HDELAY HPERIOD HTIMEOUT HTHRESH HEXEC_B64
#   SECRET_ENV (optional: the resolved OOS secret parameter, lines KEY=<base64 of value>)
# Plain bash >= 4, GNU coreutils, curl or wget, tar/unzip as needed. No heredocs or multi-line
# strings (the indentation is dropped). Checked by shellcheck -s bash (test/unit/apprelease).
# The directive below applies to the whole script; wrapper.ts keeps it right after the shebang of
# every rendered command. SC2329: the step functions are only called through `step <name> <function>`.
# SC2034: the header's H_<hook> and T_<hook> are read by name (${!v} in unpack).
# shellcheck disable=SC2329,SC2034
set -u
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
d64() { printf '%s' "$1" | base64 -d; }
now_ms() { date +%s%3N; }
REL_DIR="$APP_DIR/releases"
STATE="$APP_DIR/.ecsops"
LOG=/dev/null
# Secret names and values (SECRET_ENV decoded; exported to hooks only), and R: the strings redacted
# from every line printed (each value, and each line of 8+ characters of a multi-line one).
SK=() SV=() R=()
# Prints stdin with every R string replaced by ***, then each line cut to 300 characters.
# ${R[@]+...}: bash < 4.4 takes an empty array for an unset variable under set -u.
redact() {
  local l s
  while IFS= read -r l || [ -n "$l" ]; do
    for s in ${R[@]+"${R[@]}"}; do l=${l//"$s"/***}; done
    printf '%s\n' "${l:0:300}"
  done
}
finish() {
  local line="ecsops-result action=$ACTION revision=$REV result=$1"
  [ "$1" = ok ] || line="$line step=$2 rc=$3"
  if [ -d "$STATE" ]; then echo "$line" >"$STATE/last-result"; fi
  if [ "$1" != ok ] && [ -f "$LOG" ]; then
    echo "--- last lines of $LOG ---"
    tail -n 20 "$LOG" | redact
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
  chmod 700 "$STATE/logs" || return 1
  LOG="$STATE/logs/$REV-$ACTION.log"
  : >"$LOG" || return 1
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$STATE/lock" || return 1
    flock -w 600 9 || return 1
  fi
  CUR=""
  if [ -L "$APP_DIR/current" ]; then CUR=$(basename "$(readlink "$APP_DIR/current")"); fi
  return 0
}
# Parses SECRET_ENV (lines KEY=<base64>) without eval, through pipes only (a here-string may be a
# temp file). Never prints a value; a malformed line fails step secrets.
load_secrets() {
  local l k v n=0
  while IFS= read -r l; do
    n=$((n + 1))
    [ -z "$l" ] && continue
    k=${l%%=*}
    v=${l#*=}
    # The x keeps the value's trailing newlines from the command substitution.
    if ! [[ $l == *=* && $k =~ ^[A-Za-z_][A-Za-z0-9_]*$ && $v =~ ^[A-Za-z0-9+/]*=?=?$ ]] ||
      ! v=$(d64 "$v" 2>/dev/null && printf x); then
      echo "ecsops: secret line $n is not KEY=<base64>"
      return 2
    fi
    v=${v%x}
    SK+=("$k")
    SV+=("$v")
    R+=("$v")
    while IFS= read -r l; do
      if [ "${#l}" -ge 8 ] && [ "$l" != "$v" ]; then R+=("$l"); fi
    done < <(printf '%s\n' "$v")
  done < <(printf '%s\n' "$SECRET_ENV")
}
run_in() {
  local rev=$1 k
  (
    # The timeout and script stay in the positional parameters, which no env key can overwrite.
    set -- "$2" "$3"
    cd "$REL_DIR/$rev" || exit 1
    export APP_DIR ECSOPS_INSTANCE_ID ECSOPS_APPLICATION="$APP" ECSOPS_REVISION="$rev"
    export ECSOPS_RELEASE_DIR="$REL_DIR/$rev" ECSOPS_PREVIOUS_REVISION="$CUR"
    set -a
    # env: written by unpack, KEY=<printf %q value> lines.
    # shellcheck source=/dev/null
    if [ -f "$REL_DIR/$rev.ecsops/env" ]; then . "$REL_DIR/$rev.ecsops/env"; fi
    set +a
    for ((k = 0; k < ${#SK[@]}; k++)); do export "${SK[k]}=${SV[k]}"; done
    exec timeout -k 5 "$1" bash "$2"
    # fd 9 (the appDir lock) is closed: a server a hook starts in the background must not hold it.
  ) >>"$LOG" 2>&1 </dev/null 9>&-
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
  # health.conf: written by unpack, the H* variables, printf %q quoted.
  # shellcheck source=/dev/null
  . "$meta/health.conf"
  [ "$HK" = none ] && return 0
  sleep "$HDELAY"
  while :; do
    if [ "$HK" = http ]; then
      # SC2153: HPATH (not a misspelt PATH) is set by health.conf, sourced above.
      # shellcheck disable=SC2153
      code=$(curl -s -o /dev/null -m "$HTIMEOUT" -w '%{http_code}' "http://${ECS_PRIVATE_IP:-127.0.0.1}:$HPORT$HPATH" 2>>"$LOG")
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
    if [ -n "${!v:-}" ]; then
      d64 "${!v}" >"$TMP/meta/hooks/$h.sh" || return 1
      echo "${!t}" >"$TMP/meta/hooks/$h.timeout" || return 1
    fi
  done
  if [ -n "$HEXEC_B64" ]; then d64 "$HEXEC_B64" >"$TMP/meta/hooks/health.sh"; fi
  printf 'HK=%q\nHPORT=%q\nHPATH=%q\nHEXPECT=%q\nHDELAY=%q\nHPERIOD=%q\nHTIMEOUT=%q\nHTHRESH=%q\n' \
    "$HK" "$HPORT" "$(d64 "$HPATH_B64")" "$HEXPECT" "$HDELAY" "$HPERIOD" "$HTIMEOUT" "$HTHRESH" >"$TMP/meta/health.conf"
  (
    umask 077
    : >"$TMP/meta/env"
    for ((k = 0; k < ${#E[@]}; k += 2)); do
      printf '%s=%q\n' "${E[k]}" "$(d64 "${E[k + 1]}")" >>"$TMP/meta/env"
    done
  ) || return 1
  rm -rf "${REL_DIR:?}/$REV" "$REL_DIR/$REV.ecsops"
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
# Uninstall removes only what the wrapper owns, then appDir itself when nothing else is left in it.
remove_owned() {
  rm -rf "${REL_DIR:?}" "${STATE:?}" || return 1
  rm -f "$APP_DIR/current" "$APP_DIR"/.current.* || return 1
  rmdir "$APP_DIR" 2>/dev/null || echo "ecsops: $APP_DIR holds other files; left in place"
}
prune() {
  local -A kept=()
  local r d n=1
  kept[$REV]=1
  echo "$REV" >>"$STATE/history"
  tail -n 200 "$STATE/history" >"$STATE/history.tmp" && mv -f "$STATE/history.tmp" "$STATE/history"
  while read -r r; do
    [ -z "$r" ] && continue
    if [ -z "${kept[$r]:-}" ] && [ "$n" -lt "$KEEP" ]; then
      kept[$r]=1
      n=$((n + 1))
    fi
  done < <(tac "$STATE/history")
  for d in "$REL_DIR"/*.ecsops "$REL_DIR"/.tmp-*; do
    [ -e "$d" ] || continue
    r=$(basename "$d" .ecsops)
    case "$r" in .tmp-*) [ "$r" = ".tmp-$REV" ] || rm -rf "$d"; continue ;; esac
    [ -n "${kept[$r]:-}" ] || rm -rf "${REL_DIR:?}/$r" "$d"
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
if [ -n "${SECRET_ENV:-}" ]; then step secrets load_secrets; fi
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
      echo "ecsops: no stable revision; stopping ${CUR:-nothing} and removing current"
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
    step remove remove_owned
    finish ok
    ;;
  *)
    echo "ecsops: unknown action $ACTION"
    finish failed prepare 2
    ;;
esac
