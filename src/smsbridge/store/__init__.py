"""Durable storage: messages, the outbox, webhook deliveries, API keys and webhook tokens."""

from .base import DeliveryDraft, DeliveryRecord, MessageFilter, MessagePage, Store
from .sql import SqlStore, open_store

__all__ = [
    "DeliveryDraft",
    "DeliveryRecord",
    "MessageFilter",
    "MessagePage",
    "SqlStore",
    "Store",
    "open_store",
]
