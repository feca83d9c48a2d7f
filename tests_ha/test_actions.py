"""The actions, checked against the exact request the fake carrier received.

VoIP.ms and Twilio fakes on 127.0.0.1; media from files under an allowed folder, from a
camera snapshot and from URLs; the community VoIP.ms integration's send_sms / send_mms
fields; voice calls; which number sends; long texts; get_webhook_url.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from smsbridge.testing.fake_twilio import FakeTwilio
from smsbridge.testing.fake_voipms import FakeVoipms

from .action_helpers import INTEGRATION, SNAPSHOT, act, add_camera, setup_entry, shown
from .conftest import TWILIO_NUMBER, VOIPMS_DID, VOIPMS_NUMBER

FRIEND = "+14385550123"
FRIEND_DIGITS = "4385550123"
NEIGHBOUR = "+15145550177"
UK_PHONE = "+447700900123"


@pytest.fixture
def allowed_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A folder Home Assistant may read (as allowlist_external_dirs makes one)."""
    folder = tmp_path / "www"
    folder.mkdir()
    hass.config.allowlist_external_dirs = {str(folder)}
    return folder


@pytest.fixture
async def voipms(hass: HomeAssistant, voipms_entry: MockConfigEntry) -> MockConfigEntry:
    """The VoIP.ms entry, set up."""
    await setup_entry(hass, voipms_entry)
    return voipms_entry


@pytest.fixture
async def twilio(hass: HomeAssistant, twilio_entry: MockConfigEntry) -> MockConfigEntry:
    """The Twilio entry, set up."""
    await setup_entry(hass, twilio_entry)
    return twilio_entry


def sends(fake: FakeVoipms) -> list[dict[str, str]]:
    """The sendSMS / sendMMS requests the fake VoIP.ms got, without the credentials."""
    return [{"method": r.method, **{k: v for k, v in r.params.items()
                                    if k not in ("api_username", "api_password", "content_type",
                                                 "method")}}
            for r in fake.requests if r.method in ("sendSMS", "sendMMS")]


def data_uri(content_type: str, content: bytes) -> str:
    """An attachment as VoIP.ms's sendMMS takes it inline."""
    return f"data:{content_type};base64,{base64.b64encode(content).decode()}"


# ---------------------------------------------------------------- send_message


async def test_send_message_texts_each_target_and_returns_the_ids(
    hass: HomeAssistant, voipms: MockConfigEntry, fake_voipms: FakeVoipms,
) -> None:
    response = await act(hass, "send_message", {
        "target": [FRIEND, "514-555-0177"], "message": "Porch motion at 02:14"})

    assert sends(fake_voipms) == [
        {"method": "sendSMS", "did": VOIPMS_DID, "dst": FRIEND_DIGITS,
         "message": "Porch motion at 02:14"},
        {"method": "sendSMS", "did": VOIPMS_DID, "dst": "5145550177",
         "message": "Porch motion at 02:14"}]
    ids = [str(sent.id) for sent in fake_voipms.sent]
    assert response == {
        "message_ids": ids,
        "messages": [
            {"to": FRIEND, "from": VOIPMS_NUMBER, "entry_id": voipms.entry_id,
             "message_ids": ids[:1]},
            {"to": NEIGHBOUR, "from": VOIPMS_NUMBER, "entry_id": voipms.entry_id,
             "message_ids": ids[1:]}]}


async def test_a_target_that_is_no_phone_number_is_refused_naming_the_field(
    hass: HomeAssistant, voipms: MockConfigEntry, fake_voipms: FakeVoipms,
) -> None:
    with pytest.raises(ServiceValidationError) as caught:
        await act(hass, "send_message", {"target": [FRIEND, "front door"], "message": "hi"})

    assert shown(caught.value) == "target: front door is not a phone number."
    assert sends(fake_voipms) == []  # nobody gets half of it


