"""Image sizes and build times: both images built by docker or podman from this repository.

Runs ``images/build.sh`` (the script ``make images`` calls) from the repository checkout this
package is installed from (an editable install, as ``python3 dev.py`` makes), so it needs the
Dockerfiles next to it; it does not run from an installed wheel.

``fresh=True`` (the full size) builds from nothing: the local bases again (``FORCE=1`` for
``images/build-base.sh``, when the engine builds them locally) and both images with
``--no-cache``; otherwise the engine's layer cache is used and the times say only how long an
unchanged rebuild takes. Sizes are the engine's uncompressed image sizes (``image inspect``),
in MB (10^6 bytes, as docker and podman print them).

Result shape::

    {"engine": "podman", "fresh": bool,
     "builds": {"bases": {"seconds": float} | absent, "operator": {...}, "agent": {...}},
     "images": {"<tag>": {"bytes": int, "mb": float}, ...}}

Raises RuntimeError (with the build's last output) when a build fails or no engine is found.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / "images" / "build.sh"
BASES = ("debian:trixie-slim", "node:22-trixie-slim")
TAGS = {"operator": "loopphase-operator:dev", "agent": "loopphase-agent:dev"}


def _run(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({out.returncode}): "
                           f"{(out.stdout + out.stderr)[-2000:]}")
    return out.stdout


def image_bytes(engine: str, tag: str) -> int:
    """The uncompressed size of ``tag`` in bytes."""
    return int(_run([engine, "image", "inspect", "--format", "{{.Size}}", tag], 60).strip())


def run(fresh: bool = False, timeout: float = 1800.0) -> dict[str, Any]:
    if not BUILD.is_file():
        raise RuntimeError(f"{BUILD} not found: run from a repository checkout (python3 dev.py)")
    engine = os.environ.get("DOCKER") or _run(["bash", str(BUILD), "--engine"], 60).strip()
    env = dict(os.environ, DOCKER=engine, OPERATOR_IMAGE=TAGS["operator"], AGENT_IMAGE=TAGS["agent"])
    builds: dict[str, dict[str, float]] = {}
    if fresh and env.get("LOCAL_BASES", "1") == "1":
        started = time.monotonic()
        _run(["bash", str(REPO / "images" / "build-base.sh")], timeout, dict(env, FORCE="1"))
        builds["bases"] = {"seconds": round(time.monotonic() - started, 1)}
    for name in ("operator", "agent"):
        build_env = dict(env, BUILD_ARGS=(env.get("BUILD_ARGS", "") + " --no-cache").strip()) if fresh else env
        started = time.monotonic()
        _run(["bash", str(BUILD), name], timeout, build_env)
        builds[name] = {"seconds": round(time.monotonic() - started, 1)}
    images: dict[str, dict[str, Any]] = {}
    for tag in (*TAGS.values(), *BASES):
        try:
            size = image_bytes(engine, tag)
        except RuntimeError:
            if tag in BASES:  # pulled or built under another name: not ours to report
                continue
            raise
        images[tag] = {"bytes": size, "mb": round(size / 1e6, 1)}
    return {"engine": engine, "fresh": fresh, "builds": builds, "images": images}


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows for ``loopphase bench``."""
    out = [(f"image {tag}", f"{info['mb']:g} MB", "uncompressed, as the engine reports")
           for tag, info in result["images"].items()]
    kind = "from nothing" if result["fresh"] else "layer cache allowed"
    out += [(f"build {name} ({result['engine']})", f"{info['seconds']:g} s", kind)
            for name, info in result["builds"].items()]
    return out
