"""Bad ``--metrics-port``/``--metrics-host`` values and a bad ``LOOPPHASE_METRICS_PORT`` give a
one-line error naming the flag (or variable) and the fix, never a traceback; nothing starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runner.test_local_e2e import QUIET_ADVERSARY, _write_spec


@pytest.fixture()
def busy_port() -> Iterator[int]:
    """A loopback port held by a listening socket for the test's duration."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopphase.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, check=False)


@pytest.mark.parametrize("port", ["70000", "-5", "http"])
def test_run_rejects_out_of_range_port_in_argparse(tmp_path: Path, port: str) -> None:
    spec = tmp_path / "lp.yaml"
    spec.write_text("apiVersion: loopphase.dev/v1alpha1\n")
    done = _cli("run", str(spec), f"--metrics-port={port}")
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert "argument --metrics-port" in done.stderr and "0-65535" in done.stderr, done.stderr


@pytest.mark.parametrize("flags", [["--metrics-port", "BUSY"],
                                   ["--metrics-port", "0", "--metrics-host", "no.such.host.invalid"]])
def test_run_bind_failure_is_one_line_and_starts_nothing(tmp_path: Path, busy_port: int,
                                                         flags: list[str]) -> None:
    spec = _write_spec(tmp_path, "phases: {default: [{idle: {seconds: 60}}]}\n", QUIET_ADVERSARY)
    state = tmp_path / "state"
    argv = [str(busy_port) if f == "BUSY" else f for f in flags]
    done = _cli("run", str(spec), "--state-dir", str(state), *argv)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("loopphase run: --metrics-port/--metrics-host: cannot serve metrics on ")
    assert "choose a free port" in lines[0] and "nothing was started" in lines[0]
    assert not state.exists()


def test_operator_help_works_with_any_env_port() -> None:
    for value in ("", "junk", "70000"):
        done = _cli("operator", "--help", env={"LOOPPHASE_METRICS_PORT": value, "LOOPPHASE_SHIM_PORT": value})
        assert done.returncode == 0, (value, done.stderr)
        assert "--metrics-port" in done.stdout


@pytest.mark.parametrize("name", ["LOOPPHASE_METRICS_PORT", "LOOPPHASE_SHIM_PORT"])
def test_operator_bad_env_port_names_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str], name: str) -> None:
    from loopphase.operator.main import parse_args

    monkeypatch.setenv(name, "ninety")
    with pytest.raises(SystemExit) as exc:
        parse_args(["--standalone"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"environment variable {name}: 'ninety' is not a port" in err and "unset it" in err
    # The flag wins over the variable; an empty variable means the default.
    monkeypatch.setenv(name, "")
    args = parse_args(["--standalone"])
    assert (args.metrics_port, args.shim_port) == (9090, 8790)
    monkeypatch.setenv(name, "ninety")
    flag = "--metrics-port" if name == "LOOPPHASE_METRICS_PORT" else "--shim-port"
    assert getattr(parse_args(["--standalone", flag, "1234"]), flag[2:].replace("-", "_")) == 1234


def test_operator_busy_metrics_port_exits_before_starting(busy_port: int, tmp_path: Path) -> None:
    done = _cli("operator", "--standalone", "--metrics-port", str(busy_port), "--metrics-host", "127.0.0.1",
                "--webhook-listen", "off", "--git-cache-dir", str(tmp_path / "git"), timeout=60)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr, done.stderr
    assert "loopphase operator: --metrics-port/--metrics-host: cannot serve metrics on 127.0.0.1:" in done.stderr
