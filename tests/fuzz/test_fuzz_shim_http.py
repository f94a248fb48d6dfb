"""The shim's HTTP API under random requests (hardening): a real shim on loopback, random
methods, paths, headers and bodies, with and without the token. Every answer is a JSON error or
success with a known status, never a 500, and the shim stays healthy. Bounded for CI."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.shim.conftest import free_port

pytestmark = pytest.mark.timeout(240)
EXPECTED = {200, 400, 401, 404, 405, 408, 409, 411, 413, 414, 431, 501, 503, 505}
ROUTES = ["/v1/health", "/v1/state", "/v1/send", "/v1/restart", "/v1/stop", "/v1/hook",
          "/v1/", "/", "/v1/state?lines=5", "/v1/state?lines=-1", "/v1/%00", "/v1/../etc"]


class Shim:
    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shim]:
    base = tmp_path_factory.mktemp("fuzz-shim")
    (base / "work").mkdir()
    (base / "scenario.yaml").write_text("phases: {default: [{work: {seconds: 1}}]}\n")
    (base / "kickoff.md").write_text("kickoff")
    token = uuid.uuid4().hex
    (base / "token").write_text(token)
    port, socket_name = free_port(), f"lp-fuzz-{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, "-m", "loopphase.cli", "shim", "--role", "builder", "--backend", "sim",
            "--workdir", str(base / "work"), "--scenario", str(base / "scenario.yaml"),
            "--kickoff-file", str(base / "kickoff.md"), "--continuation-text", "go on",
            "--port", str(port), "--token-file", str(base / "token"),
            "--tmux-socket", socket_name, "--no-start"]
    env = {k: v for k, v in os.environ.items() if k != "LOOPPHASE_SHIM_TOKEN"}
    with (base / "shim.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    client = Shim(port, token)
    deadline = time.monotonic() + 20
    while True:
        try:
            if client.request("GET", "/v1/health", None, {})[0] == 200:
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
        time.sleep(0.1)  # polling the health endpoint until it answers (startup)
    yield client
    proc.terminate()
    proc.wait(timeout=20)
    subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True, timeout=5,
                   check=False)
    log_text = (base / "shim.log").read_text()
    assert "Traceback" not in log_text, log_text[-3000:]


json_bodies = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["text", "mode", "submit", "phaseIndex",
                                                             "phaseId", "kickoff", "x"]),
                                            inner, max_size=4)),
    max_leaves=8,
)
bodies = st.one_of(st.none(), st.binary(max_size=200),
                   json_bodies.map(lambda v: json.dumps(v).encode()),
                   st.just(b"[" * 5000), st.just(b'{"text": "\\u0000\\u001b[2J"}'))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
       path=st.one_of(st.sampled_from(ROUTES), st.text(alphabet="/abcv1?=&%.", max_size=20).map(lambda s: "/" + s)),
       body=bodies, auth=st.sampled_from(["good", "none", "wrong", "basic"]),
       content_type=st.sampled_from([None, "application/json", "text/plain"]))
def test_random_requests_get_known_answers(shim: Shim, method: str, path: str, body: bytes | None,
                                           auth: str, content_type: str | None) -> None:
    headers = {"good": {"Authorization": f"Bearer {shim.token}"}, "none": {},
               "wrong": {"Authorization": "Bearer nope"},
               "basic": {"Authorization": f"Basic {shim.token}"}}[auth]
    if content_type:
        headers = {**headers, "Content-Type": content_type}
    if method in {"POST", "PUT", "PATCH"} and path.startswith("/v1/restart") and auth == "good":
        body = b"{}"  # never actually restart/stop the agent from the fuzzer: keep it valid-but-refused
    if method == "POST" and path.startswith("/v1/stop") and auth == "good":
        return
    status, raw = shim.request(method, path, body, headers)
    assert status in EXPECTED, (status, raw[:300])
    assert status != 500
    if method != "HEAD" and raw:
        payload = json.loads(raw)
        if status != 200:
            assert isinstance(payload.get("error"), str) and payload["error"]
    if auth != "good" and path.split("?")[0] != "/v1/health":
        # Authentication comes before routing: no route is revealed, nothing runs.
        assert status in {400, 401, 414, 431, 505}, (method, path, status)
    assert shim.request("GET", "/v1/health", None, {})[0] == 200  # still alive
