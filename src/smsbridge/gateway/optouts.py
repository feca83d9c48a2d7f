"""Opt-out: the STOP, START and HELP keywords, and the list every send is checked against.

A recipient on a sending number's list is sent nothing from that number: the API, the CLI
and MQTT sends are refused with RecipientOptedOut before anything is queued. The list
changes when a recipient texts a keyword, when a carrier refuses a send because the
recipient opted out (dispatch/outbox.py), and by hand (`smsbridge optouts`, /v1/optouts).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.errors import (
    IdempotencyKeyReused,
    InvalidInput,
)
from ..core.messages import Message
from ..core.phone import to_e164
from ..store.base import IdempotencyKey, Store
from ..store.optouts import OptoutPage, OptoutRecord
from .config import Connection, OptoutConfig, Settings

if TYPE_CHECKING:
    from .service import Gateway

log = logging.getLogger("smsbridge.optout")


class Keyword(enum.StrEnum):
    """What an opt-out keyword asks for."""

    STOP = "stop"
    START = "start"
    HELP = "help"


# The whole text, trimmed and in any case, is one of these (the CTIA's standard words).
KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(("stop", "stopall", "unsubscribe", "cancel", "end", "quit"), Keyword.STOP),
    **dict.fromkeys(("start", "unstop", "yes"), Keyword.START),
    **dict.fromkeys(("help", "info"), Keyword.HELP),
}
# A stored text longer than this is no keyword (room for the spaces and line breaks that
# phones add around one).
_KEYWORD_TEXT_CHARS = max(map(len, KEYWORDS)) + 20
# Replies to keywords are queued once per inbound message under this idempotency scope.
REPLY_SCOPE = "optout"


def keyword_of(text: str) -> Keyword | None:
    """The opt-out keyword ``text`` is, or None."""
    return KEYWORDS.get(text.strip().casefold())


def check_overrides(settings: Settings) -> None:
    """ConfigError for an [optout] override of a number or connection that is not configured."""
    settings.check_optout_overrides()


class OptoutHandler:
    """The first inbound handler: answers STOP, START and HELP, and keeps them from rules.

    The keyword's message is stored and posted to the app webhooks like any other; a
    carrier's retry of its webhook changes the list and queues the reply only once.
    """

    def __init__(self, settings: Settings) -> None:
        check_overrides(settings)
        self.config: OptoutConfig = settings.config.optout

    async def on_inbound(self, gateway: Gateway, conn: Connection, message: Message,
                         created: bool) -> bool:
        """Act on an opt-out keyword; True (consumed) when ``message`` is one."""
        keyword = keyword_of(message.text)
        if keyword is None:
            return False
        policy = self.config.policy(conn.name, message.to_number)
        if not policy.enabled:
            return False
        if not created and keyword is not Keyword.HELP and await self._superseded(
                gateway.store, message):
            log.info("repeated %s from %s to %s is older than a later keyword: ignored",
                     keyword.value.upper(), message.from_number, message.to_number)
            return True
        ours, theirs = message.to_number, message.from_number
        if keyword is Keyword.STOP:
            _, added = await gateway.store.add_optout(ours, theirs, "keyword", conn.account_id)
            if added:
                log.info("%s opted out of %s (STOP)", theirs, ours)
            reply = policy.stop_reply
        elif keyword is Keyword.START:
            if await gateway.store.remove_optout(ours, theirs) is not None:
                log.info("%s opted back in to %s (START)", theirs, ours)
            reply = policy.start_reply
        else:
            reply = policy.help_reply
        if reply:
            await _queue_reply(gateway, conn, message, reply)
        return True

    @staticmethod
    async def _superseded(store: Store, message: Message) -> bool:
        """Whether the sender texted STOP or START to the same number after ``message``.

        A carrier may retry a webhook long after it first came: a STOP retried after the
        recipient's START must not put it back on the list (nor a START take it off).
        """
        later = await store.inbound_texts_after(message.id, _KEYWORD_TEXT_CHARS)
        return any(keyword_of(text) in (Keyword.STOP, Keyword.START) for text in later)


async def _queue_reply(gateway: Gateway, conn: Connection, message: Message, text: str
                       ) -> None:
    """Queue ``text`` back to the sender once per inbound message.

    It is queued past the opt-out check: the confirmation of a STOP goes to a number
    that has just opted out, and HELP is answered whoever asks.
    """
    from .service import SendRequest  # service.py imports this module

    try:
        reply = gateway.prepare(SendRequest(from_number=message.to_number,
                                            to_number=message.from_number, text=text,
                                            connection=conn.name), conn.account_id)
    except InvalidInput as exc:  # a short code or sender name, or a number not configured
        log.warning("cannot answer %s from %s on %s: %s", keyword_of(message.text),
                    message.from_number, conn.name, exc)
        return
    key = IdempotencyKey.for_message(REPLY_SCOPE, message.id, reply)
    try:
        _, created = await gateway.store.queue_outbound(reply, key, gateway.events,
                                                        honour_optouts=False)
    except IdempotencyKeyReused:
        return  # answered already, with a text the config has changed since
    if created:
        gateway.on_queued()


class OptoutList:
    """One account's list as the API and the CLI manage it: numbers normalised, scoped by
    sender."""

    def __init__(self, settings: Settings, store: Store,
                 owner_of: Callable[[str], Connection | None], account: str) -> None:
        self.settings = settings
        self.store = store
        self.owner_of = owner_of
        self.account = account

    def _number(self, value: str, field: str) -> str:
        return to_e164(value, self.settings.server.default_region, field=field)

    async def list(self, from_number: str | None = None, to_number: str | None = None, *,
                   limit: int = 100, cursor: str | None = None) -> OptoutPage:
        """Listed pairs newest first, of one sending number and/or one recipient if given."""
        sender = self._number(from_number, "from") if from_number else None
        recipient = self._number(to_number, "to") if to_number else None
        try:
            return await self.store.list_optouts(sender, recipient, limit, cursor,
                                                 account_id=self.account)
        except ValueError as exc:
            raise InvalidInput("cursor", str(exc)) from None

    async def add(self, from_number: str, to_number: str, source: str
                  ) -> tuple[OptoutRecord, bool]:
        """Put ``to_number`` on the list of ``from_number`` (one of ours); True when new."""
        sender = self._number(from_number, "from")
        if self.owner_of(sender) is None:
            raise InvalidInput("from", f"{sender} is not a number of any connection of this "
                                       "account; the list is kept per sending number")
        record, added = await self.store.add_optout(sender, self._number(to_number, "to"),
                                                    source, self.account)
        if added:
            log.info("%s put on the opt-out list of %s (%s)", record.to_number, sender, source)
        return record, added

    async def remove(self, from_number: str, to_number: str) -> OptoutRecord | None:
        """Take ``to_number`` off the list of ``from_number``; None when it was not on it."""
        record = await self.store.remove_optout(self._number(from_number, "from"),
                                                self._number(to_number, "to"),
                                                account_id=self.account)
        if record is not None:
            log.info("%s taken off the opt-out list of %s", record.to_number,
                     record.from_number)
        return record
