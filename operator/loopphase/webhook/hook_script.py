"""The ``post-receive`` hook ``loopphase hook install`` writes: a GitHub-format push webhook.

The script is plain Python 3 (stdlib only, run with ``-IS``: no site-packages, no PYTHON*
environment, ~10 ms less start-up), run by git after a push updated refs. For each
updated ref it POSTs a ``push`` event (``X-GitHub-Event: push``, a fresh ``X-GitHub-Delivery``,
``X-Hub-Signature-256`` = HMAC-SHA256 of the body with the secret read from a file at push
time, so rotating the secret needs no reinstall). It never fails the push: each request has a
short timeout, every error is one line on stderr (git shows it to the pusher as ``remote:``),
and it always exits 0.
"""

from __future__ import annotations

import sys

MARKER = "# loopphase post-receive hook"

TEMPLATE = '''#!{python} -IS
{marker} (written by `loopphase hook install`; reinstall rather than edit)
import hashlib, hmac, json, sys, uuid, urllib.request

URL = {url!r}
SECRET_FILE = {secret_file!r}
REPO_URLS = {repo_urls!r}
TIMEOUT = {timeout!r}
URL_FIELDS = ("clone_url", "url", "git_url", "ssh_url", "html_url")


def send(secret, old, new, ref):
    zero = "0" * len(new)
    body = json.dumps({{
        "ref": ref, "before": old, "after": new,
        "created": old == zero, "deleted": new == zero,
        "repository": dict(zip(URL_FIELDS, REPO_URLS)),
        "pusher": {{"name": "post-receive"}},
    }}).encode()
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(URL, data=body, method="POST", headers={{
        "Content-Type": "application/json", "User-Agent": "loopphase-post-receive",
        "X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature,
    }})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        response.read()


def main():
    try:
        with open(SECRET_FILE, "rb") as handle:
            secret = handle.read().strip()
    except OSError as err:
        print("loopphase hook: cannot read the secret file: %s; no webhook sent" % err,
              file=sys.stderr)
        return
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 3:
            continue
        try:
            send(secret, *parts)
        except Exception as err:
            print("loopphase hook: webhook to %s failed (%s); the push itself succeeded, "
                  "the runner's poll will catch it" % (URL, err), file=sys.stderr)


try:
    main()
except Exception as err:
    print("loopphase hook: %s" % err, file=sys.stderr)
sys.exit(0)
'''


def render(url: str, secret_file: str, repo_urls: list[str], timeout: float,
           python: str | None = None) -> str:
    """The hook's text. ``repo_urls``: the URLs LoopPhases know this repository by (up to 5)."""
    return TEMPLATE.format(python=python or sys.executable, marker=MARKER, url=url,
                           secret_file=secret_file, repo_urls=tuple(repo_urls[:5]),
                           timeout=timeout)
