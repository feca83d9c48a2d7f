"""Request and response schemas of the REST API (they also make /openapi.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core.segments import replace_lone_surrogates


def _mend_surrogates(value: object) -> object:
    # JSON may carry half of an emoji ("\ud83d"); pydantic refuses such a str outright.
    return replace_lone_surrogates(value) if isinstance(value, str) else value


class MediaIn(BaseModel):
    """An attachment: a public URL, or base64 data with its content type."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description="public http(s) URL the carrier fetches")
    data: str | None = Field(None, description="base64 file content (carriers that take it)")
    content_type: str | None = Field(None, description="e.g. image/jpeg; guessed from a URL")


class SendIn(BaseModel):
    """A message to send."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra={
        # The sandbox carrier's default number: the example works on a fresh install.
        "examples": [{"from": "+15555550100", "to": "+15145550111",
                      "text": "Porch motion at 02:14"}]})

    from_: str = Field(alias="from", description="one of your numbers (E.164 or national)")
    to: str = Field(description="the recipient (E.164 or national in the default region)")
    text: str = Field("", max_length=5000)
    media: list[MediaIn] = Field(default_factory=list, max_length=10)
    connection: str | None = Field(None, description="which connection to use; default: "
                                                     "the one that owns `from`")

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return _mend_surrogates(value)


class CallIn(BaseModel):
    """A voice call to place: the text is spoken to whoever answers."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra={
        "examples": [{"from": "+15555550100", "to": "+15145550111",
                      "say": "Alarm: motion in the garage", "repeat": 2}]})

    from_: str = Field(alias="from", description="one of your numbers (E.164 or national)")
    to: str = Field(description="who to call (E.164 or national in the default region)")
    say: str = Field(max_length=5000, description="what is spoken; at most 1000 characters")
    voice: str | None = Field(None, description="the carrier's voice name, e.g. Polly.Joanna; "
                                                "default: the carrier's")
    language: str | None = Field(None, description="e.g. en-US; default: the carrier's")
    repeat: int = Field(1, description="how many times the text is spoken, 1 to 10")
    connection: str | None = Field(None, description="which connection to use; default: "
                                                     "the one that owns `from`")

    @field_validator("say", mode="before")
    @classmethod
    def _say(cls, value: object) -> object:
        return _mend_surrogates(value)


class MediaOut(BaseModel):
    """An attachment as stored."""

    content_type: str
    url: str | None = None
    size: int | None = None


class ErrorOut(BaseModel):
    """Why a message failed."""

    code: str | None
    reason: str | None


class MessageOut(BaseModel):
    """A message and where it is in its life."""

    id: str
    direction: Literal["inbound", "outbound"]
    connection: str
    carrier: str
    from_: str = Field(alias="from")
    to: str
    text: str
    media: list[MediaOut]
    status: Literal["queued", "sending", "sent", "delivered", "failed", "received"]
    segments: int
    encoding: str
    carrier_message_id: str | None
    error: ErrorOut | None
    attempts: int
    created_at: str
    updated_at: str


class RuleActionOut(BaseModel):
    """One thing a matched rule did, and how it went."""

    action: Literal["webhook", "mqtt", "reply", "forward"]
    target: str = Field(description="the webhook's name, the MQTT topic, or the number")
    status: str = Field(description="a delivery's pending, delivered or failed; a reply's or "
                                    "forward's refused, or its message's status")
    message_id: str | None = Field(description="the reply or forward queued")
    error: str | None = Field(description="why it was refused or failed")


class RuleOutcomeOut(BaseModel):
    """A rule the message matched, or whose sender list kept it out."""

    rule: str
    status: Literal["matched", "sender_not_allowed"]
    detail: str | None = Field(description="why the sender was not allowed")
    captures: dict[str, str | None] = Field(description="the pattern's named groups")
    actions: list[RuleActionOut]


class MessageDetailOut(MessageOut):
    """A message, and for an inbound one what the rules did with it."""

    rules: list[RuleOutcomeOut] = Field(description="empty when no rule matched")


class MessageListOut(BaseModel):
    """A page of messages, newest first."""

    data: list[MessageOut]
    next_cursor: str | None


class CallOut(BaseModel):
    """A voice call and how it went."""

    id: str
    connection: str
    carrier: str
    from_: str = Field(alias="from")
    to: str
    say: str
    voice: str | None
    language: str | None
    repeat: int
    status: Literal["queued", "calling", "placed", "completed", "failed"] = Field(
        description="placed: the carrier took the call and rings the phone")
    answer: Literal["answered", "busy", "no-answer", "failed", "canceled"] | None = Field(
        description="how the phone answered, once the call ended (else null)")
    carrier_call_id: str | None
    error: ErrorOut | None
    attempts: int
    created_at: str
    updated_at: str


