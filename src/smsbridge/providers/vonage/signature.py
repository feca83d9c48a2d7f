"""Vonage's ``sig`` parameter on SMS API webhooks (its "signature secret").

The signed string is every parameter except ``sig``, sorted by name, each written
``&name=value`` with ``&`` and ``=`` in the value replaced by ``_``. Then either
``md5hash``: hex MD5 of that string followed by the secret (Vonage's legacy scheme), or
``md5``/``sha1``/``sha256``/``sha512``: hex HMAC of the string keyed by the secret. The
comparison ignores case. This is what Vonage's SDKs check (``Auth.sign_params`` and
``check_signature`` in vonage-python-sdk; the md5hash test vector of its older client
holds here too); see shared/providers/vonage.md §5.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")


def signing_string(params: Mapping[str, str]) -> str:
    """The exact string Vonage signs for these parameters (``sig`` left out)."""
    return "".join(
        f"&{name}={params[name].replace('&', '_').replace('=', '_')}"
        for name in sorted(params) if name != "sig"
    )


def compute_signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    """The lower-case hex ``sig`` Vonage would send with ``params``."""
    message = signing_string(params)
    if method == "md5hash":
        return hashlib.md5((message + secret).encode("utf-8")).hexdigest()
    if method not in METHODS:
        raise ValueError(f"unknown Vonage signature method {method!r}")
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), method).hexdigest()


def signature_matches(secret: str, method: str, params: Mapping[str, str], given: str) -> bool:
    """Whether ``given`` is the signature of ``params``, in constant time."""
    expected = compute_signature(secret, method, params)
    return hmac.compare_digest(expected.encode("ascii"),
                               given.strip().lower().encode("utf-8", "replace"))
