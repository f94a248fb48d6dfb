#!/usr/bin/env python3
"""Bootstrap for a fresh machine: needs nothing but Python 3.11+.

    python3 dev.py demo     # the whole loop on simulated agents
    python3 dev.py test     # lint + the test suite
    python3 dev.py bench    # benchmarks (smoke size unless --full)
    python3 dev.py shell    # a shell with the project's venv on PATH
    python3 dev.py setup    # only install (what `make` runs when .venv is missing)

It installs what it needs itself: tmux and git from Debian (apt-get, as root) when they are
missing, the package with its test extra into ./.venv (re-installed when pyproject.toml
changes), and for `test` and `demo` the pinned agent CLIs (images/agent/cli-pins.txt: Claude
Code, opencode) with npm into ./.tools/npm (skipped when already at the pins; without npm it
says so and goes on: the real-CLI tests then skip). Extra arguments are passed through to the
command it runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".loopphase-install-stamp"
SYSTEM_TOOLS = ("tmux", "git")
PINS_FILE = ROOT / "images" / "agent" / "cli-pins.txt"
NPM_PREFIX = ROOT / ".tools" / "npm"
NPM_BIN = NPM_PREFIX / "node_modules" / ".bin"
NPM_TIMEOUT = 900


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def run(argv: list[str], **kw) -> int:
    return subprocess.call(argv, **kw)


def ensure_system_tools() -> None:
    missing = [tool for tool in SYSTEM_TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        sys.exit(f"[dev] missing {', '.join(missing)}: install them with your package manager")
    say(f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if run(["apt-get", "update", "-q"], env=env) != 0:
        sys.exit("[dev] apt-get update failed")
    if run(["apt-get", "install", "-y", "-q", *missing], env=env) != 0:
        sys.exit(f"[dev] apt-get install {' '.join(missing)} failed")


def venv_bin(name: str) -> str:
    return str(VENV / "bin" / name)


def ensure_venv() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not (VENV / "bin" / "python").exists():
        say("creating .venv")
        venv.create(VENV, with_pip=True)
    say("installing loopphase[test] into .venv (first run takes a minute)")
    pip = [venv_bin("python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if run([*pip, "-e", f"{ROOT}[test]"]) != 0:
        sys.exit("[dev] pip install failed")
    STAMP.write_text(wanted)


def cli_pins() -> list[tuple[str, str]]:
    """(package, version) per line of the pins file: '@scope/name@1.2.3' or 'name@1.2.3'."""
    pins = []
    for line in PINS_FILE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.rpartition("@")
            pins.append((name, version))
    return pins


def installed_version(package: str) -> str | None:
    manifest = NPM_PREFIX / "node_modules" / package / "package.json"
    try:
        return str(json.loads(manifest.read_text(encoding="utf-8")).get("version"))
    except (OSError, ValueError):
        return None


def ensure_agent_clis() -> None:
    """npm-install the pinned agent CLIs into .tools/npm; never fatal (the tests skip without)."""
    pins = cli_pins()
    missing = [f"{name}@{version}" for name, version in pins if installed_version(name) != version]
    if not missing:
        return
    if shutil.which("npm") is None:
        say(f"npm not found: not installing {', '.join(missing)}; the real-CLI tests will skip "
            "(install Node.js 20+ with npm to run them)")
        return
    say(f"installing {' '.join(missing)} into .tools/npm (npm; about a minute)")
    argv = ["npm", "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund",
            "--loglevel=error", *missing]
    try:
        code = subprocess.call(argv, timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired:
        code = -1
    if code != 0:
        say(f"npm install failed ({code}): going on without the agent CLIs; the real-CLI tests "
            "will skip")


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    ensure_system_tools()
    ensure_venv()
    if command in {"test", "demo", "bench"}:
        ensure_agent_clis()
    path = os.pathsep.join([str(VENV / "bin"), str(NPM_BIN), os.environ.get("PATH", "")])
    env = dict(os.environ, PATH=path)
    if command == "demo":
        return run([venv_bin("loopphase"), "demo", *rest], env=env)
    if command == "test":
        say("ruff check")
        if run([venv_bin("ruff"), "check", "."], cwd=ROOT, env=env) != 0:
            return 1
        say("pytest")
        return run([venv_bin("python"), "-m", "pytest", *rest], cwd=ROOT, env=env)
    if command == "bench":
        return run([venv_bin("loopphase"), "bench", *rest], cwd=ROOT, env=env)
    if command == "shell":
        return run([os.environ.get("SHELL", "/bin/bash")], env=env)
    if command == "setup":
        say(f"ready: {venv_bin('loopphase')}")
        return 0
    print(f"[dev] unknown command {command!r}; try: demo, test, bench, shell, setup", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
