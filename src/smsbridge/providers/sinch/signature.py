"""Sinch's callback signature: base64 HMAC over ``<raw body>.<nonce>.<timestamp>``.

From Sinch's Python SDK (``sinch/domains/authentication/webhooks/v1/
authentication_validation.py``, ``validate_webhook_signature_with_nonce``, which
``SmsWebhooks.validate_authentication_header`` calls for SMS callbacks): the signature is in
``x-sinch-webhook-signature``, the nonce and Unix timestamp in
``x-sinch-webhook-signature-nonce`` / ``-timestamp``, the algorithm in
``x-sinch-webhook-signature-algorithm`` (``HmacSHA256``; the .NET SDK also names
``HmacSHA384`` and ``HmacSHA512``); the key is the service plan's callback secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_HEADER = "x-sinch-webhook-signature"
NONCE_HEADER = "x-sinch-webhook-signature-nonce"
TIMESTAMP_HEADER = "x-sinch-webhook-signature-timestamp"
ALGORITHM_HEADER = "x-sinch-webhook-signature-algorithm"

DIGESTS = {"hmacsha256": hashlib.sha256, "hmacsha384": hashlib.sha384,
           "hmacsha512": hashlib.sha512}


def signed_data(body: bytes, nonce: str, timestamp: str) -> bytes:
    """The bytes Sinch signs: the raw body, the nonce and the timestamp, dot-separated."""
    return body + b"." + nonce.encode() + b"." + timestamp.encode()


def sign(secret: str, body: bytes, nonce: str, timestamp: str,
         algorithm: str = "HmacSHA256") -> str:
    """The base64 signature of a callback (KeyError for an algorithm Sinch does not name)."""
    digest = DIGESTS[algorithm.lower()]
    mac = hmac.new(secret.encode(), signed_data(body, nonce, timestamp), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def signature_matches(secret: str, body: bytes, nonce: str, timestamp: str, algorithm: str,
                      signature: str) -> bool:
    """True when ``signature`` is the secret's HMAC of this body, nonce and timestamp."""
    if algorithm.lower() not in DIGESTS:
        return False
    expected = sign(secret, body, nonce, timestamp, algorithm)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())
