"""SignalWire: its Twilio-compatible (LaML / cXML) Messages API and Twilio-style signed webhooks.

Carrier facts and how sure they are: shared/providers/signalwire.md. Everything but the
address, the credentials and the signing key is Twilio's, so it lives once in
``providers/twilio/compat.py``.

Send::

    POST https://{space}/api/laml/2010-04-01/Accounts/{ProjectID}/Messages.json
    (Basic auth: Project ID, API Token)   To=+1...&From=+1...&Body=Hi&MediaUrl=...

Inbound webhook and status callbacks: Twilio's form fields, signed in
``X-SignalWire-Signature`` with the project's Signing Key (Twilio's HMAC-SHA1 algorithm).

Voice-call alerts: Twilio's Calls request with inline cXML, at the same place::

    POST https://{space}/api/laml/2010-04-01/Accounts/{ProjectID}/Calls.json
    To=+1...&From=+1...&Twiml=<Response><Say>Alarm</Say></Response>&StatusCallback=...
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from ..base import Capabilities, ProviderConfig
from ..twilio.compat import API_VERSION, TwilioCompatibleProvider

SPACE_DOMAIN = ".signalwire.com"


class SignalWireConfig(ProviderConfig):
    """Credentials of a SignalWire project."""

    space: str = Field(
        description="the Space's host name, e.g. example.signalwire.com (or just 'example')"
    )
    project_id: str = Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="Project ID (a UUID) from the Space's API page",
    )
    api_token: SecretStr = Field(description="API token of the project, with the Messaging scope")
    signing_key: SecretStr = Field(
        description="Signing Key from the Space's API page; SignalWire signs webhooks with it"
    )

    @field_validator("space")
    @classmethod
    def _space_host(cls, value: str) -> str:
        """A bare host name: no scheme or path; a Space name alone gets .signalwire.com."""
        host = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
        if not host or "/" in host or any(c.isspace() for c in host):
            raise ValueError("space must be a host name such as example.signalwire.com")
        return host if "." in host else host + SPACE_DOMAIN


class SignalWireProvider(TwilioCompatibleProvider[SignalWireConfig]):
    """SignalWire Messaging through its Twilio-compatible API (SMS and MMS)."""

    key: ClassVar[str] = "signalwire"
    name: ClassVar[str] = "SignalWire"
    Config = SignalWireConfig
    # "Create a message": Body up to 1600 characters, up to 10 MediaUrl, 5 MB in all;
    # media by public URL only. Receipts come to the StatusCallback of each message.
    capabilities = Capabilities(
        mms=True, max_media=10, max_media_bytes=5_000_000, delivery_receipts=True,
        signature="signalwire-hmac-sha1", voice=True,
    )
    signature_header: ClassVar[str] = "X-SignalWire-Signature"

    @property
    def base_url(self) -> str:
        """``https://{space}``, or the configured override."""
        return (self.config.base_url or f"https://{self.config.space}").rstrip("/")

    def account_url(self) -> str:
        """``{base}/api/laml/2010-04-01/Accounts/{ProjectID}``: Messages.json, Calls.json."""
        return f"{self.base_url}/api/laml/{API_VERSION}/Accounts/{self.config.project_id}"

    def api_credentials(self) -> tuple[str, str]:
        """HTTP Basic credentials: Project ID and API token."""
        return self.config.project_id, self.config.api_token.get_secret_value()

    def signing_key(self) -> str:
        """SignalWire signs with the project's Signing Key, not the API token."""
        return self.config.signing_key.get_secret_value()

    def setup_hint(self, inbound_url: str, status_url: str) -> str | None:
        """Where the inbound URL goes in the SignalWire Space."""
        return (
            "In the Space, open Phone Numbers → (number) → Edit Settings → Messaging Settings,"
            ' choose "LaML Webhooks" (cXML) and set "When a Message Comes In" to'
            f" {inbound_url} (POST). Status callbacks need no setup: smsbridge passes"
            f" {status_url} with every message it sends."
        )
