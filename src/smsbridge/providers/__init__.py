"""Carrier providers: one folder per carrier, a lazy registry, and the provider interface.

This package is the interface a carrier plug-in imports (see docs/plugins.md):
everything a provider implements, receives, returns and raises is named here.
Importing it loads no carrier: the registry imports each one when first asked.
"""

from ..core.errors import (
    CredentialsRejected,
    MalformedWebhook,
    ProviderError,
    WebhookRejected,
)
from ..core.messages import (
    CALL_ANSWERED,
    CALL_FAILURE_ANSWERS,
    InboundMessage,
    Media,
    MessageStatus,
    OutboundCall,
    OutboundMessage,
    StatusUpdate,
)
from ..core.phone import NumberFormat
from .base import (
    UNSIGNED,
    AccountInfo,
    Capabilities,
    Provider,
    ProviderConfig,
    Reply,
    SendResult,
    WebhookRequest,
    e164_numbers,
    linked_pages,
    read_account,
)
from .http import (
    CarrierResponse,
    basic_auth,
    carrier_request,
    parse_retry_after,
    redact,
    retryable_status,
)
from .numbers import inbound_number
from .registry import UnknownProvider, get_provider_class, provider_keys

__all__ = [
    "CALL_ANSWERED",
    "CALL_FAILURE_ANSWERS",
    "UNSIGNED",
    "AccountInfo",
    "Capabilities",
    "CarrierResponse",
    "CredentialsRejected",
    "InboundMessage",
    "MalformedWebhook",
    "Media",
    "MessageStatus",
    "NumberFormat",
    "OutboundCall",
    "OutboundMessage",
    "Provider",
    "ProviderConfig",
    "ProviderError",
    "Reply",
    "SendResult",
    "StatusUpdate",
    "UnknownProvider",
    "WebhookRejected",
    "WebhookRequest",
    "basic_auth",
    "carrier_request",
    "e164_numbers",
    "get_provider_class",
    "inbound_number",
    "linked_pages",
    "parse_retry_after",
    "provider_keys",
    "read_account",
    "redact",
    "retryable_status",
]
