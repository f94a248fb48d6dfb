#!/usr/bin/env bash
# Run the two Dockerfiles' steps without a container engine, in a debootstrapped root filesystem
# of the Debian release their base image is pinned to, then run the images the way the pods do.
#
#   sudo images/verify-rootfs.sh [options]          (or: sudo make images-verify-rootfs)
#
# A manual/dev tool, not a test: it needs root (debootstrap, chroot, mounts), the network (the
# Debian mirror, PyPI, the npm registry) and several minutes. What it proves and what it does
# not: docs/kubernetes.md, "Verifying the images without a container engine"; the last recorded
# run: images/VERIFIED.md.
#
# How: the Dockerfiles are read by a small interpreter (the subset they use: ARG, FROM, WORKDIR,
# COPY [--from], RUN in shell form, USER, ENV, ENTRYPOINT/CMD in exec form; anything else is a
# FAIL). Each stage runs in an overlay over one shared base root filesystem; RUN lines run as
# written (`/bin/sh -c`, ARGs and ENV in the environment, as the stage's USER, in its WORKDIR).
# The base images are stood in for:
#   python:<v>-slim-<codename>  debootstrap --variant=minbase <codename> + ca-certificates,
#                               netbase, tzdata + a CPython at /usr/local: a copy of a host
#                               CPython install (--python-prefix, default: the repository
#                               venv's base interpreter when it is the tag's version), or, with
#                               --python-prefix debian, Debian's python3 as a venv rooted at
#                               /usr/local (a different Python version: noted);
#   node:<major>-...            the node binary of the npm registry's node-linux-<arch>@<major>
#                               and npm@<bundled major>, both checked against the registry's
#                               sha512 integrity, laid out as the node image has them.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
WORK=/var/tmp/lp-rootfs
MIRROR=
PYTHON_PREFIX=auto
KEEP=0
REUSE_BASE=0
ONLY=
BUILD_ARGS=()
EXTRA_CAS=()
HOST_CAS=1
NPM_REGISTRY=${LP_NPM_REGISTRY:-https://registry.npmjs.org}

usage() {
  cat <<'EOF'
usage: images/verify-rootfs.sh [options]
  --workdir DIR           work directory, removed at the end unless a check failed or --keep
                          (default /var/tmp/lp-rootfs)
  --mirror URL            Debian mirror (default: the first .../debian URI in
                          /etc/apt/sources.list*, else http://deb.debian.org/debian)
  --python-prefix DIR     a CPython install prefix (bin/python3.X, lib/) copied to /usr/local as
                          the base image's Python; "debian" for Debian's python3 in a venv at
                          /usr/local (default: the repository venv's base interpreter if it is
                          the Dockerfile tag's Python version, else "debian")
  --build-arg KEY=VALUE   passed to both Dockerfiles (e.g. WITH_OPENCODE=1); repeatable
  --only agent|operator   one image only
  --extra-ca FILE         a CA certificate (PEM) the root filesystem must trust, e.g. a TLS-
                          intercepting proxy's; repeatable (default: this machine's local CAs,
                          /usr/local/share/ca-certificates/*.crt; with them, RUN steps also get
                          NODE_EXTRA_CA_CERTS and PIP_CERT, which the Dockerfiles do not set)
  --no-host-ca            do not add this machine's local CAs
  --reuse-base            reuse WORKDIR/base from an earlier run of this script
  --keep                  keep WORKDIR (the root filesystems and logs) at the end
EOF
}

while [ $# -gt 0 ]; do
  case $1 in
    --workdir) WORK=${2:?--workdir needs a value}; shift 2 ;;
    --mirror) MIRROR=${2:?--mirror needs a value}; shift 2 ;;
    --python-prefix) PYTHON_PREFIX=${2:?--python-prefix needs a value}; shift 2 ;;
    --build-arg) BUILD_ARGS+=("${2:?--build-arg needs KEY=VALUE}"); shift 2 ;;
    --extra-ca) EXTRA_CAS+=("${2:?--extra-ca needs a file}"); shift 2 ;;
    --no-host-ca) HOST_CAS=0; shift ;;
    --only) ONLY=${2:?--only needs agent or operator}; shift 2 ;;
    --reuse-base) REUSE_BASE=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) printf 'unknown option: %s\n' "$1" >&2; usage >&2; exit 2 ;;
  esac
done
case $ONLY in ''|agent|operator) ;; *) echo "--only: agent or operator" >&2; exit 2 ;; esac
for a in ${BUILD_ARGS[@]+"${BUILD_ARGS[@]}"}; do
  case $a in [A-Za-z_]*=*) ;; *) printf 'bad --build-arg: %s\n' "$a" >&2; exit 2 ;; esac
done
if [ "$HOST_CAS" = 1 ]; then
  for ca in /usr/local/share/ca-certificates/*.crt; do [ -f "$ca" ] && EXTRA_CAS+=("$ca"); done
fi
for ca in ${EXTRA_CAS[@]+"${EXTRA_CAS[@]}"}; do
  [ -f "$ca" ] || { printf 'no such CA file: %s\n' "$ca" >&2; exit 2; }
done
case $WORK in /*) ;; *) echo "--workdir must be absolute" >&2; exit 2 ;; esac
WORK=${WORK%/}
[ "$WORK" != "" ] && [ "$WORK" != / ] || { echo "refusing --workdir /" >&2; exit 2; }

[ "$(id -u)" = 0 ] || { echo "needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
for tool in debootstrap chroot mount umount curl git python3 tar; do
  command -v "$tool" >/dev/null || { printf 'missing on this machine: %s (apt-get install -y %s)\n' \
    "$tool" "$tool" >&2; exit 2; }
done

# -- bookkeeping ---------------------------------------------------------------------------

PASSES=0
FAILS=0
FAILED=()
NOTES=()
INFO=()
MOUNTS=()
STARTED_PIDS=()
CHECK_N=0
LOGDIR=$WORK/logs

say() { printf '%s\n' "$*"; }
pass() { PASSES=$((PASSES + 1)); printf 'PASS  %s\n' "$1"; }
fail() {
  FAILS=$((FAILS + 1)); FAILED+=("$1"); printf 'FAIL  %s\n' "$1"
  if [ -n "${2:-}" ] && [ -s "$2" ]; then tail -n 30 -- "$2" | sed 's/^/      | /'; fi
  return 0
}
note() { NOTES+=("$1"); printf 'NOTE  %s\n' "$1"; }
info() { INFO+=("$1"); printf 'INFO  %s\n' "$1"; }

# check NAME CMD...: run CMD with its output in a numbered log; PASS or FAIL (with the log's end).
check() {
  local name=$1 log slug
  shift
  CHECK_N=$((CHECK_N + 1))
  slug=$(printf '%s' "$name" | tr -cs 'A-Za-z0-9' '-' | cut -c1-60)
  log=$(printf '%s/%03d-%s.log' "$LOGDIR" "$CHECK_N" "$slug")
  if "$@" >"$log" 2>&1; then pass "$name"; return 0; fi
  fail "$name" "$log"
  return 1
}

do_mount() { # mount ARGS... TARGET (the last argument is remembered for the cleanup)
  mount "$@"
  MOUNTS+=("${!#}")
}

kill_pid() { # a process this script started: TERM, then KILL after a grace period
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}

rooted_pids() { # processes whose root directory is inside WORK (started in our chroots)
  local p root
  for p in /proc/[0-9]*; do
    root=$(readlink "$p/root" 2>/dev/null) || continue
    case $root in "$WORK"/*) printf '%s\n' "${p#/proc/}" ;; esac
  done
}

cleanup() {
  local status=$? i pid
  trap - EXIT INT TERM
  for pid in ${STARTED_PIDS[@]+"${STARTED_PIDS[@]}"}; do kill_pid "$pid"; done
  for pid in $(rooted_pids); do kill_pid "$pid"; done
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null \
      || printf 'WARNING: could not unmount %s\n' "${MOUNTS[i]}" >&2
  done
  if grep -qF " $WORK/" /proc/self/mounts; then
    printf 'WARNING: mounts left under %s; not removing it\n' "$WORK" >&2
  elif [ "$KEEP" = 1 ] || [ "$FAILS" -gt 0 ] || [ "$status" -ne 0 ]; then
    printf 'kept %s (logs in %s)\n' "$WORK" "$LOGDIR" >&2
  else
    rm -rf --one-file-system -- "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# WORK is removed at the end: only a directory this script made (or an empty one) is used.
if [ -e "$WORK" ] && [ ! -f "$WORK/.lp-verify-rootfs" ] && [ -n "$(ls -A -- "$WORK" 2>/dev/null)" ]; then
  printf '%s exists and was not made by this script; choose another --workdir\n' "$WORK" >&2
  trap - EXIT; exit 2
fi
mkdir -p -- "$WORK"
touch -- "$WORK/.lp-verify-rootfs"
rm -rf -- "$LOGDIR"
mkdir -p -- "$LOGDIR"

# -- host-side helpers (Dockerfile parsing, COPY semantics, npm fetches, pod fields) -----------

HELPER=$WORK/helper.py
cat >"$HELPER" <<'PYEOF'
"""Host-side helpers for images/verify-rootfs.sh. Output fields are NUL-terminated."""
import base64
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import urllib.request


def die(msg):
    print(f"helper: {msg}", file=sys.stderr)
    sys.exit(2)


def emit(*fields):
    sys.stdout.buffer.write(b"".join(str(f).encode() + b"\0" for f in fields))


# -- Dockerfile: the subset the images use; records are (stage, kind, a, b) -----------------

def logical_lines(text):
    out, buf = [], None
    for raw in text.splitlines():
        s = raw.strip()
        if s.startswith("#") or (buf is None and not s):
            continue
        line = raw.rstrip()
        if line.endswith("\\"):
            buf = (buf or "") + line[:-1]
            continue
        out.append((buf or "") + line)
        buf = None
    if buf is not None:
        out.append(buf)
    return out


def subst(value, args):
    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in args:
            die(f"undefined ARG {name} in {value!r}")
        return args[name]
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", repl, value)


def unquote(value):
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def no_vars(kw, value):
    if "$" in value:
        die(f"{kw} with a variable is not supported by this interpreter: {value!r}")
    return value


def parse(path, build_args):
    overrides = dict(a.split("=", 1) for a in build_args)
    global_args, stage = {}, -1
    with open(path, encoding="utf-8") as fh:
        lines = logical_lines(fh.read())
    for line in lines:
        m = re.match(r"\s*([A-Za-z]+)\s+(.*)$", line, re.S)
        if not m:
            die(f"cannot parse: {line!r}")
        kw, rest = m.group(1).upper(), m.group(2).strip()
        if kw == "ARG":
            name, eq, default = rest.partition("=")
            name, default = name.strip(), unquote(default.strip())
            if stage < 0:
                global_args[name] = overrides.get(name, default)
                continue
            if name in overrides:
                emit(stage, "ARG", name, overrides[name])
            elif eq:
                emit(stage, "ARG", name, default)
            elif name in global_args:
                emit(stage, "ARG", name, global_args[name])
        elif kw == "FROM":
            parts = rest.split()
            name = ""
            if len(parts) == 3 and parts[1].upper() == "AS":
                name = parts[2]
            elif len(parts) != 1:
                die(f"FROM form not supported: {rest!r}")
            stage += 1
            emit(stage, "FROM", subst(parts[0], global_args), name)
        elif stage < 0:
            die(f"{kw} before the first FROM")
        elif kw == "RUN":
            if rest.startswith("["):
                die("RUN in exec form is not supported by this interpreter")
            emit(stage, "RUN", "", rest)
        elif kw == "COPY":
            words, src_stage = rest.split(), ""
            while words and words[0].startswith("--"):
                flag = words.pop(0)
                if flag.startswith("--from="):
                    src_stage = flag[len("--from="):]
                else:
                    die(f"COPY flag not supported: {flag}")
            if len(words) < 2 or rest.endswith("]"):
                die(f"COPY form not supported: {rest!r}")
            emit(stage, "COPY", no_vars(kw, src_stage), "\n".join(no_vars(kw, w) for w in words))
        elif kw in ("WORKDIR", "USER"):
            emit(stage, kw, no_vars(kw, rest), "")
        elif kw == "ENV":
            pairs = []
            if "=" not in rest.split()[0]:
                key, _, value = rest.partition(" ")
                pairs.append(f"{key}={unquote(value.strip())}")
            else:
                for word in rest.split():
                    key, eq, value = word.partition("=")
                    if not eq:
                        die(f"ENV form not supported: {rest!r}")
                    pairs.append(f"{key}={unquote(value)}")
            emit(stage, "ENV", "", "\n".join(no_vars(kw, p) for p in pairs))
        elif kw in ("ENTRYPOINT", "CMD"):
            try:
                argv = json.loads(rest)
            except json.JSONDecodeError:
                die(f"{kw} in shell form is not supported by this interpreter")
            emit(stage, kw, "", "\n".join(argv))
        else:
            die(f"instruction not supported by this interpreter: {kw}")


# -- COPY: Docker's semantics for the cases the images use ----------------------------------

def ignore_patterns(path):
    pats = []
    if not path or not os.path.exists(path):
        return pats
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            line = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
            rx, i = "", 0
            while i < len(line):
                if line.startswith("**/", i):
                    rx, i = rx + "(?:.*/)?", i + 3
                elif line.startswith("**", i):
                    rx, i = rx + ".*", i + 2
                elif line[i] == "*":
                    rx, i = rx + "[^/]*", i + 1
                elif line[i] == "?":
                    rx, i = rx + "[^/]", i + 1
                else:
                    rx, i = rx + re.escape(line[i]), i + 1
            pats.append((neg, re.compile(rx + r"\Z")))
    return pats


def ignored(rel, pats):
    parts, result = rel.split("/"), False
    for neg, rx in pats:
        if any(rx.match("/".join(parts[:k])) for k in range(1, len(parts) + 1)):
            result = not neg
    return result


def inside(root, path):
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + "/"):
        die(f"{path} leaves {root} (symlink)")


def copy_entry(src, dst):
    if os.path.islink(src):
        if os.path.lexists(dst):
            os.unlink(dst)
        os.symlink(os.readlink(src), dst)
    elif os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
        shutil.copystat(src, dst)
    else:
        shutil.copy2(src, dst)
    os.lchown(dst, 0, 0)


def copy(src_root, dest_root, workdir, ignore_file, *paths):
    """COPY <srcs...> <dest> from src_root (the context or a stage root) into dest_root."""
    srcs, dest = paths[:-1], paths[-1]
    pats = ignore_patterns(ignore_file)
    dest_is_dir = dest.endswith("/") or len(srcs) > 1
    dest = os.path.normpath(os.path.join(workdir, dest))
    target = dest_root + dest
    copied = 0
    for s in srcs:
        rel = os.path.normpath(s.lstrip("/"))
        path = os.path.join(src_root, rel)
        if not os.path.lexists(path):
            die(f"COPY source not found: {s}")
        if rel != "." and ignored(rel, pats):
            die(f"COPY source excluded by {ignore_file}: {s}")
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
            inside(dest_root, target)
            for top, dirs, files in os.walk(path):
                sub = os.path.relpath(top, path)
                for name in sorted(dirs) + sorted(files):
                    rel_ctx = os.path.normpath(os.path.join(rel, sub, name))
                    if ignored(rel_ctx, pats):
                        if name in dirs:
                            dirs.remove(name)
                        continue
                    out = os.path.normpath(os.path.join(target, sub, name))
                    inside(dest_root, os.path.dirname(out))
                    copy_entry(os.path.join(top, name), out)
                    copied += 1
                dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
        else:
            out = os.path.join(target, os.path.basename(path)) if (
                dest_is_dir or os.path.isdir(target)) else target
            os.makedirs(os.path.dirname(out), exist_ok=True)
            inside(dest_root, os.path.dirname(out))
            shutil.copy2(path, out)  # a top-level symlink source is followed, as COPY does
            os.lchown(out, 0, 0)
            copied += 1
    print(f"copied {copied} entries to {dest}")


# -- npm registry: newest <name>@<major>.x, checked against the registry's integrity --------

def fetch_npm(registry, name, major, dest_dir):
    req = urllib.request.Request(f"{registry.rstrip('/')}/{name}",
                                 headers={"Accept": "application/vnd.npm.install-v1+json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        meta = json.load(resp)
    versions = [v for v in meta["versions"] if re.fullmatch(rf"{int(major)}\.\d+\.\d+", v)]
    if not versions:
        die(f"no {name}@{major}.x in {registry}")
    best = max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))
    dist = meta["versions"][best]["dist"]
    with urllib.request.urlopen(dist["tarball"], timeout=600) as resp:
        data = resp.read()
    algo, _, expected = dist["integrity"].partition("-")
    if algo not in ("sha512", "sha384", "sha256"):
        die(f"unexpected integrity algorithm for {name}@{best}: {algo}")
    if base64.b64encode(hashlib.new(algo, data).digest()).decode() != expected:
        die(f"{name}@{best}: tarball does not match the registry's {algo} integrity")
    out = os.path.join(dest_dir, f"{name}-{best}.tgz")
    with open(out, "wb") as fh:
        fh.write(data)
    emit(best, out)


# -- pod fields ------------------------------------------------------------------------------

def pod_container(doc, which):
    spec = doc["pod"]["spec"]
    return spec["initContainers"][0] if which == "init" else spec["containers"][0]


def pod_argv(path, which):
    with open(path, encoding="utf-8") as fh:
        c = pod_container(json.load(fh), which)
    emit(*(c.get("command", []) + c.get("args", [])))


def pod_env(path, which):
    with open(path, encoding="utf-8") as fh:
        c = pod_container(json.load(fh), which)
    for item in c.get("env", []):
        if "value" not in item:
            die(f"env {item['name']} is not a plain value (valueFrom is not emulated)")
        emit(f"{item['name']}={item['value']}")


def pod_get(path, *keys):
    with open(path, encoding="utf-8") as fh:
        value = json.load(fh)
    for key in keys:
        value = value[int(key)] if isinstance(value, list) else value[key]
    emit(value if isinstance(value, str) else json.dumps(value))


def state_has(path, alive, needle):
    with open(path, encoding="utf-8") as fh:
        state = json.load(fh)
    ok = state.get("alive") is (alive == "true") and needle in state.get("pane", "")
    print(json.dumps({k: state.get(k) for k in ("version", "role", "backend", "alive", "pid",
                                                 "mode", "phase_id")}))
    sys.exit(0 if ok else 1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "parse":
        parse(args[0], args[1:])
    elif cmd == "copy":
        copy(*args)
    elif cmd == "fetch-npm":
        fetch_npm(*args)
    elif cmd == "pod-argv":
        pod_argv(*args)
    elif cmd == "pod-env":
        pod_env(*args)
    elif cmd == "pod-get":
        pod_get(*args)
    elif cmd == "state-has":
        state_has(*args)
    elif cmd == "free-port":
        free_port()
    else:
        die(f"unknown helper command {cmd}")
PYEOF
helper() { python3 "$HELPER" "$@"; }

# -- the Dockerfiles' base images ------------------------------------------------------------

dockerfile_python_tag() { # the first python:* FROM of a Dockerfile, ARGs resolved
  local f=() i
  mapfile -d '' -t f < <(helper parse "$1" ${BUILD_ARGS[@]+"${BUILD_ARGS[@]}"})
  for ((i = 0; i < ${#f[@]}; i += 4)); do
    if [ "${f[i+1]}" = FROM ] && [[ ${f[i+2]} == python:* ]]; then printf '%s\n' "${f[i+2]}"; return 0; fi
  done
  return 1
}

AGENT_DF=$REPO/images/agent/Dockerfile
OPERATOR_DF=$REPO/images/operator/Dockerfile
PY_TAG=$(dockerfile_python_tag "$AGENT_DF")
OP_PY_TAG=$(dockerfile_python_tag "$OPERATOR_DF")
if [[ ! $PY_TAG =~ ^python:([0-9]+\.[0-9]+)(\.[0-9]+)?-slim-([a-z]+)$ ]]; then
  fail "agent Dockerfile base is python:<version>-slim-<codename> (got $PY_TAG)"
  exit 1
fi
PY_VER=${BASH_REMATCH[1]}
SUITE=${BASH_REMATCH[3]}
say "== base: $PY_TAG -> debootstrap $SUITE + CPython $PY_VER stand-in"
if [ "$OP_PY_TAG" = "$PY_TAG" ]; then
  pass "both Dockerfiles pin the same base ($PY_TAG)"
else
  fail "both Dockerfiles pin the same base (agent $PY_TAG, operator $OP_PY_TAG)"
fi

if [ -z "$MIRROR" ]; then
  MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | grep -oE '(https?|file)://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
  MIRROR=${MIRROR%/}
  [ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
fi
SECURITY_MIRROR=
case $MIRROR in */debian) SECURITY_MIRROR=${MIRROR%/debian}/debian-security ;; esac
info "mirror: $MIRROR${SECURITY_MIRROR:+ (security: $SECURITY_MIRROR)}"

if [ "$PYTHON_PREFIX" = auto ]; then
  PYTHON_PREFIX=debian
  if [ -x "$REPO/.venv/bin/python" ]; then
    cand=$("$REPO/.venv/bin/python" -c 'import sys; print(sys.base_prefix)')
    if [ "$cand" != /usr ] && [ -x "$cand/bin/python$PY_VER" ]; then PYTHON_PREFIX=$cand; fi
  fi
fi
if [ "$PYTHON_PREFIX" != debian ]; then
  [ -x "$PYTHON_PREFIX/bin/python$PY_VER" ] || { fail "--python-prefix has bin/python$PY_VER"; exit 1; }
  [ "$PYTHON_PREFIX" != /usr ] || { fail "--python-prefix /usr: use 'debian' for the system python"; exit 1; }
fi

BASE=$WORK/base
BASE_ENV=("PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "LANG=C.UTF-8")
# With extra CAs (a TLS-intercepting network), the tools that ignore the system store are told.
NET_ENV=()
if [ ${#EXTRA_CAS[@]} -gt 0 ]; then
  NET_ENV=(NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
fi

prepare_root() { # the kernel filesystems a chroot needs (removed by the cleanup)
  local r=$1
  do_mount -t proc proc "$r/proc"
  do_mount -t sysfs -o ro sysfs "$r/sys" 2>/dev/null || do_mount --bind /sys "$r/sys"
  do_mount --bind /dev "$r/dev"
  do_mount --bind /dev/pts "$r/dev/pts"
}

in_root() { # in_root ROOT UID:GID WORKDIR ENV-ARRAY-NAME -- ARGV...
  local r=$1 ug=$2 wd=$3
  local -n envref=$4
  shift 5
  chroot --userspec="$ug" --groups="${ug#*:}" "$r" /usr/bin/env -i -C "$wd" \
    ${envref[@]+"${envref[@]}"} "$@"
}

base_root() { # root commands while the base is built
  local e=("${BASE_ENV[@]}" ${NET_ENV[@]+"${NET_ENV[@]}"} HOME=/root DEBIAN_FRONTEND=noninteractive)
  in_root "$BASE" 0:0 / e -- "$@"
}

build_base() {
  say "== base root filesystem: debootstrap --variant=minbase $SUITE $BASE $MIRROR"
  rm -rf --one-file-system -- "$BASE"
  check "debootstrap --variant=minbase $SUITE" \
    debootstrap --variant=minbase "$SUITE" "$BASE" "$MIRROR" || return 1
  info "debian: $(cat "$BASE/etc/debian_version") ($(. "$BASE/etc/os-release"; echo "$PRETTY_NAME"))"
  # What debian:<codename>-slim adds: deb822 sources with updates + security, no daemons.
  rm -f "$BASE/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$MIRROR" "$SUITE" "$SUITE"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [ -n "$SECURITY_MIRROR" ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$SECURITY_MIRROR" "$SUITE"
      printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
  } >"$BASE/etc/apt/sources.list.d/debian.sources"
  # ... and its apt/dpkg settings (approximated): no package caches, no translations, and the
  # slim variant's documentation excludes, so that the layer sizes reported are comparable.
  local clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
  printf '%s\n' "DPkg::Post-Invoke { $clean };" "APT::Update::Post-Invoke { $clean };" \
    'Dir::Cache::pkgcache "";' 'Dir::Cache::srcpkgcache "";' >"$BASE/etc/apt/apt.conf.d/docker-clean"
  printf 'Acquire::Languages "none";\n' >"$BASE/etc/apt/apt.conf.d/docker-no-languages"
  printf 'Apt::AutoRemove::SuggestsImportant "false";\n' >"$BASE/etc/apt/apt.conf.d/docker-autoremove-suggests"
  mkdir -p "$BASE/etc/dpkg/dpkg.cfg.d"
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/lintian/overrides/*' 'path-exclude /usr/share/locale/*' \
    'path-exclude /usr/share/man/*' >"$BASE/etc/dpkg/dpkg.cfg.d/docker"
  printf '#!/bin/sh\nexit 101\n' >"$BASE/usr/sbin/policy-rc.d"
  chmod 755 "$BASE/usr/sbin/policy-rc.d"
  cp -L /etc/resolv.conf "$BASE/etc/resolv.conf"
  prepare_root "$BASE"
  local libs=(ca-certificates netbase tzdata)
  if [ "$PYTHON_PREFIX" = debian ]; then
    libs+=(python3 python3-venv)
  else # what a CPython build links against (libssl3t64 etc.: Debian 13 names)
    libs+=(libbz2-1.0 libcrypt1 libexpat1 libffi8 liblzma5 libncursesw6 libnsl2 libreadline8t64
           libsqlite3-0 libssl3t64 libtinfo6 libtirpc3t64 libuuid1 zlib1g)
  fi
  check "base: apt-get install ${libs[*]}" \
    base_root sh -c 'apt-get update && apt-get install -y --no-install-recommends "$@"' sh "${libs[@]}" \
    || return 1
  if [ ${#EXTRA_CAS[@]} -gt 0 ]; then
    local ca n=0
    for ca in "${EXTRA_CAS[@]}"; do
      n=$((n + 1)); install -m 644 "$ca" "$BASE/usr/local/share/ca-certificates/lp-verify-$n.crt"
    done
    check "base: trust ${#EXTRA_CAS[@]} extra CA certificate(s) (${EXTRA_CAS[*]})" \
      base_root update-ca-certificates || return 1
    note "extra CA(s) added to the root filesystem's trust store and NODE_EXTRA_CA_CERTS/PIP_CERT set for RUN steps (this network intercepts TLS; the Dockerfiles do not do this)"
  fi
  if [ "$PYTHON_PREFIX" = debian ]; then
    check "base: Debian python3 as a venv at /usr/local" \
      base_root sh -c 'python3 -m venv /usr/local && /usr/local/bin/python3 -m pip --version' || return 1
    note "Python stand-in: Debian's python3 ($(base_root python3 -V 2>&1)) as a venv at /usr/local; the image's is CPython $PY_VER from $PY_TAG"
  else
    local src=$PYTHON_PREFIX dst=$BASE/usr/local
    mkdir -p "$dst/bin" "$dst/lib" "$dst/include"
    cp -a "$src/bin/python$PY_VER" "$dst/bin/"
    cp -a "$src"/lib/libpython3*.so* "$dst/lib/" 2>/dev/null || true
    tar -C "$src/lib" --exclude="python$PY_VER/site-packages/*" --exclude=__pycache__ \
      --exclude="python$PY_VER/test" --exclude="python$PY_VER/idlelib/idle_test" \
      -cf - "python$PY_VER" | tar -C "$dst/lib" -xf -
    [ -d "$src/include/python$PY_VER" ] && cp -a "$src/include/python$PY_VER" "$dst/include/"
    ln -s "python$PY_VER" "$dst/bin/python3"
    ln -s python3 "$dst/bin/python"
    check "base: CPython copied from $src runs at /usr/local (ldconfig, ensurepip, stdlib modules)" \
      base_root sh -c 'set -e; ldconfig; python3 -m ensurepip --default-pip;
        python3 -c "import ssl, sqlite3, ctypes, lzma, bz2, zlib, readline, uuid, hashlib, decimal, asyncio; print(ssl.OPENSSL_VERSION)";
        missing=$(for f in /usr/local/bin/python3.* /usr/local/lib/python3.*/lib-dynload/*.so; do
          case $f in *tkinter*) continue ;; esac; ldd "$f" | grep "not found" | sed "s|^|$f: |"; done);
        [ -z "$missing" ] || { echo "$missing"; exit 1; }; pip --version' || return 1
    note "Python stand-in: $(base_root python3 -V 2>&1) copied from $src (built on this host, not the image's build; same minor version as $PY_TAG)"
  fi
  base_root sh -c 'apt-get clean; rm -rf /var/lib/apt/lists/*'
  info "base python: $(base_root python3 -V 2>&1), $(base_root pip --version 2>&1 | cut -d' ' -f1-2)"
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    case ${MOUNTS[i]} in "$BASE"/*) umount "${MOUNTS[i]}"; unset 'MOUNTS[i]' ;; esac
  done
  MOUNTS=(${MOUNTS[@]+"${MOUNTS[@]}"})
  printf '%s %s %s %s\n' "$PY_TAG" "$PYTHON_PREFIX" "$MIRROR" "${EXTRA_CAS[*]-}" >"$BASE/.lp-verify-base"
}

if [ "$REUSE_BASE" = 1 ] && [ -f "$BASE/.lp-verify-base" ] \
   && [ "$(cat "$BASE/.lp-verify-base")" = "$PY_TAG $PYTHON_PREFIX $MIRROR ${EXTRA_CAS[*]-}" ]; then
  say "== reusing $BASE"
else
  build_base || exit 1
fi
codename=$(. "$BASE/etc/os-release"; echo "${VERSION_CODENAME:-}")
if [ "$codename" = "$SUITE" ]; then pass "root filesystem is Debian $codename, as $PY_TAG"
else fail "root filesystem is Debian $codename, as $PY_TAG"; fi

# -- the node stage stand-in -----------------------------------------------------------------

node_stage() { # node_stage IMAGE -> prints the stand-in root (cached per major)
  local image=$1 major arch npm_major dir got ver tgz
  [[ $image =~ ^node:([0-9]+)(-|$) ]] || { echo "unsupported node image $image" >&2; return 1; }
  major=${BASH_REMATCH[1]}
  case $(uname -m) in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "arch $(uname -m)" >&2; return 1 ;; esac
  case $major in 20|22) npm_major=10 ;; 24) npm_major=11 ;; *) echo "which npm does node $major bundle?" >&2; return 1 ;; esac
  dir=$WORK/stage-node-$major
  if [ ! -f "$dir/.done" ]; then
    rm -rf -- "$dir"; mkdir -p "$dir/dl" "$dir/usr/local/bin" "$dir/usr/local/lib/node_modules/npm"
    mapfile -d '' -t got < <(helper fetch-npm "$NPM_REGISTRY" "node-linux-$arch" "$major" "$dir/dl")
    [ "${#got[@]}" = 2 ] || return 1
    ver=${got[0]}; tgz=${got[1]}
    tar -xzf "$tgz" -C "$dir/dl" package/bin/node
    install -m 755 "$dir/dl/package/bin/node" "$dir/usr/local/bin/node"
    mapfile -d '' -t got < <(helper fetch-npm "$NPM_REGISTRY" npm "$npm_major" "$dir/dl")
    [ "${#got[@]}" = 2 ] || return 1
    tar -xzf "${got[1]}" -C "$dir/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
    printf 'node-linux-%s@%s + npm@%s\n' "$arch" "$ver" "${got[0]}" >"$dir/.done"
    rm -rf -- "$dir/dl"
  fi
  printf '%s\n' "$dir"
}

# -- the Dockerfile interpreter --------------------------------------------------------------

declare -A STAGE_ROOT=()
FINAL_ROOT='' FINAL_USER='' FINAL_WD='' FINAL_ENV=() FINAL_ENTRY=() FINAL_CMD=()

resolve_user() { # resolve_user ROOT SPEC -> uid:gid (numbers or names from the root's files)
  local r=$1 spec=$2 u g
  u=${spec%%:*}; g=
  [[ $spec == *:* ]] && g=${spec#*:}
  if ! [[ $u =~ ^[0-9]+$ ]]; then u=$(awk -F: -v n="$u" '$1 == n { print $3 }' "$r/etc/passwd"); fi
  if [ -z "$g" ]; then
    g=$(awk -F: -v n="$u" '$3 == n { print $4 }' "$r/etc/passwd"); g=${g:-$u}
  elif ! [[ $g =~ ^[0-9]+$ ]]; then g=$(awk -F: -v n="$g" '$1 == n { print $3 }' "$r/etc/group"); fi
  [ -n "$u" ] && [ -n "$g" ] || return 1
  printf '%s:%s\n' "$u" "$g"
}

home_of() { # home_of ROOT UID
  local h
  h=$(awk -F: -v n="$2" '$3 == n { print $6 }' "$1/etc/passwd")
  printf '%s\n' "${h:-/}"
}

run_step() { # RUN: /bin/sh -c as the stage's user, in its WORKDIR, with ARG + ENV values
  local r=$1 ug=$2 wd=$3 cmd=$4
  shift 4
  local e=("$@")
  in_root "$r" "$ug" "$wd" e -- /bin/sh -c "$cmd"
}

run_dockerfile() { # run_dockerfile LABEL DOCKERFILE
  local label=$1 df=$2 f=() i st kind a b
  local root='' ug=0:0 wd=/ runs=0 image stage_name lower
  local -a envs=() args=() entry=() cmd=() parts=()
  local ignore="$df.dockerignore"
  say "== $label: ${df#"$REPO"/}"
  if ! helper parse "$df" ${BUILD_ARGS[@]+"${BUILD_ARGS[@]}"} >"$WORK/$label.parsed" 2>"$LOGDIR/$label-parse.log"; then
    fail "$label: Dockerfile parses (the subset this interpreter runs)" "$LOGDIR/$label-parse.log"
    return 1
  fi
  mapfile -d '' -t f <"$WORK/$label.parsed"
  for ((i = 0; i < ${#f[@]}; i += 4)); do
    st=${f[i]} kind=${f[i+1]} a=${f[i+2]} b=${f[i+3]}
    case $kind in
      FROM)
        image=$a stage_name=${b:-$st}
        ug=0:0 wd=/ envs=("${BASE_ENV[@]}") args=() entry=() cmd=() runs=0
        if [ "$image" = "$PY_TAG" ]; then
          root=$WORK/$label-$st
          rm -rf --one-file-system -- "$root.upper" "$root.work"
          mkdir -p "$root.upper" "$root.work" "$root"
          lower=$BASE
          do_mount -t overlay overlay -o "lowerdir=$lower,upperdir=$root.upper,workdir=$root.work" "$root"
          prepare_root "$root"
          say "-- stage $st${b:+ ($b)}: FROM $image (overlay on the base)"
        elif [[ $image == node:* ]]; then
          if ! root=$(node_stage "$image" 2>"$LOGDIR/$label-node-stage.log"); then
            fail "$label: stand-in for $image" "$LOGDIR/$label-node-stage.log"; return 1
          fi
          say "-- stage $st${b:+ ($b)}: FROM $image -> stand-in: $(cat "$root/.done")"
          note "$image stood in for by $(cat "$root/.done") from the npm registry (official nodejs.org builds repackaged; the image's npm is whatever node bundles)"
          if [[ $image =~ -([a-z]+)(-slim)?$ ]] && [ "${BASH_REMATCH[1]}" != slim ]; then
            if [ "${BASH_REMATCH[1]}" = "$SUITE" ]; then pass "$label: $image is built on $SUITE, like $PY_TAG"
            else fail "$label: $image is built on $SUITE, like $PY_TAG"; fi
          fi
        else
          fail "$label: FROM $image has a stand-in (python:<v>-slim-$SUITE, node:<major>-...)"; return 1
        fi
        STAGE_ROOT[$st]=$root
        STAGE_ROOT[$stage_name]=$root
        ;;
      ARG) args+=("$a=$b") ;;
      ENV) mapfile -t parts <<<"$b"; envs+=("${parts[@]}") ;;
      WORKDIR)
        case $a in /*) wd=$a ;; *) wd=${wd%/}/$a ;; esac
        mkdir -p -- "$root$wd"
        ;;
      USER)
        ug=$(resolve_user "$root" "$a") || { fail "$label: USER $a resolves in the stage"; return 1; }
        ;;
      COPY)
        mapfile -t parts <<<"$b"
        local src_root=$REPO ign=$ignore what="context"
        if [ -n "$a" ]; then
          src_root=${STAGE_ROOT[$a]:-}; ign='' what="stage $a"
          [ -n "$src_root" ] || { fail "$label: COPY --from=$a names an earlier stage"; return 1; }
        fi
        check "$label: COPY ${a:+--from=$a }${parts[*]} ($what)" \
          helper copy "$src_root" "$root" "$wd" "$ign" "${parts[@]}" || return 1
        ;;
      RUN)
        runs=$((runs + 1))
        local home uid=${ug%%:*} e
        home=$(home_of "$root" "$uid")
        e=("HOME=$home" ${NET_ENV[@]+"${NET_ENV[@]}"} ${args[@]+"${args[@]}"} "${envs[@]}")
        say "   RUN #$runs (stage $st) ..."
        check "$label: stage $st RUN #$runs: $(printf '%s' "$b" | tr -s ' ' | cut -c1-70)..." \
          run_step "$root" "$ug" "$wd" "$b" "${e[@]}" || return 1
        ;;
      ENTRYPOINT) mapfile -t entry <<<"$b" ;;
      CMD) mapfile -t cmd <<<"$b" ;;
    esac
  done
  FINAL_ROOT=$root FINAL_USER=$ug FINAL_WD=$wd FINAL_ENV=("${envs[@]}")
  FINAL_ENTRY=(${entry[@]+"${entry[@]}"}) FINAL_CMD=(${cmd[@]+"${cmd[@]}"})
  FINAL_ENV+=("HOME=$(home_of "$root" "${ug%%:*}")")
  # Docker appends HOME only when ENV did not set it; ENV wins (the later entry, for env -i).
  local ev
  for ev in "${envs[@]}"; do [[ $ev == HOME=* ]] && FINAL_ENV+=("$ev"); done
  return 0
}

img() { # run ARGV in the final image as its USER, WORKDIR and ENV
  in_root "$FINAL_ROOT" "$FINAL_USER" "$FINAL_WD" FINAL_ENV -- "$@"
}

# -- the fixtures the pods would find: a git remote, the prompts, the token, git credentials --

FIX=$WORK/fixtures
make_fixtures() {
  [ -s "$FIX/head" ] && return 0
  rm -rf -- "$FIX"
  mkdir -p "$FIX/srv" "$FIX/seed"
  git init -q --bare -b main "$FIX/srv/repo.git"
  git init -q -b main "$FIX/seed"
  printf '# Phase 1\nBuild the thing.\n' >"$FIX/seed/PLAN-1.md"
  printf 'WORKING\n' >"$FIX/seed/STATUS-1.md"
  git -C "$FIX/seed" add -A
  git -C "$FIX/seed" -c user.name=verify -c user.email=verify@loopphase.invalid commit -q -m seed
  git -C "$FIX/seed" push -q "$FIX/srv/repo.git" main
  git -C "$FIX/srv/repo.git" rev-parse main >"$FIX/head"
  # Owned by the pods' uid: a local stand-in for a network remote, where ownership does not
  # arise (git refuses repositories owned by another user).
  chown -R 1000:1000 "$FIX/srv"
}

ro_bind() { # ro_bind SRC TARGET
  mkdir -p -- "$2"
  do_mount --bind "$1" "$2"
  mount -o remount,bind,ro "$2"
}

# -- agent image checks ----------------------------------------------------------------------

POD_PY='
import json, sys
from loopphase.api.spec import LoopPhaseSpec
from loopphase.runtime import k8s_objects as ko
spec = LoopPhaseSpec.model_validate({
    "repo": {"url": sys.argv[1], "branch": "main", "credentialsSecret": "verify-git"},
    "phases": [{"id": "p1", "plan": "PLAN-1.md", "statusFile": "STATUS-1.md"}],
    "agents": {"builder": {"backend": "sim"}},
})
owner = ko.Owner(name="verify", namespace="default", uid="verify-uid")
launch = ko.PodLaunch(role="builder", phase_index=0, phase_id="p1", mode="cold",
                      continuation="Continue.", model=None)
settings = ko.PodSettings(shim_port=int(sys.argv[2]))
pod = ko.agent_pod(owner, spec, launch, settings, has_scenario=True)
print(json.dumps({"pod": pod, "kickoff": ko.kickoff_key("builder", "p1"),
                  "scenario": ko.scenario_key("builder"), "token_key": ko.TOKEN_KEY}))
'
VOL=$WORK/agent-volumes
POD_UG='' POD_FSGROUP='' POD_WD='' INIT_WD='' TOKEN='' BASE_URL='' SHIM_PID=''
INIT_ARGV=() INIT_ENV=() MAIN_ARGV=() MAIN_ENV=()

pod_field() { helper pod-get "$WORK/pod.json" "$@" | tr -d '\0'; }

pod_run() { # pod_run WORKDIR ENV-ARRAY-NAME ARGV...: as the pod's runAsUser/runAsGroup/fsGroup
  local wd=$1
  local -n pod_env_ref=$2
  shift 2
  chroot --userspec="$POD_UG" --groups="$POD_FSGROUP" "$FINAL_ROOT" /usr/bin/env -i -C "$wd" \
    "${pod_env_ref[@]}" "$@"
}

pod_exec() { # pod_run, replacing the (background) subshell, so that $! is the container's pid
  local wd=$1
  local -n pod_exec_env=$2
  shift 2
  exec chroot --userspec="$POD_UG" --groups="$POD_FSGROUP" "$FINAL_ROOT" /usr/bin/env -i -C "$wd" \
    "${pod_exec_env[@]}" "$@"
}

hook_runs() { # the hook command Claude Code runs: <loopphase's interpreter> -m loopphase.shim.hook
  local py=$1
  printf '{"hook_event_name": "Stop"}' | img "$py" -m loopphase.shim.hook /tmp/hook-check.jsonl \
    && grep -q '"Stop"' "$FINAL_ROOT/tmp/hook-check.jsonl" && cat "$FINAL_ROOT/tmp/hook-check.jsonl"
}

gen_pod() { img python3 -c "$POD_PY" file:///srv/lp-verify/repo.git "$1" >"$WORK/pod.json"; }

init_clones() { pod_run "$INIT_WD" INIT_ENV "${INIT_ARGV[@]}" && test -d "$VOL/work/repo/.git"; }
init_again() { pod_run "$INIT_WD" INIT_ENV "${INIT_ARGV[@]}" | tee /dev/stderr | grep -q 'already holds a clone'; }

wait_health() {
  local i
  for i in $(seq 1 120); do
    kill -0 "$SHIM_PID" 2>/dev/null || { echo "shim exited"; cat "$LOGDIR/agent-shim.log"; return 1; }
    curl -fsS --max-time 2 "$BASE_URL/v1/health" && return 0
    sleep 0.5
  done
  cat "$LOGDIR/agent-shim.log"; return 1
}

state_refused() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE_URL/v1/state")
  echo "$code"; [ "$code" = 401 ]
}

state_until() { # state_until NEEDLE: poll /v1/state until alive and the pane shows NEEDLE
  local i
  for i in $(seq 1 80); do
    if curl -fsS --max-time 5 -H "Authorization: Bearer $TOKEN" "$BASE_URL/v1/state?lines=40" \
         >"$WORK/state.json" && helper state-has "$WORK/state.json" true "$1"; then return 0; fi
    sleep 0.5
  done
  cat "$WORK/state.json"; return 1
}

send_hello() {
  sleep 3
  curl -fsS --max-time 60 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"text": "hello"}' "$BASE_URL/v1/send" && echo && state_until "got your hello"
}

shim_stops() {
  local i p left=
  kill -TERM "$SHIM_PID"
  for i in $(seq 1 100); do kill -0 "$SHIM_PID" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$SHIM_PID" 2>/dev/null; then echo "shim still running"; return 1; fi
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$FINAL_ROOT" ] && left="$left ${p#/proc/}"
  done
  tail -n 5 "$LOGDIR/agent-shim.log"
  # shellcheck disable=SC2086 # $left is a list of pids
  [ -z "$left" ] || { echo "left behind:"; describe_pids $left; return 1; }
}

describe_pids() { # pid, parent, uid, command line
  local p
  for p in "$@"; do
    printf '  pid %s ppid %s uid %s: %s\n' "$p" "$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)" \
      "$(awk '/^Uid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)" \
      "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-200)"
  done
}

verify_agent() {
  run_dockerfile agent "$AGENT_DF" || return 1
  local r=$FINAL_ROOT
  say "-- agent image: run as USER $FINAL_USER, WORKDIR $FINAL_WD"
  check "agent: entrypoint: loopphase --help" img "${FINAL_ENTRY[@]}" --help
  check "agent: default command: ${FINAL_ENTRY[*]} ${FINAL_CMD[*]}" img "${FINAL_ENTRY[@]}" "${FINAL_CMD[@]}"
  check "agent: claude --version (as uid ${FINAL_USER%%:*})" img claude --version \
    && info "claude --version: $(img claude --version 2>&1 | head -n1)"
  check "agent: on PATH: tmux git ssh ps curl node npm python3 loopphase claude" \
    img sh -c 'for t in tmux git ssh ps curl node npm python3 loopphase claude; do command -v "$t" || exit 1; done'
  info "agent image: node $(img node --version 2>&1), npm $(img npm --version 2>&1), $(img python3 -V 2>&1), $(img tmux -V 2>&1), $(img git --version 2>&1), $(img ssh -V 2>&1 | head -n1)"
  check "agent: node $(img node --version 2>/dev/null) satisfies Claude Code's engines.node" \
    img node -e '
      const pkg = require(process.argv[1]);
      const semver = require("/usr/local/lib/node_modules/npm/node_modules/semver");
      const want = (pkg.engines || {}).node || "*";
      console.log(pkg.name, pkg.version, "engines.node", want, "node", process.version);
      process.exit(semver.satisfies(process.version, want) ? 0 : 1);' \
    /usr/local/lib/node_modules/@anthropic-ai/claude-code/package.json
  if printf '%s\n' ${BUILD_ARGS[@]+"${BUILD_ARGS[@]}"} | grep -qx 'WITH_OPENCODE=1'; then
    check "agent: opencode --version (WITH_OPENCODE=1)" img opencode --version \
      && info "opencode --version: $(img opencode --version 2>&1 | head -n1)"
  fi
  info "agent: the final stage adds $(du -sh "$r.upper" | cut -f1) to the base root filesystem ($(du -sh "$BASE" | cut -f1))"
  local shebang
  shebang=$(head -n1 "$r/usr/local/bin/loopphase" | sed 's/^#!//')
  check "agent: loopphase's interpreter ($shebang) runs the Claude Code hook module" hook_runs "$shebang"

  # The pod: the operator's own agent_pod() for a sim LoopPhase, run as its spec says.
  make_fixtures || { fail "agent pod: fixtures (a local git remote)"; return 1; }
  local port
  port=$(helper free-port)
  check "agent pod: the installed package builds the Pod (k8s_objects.agent_pod, sim backend)" \
    gen_pod "$port" || return 1
  local kickoff scenario token_key
  kickoff=$(pod_field kickoff) scenario=$(pod_field scenario) token_key=$(pod_field token_key)
  POD_UG="$(pod_field pod spec securityContext runAsUser):$(pod_field pod spec securityContext runAsGroup)"
  POD_FSGROUP=$(pod_field pod spec securityContext fsGroup)
  POD_WD=$(pod_field pod spec containers 0 workingDir)
  INIT_WD=$(pod_field pod spec initContainers 0 workingDir 2>/dev/null) || INIT_WD=$FINAL_WD
  TOKEN=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  # Volumes as the kubelet makes them with fsGroup: the PVC group-writable and setgid,
  # ConfigMap files 0644, Secret files root:<fsGroup> (token 0440; git 0400 + group read).
  rm -rf -- "$VOL"
  mkdir -p "$VOL/work" "$VOL/prompts" "$VOL/token" "$VOL/git"
  chown "0:$POD_FSGROUP" "$VOL/work"; chmod 2775 "$VOL/work"
  printf 'You are the builder. Read PLAN-1.md.\n' >"$VOL/prompts/$kickoff"
  printf 'phases:\n  default:\n    - work: {seconds: 2}\n    - wait_input: {match: "hello"}\n    - say: {text: "got your hello"}\n' \
    >"$VOL/prompts/$scenario"
  chmod 644 "$VOL/prompts"/*
  printf '%s' "$TOKEN" >"$VOL/token/$token_key"
  printf 'git' >"$VOL/git/username"
  printf 'not-a-real-token' >"$VOL/git/password"
  chown "0:$POD_FSGROUP" "$VOL/token"/* "$VOL/git"/*
  chmod 440 "$VOL/token"/* "$VOL/git"/*
  { do_mount --bind "$VOL/work" "$r/work" \
    && ro_bind "$VOL/prompts" "$r/etc/loopphase/prompts" \
    && ro_bind "$VOL/token" "$r/etc/loopphase/token" \
    && ro_bind "$VOL/git" "$r/etc/loopphase/git" \
    && ro_bind "$FIX/srv" "$r/srv/lp-verify"; } || { fail "agent pod: volume mounts"; return 1; }

  mapfile -d '' -t INIT_ARGV < <(helper pod-argv "$WORK/pod.json" init)
  mapfile -d '' -t MAIN_ARGV < <(helper pod-argv "$WORK/pod.json" main)
  mapfile -d '' -t INIT_ENV < <(helper pod-env "$WORK/pod.json" init)
  mapfile -d '' -t MAIN_ENV < <(helper pod-env "$WORK/pod.json" main)
  INIT_ENV=("${FINAL_ENV[@]}" "${INIT_ENV[@]}")
  MAIN_ENV=("${FINAL_ENV[@]}" "${MAIN_ENV[@]}")
  check "agent pod: init container (clone script) as $POD_UG clones the remote into /work/repo" \
    init_clones || return 1
  check "agent pod: init container again (pod restart) keeps the clone" init_again

  say "   shim on 127.0.0.1:$port (in the pod it listens on 0.0.0.0; here --host 127.0.0.1 is appended)"
  pod_exec "$POD_WD" MAIN_ENV "${MAIN_ARGV[@]}" --host 127.0.0.1 >"$LOGDIR/agent-shim.log" 2>&1 &
  SHIM_PID=$!
  STARTED_PIDS+=("$SHIM_PID")
  BASE_URL=http://127.0.0.1:$port
  check "agent pod: readiness GET /v1/health answers (no token)" wait_health || return 1
  check "agent pod: GET /v1/state without the token is refused (401)" state_refused
  check "agent pod: GET /v1/state with the token: the sim agent is alive in tmux" state_until ""
  check "agent pod: POST /v1/send 'hello' reaches the agent (the sim answers in its pane)" send_hello
  check "agent pod: SIGTERM stops the shim, its tmux server and the agent" shim_stops
  wait "$SHIM_PID" 2>/dev/null || true
}

# -- operator image checks -------------------------------------------------------------------

verify_operator() {
  run_dockerfile operator "$OPERATOR_DF" || return 1
  local r=$FINAL_ROOT
  say "-- operator image: run as USER $FINAL_USER, WORKDIR $FINAL_WD"
  check "operator: tools on PATH: git ssh python3 loopphase" \
    img sh -c 'for t in git ssh python3 loopphase; do command -v "$t" || exit 1; done'
  info "operator image: $(img python3 -V 2>&1), $(img git --version 2>&1), $(img ssh -V 2>&1 | head -n1)"
  info "operator: the final stage adds $(du -sh "$r.upper" | cut -f1) to the base root filesystem"
  check "operator: entrypoint: loopphase --help" img "${FINAL_ENTRY[@]}" --help
  check "operator: loopphase operator --help (as uid ${FINAL_USER%%:*}, kopf imports)" \
    img "${FINAL_ENTRY[@]}" operator --help
  # The Deployment: readOnlyRootFilesystem, emptyDirs at /tmp and /cache, --git-cache-dir=/cache/git.
  make_fixtures || { fail "operator: fixtures (a local git remote)"; return 1; }
  mkdir -p "$r/cache" "$r/srv/lp-verify"
  { ro_bind "$FIX/srv" "$r/srv/lp-verify" \
    && mount -o remount,ro "$r" \
    && do_mount -t tmpfs -o mode=1777 tmpfs "$r/tmp" \
    && do_mount -t tmpfs -o mode=2775,gid=1000 tmpfs "$r/cache"; } \
    || { fail "operator: Deployment mounts (read-only root, /tmp, /cache)"; return 1; }
  check "operator: with a read-only root, tmpfs /tmp and /cache: RemoteWatcher ls-remote + fetch into /cache/git" \
    img python3 -c '
import sys
from pathlib import Path
from loopphase.git.watcher import RemoteWatcher
w = RemoteWatcher(sys.argv[1], "main", Path("/cache/git"))
head = w.head()
obs = w.observe(None, ["STATUS-1.md"])
print(head, obs)
sys.exit(0 if head == sys.argv[2] and getattr(obs, "reachable", True) else 1)
' file:///srv/lp-verify/repo.git "$(cat "$FIX/head")"
  check "operator: the root filesystem really is read-only for it" \
    img sh -c 'if touch /usr/local/ro-check 2>/dev/null; then echo writable; exit 1; fi; echo read-only'
}

# -- main ------------------------------------------------------------------------------------

[ "$ONLY" = operator ] || verify_agent || true
[ "$ONLY" = agent ] || verify_operator || true

say ""
say "== summary: $PASSES passed, $FAILS failed"
for line in ${INFO[@]+"${INFO[@]}"}; do say "   info: $line"; done
for line in ${NOTES[@]+"${NOTES[@]}"}; do say "   note: $line"; done
for line in ${FAILED[@]+"${FAILED[@]}"}; do say "   FAILED: $line"; done
[ "$FAILS" -eq 0 ]
