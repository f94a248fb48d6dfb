#!/usr/bin/env bash
# Load built images into a kind cluster through an image archive (works the same for docker
# and podman): `images/kind-load.sh CLUSTER IMAGE...`; `make kind-load` calls it.
#
# podman names a local image localhost/NAME:TAG and saves it under that name, while the pods
# ask for NAME:TAG, which the cluster's containerd reads as docker.io/library/NAME:TAG: the
# image would be loaded and never found. So an image named without a registry is saved as
# docker.io/library/NAME:TAG (docker does the same by itself).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cluster="$1"; shift
DOCKER="${DOCKER:-$(bash "$here/build.sh" --engine)}"
KIND="${KIND:-kind}"
archive="$(mktemp /tmp/loopphase-kind-images.XXXXXX.tar)"
trap 'rm -f "$archive"' EXIT
for image in "$@"; do
  name="$image"
  first="${image%%/*}"
  if [ "$first" = "$image" ] || { [[ "$first" != *.* ]] && [[ "$first" != *:* ]] && [ "$first" != localhost ]; }; then
    name="docker.io/library/$image"
    [ "$first" = "$image" ] || name="docker.io/$image"
    "$DOCKER" tag "$image" "$name"
  fi
  rm -f "$archive"
  "$DOCKER" save -o "$archive" "$name"
  "$KIND" load image-archive --name "$cluster" "$archive"
done
