"""The little of TwiML smsbridge acts on in an app's answer to a received message:
``<Message>`` (a call's ``<Say>`` is read by api/twilio_face.py).

TwiML comes from apps and API callers, so it is parsed without document type declarations
(no entities can be defined, so none can expand) and capped in size.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..core.errors import InvalidInput

MAX_TWIML_BYTES = 64 * 1024
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TwimlMessage:
    """One ``<Message>``: its text, media URLs and, when given, another recipient."""

    body: str
    media: tuple[str, ...] = ()
    to: str | None = None


def _root(twiml: bytes | str) -> ET.Element:
    raw = twiml.encode() if isinstance(twiml, str) else twiml
    if len(raw) > MAX_TWIML_BYTES:
        raise InvalidInput("Twiml", f"is over {MAX_TWIML_BYTES} bytes")
    if _DECLARATION.search(raw):
        raise InvalidInput("Twiml", "must not declare a document type or entities")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise InvalidInput("Twiml", f"is not well-formed XML: {exc}") from None
    if root.tag != "Response":
        raise InvalidInput("Twiml", "must be a <Response> document")
    return root


def twiml_messages(twiml: bytes | str) -> list[TwimlMessage]:
    """The ``<Message>`` verbs of a TwiML answer; none for an answer that is not TwiML."""
    try:
        root = _root(twiml)
    except InvalidInput:
        return []
    found: list[TwimlMessage] = []
    for verb in root.iter("Message"):
        bodies = verb.findall("Body")
        if bodies:
            text = "".join(b.text or "" for b in bodies)
        else:
            text = "".join(verb.itertext()) if not verb.findall("Media") else (verb.text or "")
        media = tuple((m.text or "").strip() for m in verb.findall("Media") if m.text)
        to = verb.get("to")
        if text.strip() or media:
            found.append(TwimlMessage(text.strip(), media, to.strip() if to else None))
    return found
