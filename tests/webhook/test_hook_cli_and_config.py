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


async def test_the_installed_hook_signs_pushes_the_receiver_accepts(tmp_path: Path) -> None:
    """The real post-receive hook against the real receiver: a push with the right secret is
    accepted (the pusher sees nothing); with a wrong secret it is refused (403) and the pusher
    sees one line saying so, while the push itself succeeds."""
    import asyncio
    import subprocess

    from loopphase.webhook import Receiver, Subscription
    from loopphase.webhook.hook_cli import install

    bare, work = tmp_path / "r.git", tmp_path / "w"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    good, bad = tmp_path / "good.secret", tmp_path / "bad.secret"
    good.write_text("the-right-secret\n")
    bad.write_text("a-wrong-secret\n")
    notices: list[str | None] = []
    receiver = Receiver()
    receiver.subscribe(Subscription(key="lp", url=f"file://{bare}", branch="main",
                                    secret=b"the-right-secret",
                                    on_push=lambda n: notices.append(n.after)))
    await receiver.start("127.0.0.1", 0)

    def push(n: int) -> subprocess.CompletedProcess[str]:
        (work / f"f{n}").write_text(f"{n}\n")
        subprocess.run(["git", "-C", str(work), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t",
                        "commit", "-qm", f"c{n}"], check=True)
        return subprocess.run(["git", "-C", str(work), "push", "origin", "HEAD:main"],
                              capture_output=True, text=True, timeout=30)

    try:
        install(bare, url=receiver.url(), secret_file=good)
        ok = await asyncio.to_thread(push, 1)
        sha = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        assert ok.returncode == 0 and "loopphase hook" not in ok.stderr
        assert notices == [sha]
        install(bare, url=receiver.url(), secret_file=bad)
        refused = await asyncio.to_thread(push, 2)
        assert refused.returncode == 0
        assert "the receiver answered 403" in refused.stderr
        assert notices == [sha] and receiver.counters.as_dict()["forbidden"] == 1
    finally:
        await receiver.stop()
