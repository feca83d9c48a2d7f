"""RFC 9457 problem documents for every error the API answers."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from ..core.segments import replace_lone_surrogates

# A URN, not a URL: the type names the problem without pointing at a page nobody serves.
PROBLEM_BASE = "urn:smsbridge:problem:"


PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_body(status: int, slug: str, title: str, detail: str, **extra: Any) -> bytes:
    """The JSON of a problem document."""
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status,
                            "detail": detail}
    body.update(extra)
    # A detail may quote the input, and input may hold half an emoji: no UTF-8 for that.
    return replace_lone_surrogates(json.dumps(body, ensure_ascii=False)).encode()


def problem(status: int, slug: str, title: str, detail: str, *,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """A ``application/problem+json`` response."""
    return Response(problem_body(status, slug, title, detail, **extra), status_code=status,
                    media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def invalid(field: str, reason: str) -> Response:
    """422: one field is wrong, and why."""
    return _field_problem("invalid-input", "Invalid input", field, reason)


def opted_out(field: str, reason: str) -> Response:
    """422: the recipient opted out of the sending number; its own type, so clients can tell."""
    return _field_problem("opted-out", "Recipient opted out", field, reason)


def conflict(field: str, reason: str) -> Response:
    """409: a field's value is taken (a name or number), or the thing is read-only."""
    return _field_problem("conflict", "Conflict", field, reason, status=409)


def _field_problem(slug: str, title: str, field: str, reason: str, status: int = 422
                   ) -> Response:
    """A problem that names the one field it is about, in ``errors`` as well as in the detail."""
    return problem(status, slug, title, f"{field}: {reason}",
                   errors=[{"field": field, "reason": reason}])
