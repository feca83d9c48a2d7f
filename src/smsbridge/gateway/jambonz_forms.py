"""Messages in jambonz's words: its numbers, its messaging webhook and its send answer.

The jambonz-compatible face (api/jambonz_face.py) reads and answers these shapes, and app
webhooks of format "jambonz" are posted in them, so that an app written for a jambonz
installation reads them unchanged. What jambonz sends and answers, and how sure it is:

- The messaging webhook ``{"provider", "from", "to": [...], "text"}`` with digits-only
  numbers is jambonz's "Sending and receiving SMS" page (jambonz/jambonz-docs, docs/sms.md).
  jambonz's feature server (lib/http-routes/api/messaging.js) adds ``messageSid``,
  ``accountSid``, ``cc`` and ``media`` (a list of URLs, as its plug-ins fill it), and newer
  releases name the provider ``carrier`` as well; both names are filled here.
- ``POST /v1/Accounts/{sid}/Messages`` answers 201 with ``{"sid", "providerResponse"}``
  (the same page, and jambonz-api-server lib/routes/api/accounts.js); newer feature servers
  (lib/tasks/message.js) name the second key ``carrierResponse``.
"""

from __future__ import annotations

from typing import Any

from ..core.messages import Message


def jambonz_number(e164: str) -> str:
    """A number as jambonz writes it: country code and digits, no ``+``."""
    return e164[1:] if e164.startswith("+") else e164


def from_jambonz_number(value: str) -> str:
    """A number a jambonz app gave, in a form ``to_e164`` reads without guessing.

    jambonz writes E.164 without its ``+`` ("15083084809"): more than ten digits, not
    starting with a trunk or international prefix 0, are read as that. Anything else (a
    ``+`` number, a national number) is left for the default region to decide.
    """
    raw = value.strip()
    if raw.isascii() and raw.isdigit() and len(raw) > 10 and not raw.startswith("0"):
        return "+" + raw
    return value


def inbound_body(message: Message) -> dict[str, Any]:
    """The JSON jambonz posts to an application's messaging webhook for ``message``."""
    return {
        "messageSid": message.id,
        "accountSid": message.account_id,
        "provider": message.connection,
        "carrier": message.connection,
        "from": jambonz_number(message.from_number),
        "to": [jambonz_number(message.to_number)],
        "cc": [],
        "text": message.text,
        "media": [m.url for m in message.media if m.url],
    }


def send_answer(message: Message) -> dict[str, Any]:
    """What ``POST /v1/Accounts/{sid}/Messages`` answers: the message's id and, where
    jambonz puts the carrier's raw answer, the message as smsbridge queued it."""
    queued = message.to_dict()
    return {"sid": message.id, "providerResponse": queued, "carrierResponse": queued}
