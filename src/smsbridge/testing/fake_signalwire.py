"""A fake SignalWire Space: its Twilio-compatible Messages and Calls APIs, its signed webhooks.

SignalWire's Compatibility (LaML / cXML) API is Twilio's Messages API under
``/api/laml``, with the Project ID in place of the Account SID, UUID message sids, and
webhooks signed the Twilio way but with the project's Signing Key, in
``X-SignalWire-Signature`` (and ``X-Twilio-Signature`` too, for Twilio's SDKs). Facts:
shared/providers/signalwire.md. Like FakeTwilio it does not import smsbridge's provider.

    fake = FakeSignalWire()
    server = start_server(fake.app)        # base_url for the provider: server.url
    fake.fail_next(21610, 400)             # the next send is refused: opted out
    await fake.fire_inbound(gateway_inbound_url, from_="+15145550111", to="+15145550100",
                            body="hi")
"""

from __future__ import annotations

import uuid

from .fake_twilio import FakeTwilio

DEFAULT_PROJECT_ID = "5ca1ab1e-0000-4000-8000-00000000c0de"
DEFAULT_API_TOKEN = "PT" + "5ca1ab1e" * 6
DEFAULT_SIGNING_KEY = "PSK_" + "51611a7e" * 3


class FakeSignalWire(FakeTwilio):
    """An in-memory SignalWire project speaking the Compatibility API and webhook formats."""

    api_prefix = "/api/laml"
    signature_headers = ("X-SignalWire-Signature", "X-Twilio-Signature")
    user_agent = "SignalWire-Compatibility-Webhook"

    def __init__(
        self,
        project_id: str = DEFAULT_PROJECT_ID,
        api_token: str = DEFAULT_API_TOKEN,
        signing_key: str = DEFAULT_SIGNING_KEY,
    ) -> None:
        super().__init__(project_id, api_token, signing_key=signing_key)

    @property
    def project_id(self) -> str:
        """The Project ID: the Account SID of the compatible API."""
        return self.account_sid

    def new_sid(self, prefix: str) -> str:
        """SignalWire's message sids are UUIDs, whatever the message kind."""
        return str(uuid.uuid4())

