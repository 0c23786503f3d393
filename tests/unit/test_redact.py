"""The one scrubber (`dlq.redact`) and what a target's error may say of its answer.

Every secret the process registered, and anything shaped like a credential, is taken out
of a text; an error answer is kept as its size, digest, code and a scrubbed excerpt.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging

import pytest

from dlq import redact
from dlq.logs import JsonFormatter
from dlq.redact import REDACTED, KnownSecrets, remember, scrub, scrub_shapes
from dlq.targets.answer import EXCERPT_CHARS, summarise

#: A credential in each shape, and the secret that must not survive.
SHAPED = [
    ('{"headers": {"x-api-key": "k-5f1e2d3c"}}', "k-5f1e2d3c"),
    ("{'X-Api-Key': 'k-5f1e2d3c', 'Host': 'crm'}", "k-5f1e2d3c"),
    ("x-api-key: k-5f1e2d3c\r\nHost: crm", "k-5f1e2d3c"),
    ("Authorization: Bearer tok.5f1e2d3c9a8b", "tok.5f1e2d3c9a8b"),
    ('{"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}', "dXNlcjpwYXNzd29yZA=="),
    ("refused Basic dXNlcjpwYXNzd29yZA== here", "dXNlcjpwYXNzd29yZA=="),
    ('{"access_token": "at-5f1e2d3c", "token_type": "bearer"}', "at-5f1e2d3c"),
    ("user=crm&password=hunter2-5f1e&x=1", "hunter2-5f1e"),
    ('{"clientSecret": "cs-5f1e2d3c"}', "cs-5f1e2d3c"),
    ('{"message": "{\\"apiKey\\": \\"k-5f1e2d3c\\"}"}', "k-5f1e2d3c"),
    ("redis://:pw-5f1e2d3c@cache:6379/0", "pw-5f1e2d3c"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl seen", "eyJzdWIiOiIxIn0"),
    ('{"token": 5551234567}', "5551234567"),
]


@pytest.mark.parametrize(
    ("text", "secret"),
    SHAPED,
    ids=[
        "json header",
        "python repr",
        "header line",
        "bearer header",
        "basic in json",
        "basic in prose",
        "oauth answer",
        "form",
        "camel case",
        "json in json",
        "url password",
        "jwt",
        "unquoted value",
    ],
)
def test_a_credential_is_taken_out_by_its_shape_alone(text: str, secret: str) -> None:
    scrubbed = scrub_shapes(text)
    assert secret not in scrubbed
    assert REDACTED in scrubbed


HARMLESS = [
    "token cache: Redis unreachable, using a per-process token",
    '{"token_type": "bearer", "expires_in": 3600, "author": "crm", "passed": true}',
    "the endpoint refuses us: fix its credentials, then redrive",
    "check GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET, that the client",
]


@pytest.mark.parametrize("text", HARMLESS)
def test_prose_and_harmless_fields_are_left_alone(text: str) -> None:
    assert scrub_shapes(text) == text


#: Every name `_WORDS` allows, in every case, and texts around them.
NAMES = [
    *("password", "passwd", "passphrase", "pwd", "secret", "token", "apikey", "api-key"),
    *("api_key", "api.key", "accesskey", "access-key", "private_key", "secret.key", "auth"),
    *("authorization", "authorisation", "credential", "credentials", "cookie", "set-cookie"),
    *("signature", "session", "sessionid", "session_id", "x-auth-token", "clientSecret"),
]
LINES = [
    "arn:aws:events:us-east-1:123456789012:api-destination/crm/abcd1234-aaaa-bbbb-cccc",
    "5c2a3b4e-1111-2222-3333-444455556666",
    "Task dlq.replay[12345678-aaaa-bbbb-cccc-1234567890ab] succeeded in 0.01s: 'replayed'",
    "https://crm.example.com:8443/hooks?x=1",
    "Ünïcödé prose with a Ⅻ and \u017f in it",
    "pA\u017fsword=\u017fecret-5f1e",  # not ASCII: the patterns always run
]


def _corpus() -> list[str]:
    texts = [text for text, _ in SHAPED] + HARMLESS + LINES
    for name in NAMES:
        for spelt in (name, name.upper(), name.title()):
            texts += [
                f'{{"{spelt}": "v-5f1e2d3c"}}',
                f"{spelt}: v-5f1e2d3c",
                f"x&{spelt}=v-5f1e2d3c&y=1",
                f"{{'{spelt}': 5551234567}}",
                f"the {spelt} of the target",
            ]
    for scheme in ("Bearer", "BASIC", "digest"):
        texts.append(f"refused {scheme} dXNlcjpwYXNzd29yZA== here")
    return texts


def test_texts_without_any_shape_word_are_passed_over_exactly_as_the_patterns_would() -> None:
    corpus = _corpus()
    passed_over = [text for text in corpus if not redact._may_hold_a_shape(text)]
    assert len(passed_over) >= 3  # the fast path is taken: ids, ARNs, a task line
    for text in corpus:
        assert scrub_shapes(text) == redact._scrub_every_shape(text), text


def test_a_registered_secret_is_taken_out_whatever_surrounds_it() -> None:
    known = KnownSecrets()
    known.remember("opaque5f1e2d3cvalue", "", "ab")  # empty and very short ones are ignored

    assert known.scrub("said opaque5f1e2d3cvalue twice: opaque5f1e2d3cvalue.") == (
        f"said {REDACTED} twice: {REDACTED}."
    )
    assert known.scrub("ab stays") == "ab stays"


def test_a_secret_containing_another_is_taken_out_whole() -> None:
    known = KnownSecrets()
    known.remember("5f1e2d3c", "prefix-5f1e2d3c-suffix")

    assert known.scrub("x prefix-5f1e2d3c-suffix y") == f"x {REDACTED} y"


def test_the_oldest_secrets_are_forgotten_beyond_the_limit() -> None:
    known = KnownSecrets(limit=2)
    known.remember("first-secret")
    known.remember("second-secret", "third-secret")

    assert len(known) == 2
    assert known.scrub("first-secret second-secret") == f"first-secret {REDACTED}"


def test_the_log_formatter_scrubs_what_the_process_registered() -> None:
    remember("registered-5f1e2d3c9a")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test.redact")
    log.setLevel(logging.INFO)  # whatever level an earlier test left the root logger at
    log.addHandler(handler)
    try:
        log.warning("answered registered-5f1e2d3c9a", extra={"error": "x-api-key: unregistered-77"})
    finally:
        log.removeHandler(handler)

    line = json.loads(stream.getvalue())
    assert line["message"] == f"answered {REDACTED}"
    assert line["error"] == f"x-api-key: {REDACTED}"


# --- what an error says of an answer ------------------------------------------------------

ECHO = json.dumps(
    {
        "error": "invalid_api_key",
        "echo": {"x-api-key": "k-9d8c7b6a", "Authorization": "Bearer tok-9d8c7b6a5f4e"},
    }
).encode()


def test_an_answer_is_kept_as_its_size_digest_code_and_a_scrubbed_excerpt() -> None:
    answer = summarise(ECHO)

    assert answer.size == len(ECHO)
    assert answer.digest == hashlib.sha256(ECHO).hexdigest()[:16]
    assert answer.code == "invalid_api_key"
    assert answer.excerpt is not None and "invalid_api_key" in answer.excerpt
    said = str(answer)
    assert "k-9d8c7b6a" not in said and "tok-9d8c7b6a5f4e" not in said
    assert f"{len(ECHO)} bytes" in said and answer.digest in said


def test_the_secrets_of_the_call_are_scrubbed_besides_the_process_ones() -> None:
    answer = summarise(b"rejected opaque-9d8c7b6a5f4e3d2c", secrets=["opaque-9d8c7b6a5f4e3d2c"])

    assert answer.excerpt == f"rejected {REDACTED}"


def test_a_long_answer_is_quoted_short_and_digested_whole() -> None:
    body = ("x" * 10_000 + "Authorization: Bearer tok-at-the-end").encode()

    answer = summarise(body)

    assert answer.excerpt is not None and len(answer.excerpt) <= EXCERPT_CHARS + 3
    assert answer.digest == hashlib.sha256(body).hexdigest()[:16]
    assert "tok-at-the-end" not in str(answer)


def test_a_binary_answer_is_not_quoted() -> None:
    answer = summarise(b"\xff\xfe\x00secret")

    assert answer.excerpt is None
    assert str(answer) == f"9 bytes; sha256 {answer.digest}"


def test_a_code_shaped_like_a_secret_is_not_kept() -> None:
    registered = "code-like-5f1e2d3c"
    remember(registered)

    answer = summarise(json.dumps({"code": registered}).encode())

    assert answer.code is None
    assert registered not in str(answer)


def test_an_empty_answer_says_so() -> None:
    assert str(summarise(b"")) == "empty answer"


def test_the_process_scrubber_adds_the_callers_secrets() -> None:
    assert scrub("a opaque-9d8c7b6a5f4e b", also=["opaque-9d8c7b6a5f4e"]) == f"a {REDACTED} b"
