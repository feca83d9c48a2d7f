"""Twilio Programmable Messaging: send through the Messages API, receive signed form webhooks.

Carrier facts and how sure they are: shared/providers/twilio.md.

Send::

    POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json   (Basic auth: sid, token)
    To=+15145550100&From=+15005550006&Body=Hi&MediaUrl=...&MediaUrl=...&StatusCallback=...

Inbound webhook (the number's or Messaging Service's "A message comes in" URL)::

    POST <inbound url>   X-Twilio-Signature: <base64 HMAC-SHA1>
    MessageSid=SM...&From=%2B1617...&To=%2B1617...&Body=Hi&NumMedia=1&MediaUrl0=...&MediaContentType0=...

Status callback (the StatusCallback given per message)::

    POST <status url>   MessageSid=SM...&MessageStatus=undelivered&ErrorCode=30003&...

Voice-call alert, and its call-status callbacks at the same status URL::

    POST {base}/2010-04-01/Accounts/{AccountSid}/Calls.json
    To=+1...&From=+1...&Twiml=<Response><Say voice="Polly.Joanna" loop="2">Alarm</Say></Response>
    &StatusCallback=<status url>&StatusCallbackEvent=initiated&StatusCallbackEvent=ringing
    &StatusCallbackEvent=answered&StatusCallbackEvent=completed&StatusCallbackMethod=POST

    POST <status url>   CallSid=CA...&CallStatus=busy&AccountSid=AC...&From=...&To=...
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from ...core.messages import OutboundMessage
from ...core.phone import NumberFormat
from ..base import Capabilities, ProviderConfig, WebhookRequest, header
from .compat import API_VERSION, EMPTY_TWIML, STATUS_MAP, TwilioCompatibleProvider

__all__ = ["API_VERSION", "EMPTY_TWIML", "STATUS_MAP", "TwilioConfig", "TwilioProvider"]


class TwilioConfig(ProviderConfig):
    """Credentials and options of a Twilio account."""

    account_sid: str = Field(
        pattern=r"^AC[0-9a-fA-F]{32}$", description="Account SID (AC + 32 hex) from the Console"
    )
    auth_token: SecretStr = Field(description="Auth Token of the account; signs webhooks too")
    messaging_service_sid: str | None = Field(
        None, pattern=r"^MG[0-9a-fA-F]{32}$",
        description="send through this Messaging Service (MG...) instead of a From number",
    )


class TwilioProvider(TwilioCompatibleProvider[TwilioConfig]):
    """Twilio Programmable Messaging (SMS and MMS)."""

    key: ClassVar[str] = "twilio"
    name: ClassVar[str] = "Twilio"
    signature_header: ClassVar[str] = "X-Twilio-Signature"
    Config = TwilioConfig
    capabilities = Capabilities(
        sms=True, mms=True, max_text_length=1600, max_media=10, max_media_bytes=5_000_000,
        inline_media=False,  # Twilio fetches media from a public URL; it takes no uploads
        number_format=NumberFormat.E164, signature="twilio-hmac-sha1", delivery_receipts=True,
        voice=True,
    )
    default_base_url: ClassVar[str] = "https://api.twilio.com"

    def account_url(self) -> str:
        """``{base}/2010-04-01/Accounts/{AccountSid}``; Messages.json and Calls.json below it."""
        return f"{self.base_url}/{API_VERSION}/Accounts/{self.config.account_sid}"

    def api_credentials(self) -> tuple[str, str]:
        """HTTP Basic credentials: Account SID and Auth Token (twilio.md §1)."""
        return self.config.account_sid, self.config.auth_token.get_secret_value()

    def signing_key(self) -> str:
        """Twilio signs webhooks with the Auth Token."""
        return self.config.auth_token.get_secret_value()

    def sender_field(self, message: OutboundMessage) -> tuple[str, str]:
        """The Messaging Service when one is configured, else the From number."""
        if self.config.messaging_service_sid:
            return ("MessagingServiceSid", self.config.messaging_service_sid)
        return ("From", message.from_number)

    def signature_mismatch_hint(self, request: WebhookRequest) -> str:
        """Name the Webhooks Rule shared key, which Twilio then signs with instead."""
        if header(request, "X-Twilio-Webhooks-Signature-Settings"):
            return (" (signed with a Webhooks Rule shared key, which smsbridge does not"
                    " check; remove the rule so Twilio signs with the Auth Token)")
        return ""

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes in the Twilio Console."""
        return (
            f'Set the number\'s (or Messaging Service\'s) "A message comes in" webhook to'
            f" {inbound_url} (HTTP POST). Status callbacks need no setup: smsbridge passes"
            f" {status_url} with every message it sends."
        )
