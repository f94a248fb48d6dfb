"""Credential forms the scrubber let through until 2026-11-30: an scp-like git remote with a
password (``user:pass@host:path``, which git quotes back in its errors) and URLs that are
percent-encoded inside another URL's query (a redirect target carrying userinfo or a token)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from loopphase.outbound import scrub, url_credentials


@pytest.mark.parametrize(("text", "gone", "kept"), [
    ("fatal: unable to access builder:s3cr3t-pw@git.example.com:org/r.git", "s3cr3t-pw",
     "builder:***@git.example.com:org/r.git"),
    ("remote builder:p%40ss@git.example.com:r.git", "p%40ss", "builder:***@git.example.com:"),
    ("next=https%3A%2F%2Fbuilder%3Ap%40ss-SECRET%40git.example.com%2Fr.git ok", "ss-SECRET",
     "https%3A%2F%2F***%40git.example.com%2Fr.git ok"),
    ("NEXT=HTTPS%3a%2f%2fU%3aSECRET%40h", "SECRET", "***%40h"),
    ("GET /login?next=%2Fr%3Faccess_token%3DENCSECRET%26x%3D1 done", "ENCSECRET",
     "%3Faccess_token%3D***%26x%3D1 done"),
    ("cb%23id_token%3DFRAGSECRET", "FRAGSECRET", "%23id_token%3D***"),
])
def test_encoded_and_scp_like_credentials_are_masked(text: str, gone: str, kept: str) -> None:
    out = scrub(text)
    assert gone not in out and kept in out, out
    assert scrub(out) == out


@pytest.mark.parametrize("text", [
    "git@github.com:o/r.git", "user@host:path", "at 12:30 on host:path", "ratio 3:1@x",
    "https%3A%2F%2Fgithub.com%2Fo%2Fr.git", "%3Fpage%3D2%26sort%3Dasc",
])
def test_harmless_lookalikes_are_left_alone(text: str) -> None:
    assert scrub(text) == text


def test_validate_names_a_password_in_an_scp_like_remote() -> None:
    assert url_credentials("builder:pw@git.example.com:org/r.git") == [
        "a password in the URL's user part"]
    assert url_credentials("git@github.com:org/r.git") == []


def test_the_new_patterns_stay_linear_on_long_inputs() -> None:
    script = ("from loopphase.outbound import scrub\n"
              "for text in ('a:' * 200_000, 'a%3A%2F%2F' * 50_000, '%3Ftoken%3D' * 50_000,\n"
              "             'u:' + 'p' * 400_000 + '@', 'x%40' * 100_000):\n"
              "    scrub(text)\n")
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("scrubbing 400 KB did not finish in 30 s") from None
    assert done.returncode == 0, done.stderr[-2000:]
