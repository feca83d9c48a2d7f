"""RFC 9457 problem documents for every error the API answers."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

# A URN, not a URL: the type names the problem without pointing at a page nobody serves.
PROBLEM_BASE = "urn:smsbridge:problem:"


def problem(status: int, slug: str, title: str, detail: str, *,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """A ``application/problem+json`` response."""
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status,
                            "detail": detail}
    body.update(extra)
    return Response(json.dumps(body, ensure_ascii=False), status_code=status,
                    media_type="application/problem+json", headers=headers)


def invalid(field: str, reason: str) -> Response:
    """422: one field is wrong, and why."""
    return problem(422, "invalid-input", "Invalid input", f"{field}: {reason}",
                   errors=[{"field": field, "reason": reason}])
