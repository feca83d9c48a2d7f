"""What smsbridge reads of an app's TwiML answer to a received message."""

from __future__ import annotations

from smsbridge.gateway.twiml import TwimlMessage, twiml_messages


def test_message_verbs_with_plain_text_or_body_and_media() -> None:
    answer = ('<?xml version="1.0" encoding="UTF-8"?><Response>'
              "<Message>Got it</Message>"
              '<Message to="+15145550999"><Body>Alarm armed</Body>'
              "<Media>https://example.com/a.jpg</Media></Message>"
              "</Response>")
    assert twiml_messages(answer) == [
        TwimlMessage("Got it"),
        TwimlMessage("Alarm armed", ("https://example.com/a.jpg",), "+15145550999"),
    ]


def test_an_answer_that_is_not_twiml_sends_nothing() -> None:
    for answer in (b"", b"ok", b'{"ok": true}', b"<Response></Response>",
                   b"<html><Message>hi</Message></html>", b"<Response><Message>  </Message>"):
        assert twiml_messages(answer) == [], answer


def test_a_document_type_declaration_is_refused_before_parsing() -> None:
    laughs = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;">]>'
              b"<Response><Message>&b;</Message></Response>")
    assert twiml_messages(laughs) == []
