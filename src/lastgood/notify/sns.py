"""Amazon SNS: Publish with a Subject (what email subscribers see) and the template as the Message.

The message attributes (event, app, env, rollback_id) let subscriptions filter with a filter policy. A topic in
another region than the environment's is published to in its own region (from its ARN).
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from lastgood.aws.clients import AwsClients
from lastgood.aws.errors import map_aws_errors
from lastgood.config.plugins import ChannelSettings
from lastgood.notify.base import Message

_SUBJECT_LIMIT = 100  # SNS: ASCII, no line breaks or control characters, at most 100 characters


class SnsSettings(ChannelSettings):
    topic_arn: str


def subject_for_sns(text: str) -> str:
    ascii_text = text.encode("ascii", "replace").decode()
    printable = "".join(c if c.isprintable() else " " for c in ascii_text).strip()
    return printable[:_SUBJECT_LIMIT] or "lastgood"


def _clients_for(aws: AwsClients, topic_arn: str) -> AwsClients:
    parts = topic_arn.split(":")
    region = parts[3] if len(parts) >= 6 else ""
    if not region or region == aws.settings.region:
        return aws
    return AwsClients(aws.settings.model_copy(update={"region": region}))


def publish_arguments(topic_arn: str, message: Message) -> dict[str, Any]:
    text = message.text()
    subject = subject_for_sns(message.subject())
    attributes = {
        name: {"DataType": "String", "StringValue": value}
        for name, value in (
            ("event", message.event),
            ("app", message.app),
            ("env", message.env),
            ("rollback_id", message.rollback_id),
        )
        if value
    }
    arguments: dict[str, Any] = {
        "TopicArn": topic_arn,
        "Subject": subject,
        "Message": text,
        "MessageAttributes": attributes,
    }
    if topic_arn.endswith(".fifo"):
        arguments["MessageGroupId"] = f"{message.app}-{message.env}"
        arguments["MessageDeduplicationId"] = hashlib.sha256(f"{subject}\n{text}".encode()).hexdigest()
    return arguments


class SnsNotifier:
    key: ClassVar[str] = "sns"
    settings: ClassVar[type[ChannelSettings]] = SnsSettings

    @classmethod
    def build(cls, settings: ChannelSettings, aws: AwsClients, name: str) -> SnsNotifier:
        assert isinstance(settings, SnsSettings)
        return cls(settings, aws, name=name)

    def __init__(self, settings: SnsSettings, aws: AwsClients, name: str = "sns") -> None:
        self.name = name
        self._topic_arn = settings.topic_arn
        self._aws = _clients_for(aws, settings.topic_arn)

    def send(self, message: Message) -> None:
        arguments = publish_arguments(self._topic_arn, message.redacted())
        with map_aws_errors("sns:Publish"):
            self._aws.client("sns").publish(**arguments)
