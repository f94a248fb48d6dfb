"""The webhook receiver over real HTTP on loopback: every provider's push format is accepted
and wakes only the matching subscriber; forged, unsigned, replayed and oversized requests are
refused with their status code and counted."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from loopphase.webhook import PushNotice, Receiver, Subscription, repo_key, sign_github
from loopphase.webhook.replay import ReplayGuard
from loopphase.webhook.urls import repo_key as key

SECRET = b"s3cret-for-tests"
OTHER = b"another-loops-secret"


class Inbox:
    def __init__(self) -> None:
        self.notices: list[tuple[str, PushNotice]] = []

    def sub(self, name: str, url: str, branch: str = "main", secret: bytes = SECRET) -> Subscription:
        return Subscription(key=name, url=url, branch=branch, secret=secret,
                            on_push=lambda n: self.notices.append((name, n)))

    def woken(self) -> list[str]:
        return [name for name, _ in self.notices]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rx = Receiver(max_body=64 * 1024)
    await rx.start("127.0.0.1", 0)
    try:
        yield rx
    finally:
        await rx.stop()


def github_push(url: str = "https://github.com/acme/app.git", ref: str = "refs/heads/main",
                after: str = "a" * 40) -> bytes:
    return json.dumps({"ref": ref, "before": "b" * 40, "after": after,
                       "repository": {"clone_url": url, "ssh_url": "git@github.com:acme/app.git",
                                      "html_url": "https://github.com/acme/app"}}).encode()


def gh_headers(body: bytes, secret: bytes = SECRET, event: str = "push",
               delivery: str | None = None) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign_github(secret, body), "Content-Type": "application/json"}


async def post(rx: Receiver, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(rx.url(), data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def test_repo_key_treats_url_forms_of_one_repository_alike() -> None:
    forms = ["https://github.com/Acme/App.git", "https://user:tok@github.com/acme/app",
             "git@github.com:acme/app.git", "ssh://git@github.com:22/acme/app.git/",
             "http://GITHUB.com:80/acme//app"]
    assert {repo_key(f) for f in forms} == {"github.com/acme/app"}
    assert key("/srv/git/x.git") == key("file:///srv/git/x.git") == key("/srv/git/x/") == "local:/srv/git/x"
    assert key("https://github.com/acme/app") != key("https://github.com/acme/app2")
    assert key("https://github.com/acme/app") != key("https://gitlab.com/acme/app")


async def test_github_push_wakes_only_the_matching_loopphase(receiver: Receiver) -> None:
    inbox = Inbox()
    receiver.subscribe(inbox.sub("a", "git@github.com:acme/app.git"))
    receiver.subscribe(inbox.sub("b", "https://github.com/acme/other.git"))
    receiver.subscribe(inbox.sub("c", "https://github.com/acme/app", branch="dev"))
    body = github_push(after="c" * 40)
    status, answer = await post(receiver, body, gh_headers(body))
    assert (status, answer) == (202, {"result": "accepted", "notified": 1})
    assert inbox.woken() == ["a"]
    notice = inbox.notices[0][1]
    assert (notice.provider, notice.branch, notice.after) == ("github", "main", "c" * 40)
    # a push to another branch of the same repo wakes the 'dev' subscriber only
    body = github_push(ref="refs/heads/dev")
    assert (await post(receiver, body, gh_headers(body)))[0] == 202
    assert inbox.woken() == ["a", "c"]
    # a tag push, a non-push event and an unwatched branch wake nobody
    for body, event in [(github_push(ref="refs/tags/v1"), "push"), (b"{}", "issues"),
                        (github_push(ref="refs/heads/feature"), "push")]:
        status, _ = await post(receiver, body, gh_headers(body, event=event))
        assert status == 202
    assert inbox.woken() == ["a", "c"]
    counts = receiver.counters.as_dict()
    assert (counts["accepted"], counts["ignored"], counts["unmatched"], counts["notified"]) == (2, 2, 1, 2)


async def test_a_secret_only_wakes_the_loopphases_that_hold_it(receiver: Receiver) -> None:
    inbox = Inbox()
    receiver.subscribe(inbox.sub("mine", "https://github.com/acme/app"))
    receiver.subscribe(inbox.sub("theirs", "https://github.com/acme/app", secret=OTHER))
    body = github_push()
    assert (await post(receiver, body, gh_headers(body, secret=OTHER)))[0] == 202
    assert inbox.woken() == ["theirs"]


async def test_gitlab_gitea_and_forgejo_pushes_are_understood(receiver: Receiver) -> None:
    inbox = Inbox()
    receiver.subscribe(inbox.sub("lab", "https://gitlab.example.com/acme/app.git"))
    receiver.subscribe(inbox.sub("tea", "https://gitea.example.com/acme/app.git"))
    receiver.subscribe(inbox.sub("forge", "ssh://git@codeberg.org/acme/app.git"))
    gitlab = json.dumps({"object_kind": "push", "ref": "refs/heads/main", "after": "d" * 40,
                         "project": {"git_http_url": "https://gitlab.example.com/acme/app.git",
                                     "git_ssh_url": "git@gitlab.example.com:acme/app.git"}}).encode()
    status, _ = await post(receiver, gitlab, {"X-Gitlab-Event": "Push Hook",
                                              "X-Gitlab-Token": SECRET.decode(),
                                              "X-Gitlab-Event-UUID": str(uuid.uuid4())})
    assert status == 202
    gitea = github_push("https://gitea.example.com/acme/app.git")
    hexsig = hmac.new(SECRET, gitea, hashlib.sha256).hexdigest()
    status, _ = await post(receiver, gitea, {"X-Gitea-Event": "push", "X-GitHub-Event": "push",
                                             "X-Gitea-Delivery": str(uuid.uuid4()),
                                             "X-Gitea-Signature": hexsig})
    assert status == 202
    forgejo = github_push("https://codeberg.org/acme/app.git")
    status, _ = await post(receiver, forgejo, {
        "X-Forgejo-Event": "push", "X-Forgejo-Delivery": str(uuid.uuid4()),
        "X-Forgejo-Signature": hmac.new(SECRET, forgejo, hashlib.sha256).hexdigest()})
    assert status == 202
    assert inbox.woken() == ["lab", "tea", "forge"]
    assert [n.provider for _, n in inbox.notices] == ["gitlab", "gitea", "forgejo"]


async def test_forged_unsigned_replayed_and_oversized_requests_are_refused_and_counted(
    receiver: Receiver,
) -> None:
    inbox = Inbox()
    receiver.subscribe(inbox.sub("a", "https://github.com/acme/app"))
    body = github_push()
    # forged: signed with a key nobody configured, or a valid signature over another body
    assert (await post(receiver, body, gh_headers(body, secret=b"guess")))[0] == 403
    tampered = github_push(after="e" * 40)
    assert (await post(receiver, tampered, gh_headers(body)))[0] == 403
    gitlab_wrong = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess"}
    assert (await post(receiver, body, gitlab_wrong))[0] == 403
    # unauthenticated: no signature header at all
    headers = gh_headers(body)
    del headers["X-Hub-Signature-256"]
    assert (await post(receiver, body, headers))[0] == 401
    # not a webhook
    assert (await post(receiver, body, {"Content-Type": "application/json"}))[0] == 400
    # replay: the same delivery twice (validly signed) -> the second is refused
    fixed = gh_headers(body, delivery="delivery-1")
    assert (await post(receiver, body, fixed))[0] == 202
    status, answer = await post(receiver, body, fixed)
    assert status == 409 and "already processed" in answer["error"]
    # oversized: declared (Content-Length) and streamed (chunked, no length)
    big = b"x" * (receiver.max_body + 1)
    assert (await post(receiver, big, gh_headers(big)))[0] == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * (receiver.max_body // 2)

    async with aiohttp.ClientSession() as session, session.post(
        receiver.url(), data=chunks(), headers=gh_headers(b"")) as resp:
        assert resp.status == 413
    assert inbox.woken() == ["a"]  # only the one genuine delivery
    counts = receiver.counters.as_dict()
    assert counts == {**counts, "forbidden": 3, "unauthenticated": 1, "bad_request": 1,
                      "replayed": 1, "too_large": 2, "accepted": 1}
    assert counts["received"] == 9


async def test_ping_is_answered_and_wrong_method_refused(receiver: Receiver) -> None:
    receiver.subscribe(Inbox().sub("a", "https://github.com/acme/app"))
    body = b'{"zen": "Keep it logically awesome."}'
    status, answer = await post(receiver, body, gh_headers(body, event="ping"))
    assert (status, answer) == (200, {"result": "pong"})
    async with aiohttp.ClientSession() as session, session.get(receiver.url()) as resp:
        assert resp.status == 405


async def test_with_no_subscriber_every_signed_request_is_forbidden(receiver: Receiver) -> None:
    body = github_push()
    assert (await post(receiver, body, gh_headers(body)))[0] == 403


def test_replay_window_is_bounded_lru() -> None:
    guard = ReplayGuard(capacity=3)
    assert [guard.seen(d) for d in "abc"] == [False] * 3
    assert guard.seen("a") is True  # refreshes 'a'
    assert guard.seen("d") is False  # evicts 'b', the least recently seen
    assert len(guard) == 3
    assert guard.seen("b") is False
    assert guard.seen("a") is True
