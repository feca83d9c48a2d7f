"""Pure domain types: messages, statuses, phone numbers, segments and errors. No I/O."""

from .errors import (
    ConfigError,
    InvalidInput,
    InvalidPhoneNumber,
    MalformedWebhook,
    ProviderError,
    SmsBridgeError,
    WebhookRejected,
)
from .messages import (
    Direction,
    InboundMessage,
    Media,
    Message,
    MessageStatus,
    OutboundMessage,
    StatusUpdate,
    utcnow,
)
from .phone import NumberFormat, format_number, to_e164
from .segments import SegmentCount, count_segments, split_segments

__all__ = [
    "ConfigError",
    "Direction",
    "InboundMessage",
    "InvalidInput",
    "InvalidPhoneNumber",
    "MalformedWebhook",
    "Media",
    "Message",
    "MessageStatus",
    "NumberFormat",
    "OutboundMessage",
    "ProviderError",
    "SegmentCount",
    "SmsBridgeError",
    "StatusUpdate",
    "WebhookRejected",
    "count_segments",
    "format_number",
    "split_segments",
    "to_e164",
    "utcnow",
]
