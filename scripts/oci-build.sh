#!/usr/bin/env bash
# Builds the Dockerfile with buildah (Debian's package) and runs the image's entrypoint.
#
#   bash scripts/oci-build.sh                 bases from scripts/oci-local-base.sh (no registry)
#   bash scripts/oci-build.sh --public        the Dockerfile's default public bases
#
# Steps: buildah bud → podman run --help / --version (as the image's USER, read-only root FS,
# all capabilities dropped, no network) → if `podman run` is refused, export the image's rootfs
# and run the entrypoint in it with chroot as uid 65532. Prints the image size. Needs root,
# buildah and podman; the npm registry must be reachable from the build stage (npm ci).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TAG="${ECSOPS_IMAGE:-localhost/ecsops:0.1.0}"
build_args=()
if [[ ${1:-} != --public ]]; then
  mapfile -t bases < <(bash "$ROOT/scripts/oci-local-base.sh")
  build_args=(--build-arg "NODE_IMAGE=${bases[0]}" --build-arg "RUNTIME_IMAGE=${bases[1]}")
fi

# BUILDAH_ISOLATION=chroot: RUN steps without an OCI runtime (crun refuses this sandbox's hybrid
# cgroup v1/v2 setup, see docs/deploy.md); set BUILDAH_ISOLATION=oci where crun/runc work.
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
# The build context is the committed tree (git archive HEAD), not the work tree: uncommitted
# edits never end up in an image. ECSOPS_CONTEXT=worktree builds the work tree instead.
context="$ROOT"
if [[ ${ECSOPS_CONTEXT:-head} != worktree ]]; then
  context="$(mktemp -d "${TMPDIR:-/tmp}/ecsops-oci-context-XXXXXX")"
  git -C "$ROOT" archive HEAD | tar -x -C "$context"
fi
cleanup() { [[ $context == "$ROOT" ]] || rm -rf "$context"; [[ -z ${rootfs:-} ]] || rm -rf "$rootfs"; }
trap cleanup EXIT
echo "+ BUILDAH_ISOLATION=$BUILDAH_ISOLATION buildah bud --layers ${build_args[*]} -t $TAG <$(git -C "$ROOT" rev-parse --short HEAD)>" >&2
start=$(date +%s)
buildah bud --layers "${build_args[@]}" -t "$TAG" "$context" >&2
echo "oci-build: built $TAG in $(($(date +%s) - start)) s" >&2
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$TAG"

run_flags=(--rm --network=none --read-only --cap-drop=ALL --security-opt=no-new-privileges)
if out="$(podman run "${run_flags[@]}" "$TAG" --help 2>&1)"; then
  echo "$out" | head -n 5
  podman run "${run_flags[@]}" --entrypoint /nodejs/bin/node "$TAG" dist/src/cli.js --version
  echo "oci-build: podman run OK" >&2
  exit 0
fi
echo "oci-build: podman run failed:" >&2
echo "$out" >&2

# Fallback: the exported rootfs in a chroot, as the image's user, with the image's entrypoint.
rootfs="$(mktemp -d "${TMPDIR:-/tmp}/ecsops-oci-rootfs-XXXXXX")"
chmod 0755 "$rootfs" # mktemp's 0700 would stop the image's user at the chroot's /
cid="$(podman create "$TAG")"
podman export "$cid" | tar -C "$rootfs" -x
podman rm "$cid" >/dev/null
user="$(podman image inspect --format '{{.Config.User}}' "$TAG")"
workdir="$(podman image inspect --format '{{.Config.WorkingDir}}' "$TAG")"
mapfile -t entrypoint < <(podman image inspect --format '{{range .Config.Entrypoint}}{{println .}}{{end}}' "$TAG" | sed '/^$/d')
echo "+ chroot --userspec=$user $rootfs /usr/bin/env -C $workdir ${entrypoint[*]} --help" >&2
chroot --userspec="$user" "$rootfs" /usr/bin/env -i -C "$workdir" NODE_ENV=production "${entrypoint[@]}" --help | head -n 5
chroot --userspec="$user" "$rootfs" /usr/bin/env -i -C "$workdir" "${entrypoint[0]}" "${entrypoint[1]}" --version
echo "oci-build: entrypoint ran in the exported rootfs (chroot) as $user" >&2
