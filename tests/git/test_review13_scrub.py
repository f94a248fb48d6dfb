"""Review of issue 13 (hardening, faults 1 and 9): credential forms and display controls the
shared scrubber let through, unit-level and through a real ``loopphase run`` whose clone fails.

Before the fix these passed unmasked: ``X-Amz-Security-Token=`` (an AWS presigned URL's session
token), ``private-token=``/``access-token=``/``AccessToken=``/``jwt=``/``sessionid=`` query
names, an OAuth ``#access_token=`` fragment, ``PRIVATE-TOKEN:``/``X-Api-Key:`` headers, bare
GitHub/GitLab/Anthropic tokens, PGP private key blocks; bidi overrides (U+202E) and U+2028
reached terminals raw; ``validate`` did not warn about a token in the fragment.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from loopphase.outbound import scrub, url_credentials

from tests.git.leak_helpers import run_locally_with_repo_url


@pytest.mark.parametrize(("text", "gone", "kept"), [
    ("https://h.example/r.git?X-Amz-Security-Token=AMZSESSION1&X-Amz-Signature=ab",
     "AMZSESSION1", "X-Amz-Security-Token=***"),
    ("https://h.example/r?private-token=GLSECRET1", "GLSECRET1", "private-token=***"),
    ("https://h.example/r?access-token=SECRET1234", "SECRET1234", "access-token=***"),
    ("https://h.example/r?AccessToken=SECRET1234", "SECRET1234", "AccessToken=***"),
    ("https://h.example/r?jwt=eyJhbGciOi.SECRET", "eyJhbGciOi", "jwt=***"),
    ("https://h.example/r?sessionid=SECRET1234", "SECRET1234", "sessionid=***"),
    ("https://h.example/cb#access_token=FRAGSECRET", "FRAGSECRET", "#access_token=***"),
    ("http.extraheader=PRIVATE-TOKEN: glpat-SECRET1234", "SECRET1234", "PRIVATE-TOKEN: ***"),
    ("X-Api-Key: SECRET1234", "SECRET1234", "X-Api-Key: ***"),
    ("remote: token ghp_abcdefghijklmnopqrstuvwxyz0123456789 expired", "ghp_abcdef",
     "token *** expired"),
    ("glpat-abcdefghijklmnopqrst12 refused", "glpat-abcdef", "*** refused"),
    ("Invalid API key sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "sk-ant-api03", "key ***"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
     "lQOYBF", "PRIVATE KEY"),
    ("claim(p1): gate \u202edeR\u202c ok \u2028forged line", "\u202e", "\\u202edeR\\u202c"),
])
def test_scrub_masks_more_credential_forms_and_shows_bidi(text: str, gone: str, kept: str) -> None:
    out = scrub(text)
    assert gone not in out and kept in out, out
    assert scrub(out) == out


def test_harmless_text_is_left_alone() -> None:
    for text in ("https://github.com/o/r.git", "fix: task-runner handles sk-8 keys",
                 "phase p1 DONE at abc123 on main"):
        assert scrub(text) == text


def test_url_credentials_name_fragment_and_other_query_tokens() -> None:
    assert url_credentials("https://h.example/r.git?X-Amz-Security-Token=abc") == [
        "a token in the URL's query string"]
    assert url_credentials("https://h.example/r.git#access_token=abc") == [
        "a token in the URL's fragment"]


SECRETS = ("AMZSESSION-SECRET-1", "GLPAT-SECRET-2")
LEAKY_URL = ("http://127.0.0.1:9/r.git?X-Amz-Security-Token=AMZSESSION-SECRET-1"
             "&private-token=GLPAT-SECRET-2")


def test_local_run_with_other_query_tokens_leaks_them_nowhere(tmp_path: Path) -> None:
    result = run_locally_with_repo_url(tmp_path, LEAKY_URL)
    assert "query string" in result.validate_stderr, result.validate_stderr
    assert "127.0.0.1:9" in result.everything
    assert result.leaks(SECRETS) == []
