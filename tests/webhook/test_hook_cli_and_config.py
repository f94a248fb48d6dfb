"""`loopphase hook install` and `loopphase run`'s webhook options: clear errors, no clobbering."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from loopphase.runner.specfile import load_spec
from loopphase.runner.webhook import SECRET_ENV, WebhookConfigError, resolve_config
from loopphase.webhook.hook_cli import main as hook_main
from loopphase.webhook.hook_script import MARKER


def spec_file(tmp: Path, webhook: dict | None = None) -> Path:
    repo: dict = {"url": str(tmp / "origin.git"), "branch": "main"}
    if webhook is not None:
        repo["webhook"] = webhook
    path = tmp / "lp.yaml"
    path.write_text(yaml.safe_dump({"repo": repo, "phases": [
        {"id": "p1", "plan": "PLAN.md", "statusFile": "STATUS.md"}]}))
    return path


def test_run_webhook_secret_sources_in_order(tmp_path: Path) -> None:
    (tmp_path / "spec.secret").write_text("from-spec\n")
    (tmp_path / "flag.secret").write_text("from-flag\n")
    loaded = load_spec(spec_file(tmp_path, {"secretFile": "spec.secret", "pollInterval": "90s"}))
    flag = resolve_config(loaded, "127.0.0.1:0", tmp_path / "flag.secret", env={})
    assert flag is not None and flag.secret == b"from-flag" and flag.poll_interval == 90
    spec = resolve_config(loaded, "127.0.0.1:0", None, env={SECRET_ENV: "from-env"})
    assert spec is not None and spec.secret == b"from-spec"
    bare = load_spec(spec_file(tmp_path))
    env = resolve_config(bare, ":9797", None, env={SECRET_ENV: "from-env"})
    assert env is not None and (env.host, env.port, env.secret, env.poll_interval) == (
        "0.0.0.0", 9797, b"from-env", 60.0)
    assert resolve_config(loaded, None, None, env={}) is None  # no receiver without the flag


@pytest.mark.parametrize(("listen", "secret", "needle"), [
    ("nonsense", "flag.secret", "--webhook-listen"),
    ("127.0.0.1:99999", "flag.secret", "--webhook-listen"),
    ("127.0.0.1:9797", None, "--webhook-secret-file"),
    ("127.0.0.1:9797", "missing.secret", "cannot read"),
    ("127.0.0.1:9797", "empty.secret", "is empty"),
])
def test_run_webhook_bad_options_name_the_fix(tmp_path: Path, listen: str, secret: str | None,
                                              needle: str) -> None:
    (tmp_path / "flag.secret").write_text("s\n")
    (tmp_path / "empty.secret").write_text("\n")
    loaded = load_spec(spec_file(tmp_path))
    with pytest.raises(WebhookConfigError, match=needle):
        resolve_config(loaded, listen, tmp_path / secret if secret else None, env={})


def test_hook_install_creates_secret_and_never_clobbers_a_foreign_hook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    bare = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    secret = tmp_path / "conf" / "hook.secret"
    assert hook_main(["install", str(bare), "--secret-file", str(secret)]) == 0
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text().strip()) == 64
    hook = bare / "hooks" / "post-receive"
    text = hook.read_text()
    assert MARKER in text and str(secret) in text and secret.read_text().strip() not in text
    assert hook.stat().st_mode & stat.S_IXUSR
    assert hook_main(["install", str(bare), "--secret-file", str(secret)]) == 0  # ours: updated
    hook.write_text("#!/bin/sh\necho mine\n")
    capsys.readouterr()
    assert hook_main(["install", str(bare), "--secret-file", str(secret)]) == 1
    assert "--force" in capsys.readouterr().err and hook.read_text() == "#!/bin/sh\necho mine\n"
    assert hook_main(["install", str(bare), "--secret-file", str(secret), "--url", "ftp://x"]) == 1
    assert hook_main(["install", str(tmp_path / "nope"), "--secret-file", str(secret)]) == 1
    assert "not a git repository" in capsys.readouterr().err
