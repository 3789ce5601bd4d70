"""Slack incoming webhook: POST {"text": ..., "blocks": [...]}; Slack answers 200 "ok" or an error code.

With `server_url` (the lastgood server's public URL), an approval-needed message also carries Approve / Deny
buttons whose action ids name the rollback; Slack sends the clicks to the server's /slack/interactions.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import Field

from lastgood.aws.clients import AwsClients
from lastgood.config.notifications import Channel, Notifications
from lastgood.config.plugins import ChannelSettings
from lastgood.notify import _http
from lastgood.notify.base import Message
from lastgood.notify.messages import APPROVAL_NEEDED

_SECTION_LIMIT = 3000  # Slack's limit for a section's text
_FIELD_LIMIT = 2000  # and for one field
_HEADER_LIMIT = 150  # and for a header's plain text
ACTIONS_BLOCK = "lastgood-approval"  # the block_id of the buttons, so an answer can take them off the message
APPROVE, DENY = "approve", "deny"  # action ids are "approve:<rollback id>" and "deny:<rollback id>"


class SlackSettings(ChannelSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ("webhook_url",)

    webhook_url: str = Field(description="Incoming webhook URL (a secret: use ${VAR}).")
    server_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="The lastgood server's public URL (e.g. ${LASTGOOD_PUBLIC_URL}): approval-needed messages then "
        "carry Approve / Deny buttons, answered by its /slack/interactions [default: the server's --public-url]",
    )


def escape(text: str) -> str:
    """Slack's mrkdwn control characters (&, <, >) as entities, so a message cannot ping or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def approval_buttons(rollback_id: str, server_url: str) -> dict[str, Any]:
    """Approve / Deny (asks first), and a link to the rollback's page on the server."""
    deny_confirm = {
        "title": {"type": "plain_text", "text": "Deny this rollback?"},
        "text": {"type": "plain_text", "text": _cut(f"{rollback_id} will not run; the release stays live.", 300)},
        "confirm": {"type": "plain_text", "text": "Deny"},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }
    return {
        "type": "actions",
        "block_id": ACTIONS_BLOCK,
        "elements": [
            _button("Approve", f"{APPROVE}:{rollback_id}", rollback_id, style="primary"),
            _button("Deny", f"{DENY}:{rollback_id}", rollback_id, style="danger") | {"confirm": deny_confirm},
            _button("Open in lastgood", f"open:{rollback_id}", rollback_id)
            | {"url": f"{server_url.rstrip('/')}/rollbacks/{rollback_id}"},
        ],
    }


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    return button | ({"style": style} if style else {})


def payload(message: Message, server_url: str | None = None) -> dict[str, Any]:
    """The webhook body: `text` (the template, for notifications and old clients) and Block Kit blocks; the
    approval buttons when the server that answers them is known."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(message.subject(), _HEADER_LIMIT)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{label}:*\n{escape(value)}", _FIELD_LIMIT)}
                for label, value in message.fields()
            ],
        },
    ]
    if message.body is not None:  # the file's template says it all
        blocks[1] = {"type": "section", "text": {"type": "mrkdwn", "text": _cut(escape(message.body), _SECTION_LIMIT)}}
    elif message.details:
        details = "\n".join(f"• {escape(detail)}" for detail in message.details)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(details, _SECTION_LIMIT)}})
    if server_url and message.event == APPROVAL_NEEDED and message.rollback_id:
        blocks.append(approval_buttons(message.rollback_id, server_url))
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": escape(f"lastgood · {message.event} · {message.rollback_id}")}],
        }
    )
    text = escape(f"{message.subject()}\n{message.text()}")
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
        self._server_url = settings.server_url
        self._timeout = timeout

    def send(self, message: Message) -> None:
        body = json.dumps(payload(message.redacted(), self._server_url)).encode()
        _http.post(self.name, self._url, body, {}, self._timeout)


def with_server_url(notifications: Notifications, url: str) -> Notifications:
    """The same channels, each Slack channel without its own `server_url` given `url`."""
    channels = []
    for channel in notifications.channels:
        settings = channel.settings
        if isinstance(settings, SlackSettings) and settings.server_url is None:
            channel = Channel.model_validate({channel.type: settings.model_dump() | {"server_url": url}})
        channels.append(channel)
    return notifications.model_copy(update={"channels": channels})
