"""Plivo's ``X-Plivo-Signature-V3``: HMAC-SHA256 over the URL, sorted params and the nonce.

The algorithm is the one Plivo's SDKs check (``validate_v3_signature`` in
plivo-python's ``plivo/utils/signature_v3.py``, ``validateV3Signature`` in
plivo-node's ``lib/utils/v3Security.js``); see shared/providers/plivo.md §5.

The signed string, before ``"." + nonce`` is appended:

- GET: ``scheme://host/path``, then ``"?" + k=v&k=v`` when the query has any
  pair; names sorted, the values of one name sorted, nothing re-encoded.
- POST: the same, except that ``"?"`` is written whenever there are body
  params (even with no query), a ``"."`` separates a non-empty query from the
  body, and the body params follow as ``namevalue`` pairs, sorted, with no
  separators.

The header may carry several signatures separated by commas (one per active
Auth Token); any one of them matching is enough.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit


def _grouped(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Params by name, names sorted and each name's values sorted, as the SDKs order them."""
    by_name: dict[str, list[str]] = {}
    for name, value in pairs:
        by_name.setdefault(name, []).append(value)
    return [(name, sorted(by_name[name])) for name in sorted(by_name)]


def signing_string(method: str, url: str, params: Iterable[tuple[str, str]], nonce: str) -> str:
    """The exact string Plivo signs for a request to ``url`` with these body params."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    query = "&".join(
        f"{name}={value}"
        for name, values in _grouped(parse_qsl(parts.query, keep_blank_values=True))
        for value in values
    )
    if method.upper() == "GET":
        signed = f"{base}?{query}" if query else base
        return f"{signed}.{nonce}"
    grouped = _grouped(params)
    body = "".join(name + value for name, values in grouped for value in values)
    has_body = bool(grouped)
    signed = base
    if query or has_body:
        signed += "?" + query
    if query and has_body:
        signed += "."
    return f"{signed}{body}.{nonce}"


def compute_signature(
    token: str, method: str, url: str, params: Iterable[tuple[str, str]], nonce: str
) -> str:
    """The base64 HMAC-SHA256 Plivo would put in ``X-Plivo-Signature-V3``."""
    message = signing_string(method, url, params, nonce).encode("utf-8")
    digest = hmac.new(token.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_matches(
    token: str, method: str, url: str, params: Iterable[tuple[str, str]], nonce: str,
    header_value: str,
) -> bool:
    """True when one of the comma-separated signatures in ``header_value`` is ours."""
    expected = compute_signature(token, method, url, list(params), nonce).encode("ascii")
    matched = False
    for given in header_value.split(","):
        # Every candidate is compared, so timing says nothing about which one was close.
        matched = hmac.compare_digest(expected, given.strip().encode("utf-8", "replace")) or matched
    return matched
