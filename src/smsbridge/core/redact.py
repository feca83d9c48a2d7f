"""Redaction of secrets in URLs before they are logged, listed or printed. No I/O."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

REDACTED = "***"
UNPARSEABLE_URL = "<unparseable url>"

# An absolute URL inside free text, up to whitespace or a quote (error messages quote URLs).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """Return ``url`` without userinfo and with every query value (and any fragment) as ``***``."""
    if not isinstance(url, str):
        return UNPARSEABLE_URL
    try:
        stripped = url.strip()
        parts = urlsplit(stripped)
        # Only "scheme://..." URLs are shown: without the "//", "user:pass@host/x" parses as
        # scheme "user" and path "pass@host/x", and the password would pass through as a path.
        # The host may be empty: sqlite:////var/lib/db, postgresql:///db?host=/run/postgresql.
        scheme_end = len(parts.scheme)
        if not parts.scheme or stripped[scheme_end : scheme_end + 3] != "://":
            return UNPARSEABLE_URL
        host = parts.netloc.rpartition("@")[2]
        query = "&".join(_redact_query_item(item) for item in parts.query.split("&") if item)
        # Joined by hand: urlunsplit drops the "//" of an empty host for schemes it does not
        # know (sqlite:////var/lib/db would come out as sqlite://var/lib/db).
        shown = f"{parts.scheme}://{host}{parts.path}"
        if query:
            shown += f"?{query}"
        if parts.fragment:
            shown += f"#{REDACTED}"
        return shown
    except ValueError:  # e.g. an unclosed IPv6 bracket: "http://[::1/hook"
        return UNPARSEABLE_URL


def _redact_query_item(item: str) -> str:
    name, equals, _value = item.partition("=")
    # A bare item ("?s3cret") is a value with no name: webhook tokens are written so.
    if not equals:
        return REDACTED
    return f"{name}={REDACTED}"


def redact_urls(text: str) -> str:
    """Return ``text`` with every absolute URL in it passed through ``redact_url``."""
    if not isinstance(text, str):
        return ""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
