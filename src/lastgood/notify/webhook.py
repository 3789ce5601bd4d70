"""A generic webhook: POST the message as JSON, signed like GitHub's webhooks.

Headers: `X-Lastgood-Event: <event>` and `X-Lastgood-Signature: sha256=<hex HMAC-SHA256 of the exact body>`,
keyed with the channel's secret. A receiver recomputes the HMAC over the raw body it received and compares
with `hmac.compare_digest` (see `verify`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, ClassVar

from pydantic import Field

from lastgood.aws.clients import AwsClients
from lastgood.config.plugins import ChannelSettings
from lastgood.notify import _http
from lastgood.notify.base import Message

SIGNATURE_HEADER = "X-Lastgood-Signature"
EVENT_HEADER = "X-Lastgood-Event"


class WebhookSettings(ChannelSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ("secret",)

    url: str
    secret: str = Field(description="HMAC-SHA256 key for the X-Lastgood-Signature header (use ${VAR}).")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """For receivers (and tests): does `signature` match this body under this secret?"""
    return hmac.compare_digest(sign(secret, body), signature)


def body_of(message: Message) -> bytes:
    document: dict[str, Any] = {**message.as_dict(), "subject": message.subject(), "text": message.text()}
    return json.dumps(document, sort_keys=True).encode()


class WebhookNotifier:
    key: ClassVar[str] = "webhook"
    settings: ClassVar[type[ChannelSettings]] = WebhookSettings

    @classmethod
    def build(cls, settings: ChannelSettings, aws: AwsClients, name: str) -> WebhookNotifier:
        assert isinstance(settings, WebhookSettings)
        return cls(settings, name=name)

    def __init__(self, settings: WebhookSettings, name: str = "webhook", timeout: float = 10.0) -> None:
        self.name = name
        self._url = settings.url
        self._secret = settings.secret
        self._timeout = timeout

    def send(self, message: Message) -> None:
        safe = message.redacted()
        body = body_of(safe)
        headers = {SIGNATURE_HEADER: sign(self._secret, body), EVENT_HEADER: safe.event}
        _http.post(self.name, self._url, body, headers, self._timeout)
