#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from the Go module proxy into a per-version
# cache outside the work tree, and prints the cache directory on stdout.
# A warm cache (all three binaries plus a stamp matching the go.sum files) skips the build.
#
# Env: ECSOPS_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/ecsops)
# Needs: go >= the go line of apiserver/go.mod (1.26), network access to the Go module proxy.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
K8S_VERSION="$(sed -n 's/^require k8s.io\/kubernetes v\(.*\)$/\1/p' "$HERE/apiserver/go.mod")"
ETCD_VERSION="$(sed -n 's/^require go.etcd.io\/etcd\/server\/v3 v\(.*\)$/\1/p' "$HERE/etcd/go.mod")"
CACHE_ROOT="${ECSOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ecsops}"
OUT="$CACHE_ROOT/controlplane/k8s-v${K8S_VERSION}_etcd-v${ETCD_VERSION}"
STAMP_WANT="$(cat "$HERE/apiserver/go.sum" "$HERE/etcd/go.sum" | sha256sum | cut -c1-16)"

if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" && -x "$OUT/kubectl" && "$(cat "$OUT/.stamp" 2>/dev/null)" == "$STAMP_WANT" ]]; then
  echo "controlplane: cache warm at $OUT" >&2
  echo "$OUT"
  exit 0
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-modcacherw -mod=readonly"
mkdir -p "$OUT"
start=$(date +%s)
PKG=k8s.io/component-base/version
LDFLAGS="-s -w -X $PKG.gitVersion=v${K8S_VERSION} -X $PKG.gitMajor=1 -X $PKG.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2) -X $PKG.gitTreeState=clean"
echo "controlplane: building kube-apiserver + kubectl v${K8S_VERSION} and etcd v${ETCD_VERSION} into $OUT (cold builds take minutes)" >&2
(cd "$HERE/apiserver" && go build -trimpath -ldflags "$LDFLAGS" -o "$OUT/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver) >&2
(cd "$HERE/apiserver" && go build -trimpath -ldflags "$LDFLAGS" -o "$OUT/kubectl" k8s.io/kubernetes/cmd/kubectl) >&2
(cd "$HERE/etcd" && go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3) >&2
echo "$STAMP_WANT" > "$OUT/.stamp"
echo "controlplane: built in $(( $(date +%s) - start ))s" >&2
echo "$OUT"
