"""HTTP mechanics every carrier shares: one call, Retry-After, redaction, errors by status.

A carrier's own code decides what its answers mean (its error codes, its success
shape); what an HTTP failure means is decided here once, so every carrier backs
off on the same statuses and never puts a credential into an error message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from yarl import URL

from ..core.errors import ProviderError

# 408 and 429 say "not now"; 5xx say "not us": a later attempt can pass.
_RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret masked as ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def basic_auth(username: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP Basic auth (RFC 7617, UTF-8)."""
    pair = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def retryable_status(status: int) -> bool:
    """Whether an HTTP status says a later attempt of the same request can succeed."""
    return status >= 500 or status in _RETRYABLE_CLIENT_STATUSES


@dataclass(frozen=True)
class CarrierResponse:
    """A carrier's answer, read in full, with what is needed to turn it into an error."""

    label: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def retry_after(self) -> float | None:
        """The Retry-After header in seconds, when the carrier sent a usable one."""
        return parse_retry_after(self.headers.get("Retry-After"))

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def redact(self, text: str) -> str:
        """``text`` with this request's secrets masked."""
        return redact(text, self.secrets)

    def error(
        self, reason: str | None = None, *, code: str | None = None,
        retryable: bool | None = None,
    ) -> ProviderError:
        """The ProviderError for an answer that was not a success.

        By default 408, 429 and 5xx are retryable and every other status is not;
        ``code`` defaults to ``http_<status>``. The reason is redacted.
        """
        return ProviderError(
            self.redact(reason or f"{self.label}: HTTP {self.status}"),
            retryable=retryable_status(self.status) if retryable is None else retryable,
            code=self.redact(code) if code else f"http_{self.status}",
            retry_after=self.retry_after,
        )


async def carrier_request(
    http: aiohttp.ClientSession, method: str, url: str | URL, *, label: str, timeout: float,
    secrets: Iterable[str] = (), **request: Any,
) -> CarrierResponse:
    """One HTTP request to a carrier, answered in full whatever its status.

    A timeout or a connection failure raises a retryable ``ProviderError`` (code
    ``timeout`` or ``connection_error``); ``label`` names the carrier (and method)
    in messages; ``secrets`` are masked wherever they would appear.
    """
    hidden = tuple(s for s in secrets if s)
    try:
        async with http.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout), **request
        ) as resp:
            body = await resp.read()
            return CarrierResponse(label, resp.status, resp.headers, body, hidden)
    except TimeoutError:  # aiohttp's timeouts derive from it on 3.11+
        raise ProviderError(
            f"{label}: no answer within {timeout:g} s", retryable=True, code="timeout"
        ) from None
    except aiohttp.ClientError as exc:
        raise ProviderError(
            redact(f"{label}: connection failed ({type(exc).__name__}: {exc})", hidden),
            retryable=True, code="connection_error",
        ) from None