async def test_a_carrier_refusal_is_a_translated_error_with_the_carrier_words(
    hass: HomeAssistant, voipms: MockConfigEntry, fake_voipms: FakeVoipms,
) -> None:
    fake_voipms.fail_next("invalid_dst")

    with pytest.raises(HomeAssistantError) as caught:
        await act(hass, "send_message", {"target": FRIEND, "message": "hi"})

    assert shown(caught.value) == (
        f"VoIP.ms did not take the message or call to {FRIEND}: VoIP.ms sendSMS: invalid_dst"
        " (destination not valid). Already sent to: -.")


# ---------------------------------------------------------------- media


async def test_mms_from_a_file_under_an_allowed_folder_goes_inline_to_voipms(
    hass: HomeAssistant, voipms: MockConfigEntry, fake_voipms: FakeVoipms, allowed_dir: Path,
) -> None:
    image = allowed_dir / "porch.png"
    image.write_bytes(SNAPSHOT)

    await act(hass, "send_message", {"target": FRIEND, "message": "Porch", "media": str(image)})

    assert sends(fake_voipms) == [{"method": "sendMMS", "did": VOIPMS_DID, "dst": FRIEND_DIGITS,
                                   "message": "Porch",
                                   "media1": data_uri("image/png", SNAPSHOT)}]


async def test_a_file_outside_the_allowed_folders_is_refused_and_nothing_is_sent(
    hass: HomeAssistant, voipms: MockConfigEntry, fake_voipms: FakeVoipms, allowed_dir: Path,
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secrets.yaml"
    secret.write_text("api_password: hunter2\n")

    with pytest.raises(ServiceValidationError) as caught:
        await act(hass, "send_message", {"target": FRIEND, "message": "x", "media": str(secret)})

    assert shown(caught.value).startswith(
        f"media: {secret} is not under a folder Home Assistant may read.")
    assert sends(fake_voipms) == []


async def test_a_missing_file_is_named(
    hass: HomeAssistant, voipms: MockConfigEntry, allowed_dir: Path,
) -> None:
    missing = allowed_dir / "gone.jpg"

    with pytest.raises(ServiceValidationError) as caught:
        await act(hass, "send_message", {"target": FRIEND, "message": "x", "media": str(missing)})

    assert shown(caught.value) == f"media: {missing} does not exist."


async def test_mms_of_a_camera_snapshot_goes_inline_to_voipms(
    hass: HomeAssistant, voipms: MockConfigEntry, fake_voipms: FakeVoipms,
) -> None:
    camera = await add_camera(hass)

    await act(hass, "send_message", {"target": FRIEND, "message": "Motion", "media": camera})

    assert sends(fake_voipms) == [{"method": "sendMMS", "did": VOIPMS_DID, "dst": FRIEND_DIGITS,
                                   "message": "Motion",
                                   "media1": data_uri("image/png", SNAPSHOT)}]


async def test_a_camera_that_does_not_exist_is_named(
    hass: HomeAssistant, voipms: MockConfigEntry, fake_voipms: FakeVoipms,
) -> None:
    await add_camera(hass)

    with pytest.raises(HomeAssistantError) as caught:
        await act(hass, "send_message", {"target": FRIEND, "message": "x",
                                         "media": "camera.garage"})

    assert shown(caught.value).startswith("media: no snapshot from camera.garage (")
    assert sends(fake_voipms) == []


async def test_media_by_url_goes_as_the_url(
    hass: HomeAssistant, twilio: MockConfigEntry, fake_twilio: FakeTwilio,
) -> None:
    url = "https://example.com/snapshots/porch.jpg"

    response = await act(hass, "send_message", {"target": FRIEND, "message": "Porch",
                                                "media": url})

    [request] = [r for r in fake_twilio.requests if r.path.endswith("/Messages.json")]
    assert (request.get("To"), request.get("From"), request.get("Body"),
            request.get_all("MediaUrl")) == (FRIEND, TWILIO_NUMBER, "Porch", [url])
    assert response["message_ids"] == [fake_twilio.messages[0].sid]


async def test_a_camera_snapshot_is_refused_for_a_carrier_that_takes_urls_only(
    hass: HomeAssistant, twilio: MockConfigEntry, fake_twilio: FakeTwilio,
) -> None:
    camera = await add_camera(hass)

    with pytest.raises(ServiceValidationError) as caught:
        await act(hass, "send_message", {"target": FRIEND, "message": "x", "media": camera})

    assert shown(caught.value) == (
        f"Twilio takes media by URL only (number {TWILIO_NUMBER}): give an http(s) URL it can"
        " fetch instead of a file or a camera.")
    assert fake_twilio.messages == []


# ---------------------------------------------------------------- the community's fields


async def test_send_sms_takes_the_community_integrations_fields(
    hass: HomeAssistant, voipms: MockConfigEntry, fake_voipms: FakeVoipms,
) -> None:
    # The community integration's example writes the number as 11 digits.
    await act(hass, "send_sms", {"recipient": "1" + FRIEND_DIGITS, "message": "Garage open"})

    assert sends(fake_voipms) == [{"method": "sendSMS", "did": VOIPMS_DID, "dst": FRIEND_DIGITS,
                                   "message": "Garage open"}]


async def test_send_mms_takes_the_community_integrations_fields(
    hass: HomeAssistant, voipms: MockConfigEntry, fake_voipms: FakeVoipms, allowed_dir: Path,
) -> None:
    image = allowed_dir / "camera_snapshot.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0 a jpeg")

    await act(hass, "send_mms", {"recipient": FRIEND_DIGITS, "message": "Driveway",
                                 "image_path": str(image)})

    assert sends(fake_voipms) == [{"method": "sendMMS", "did": VOIPMS_DID, "dst": FRIEND_DIGITS,
                                   "message": "Driveway",
                                   "media1": data_uri("image/jpeg", b"\xff\xd8\xff\xe0 a jpeg")}]


