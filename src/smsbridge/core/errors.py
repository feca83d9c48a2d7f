"""The error hierarchy of smsbridge.

Every error smsbridge raises on purpose derives from ``SmsBridgeError``::

    SmsBridgeError
    ├── InvalidInput             bad user input; names the field and the reason (422)
    │   ├── InvalidPhoneNumber   not a phone number, or not one we can send to
    │   ├── IdempotencyKeyReused an Idempotency-Key already used for a different request
    │   └── RecipientOptedOut    the recipient is on the sending number's opt-out list
    ├── ConfigError              a bad configuration key; names the key and the reason
    ├── ProviderError            a carrier refused or failed a request; says if a retry can help
    │   └── CredentialsRejected  the carrier refused the credentials themselves; says how (kind)
    ├── WebhookRejected          an inbound carrier request failed its token or signature (403)
    ├── MalformedWebhook         an inbound carrier request could not be parsed (400)
    └── StoreUnavailable         the database cannot be used; says what to do about it

Providers raise ``ProviderError``, ``WebhookRejected`` and ``MalformedWebhook``;
what to do about them (retry, fail, answer 4xx) is decided by dispatch and api.
"""

from __future__ import annotations


class SmsBridgeError(Exception):
    """Base class of every error smsbridge raises on purpose."""


class FieldError(SmsBridgeError):
    """An error about one field of what the user gave: ``field`` names it, ``reason`` says
    what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidInput(FieldError):
    """User input that cannot be accepted; ``field`` names where it was."""


class InvalidPhoneNumber(InvalidInput):
    """A value that is not a usable phone number."""


class IdempotencyKeyReused(InvalidInput):
    """An Idempotency-Key that was first used for a request with other contents."""

    def __init__(self, reason: str) -> None:
        super().__init__("Idempotency-Key", reason)


class RecipientOptedOut(InvalidInput):
    """A send or call to a recipient on the sending number's opt-out (suppression) list."""

    def __init__(self, sender: str, recipient: str) -> None:
        super().__init__("to", f"{recipient} has opted out of messages from {sender} (it "
                               "replied STOP, the carrier said so, or it was added by hand); "
                               "it is sent nothing until it replies START or is removed from "
                               "the opt-out list")
        self.sender = sender
        self.recipient = recipient


class Conflict(FieldError):
    """A name or number already taken by something else (the API answers 409)."""


class NotFound(SmsBridgeError):
    """No such thing within the caller's account (another account's things are not found
    either)."""

    def __init__(self, what: str, name: str) -> None:
        super().__init__(f"no {what} {name!r}")
        self.what = what
        self.name = name


class Forbidden(SmsBridgeError):
    """The caller's key may not do this (managing accounts takes an admin key)."""


class SecretKeyError(SmsBridgeError):
    """The key that encrypts stored secrets is missing, malformed or not this store's."""


class ConfigError(SmsBridgeError):
    """A configuration value that cannot be used; ``key`` is its dotted path."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class ProviderError(SmsBridgeError):
    """A carrier request failed.

    ``retryable`` says whether trying again later can help (timeouts, 5xx, rate
    limits) or not (bad credentials, invalid number, opted-out recipient).
    ``code`` is the carrier's own error code or status word, ``retry_after`` the
    delay in seconds the carrier asked for, if any. ``recipient_opted_out`` is True
    when the carrier refused because the recipient opted out of this sender (replied
    STOP to it); the gateway then puts the recipient on its own opt-out list.
    """

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        code: str | None = None,
        retry_after: float | None = None,
        recipient_opted_out: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.code = code
        self.retry_after = retry_after
        self.recipient_opted_out = recipient_opted_out

    def __repr__(self) -> str:
        return (
            f"ProviderError({self.reason!r}, retryable={self.retryable}, code={self.code!r})"
        )


class WebhookRejected(SmsBridgeError):
    """An inbound carrier request that failed authentication (token or signature)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedWebhook(SmsBridgeError):
    """An inbound carrier request whose payload cannot be understood."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StoreUnavailable(SmsBridgeError):
    """The database cannot be reached, opened or written; ``reason`` is one line saying why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CredentialsRejected(ProviderError):
    """A carrier refused the credentials themselves, so no retry can help.

    ``kind`` says how, for a setup form to explain it: ``invalid_auth`` (wrong or missing
    credentials), ``api_disabled`` (right credentials, but API access is off for the
    account) or ``ip_not_allowed`` (this host's address is not on the account's API
    allow-list; ``seen_ip`` is the address the carrier saw, when it says which).
    """

    KINDS = frozenset({"invalid_auth", "api_disabled", "ip_not_allowed"})

    def __init__(self, reason: str, *, kind: str, seen_ip: str | None = None) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of {sorted(self.KINDS)}")
        super().__init__(reason, retryable=False, code=kind)
        self.kind = kind
        self.seen_ip = seen_ip

    def __repr__(self) -> str:
        return f"CredentialsRejected({self.reason!r}, kind={self.kind!r}, seen_ip={self.seen_ip!r})"
