"""The two JSON Web Tokens of Vonage's Voice API, built on ``cryptography`` alone.

- Requests to the Voice API carry ``Authorization: Bearer <JWT>``, RS256-signed with the
  private key of a Vonage application; its claims name the application (``application_id``)
  and carry ``iat``, ``exp`` and a unique ``jti``.
- Vonage signs the webhooks it sends for a call with an HS256 JWT in ``Authorization``, keyed
  with the account's signature secret; its claims carry ``api_key`` and ``payload_hash``
  (the hex SHA-256 of the body) among others.

PyJWT would do both, but it is no dependency of smsbridge; the tests check these tokens
against it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

APPLICATION_TOKEN_SECONDS = 900
# Vonage's webhook tokens are accepted this far off our clock (``exp``, ``nbf``).
CLOCK_LEEWAY_SECONDS = 60


def b64url(data: bytes) -> str:
    """Base64url without padding, as JWTs write their parts."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of a base64url part written without padding; ValueError if it is not one."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a token part is not base64url") from None


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM text; ValueError naming what is wrong."""
    text = pem.strip()
    if "\n" not in text and "\\n" in text:
        # A key pasted into one line of an .env file has its line breaks written as \ and n.
        text = text.replace("\\n", "\n")
    try:
        key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("is not an unencrypted private key in PEM (-----BEGIN PRIVATE KEY-----"
                         " ...), as the Vonage dashboard downloads it") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("is not an RSA key; Vonage applications use RSA keys")
    return key


def _json_part(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def application_token(application_id: str, private_key: rsa.RSAPrivateKey, now: float,
                      lifetime: int = APPLICATION_TOKEN_SECONDS) -> str:
    """A fresh RS256 JWT that authenticates one Voice API request as ``application_id``."""
    issued = int(now)
    signing_input = _json_part({"alg": "RS256", "typ": "JWT"}) + "." + _json_part({
        "application_id": application_id, "iat": issued, "exp": issued + lifetime,
        "jti": str(uuid.uuid4())})
    signature = private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(),
                                 hashes.SHA256())
    return signing_input + "." + b64url(signature)


def webhook_claims(token: str, secret: str, now: float) -> dict[str, Any]:
    """The claims of an HS256 webhook token signed with ``secret``; ValueError if it is not."""
    parts = token.strip().split(".")
    if len(parts) != 3 or not token.isascii():
        raise ValueError("the Authorization token is not a JWT")
    header_part, claims_part, signature_part = parts
    try:
        header = json.loads(b64url_decode(header_part))
        claims = json.loads(b64url_decode(claims_part))
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the Authorization token's header or claims are not JSON") from None
    if not (isinstance(header, dict) and isinstance(claims, dict)):
        raise ValueError("the Authorization token's header or claims are not JSON objects")
    if header.get("alg") != "HS256":
        # The algorithm is fixed, never taken from the token: "none" or RS256 must not pass.
        raise ValueError(f"the Authorization token is signed with {header.get('alg')!r},"
                         " not HS256")
    expected = hmac.new(secret.encode("utf-8"), f"{header_part}.{claims_part}".encode("ascii"),
                        hashlib.sha256).digest()
    if not hmac.compare_digest(expected, b64url_decode(signature_part)):
        raise ValueError("the Authorization token's signature does not match the signature"
                         " secret")
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, int | float) and now > exp + CLOCK_LEEWAY_SECONDS:
        raise ValueError("the Authorization token has expired")
    if isinstance(nbf, int | float) and now < nbf - CLOCK_LEEWAY_SECONDS:
        raise ValueError("the Authorization token is not valid yet")
    return claims