async def test_send_mms_names_image_path_when_the_file_is_not_allowed(
    hass: HomeAssistant, voipms: MockConfigEntry, allowed_dir: Path, tmp_path: Path,
) -> None:
    image = tmp_path / "elsewhere.jpg"
    image.write_bytes(b"\xff\xd8")

    with pytest.raises(ServiceValidationError) as caught:
        await act(hass, "send_mms", {"recipient": FRIEND, "message": "x",
                                     "image_path": str(image)})

    assert shown(caught.value).startswith(f"image_path: {image} is not under a folder")


async def test_the_actions_show_the_community_field_names_in_the_ui(
    hass: HomeAssistant, voipms: MockConfigEntry,
) -> None:
    # services.yaml as Home Assistant's loader reads it for the action editor. (Asking HA for
    # every description loads conversation, tts and more, whose packages 2026 installs only
    # with those components.)
    described = load_yaml_dict(str(INTEGRATION / "services.yaml"))
    assert set(hass.services.async_services_for_domain("smsbridge")) == set(described)

    assert {name: set((action or {}).get("fields") or {})
            for name, action in described.items()} == {
        "send_message": {"target", "message", "from", "media"},
        "send_sms": {"recipient", "message", "from"},
        "send_mms": {"recipient", "message", "image_path", "from"},
        "call": {"target", "message", "from"},
        "get_webhook_url": set(),
    }
    assert described["send_mms"]["fields"]["image_path"]["required"] is True


# ---------------------------------------------------------------- voice calls


async def test_call_on_twilio_speaks_the_message_in_twiml(
    hass: HomeAssistant, twilio: MockConfigEntry, fake_twilio: FakeTwilio,
) -> None:
    response = await act(hass, "call", {"target": FRIEND, "message": "The alarm went off"})

    [placed] = fake_twilio.calls
    assert (placed.to, placed.from_, placed.say) == (FRIEND, TWILIO_NUMBER, "The alarm went off")
    assert placed.twiml == "<Response><Say>The alarm went off</Say></Response>"
    assert response == {"call_ids": [placed.sid], "calls": [
        {"to": FRIEND, "from": TWILIO_NUMBER, "entry_id": twilio.entry_id,
         "call_id": placed.sid}]}


async def test_call_is_refused_on_voipms_naming_the_carrier(
    hass: HomeAssistant, voipms: MockConfigEntry, fake_voipms: FakeVoipms,
) -> None:
    with pytest.raises(ServiceValidationError) as caught:
        await act(hass, "call", {"target": FRIEND, "message": "The alarm went off"})

    assert shown(caught.value) == (
        f"VoIP.ms cannot place voice calls (number {VOIPMS_NUMBER}). Call from a number of a"
        " carrier that can, such as Twilio.")
    assert fake_voipms.requests == [r for r in fake_voipms.requests if r.method == "getDIDsInfo"]


