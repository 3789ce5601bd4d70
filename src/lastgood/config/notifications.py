"""Where lastgood tells people: one channel per entry, named by a registered notifier's key (`slack:`, `sns:`,
`email:`, `webhook:`; see config/plugins.py). Secrets come from ${VAR}."""

from __future__ import annotations

from typing import Any

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from lastgood.config import plugins
from lastgood.config.comms import MessageKind, Template
from lastgood.config.durations import Duration
from lastgood.config.strict import Strict


class Channel(Strict):
    """Exactly one key, naming a registered notifier; its value is that notifier's settings."""

    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="A name escalation steps use to address this channel (`policy.escalation[].channels`).",
    )

    _type: str = PrivateAttr(default="")
    _settings: Any = PrivateAttr(default=None)

    @classmethod
    def plugged_fields(cls) -> dict[str, Any]:
        return {name: plugin.settings for name, plugin in plugins.channels().items()}

    @model_validator(mode="wrap")
    @classmethod
    def _plugged(cls, data: Any, handler: ModelWrapValidatorHandler[Channel]) -> Channel:
        if not isinstance(data, dict):
            return handler(data)
        found = plugins.channels()
        given, settings, rest, errors = plugins.validate_plugged(data, found, lambda p: p.settings)
        try:
            channel = handler(rest)
        except ValidationError as error:
            plugins.raise_errors(cls.__name__, [*plugins.details(error), *errors])
            raise
        if len(given) != 1:
            message = f"a channel is exactly one of {', '.join(found)} (got {given or 'none'})"
            errors.append(plugins.value_error((), message))
        plugins.raise_errors(cls.__name__, errors)
        channel._type, channel._settings = given[0], settings
        return channel

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        data[self._type] = self.settings.model_dump(mode=info.mode, by_alias=bool(info.by_alias))
        return data

    @property
    def type(self) -> str:
        """The notifier's key in the file: slack, sns, email, webhook, ..."""
        return self._type

    @property
    def settings(self) -> plugins.ChannelSettings:
        assert isinstance(self._settings, plugins.ChannelSettings)
        return self._settings


class Notifications(Strict):
    channels: list[Channel] = Field(
        default_factory=list, description="Where messages go; each retried, never blocking."
    )
    update_every: Duration = Field(default=600.0, description="Status updates while a rollback runs long.")
    retries: int = Field(default=3, ge=0, le=10, description="Attempts after the first, per message and channel.")
    templates: dict[MessageKind, Template] = Field(
        default_factory=dict,
        description="Message text per kind (rollback-started, approval-needed, rollback-succeeded, ...): Jinja2 "
        "with the rollback's facts (README: Message templates) [default: the 004 template].",
    )