class CallListOut(BaseModel):
    """A page of calls, newest first."""

    data: list[CallOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    """One app-webhook delivery."""

    id: str
    url: str
    event_type: str
    message_id: str | None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: str | None  # RFC 3339, UTC
    last_error: str | None


class DeliveryListOut(BaseModel):
    """A list of app-webhook deliveries."""

    data: list[DeliveryOut]


class ConnectionOut(BaseModel):
    """A carrier connection and the URLs to give the carrier; never its secrets."""

    name: str
    carrier: str
    numbers: list[str]
    source: Literal["config", "api"] = Field(
        description="config: from the config file, read-only; api: added through the API")
    inbound_url: str | None = Field(description="where the carrier posts inbound messages")
    status_url: str | None = Field(description="where it posts delivery receipts (null: the "
                                               "carrier sends none)")
    setup: str | None = Field(description="what to paste into the carrier's portal")
    settings: dict[str, Any] | None = Field(
        None, description="api connections only: the settings given, each secret shown as "
                          "\"(set)\"")


class ConnectionListOut(BaseModel):
    """The key's account's carrier connections, the config file's first."""

    data: list[ConnectionOut]


class ConnectionIn(BaseModel):
    """A carrier connection to add to the key's account."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "customer-a", "carrier": "voipms", "numbers": ["+15145550100"],
        "settings": {"username": "me@example.com", "api_password": "the API password"}}]})

    name: str = Field(description="1 to 64 letters, digits, _ or -; part of its webhook URLs")
    carrier: str = Field(description="the carrier's key, e.g. voipms, twilio, sandbox")
    numbers: list[str] = Field(default_factory=list, description="its numbers (E.164 or "
                                                                 "national); each number "
                                                                 "belongs to one connection")
    settings: dict[str, Any] = Field(default_factory=dict,
                                     description="the carrier's settings, checked against its "
                                                 "schema; secrets are stored encrypted")


class ConnectionPatchIn(BaseModel):
    """What to change in a connection; what is left out stays."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "numbers": ["+15145550100", "+15145550101"]}]})

    numbers: list[str] | None = Field(None, description="the new list of its numbers")
    settings: dict[str, Any] | None = Field(
        None, description="settings to change, merged into the stored ones; null removes one")


class AccountIn(BaseModel):
    """An account (tenant) to make."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "Customer A"}]})

    name: str = Field(description="what it is called; at most 100 characters")


class AccountOut(BaseModel):
    """An account: its keys see only its messages, connections, webhooks and opt-outs."""

    id: str = Field(description="acc_...")
    name: str
    created_at: str
    auth_token: str | None = Field(
        None, description="the Twilio-style auth token; only in the answer that made the account")


class AccountListOut(BaseModel):
    """Every account."""

    data: list[AccountOut]


class ApiKeyIn(BaseModel):
    """An API key to make for an account."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "customer-a-pbx"}]})

    name: str = Field(description="what it is for; at most 100 characters")


class ApiKeyCreatedOut(BaseModel):
    """A new API key; ``key`` is shown this once and only its hash is kept."""

    id: str
    name: str
    prefix: str = Field(description="the key's first characters, to recognise it")
    account_id: str
    admin: bool
    created_at: str
    key: str = Field(description="sbk_...: send it as `Authorization: Bearer sbk_...`")


class WebhookIn(BaseModel):
    """An app webhook to add to the key's account."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "url": "https://app.example.com/hooks/sms", "events": ["message.received"]}]})

    url: str = Field(description="http(s) URL the gateway posts events to")
    events: list[str] | None = Field(
        None, description="event types it hears of; default: message.received, "
                          "message.status, call.completed, call.failed")
    format: Literal["standard", "twilio", "jambonz"] = Field(
        "standard", description="standard: JSON signed per Standard Webhooks; twilio: Twilio's "
        "inbound form signed with the account's auth token, a TwiML <Message> answer is sent "
        "back; jambonz: jambonz's inbound message JSON, signed per Standard Webhooks")


class WebhookOut(BaseModel):
    """An app webhook of the key's account (never its secret)."""

    id: str | None = Field(description="wh_...; null for the config file's webhooks")
    url: str
    events: list[str]
    format: str
    source: Literal["config", "api"]
    created_at: str | None


class WebhookCreatedOut(WebhookOut):
    """A new app webhook and its signing secret, which is shown this once."""

    secret: str = Field(description="whsec_...: verify each delivery's webhook-signature")


class WebhookListOut(BaseModel):
    """The key's account's app webhooks."""

    data: list[WebhookOut]


class FieldError(BaseModel):
    """One wrong field of a request, and why."""

    field: str
    reason: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(
        None, description="422 and 409 only: the fields that are wrong or taken")


# The problem answers the OpenAPI document lists on the routes that can give them.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or wrong API key"},
    422: {"model": Problem, "description": "invalid input; names the field"},
}
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": Problem, "description": "the body is over server.max_body_bytes"}}
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "the key is not an admin key"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "a name or number already taken, or a config-file "
                                           "connection (read-only); names the field"}}
SECRET_KEY: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "the secret key that encrypts stored secrets is "
                                           "missing or wrong"}}


def not_found(what: str) -> dict[int | str, dict[str, Any]]:
    """The documented 404 of a route about one ``what`` of the key's account."""
    return {404: {"model": Problem, "description": f"no such {what} in the key's account"}}