# ---------------------------------------------------------------- which number sends


@pytest.fixture
async def both(hass: HomeAssistant, voipms_entry: MockConfigEntry,
               twilio_entry: MockConfigEntry) -> None:
    """VoIP.ms added first, then Twilio."""
    await setup_entry(hass, voipms_entry)
    await setup_entry(hass, twilio_entry)


async def test_from_picks_the_entry_that_has_the_number(
    hass: HomeAssistant, both: None, fake_voipms: FakeVoipms, fake_twilio: FakeTwilio,
) -> None:
    await act(hass, "send_message", {"target": FRIEND, "message": "hi", "from": TWILIO_NUMBER})

    assert sends(fake_voipms) == []
    assert [(m.from_, m.to, m.body) for m in fake_twilio.messages] == [
        (TWILIO_NUMBER, FRIEND, "hi")]


async def test_without_from_the_first_entry_that_reaches_the_target_sends(
    hass: HomeAssistant, both: None, fake_voipms: FakeVoipms, fake_twilio: FakeTwilio,
) -> None:
    await act(hass, "send_message", {"target": [FRIEND, UK_PHONE], "message": "hi"})

    # VoIP.ms (added first) sends to Canada; it does not reach the UK, Twilio does.
    assert [(r["did"], r["dst"]) for r in sends(fake_voipms)] == [(VOIPMS_DID, FRIEND_DIGITS)]
    assert [(m.from_, m.to) for m in fake_twilio.messages] == [(TWILIO_NUMBER, UK_PHONE)]


async def test_without_from_a_call_goes_from_the_carrier_that_places_calls(
    hass: HomeAssistant, both: None, fake_twilio: FakeTwilio,
) -> None:
    await act(hass, "call", {"target": FRIEND, "message": "Alarm"})

    assert [(c.from_, c.to) for c in fake_twilio.calls] == [(TWILIO_NUMBER, FRIEND)]


async def test_a_from_number_not_set_up_is_refused_listing_those_that_are(
    hass: HomeAssistant, both: None,
) -> None:
    with pytest.raises(ServiceValidationError) as caught:
        await act(hass, "send_message", {"target": FRIEND, "message": "hi",
                                         "from": "+15145550999"})

    assert shown(caught.value) == (
        "from: +15145550999 is not one of the numbers set up in smsbridge"
        f" ({VOIPMS_NUMBER}, {TWILIO_NUMBER}).")


async def test_a_from_number_whose_carrier_cannot_reach_the_target_is_refused(
    hass: HomeAssistant, both: None, fake_voipms: FakeVoipms,
) -> None:
    with pytest.raises(ServiceValidationError) as caught:
        await act(hass, "send_message", {"target": UK_PHONE, "message": "hi",
                                         "from": VOIPMS_NUMBER})

    assert shown(caught.value) == (
        f"VoIP.ms (number {VOIPMS_NUMBER}) sends only to numbers of US, CA; {UK_PHONE} is not"
        " one.")
    assert sends(fake_voipms) == []


# ---------------------------------------------------------------- long texts


async def long_text_entry(hass: HomeAssistant, twilio_entry: MockConfigEntry,
                          mode: str | None) -> None:
    """The Twilio entry with the long-text option ``mode`` (None: unset), set up."""
    twilio_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(twilio_entry,
                                           options={"long_text": mode} if mode else {})
    await setup_entry(hass, twilio_entry)


LONG = ("word " * 400).strip()  # 1999 characters; Twilio takes 1600 in one message


@pytest.mark.parametrize("mode", [None, "split"])
async def test_a_long_text_is_split_by_default_and_by_choice(
    hass: HomeAssistant, twilio_entry: MockConfigEntry, fake_twilio: FakeTwilio,
    mode: str | None,
) -> None:
    await long_text_entry(hass, twilio_entry, mode)

    response = await act(hass, "send_message", {"target": FRIEND, "message": LONG})

    bodies = [m.body for m in fake_twilio.messages]
    assert len(bodies) == 2
    assert "".join(bodies) == LONG
    assert all(len(body) <= 1600 for body in bodies)
    assert bodies[0].endswith(" ")  # cut between words
    assert response["message_ids"] == [m.sid for m in fake_twilio.messages]


