"""redact_url: what a log line or a listing may show of a URL that carries secrets."""

from __future__ import annotations

from typing import Any

import pytest

from smsbridge.core.redact import UNPARSEABLE_URL, redact_url, redact_urls


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # Credentials and query values go; scheme, host, port, path and query names stay.
        (
            "https://user:pass@example.com/hook?token=abc123",
            "https://example.com/hook?token=***",
        ),
        (
            "http://user:s3cret@127.0.0.1:8080/a/b?token=t0p&tenant=42",
            "http://127.0.0.1:8080/a/b?token=***&tenant=***",
        ),
        ("https://user@example.com/hook", "https://example.com/hook"),
        ("https://:pw@example.com/", "https://example.com/"),
        # A password holding "@" still goes entirely: the host is after the last "@".
        ("https://u:p@ss@example.com/hook", "https://example.com/hook"),
        # Nothing secret: unchanged.
        ("https://example.com/hook", "https://example.com/hook"),
        ("https://example.com", "https://example.com"),
        ("http://[::1]:9000/hook?k=v", "http://[::1]:9000/hook?k=***"),
        # A bare query item is a value without a name.
        ("https://example.com/hook?s3cret", "https://example.com/hook?***"),
        ("https://example.com/hook?a=&b=1", "https://example.com/hook?a=***&b=***"),
        ("https://example.com/hook?a=1&&b=2", "https://example.com/hook?a=***&b=***"),
        # Values holding "=" or encoded characters go whole.
        ("https://example.com/?sig=a%3Db=c", "https://example.com/?sig=***"),
        # A fragment can carry a token as well.
        ("https://example.com/cb#access_token=xyz", "https://example.com/cb#***"),
        # Credentials but no host.
        ("http://user:pass@/hook", "http:///hook"),
        # Database URLs, with an empty host too.
        (
            "postgresql://smsbridge:pw@db.example.com:5432/sms?sslmode=require",
            "postgresql://db.example.com:5432/sms?sslmode=***",
        ),
        (
            "postgresql:///sms?host=/run/postgresql&password=pw",
            "postgresql:///sms?host=***&password=***",
        ),
        ("sqlite:////var/lib/smsbridge/smsbridge.db", "sqlite:////var/lib/smsbridge/smsbridge.db"),
        ("sqlite:///data/smsbridge.db", "sqlite:///data/smsbridge.db"),
    ],
)
def test_redact_url_hides_credentials_and_query_values(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "odd",
    [
        "",
        "   ",
        "not a url",
        "user:pass@example.com/hook",  # no scheme: would otherwise read as scheme "user"
        "//user:pass@example.com/hook",
        "http://[::1/hook?token=x",  # unclosed IPv6 bracket: urlsplit raises
        "/relative/path?token=x",
    ],
)
def test_redact_url_never_raises_and_never_leaks_on_odd_input(odd: str) -> None:
    shown = redact_url(odd)
    assert shown == UNPARSEABLE_URL
    for secret in ("pass", "token=x"):
        assert secret not in shown


@pytest.mark.parametrize("value", [None, b"https://u:p@h/x", 42])
def test_redact_url_tolerates_values_that_are_not_strings(value: Any) -> None:
    assert redact_url(value) == UNPARSEABLE_URL


def test_redact_url_is_idempotent() -> None:
    once = redact_url("https://u:p@example.com/hook?token=abc#frag")
    assert redact_url(once) == once


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # aiohttp's ConnectionTimeoutError names the whole URL.
        (
            "ConnectionTimeoutError: Connection timeout to host "
            "http://user:s3cret@10.0.0.1:81/hook?token=t0p",
            "ConnectionTimeoutError: Connection timeout to host http://10.0.0.1:81/hook?token=***",
        ),
        # aiohttp's ClientResponseError quotes it.
        (
            "400, message='Bad Request', url='https://u:p@h.example/x?k=v'",
            "400, message='Bad Request', url='https://h.example/x?k=***'",
        ),
        (
            "two: http://a:b@one/?x=1 and https://c:d@two/?y=2.",
            "two: http://one/?x=*** and https://two/?y=***",
        ),
        ("HTTP 503", "HTTP 503"),
        ("", ""),
    ],
)
def test_redact_urls_cleans_every_url_in_a_message(text: str, shown: str) -> None:
    assert redact_urls(text) == shown
