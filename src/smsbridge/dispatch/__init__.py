"""Workers: the outbox (claim, send, retry, record) and app-webhook delivery."""

from .backoff import backoff_delay
from .outbox import OutboxWorker
from .webhooks import WebhookDeliveryWorker, sign_webhook

__all__ = ["OutboxWorker", "WebhookDeliveryWorker", "backoff_delay", "sign_webhook"]
