"""Telnyx's webhook signature: Ed25519 over ``<telnyx-timestamp>|<raw body>``.

See shared/providers/telnyx.md §5 and telnyx-python's ``lib/webhook_verification.py``:
the signature (base64, 64 bytes) is in ``telnyx-signature-ed25519``, the Unix time
in ``telnyx-timestamp``, and the key is the account's base64 public key.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


def decode_public_key(value: str) -> bytes:
    """The 32 raw bytes of a base64 Ed25519 public key; ValueError when it is not one."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not base64") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ValueError(f"decodes to {len(raw)} bytes, an Ed25519 public key has 32")
    return raw


def signed_message(timestamp: str, body: bytes) -> bytes:
    """The bytes Telnyx signs: the timestamp header, a ``|``, then the raw body."""
    return timestamp.encode("ascii") + b"|" + body


def signature_matches(public_key: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """True when ``signature`` (base64) is the key's Ed25519 signature of ``timestamp|body``."""
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(raw, signed_message(timestamp, body))
    except InvalidSignature:
        return False
    return True
