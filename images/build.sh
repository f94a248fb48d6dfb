#!/usr/bin/env bash
# Build LoopPhase's images with docker or podman: `images/build.sh [operator] [agent]` (both
# when none is named), from anywhere; `make images` calls it. `images/build.sh --engine` prints
# the engine it would use.
#
#   DOCKER          the engine: docker when its daemon answers, else podman (override freely)
#   OPERATOR_IMAGE  tag of the operator image (loopphase-operator:dev)
#   AGENT_IMAGE     tag of the agent image (loopphase-agent:dev)
#   BUILD_ARGS      extra `build` arguments, e.g. "--build-arg WITH_OPENCODE=1 --no-cache"
#   PODMAN_RUNTIME  podman only: the OCI runtime for RUN steps; runc when installed (crun
#                   cannot run containers on some cgroup v1 hosts); empty for podman's default
#   LOCAL_BASES     1 (default): when the engine has no debian:trixie-slim / node:22-trixie-slim
#                   image, build them locally with images/build-base.sh instead of pulling (for
#                   machines that reach Debian's mirror and the npm registry but no image
#                   registry); 0: leave it to the engine (docker pulls them)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

detect_engine() {
  if command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then
    echo docker
  elif command -v podman >/dev/null; then
    echo podman
  else
    echo "images/build.sh: needs docker (with a running daemon) or podman" >&2
    exit 1
  fi
}

DOCKER="${DOCKER:-$(detect_engine)}"
if [ "${1:-}" = --engine ]; then echo "$DOCKER"; exit 0; fi
OPERATOR_IMAGE="${OPERATOR_IMAGE:-loopphase-operator:dev}"
AGENT_IMAGE="${AGENT_IMAGE:-loopphase-agent:dev}"
LOCAL_BASES="${LOCAL_BASES:-1}"
export DOCKER

flags=()
if [ "$(basename "$DOCKER")" = podman ]; then
  runtime="${PODMAN_RUNTIME-$(command -v runc >/dev/null && echo runc)}"
  [ -n "$runtime" ] && flags+=(--runtime "$runtime")
fi
export BUILD_FLAGS="${flags[*]:-}"

if [ "$LOCAL_BASES" = 1 ]; then
  missing=0
  for base in debian:trixie-slim node:22-trixie-slim; do
    "$DOCKER" image inspect "$base" >/dev/null 2>&1 || missing=1
  done
  if [ "$missing" = 1 ]; then
    echo "images/build.sh: building the missing base images locally (images/build-base.sh)"
    bash "$here/build-base.sh"
  fi
fi

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(operator agent)
cd "$root"
for name in "${targets[@]}"; do
  case "$name" in
    operator) tag="$OPERATOR_IMAGE" ;;
    agent) tag="$AGENT_IMAGE" ;;
    *) echo "images/build.sh: unknown image '$name' (operator, agent)" >&2; exit 2 ;;
  esac
  echo "images/build.sh: $DOCKER build $name -> $tag"
  # --ignorefile: podman reads images/<name>/Dockerfile.dockerignore only when told; BuildKit
  # finds it next to the Dockerfile by itself.
  ignore=()
  [ "$(basename "$DOCKER")" = podman ] && ignore=(--ignorefile "images/$name/Dockerfile.dockerignore")
  # shellcheck disable=SC2086
  "$DOCKER" build "${flags[@]}" "${ignore[@]}" ${BUILD_ARGS:-} \
    -f "images/$name/Dockerfile" -t "$tag" .
done
