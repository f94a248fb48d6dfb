"""SSH git credentials: the ssh argv git runs, and private-key files on the operator's disk.

Key material only ever goes into files (0600, in 0700 directories): never into env, argv or a
log line. git finds the key through ``GIT_SSH_COMMAND``, which holds only paths generated here
or by the pod builder (joined with ``shlex``), never a spec value.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

SSH_KEY = "ssh-privatekey"  # the data key of a kubernetes.io/ssh-auth Secret
KNOWN_HOSTS = "known_hosts"
ACCEPTED_HOSTS = "accepted_known_hosts"  # trust-on-first-use store, kept across key rotation
_SSH_SCHEMES = {"ssh", "git+ssh", "ssh+git"}
_UNSAFE_IN_PATH = set(" \t\n\"'%\\")  # ssh splits option values on blanks, expands %tokens


def is_ssh_url(url: str) -> bool:
    """Whether git reaches ``url`` over ssh: ``ssh://``-like schemes, or git's scp-like
    ``[user@]host:path`` form (a colon before the first slash and no ``://``)."""
    scheme, sep, _ = url.partition("://")
    if sep:
        return scheme.lower() in _SSH_SCHEMES
    return not url.startswith("/") and ":" in url.split("/", 1)[0]


def check_ssh_path(path: str) -> str:
    """``path`` if ssh reads it as written: absolute, no blank, quote, backslash or '%' (ssh
    splits ``-o`` values on blanks and expands ``%`` tokens in ``-i`` and known-hosts paths)."""
    if _UNSAFE_IN_PATH & set(path) or not path.startswith("/"):
        raise ValueError(
            f"ssh file path {path!r} must be absolute, without blanks, quotes, backslashes or "
            "'%' (ssh would split or expand them): use a --git-cache-dir without them"
        )
    return path


def ssh_argv(
    key_file: str,
    *,
    known_hosts: str | None = None,
    accept_new_file: str | None = None,
    config_file: str | None = None,
) -> list[str]:
    """``ssh`` with exactly one identity, never prompting, and a host-key policy.

    ``known_hosts`` given: ``StrictHostKeyChecking=yes`` against it. Else ``accept_new_file``:
    ``accept-new`` (trust on first use, refuse a changed key), recording hosts there. Else the
    policy comes from ``config_file`` (``-F``; the agent pods, whose init container writes it).
    """
    argv = ["ssh", "-i", check_ssh_path(key_file),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
    if config_file is not None:
        argv += ["-F", check_ssh_path(config_file)]
    if known_hosts is not None:
        argv += ["-o", "StrictHostKeyChecking=yes",
                 "-o", f"UserKnownHostsFile={check_ssh_path(known_hosts)}"]
    elif accept_new_file is not None:
        argv += ["-o", "StrictHostKeyChecking=accept-new",
                 "-o", f"UserKnownHostsFile={check_ssh_path(accept_new_file)}"]
    return argv


def ssh_command(argv: list[str]) -> str:
    """The ``GIT_SSH_COMMAND`` value for ``argv`` (git runs it through ``sh -c``)."""
    return shlex.join(argv)


def normalize_key(raw: bytes) -> bytes:
    """CRLF to LF and a final newline: OpenSSH rejects a key file without one."""
    key = raw.replace(b"\r\n", b"\n").strip(b"\n")
    return key + b"\n" if key else b""


def looks_like_private_key(key: bytes) -> bool:
    """A PEM or OpenSSH private key block (no parsing: ssh reports anything finer)."""
    first = key.lstrip().split(b"\n", 1)[0]
    return first.startswith(b"-----BEGIN ") and b"PRIVATE KEY-----" in first


@dataclass(frozen=True)
class SshFiles:
    """One Secret's key files on disk, and the ssh command that uses them."""

    key: Path
    known_hosts: Path | None  # from the Secret: strict host-key checking
    accepted_hosts: Path  # trust-on-first-use store when the Secret has no known_hosts

    def argv(self) -> list[str]:
        if self.known_hosts is not None:
            return ssh_argv(str(self.key), known_hosts=str(self.known_hosts))
        return ssh_argv(str(self.key), accept_new_file=str(self.accepted_hosts))

    def env(self) -> dict[str, str]:
        return {"GIT_SSH_COMMAND": ssh_command(self.argv())}


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # also when it existed, or the umask narrowed mkdir's mode


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


class SshKeyStore:
    """Private keys of credential Secrets as files under ``root`` (0700 all the way down).

    ``<root>/<namespace>_<secret>/<content hash>/{id,known_hosts}``: a rotated key (or
    known_hosts) gets a new directory and the old ones are removed, so a watcher whose env
    names the new path is a new watcher, and nothing stale stays on disk.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()  # git runs ssh from the cache repo's directory
        # (namespace, name) -> (content hash, files): a tick on an unchanged Secret does no I/O
        self._current: dict[tuple[str, str], tuple[str, SshFiles]] = {}

    def _secret_dir(self, namespace: str, name: str) -> Path:
        # Kubernetes names hold no '_' or '/': the pair maps to one directory, both ways.
        return self.root / f"{namespace}_{name}"

    def materialize(
        self, namespace: str, name: str, key: bytes, known_hosts: bytes | None = None
    ) -> SshFiles:
        """Write (once per content) and return the key files of Secret ``namespace/name``.

        Raises ValueError (a message naming the Secret or the flag to fix) for an empty key or
        a key store path that ssh cannot take as written."""
        check_ssh_path(str(self.root))
        key = normalize_key(key)
        if not key:
            raise ValueError(f"Secret {namespace}/{name}: {SSH_KEY} is empty")
        pins = normalize_key(known_hosts or b"") or None
        digest = hashlib.sha256(b"key\0" + key + b"\0hosts\0" + (pins or b"")).hexdigest()[:20]
        known = self._current.get((namespace, name))
        if known is not None and known[0] == digest:
            return known[1]
        _private_dir(self.root)
        secret_dir = self._secret_dir(namespace, name)
        _private_dir(secret_dir)
        current = secret_dir / digest
        if not (current / "id").is_file():
            self._write(current, key, pins)
        self._remove_stale(secret_dir, keep=digest)
        files = SshFiles(
            key=current / "id",
            known_hosts=current / KNOWN_HOSTS if pins else None,
            accepted_hosts=secret_dir / ACCEPTED_HOSTS,
        )
        self._current[(namespace, name)] = (digest, files)
        return files

    def discard(self, namespace: str, name: str) -> bool:
        """Remove Secret ``namespace/name``'s files (it has no key any more); True if any."""
        self._current.pop((namespace, name), None)
        secret_dir = self._secret_dir(namespace, name)
        if not secret_dir.exists():
            return False
        shutil.rmtree(secret_dir)
        return True

    @staticmethod
    def _write(current: Path, key: bytes, pins: bytes | None) -> None:
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=current.parent))  # mode 0700
        try:
            _write_private(staging / "id", key)
            if pins:
                _write_private(staging / KNOWN_HOSTS, pins)
            if current.exists():  # a half-written leftover (no id file): replace it
                shutil.rmtree(current)
            os.rename(staging, current)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @staticmethod
    def _remove_stale(secret_dir: Path, keep: str) -> None:
        for child in secret_dir.iterdir():
            if child.is_dir() and not child.is_symlink() and child.name != keep:
                shutil.rmtree(child)
