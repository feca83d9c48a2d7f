"""Numbers read from carriers' webhooks, and the Basic auth header carriers send."""

from __future__ import annotations

import base64

import pytest

from smsbridge.providers import MalformedWebhook, basic_auth, inbound_number


@pytest.mark.parametrize(("raw", "options", "expected"), [
    pytest.param("+15145550100", {}, "+15145550100", id="e164"),
    pytest.param(" 15145550100 ", {}, "+15145550100", id="nanp-11-digits-no-plus"),
    pytest.param("5145550100", {}, "+15145550100", id="nanpa-10-digits"),
    pytest.param("447700900321", {}, "+447700900321", id="country-digits-no-plus"),
    pytest.param("07700900321", {"region": "GB"}, "+447700900321", id="british-national"),
    # Nine or ten digits from a carrier that always writes country code + number: Singapore,
    # not the US number the same digits would be read as nationally.
    pytest.param("6591234567", {"international_digits": True}, "+6591234567",
                 id="international-digits-not-read-as-nanpa"),
    pytest.param("6591234567", {}, "+16591234567", id="same-digits-read-nationally"),
    pytest.param("262966", {}, "262966", id="short-code-kept"),
    pytest.param("262966", {"international_digits": True}, "262966", id="short-code-no-plus"),
    pytest.param("MyBank", {}, "MyBank", id="sender-id-kept"),
    pytest.param("Alarm Co", {}, "Alarm Co", id="sender-id-with-space"),
])
def test_inbound_numbers_become_e164_or_stay_as_sent(raw: str, options: dict[str, object],
                                                     expected: str) -> None:
    assert inbound_number(raw, carrier="Acme", field="from", **options) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("raw", "match"), [
    pytest.param(None, "Acme webhook is missing 'from'", id="missing"),
    pytest.param("  ", "Acme webhook is missing 'from'", id="blank"),
    pytest.param(42, "Acme webhook is missing 'from'", id="not-a-string"),
    pytest.param("12", "Acme 'from' .*not a", id="too-short"),
    pytest.param("A-very-long-sender", "Acme 'from' .*not a", id="sender-id-too-long"),
    pytest.param("+1 (514) <script>", "Acme 'from' .*not a", id="junk"),
])
def test_unreadable_inbound_numbers_are_malformed_naming_the_field(raw: object,
                                                                    match: str) -> None:
    with pytest.raises(MalformedWebhook, match=match):
        inbound_number(raw, carrier="Acme", field="from")


def test_basic_auth_is_rfc7617_utf8() -> None:
    header = basic_auth("AC123", "pässwörd:with colon")
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode("utf-8") == "AC123:pässwörd:with colon"
