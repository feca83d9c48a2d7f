"""App webhooks added at run time, each account's own (mixed into Gateway).

The signing secret is shown once, when the webhook is made, and kept encrypted; each
account's events go only to its own webhooks (gateway/events.py).
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..core.errors import InvalidInput, NotFound
from ..core.messages import new_id
from ..core.scope import Scope
from ..store.app_webhooks import StoredWebhook
from ..store.base import Store, rfc3339
from .config import DEFAULT_EVENTS, EVENT_TYPES, Settings

if TYPE_CHECKING:
    from .secretbox import SecretBox

log = logging.getLogger("smsbridge.gateway")

# standard: JSON signed per Standard Webhooks; twilio: Twilio's inbound form signed with the
# account's auth token (a TwiML answer is sent back); jambonz: jambonz's inbound JSON.
WEBHOOK_FORMATS = ("standard", "twilio", "jambonz")
MAX_URL_CHARS = 2000


def checked_app_url(url: Any, field: str, settings: Settings) -> str:
    """An http(s) URL an account gave for the gateway to post to; InvalidInput(``field``)
    for anything else, and for one inside the gateway's own network unless
    ``server.allow_private_webhooks``."""
    from .service import private_host_reason

    if not isinstance(url, str) or not url:
        raise InvalidInput(field, "must be an http(s) URL")
    if len(url) > MAX_URL_CHARS or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise InvalidInput(field, f"must be at most {MAX_URL_CHARS} characters, without "
                                  "spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(field, "must be an http(s) URL")
    if not settings.server.allow_private_webhooks:
        refusal = private_host_reason(url, "allow_private_webhooks")
        if refusal:
            raise InvalidInput(field, refusal)
    return url


def describe_webhook(hook: StoredWebhook) -> dict[str, Any]:
    """A stored webhook as the API shows it (never its secret)."""
    return {"id": hook.id, "url": hook.url, "events": list(hook.events), "format": hook.format,
            "source": "api", "created_at": rfc3339(hook.created_at)}


class WebhookAdmin:
    """Gateway's app webhook operations, within the caller's account."""

    if TYPE_CHECKING:  # provided by Gateway
        settings: Settings
        store: Store
        box: SecretBox | None

        @property
        def default_account(self) -> str: ...

        async def _load_registry(self) -> None: ...

        async def sealing_box(self) -> SecretBox: ...

        async def _ensure_account_token(self, account_id: str) -> None: ...

    def _check_url(self, url: Any) -> str:
        return checked_app_url(url, "url", self.settings)

    @staticmethod
    def _check_events(events: Any) -> tuple[str, ...]:
        if events is None:
            return DEFAULT_EVENTS
        if not isinstance(events, list) or not events or not all(
                isinstance(e, str) for e in events):
            raise InvalidInput("events", "must be a non-empty list of event types")
        for index, event in enumerate(events):
            if event not in EVENT_TYPES:
                raise InvalidInput(f"events[{index}]", f"unknown event {event!r}; known: "
                                                       f"{', '.join(EVENT_TYPES)}")
        return tuple(dict.fromkeys(events))

    async def create_webhook(self, scope: Scope, url: Any, events: Any = None,
                             format: Any = "standard") -> tuple[dict[str, Any], str]:
        """Add an app webhook to the caller's account; its description and its signing
        secret, which is shown this once."""
        checked_url = self._check_url(url)
        checked_events = self._check_events(events)
        if format not in WEBHOOK_FORMATS:
            raise InvalidInput("format", f"must be one of {', '.join(WEBHOOK_FORMATS)}")
        box = await self.sealing_box()
        if format == "twilio":
            # Signed with the account's auth token, as Twilio signs with an account's.
            await self._ensure_account_token(scope.account_id)
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        record = StoredWebhook(new_id("wh"), scope.account_id, checked_url, checked_events,
                               box.encrypt(secret), str(format), time.time())
        await self.store.add_app_webhook(record)
        await self._load_registry()
        log.info("webhook %s added to account %s", record.id, scope.account_id)
        return describe_webhook(record), secret

    async def list_webhooks(self, scope: Scope) -> list[dict[str, Any]]:
        """The caller's app webhooks (the default account's include the config file's,
        read-only and without an id)."""
        out: list[dict[str, Any]] = []
        if scope.account_id == self.default_account:
            out.extend({"id": None, "url": hook.url, "events": list(hook.events),
                        "format": "standard", "source": "config", "created_at": None}
                       for hook in self.settings.webhooks)
        out.extend(describe_webhook(hook) for hook in await self.store.list_app_webhooks()
                   if hook.account_id == scope.account_id)
        return out

    async def get_webhook(self, scope: Scope, webhook_id: str) -> dict[str, Any]:
        """One of the caller's stored webhooks; NotFound for another account's."""
        for hook in await self.store.list_app_webhooks():
            if hook.id == webhook_id and hook.account_id == scope.account_id:
                return describe_webhook(hook)
        raise NotFound("webhook", webhook_id)

    async def delete_webhook(self, scope: Scope, webhook_id: str) -> None:
        """Remove one of the caller's webhooks; its pending deliveries are given up."""
        if not await self.store.remove_app_webhook(webhook_id, scope.account_id):
            raise NotFound("webhook", webhook_id)
        await self._load_registry()
        log.info("webhook %s of account %s removed", webhook_id, scope.account_id)