async def test_a_long_text_is_cut_when_the_option_says_truncate(
    hass: HomeAssistant, twilio_entry: MockConfigEntry, fake_twilio: FakeTwilio,
) -> None:
    await long_text_entry(hass, twilio_entry, "truncate")

    await act(hass, "send_message", {"target": FRIEND, "message": LONG})

    assert [m.body for m in fake_twilio.messages] == [LONG[:1600]]


async def test_a_long_text_is_refused_when_the_option_says_refuse(
    hass: HomeAssistant, twilio_entry: MockConfigEntry, fake_twilio: FakeTwilio,
) -> None:
    await long_text_entry(hass, twilio_entry, "refuse")

    with pytest.raises(ServiceValidationError) as caught:
        await act(hass, "send_message", {"target": FRIEND, "message": LONG})

    assert shown(caught.value) == (
        "message: the text is 1999 characters; Twilio takes at most 1600 in one message, and"
        " this entry's option for long texts is to refuse them.")
    assert fake_twilio.messages == []


# ---------------------------------------------------------------- receipts


async def test_a_receipt_for_a_sent_text_names_the_number_that_sent_it(
    hass: HomeAssistant, twilio: MockConfigEntry, fake_twilio: FakeTwilio,
    hass_client_no_auth: Any,
) -> None:
    client = await hass_client_no_auth()
    hass.config.internal_url = str(client.make_url("/")).rstrip("/")
    statuses = async_capture_events(hass, "smsbridge_message_status")

    response = await act(hass, "send_message", {"target": FRIEND, "message": "hi"})
    [sent] = fake_twilio.messages
    assert sent.status_callback == (f"{hass.config.internal_url}/api/webhook/"
                                    f"{twilio.data['webhook_id']}?kind=status")
    await fake_twilio.deliver_all()

    assert [(e.data["message_id"], e.data["status"], e.data["from"]) for e in statuses] == [
        (response["message_ids"][0], "sent", TWILIO_NUMBER),
        (response["message_ids"][0], "delivered", TWILIO_NUMBER)]


# ---------------------------------------------------------------- get_webhook_url


async def test_get_webhook_url_returns_and_fires_each_entrys_url_and_setup(
    hass: HomeAssistant, both: None, voipms_entry: MockConfigEntry,
    twilio_entry: MockConfigEntry,
) -> None:
    hass.config.external_url = "https://home.example.com"
    fired = async_capture_events(hass, "smsbridge_webhook_url")

    response = await act(hass, "get_webhook_url", {})

    voipms_url = f"https://home.example.com/api/webhook/{voipms_entry.data['webhook_id']}"
    twilio_url = f"https://home.example.com/api/webhook/{twilio_entry.data['webhook_id']}"
    voipms, twilio = response["entries"]
    assert [e.data for e in fired] == response["entries"]
    assert (voipms["entry_id"], voipms["carrier"], voipms["numbers"], voipms["webhook_url"],
            voipms["status_url"]) == (voipms_entry.entry_id, "VoIP.ms", [VOIPMS_NUMBER],
                                      voipms_url, None)
    assert (twilio["entry_id"], twilio["carrier"], twilio["webhook_url"],
            twilio["status_url"]) == (twilio_entry.entry_id, "Twilio", twilio_url,
                                      twilio_url + "?kind=status")
    # VoIP.ms: the JSON webhook or the id-only callback, never the text in the URL, which
    # Home Assistant's security filter refuses for some texts.
    assert "{MESSAGE}" not in voipms["setup"]
    assert f"{voipms_url}?to={{TO}}&from={{FROM}}&id={{ID}}" in voipms["setup"]
    assert f"Webhook (JSON POST) with URL {voipms_url}" in voipms["setup"]
    assert f"webhook to {twilio_url} (HTTP POST)" in twilio["setup"]
