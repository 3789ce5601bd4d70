"""Where lastgood tells people: Slack, SNS, email, a signed webhook. Secrets come from ${VAR}."""

from __future__ import annotations

from pydantic import Field, model_validator

from lastgood.config.durations import Duration
from lastgood.config.strict import Strict


class SlackSettings(Strict):
    webhook_url: str = Field(description="Incoming webhook URL (a secret: use ${VAR}).")


class SnsSettings(Strict):
    topic_arn: str


class EmailSettings(Strict):
    smtp_host: str
    smtp_port: int = 25
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    username: str | None = None
    password: str | None = Field(default=None, description="Use ${VAR}.")
    starttls: bool = False


class WebhookSettings(Strict):
    url: str
    secret: str = Field(description="HMAC-SHA256 key for the X-Lastgood-Signature header (use ${VAR}).")


class Channel(Strict):
    """Exactly one of slack, sns, email, webhook."""

    slack: SlackSettings | None = None
    sns: SnsSettings | None = None
    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Channel:
        given = [name for name in ("slack", "sns", "email", "webhook") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a channel is exactly one of slack, sns, email, webhook (got {given or 'none'})")
        return self


class Notifications(Strict):
    channels: list[Channel] = Field(default_factory=list)
    update_every: Duration = Field(default=600.0, description="Status updates while a rollback runs long.")
    retries: int = Field(default=3, ge=0, le=10)
