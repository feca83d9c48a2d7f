"""Twilio's ``X-Twilio-Signature``: HMAC-SHA1 over the URL and the sorted form params.

See shared/providers/twilio.md §5. The signed string is the full URL Twilio
called (query included) followed, for form POSTs, by each parameter's name and
value with no separators, names sorted byte-wise. Twilio's own SDKs sort the
values of a repeated name and count each distinct value once; we do the same so
a request their validator accepts is one we accept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"https": 443, "http": 80}


def signing_string(url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """The string Twilio signs: the URL, then every param name+value sorted by name."""
    values_by_name: dict[str, set[str]] = {}
    for name, value in params:
        values_by_name.setdefault(name, set()).add(value)
    pieces = [url]
    for name in sorted(values_by_name):
        for value in sorted(values_by_name[name]):
            pieces.append(name + value)
    return "".join(pieces)


def compute_signature(token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """The base64 HMAC-SHA1 Twilio would put in ``X-Twilio-Signature`` for this request."""
    data = signing_string(url, params).encode("utf-8")
    digest = hmac.new(token.encode("utf-8"), data, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> list[str]:
    """``url`` itself, plus the same URL with the scheme's default port added or removed.

    Twilio has signed webhook URLs both with and without an explicit :443/:80
    over the years, and its SDKs try both (twilio-python issues #392, #402).
    A non-default port is never dropped: it is part of the URL Twilio called.
    """
    parts = urlsplit(url)
    default_port = _DEFAULT_PORTS.get(parts.scheme.lower())
    head = f"{parts.scheme}://{parts.netloc}"
    if default_port is None or not parts.netloc or not url.startswith(head):
        return [url]
    try:
        port = parts.port
    except ValueError:
        return [url]
    rest = url[len(head):]
    if port is None:
        if parts.netloc.endswith(":"):
            return [url]
        other_netloc = f"{parts.netloc}:{default_port}"
    elif port == default_port:
        other_netloc = parts.netloc.rsplit(":", 1)[0]
    else:
        return [url]
    return [url, f"{parts.scheme}://{other_netloc}{rest}"]


def signature_matches(
    token: str, url: str, params: Iterable[tuple[str, str]], signature: str
) -> bool:
    """True when ``signature`` is Twilio's for this URL (or its port variant) and params."""
    pairs = list(params)
    given = signature.strip().encode("utf-8")
    matched = False
    for candidate in url_variants(url):
        expected = compute_signature(token, candidate, pairs).encode("ascii")
        # Check every variant rather than stopping early, so timing says nothing.
        matched = hmac.compare_digest(expected, given) or matched
    return matched


def body_sha256(body: bytes) -> str:
    """The lower-case hex SHA-256 of a raw body, as Twilio puts in ``bodySHA256``."""
    return hashlib.sha256(body).hexdigest()


def body_matches(body: bytes, expected_hex: str) -> bool:
    """True when ``body`` hashes to the ``bodySHA256`` value Twilio put in the URL."""
    given = expected_hex.strip().lower().encode("ascii", "replace")
    return hmac.compare_digest(body_sha256(body).encode("ascii"), given)
