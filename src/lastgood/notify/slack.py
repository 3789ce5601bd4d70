"""Slack incoming webhook: POST {"text": ..., "blocks": [...]}; Slack answers 200 "ok" or an error code."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import Field

from lastgood.aws.clients import AwsClients
from lastgood.config.plugins import ChannelSettings
from lastgood.notify import _http
from lastgood.notify.base import Message

_SECTION_LIMIT = 3000  # Slack's limit for a section's text
_FIELD_LIMIT = 2000  # and for one field
_HEADER_LIMIT = 150  # and for a header's plain text


class SlackSettings(ChannelSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ("webhook_url",)

    webhook_url: str = Field(description="Incoming webhook URL (a secret: use ${VAR}).")


def _escape(text: str) -> str:
    """Slack's mrkdwn control characters (&, <, >) as entities, so a message cannot ping or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def payload(message: Message) -> dict[str, Any]:
    """The webhook body: `text` (the template, for notifications and old clients) and Block Kit blocks."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(message.subject(), _HEADER_LIMIT)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{label}:*\n{_escape(value)}", _FIELD_LIMIT)}
                for label, value in message.fields()
            ],
        },
    ]
    if message.details:
        details = "\n".join(f"• {_escape(detail)}" for detail in message.details)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(details, _SECTION_LIMIT)}})
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _escape(f"lastgood · {message.event} · {message.rollback_id}")}],
        }
    )
    text = _escape(f"{message.subject()}\n{message.text()}")
    return {"text": text, "blocks": blocks}


class SlackNotifier:
    key: ClassVar[str] = "slack"
    settings: ClassVar[type[ChannelSettings]] = SlackSettings

    @classmethod
    def build(cls, settings: ChannelSettings, aws: AwsClients, name: str) -> SlackNotifier:
        assert isinstance(settings, SlackSettings)
        return cls(settings, name=name)

    def __init__(self, settings: SlackSettings, name: str = "slack", timeout: float = 10.0) -> None:
        self.name = name
        self._url = settings.webhook_url
        self._timeout = timeout

    def send(self, message: Message) -> None:
        body = json.dumps(payload(message.redacted())).encode()
        _http.post(self.name, self._url, body, {}, self._timeout)
