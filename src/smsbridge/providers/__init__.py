"""Carrier providers: one folder per carrier, a lazy registry, and the provider interface."""

from .base import (
    Capabilities,
    Provider,
    ProviderConfig,
    Reply,
    SendResult,
    WebhookRequest,
)
from .registry import UnknownProvider, get_provider_class, provider_keys

__all__ = [
    "Capabilities",
    "Provider",
    "ProviderConfig",
    "Reply",
    "SendResult",
    "UnknownProvider",
    "WebhookRequest",
    "get_provider_class",
    "provider_keys",
]
