"""Plug points the file names by key: a trigger's metric source (`cloudwatch:`, `prometheus:`, `probe:`) and a
notification channel (`slack:`, `sns:`, `email:`, `webhook:`).

Each source or notifier module owns its settings model and says what it accepts (the protocols below); the
modules are listed once, in `sources/registry.py` and `notify/registry.py`, which register them here. Config
validates the file against what is registered and never imports those modules by name: the first lookup imports
the two registries (the built-in plug-ins), as an entry point would.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, TypeVar, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from lastgood.config.durations import Condition
from lastgood.config.strict import Strict
from lastgood.lazy_registry import LazyRegistry

_BUILTIN_REGISTRIES = ("lastgood.sources.registry", "lastgood.notify.registry")


class SourcePlugin(Protocol):
    """A metric source, as the file sees it (a source class satisfies this with class attributes)."""

    name: str  # the trigger's key
    settings: Any  # the model, or a union of models, under that key
    per_settings: Any  # what `per:` takes for this source (None: no `per`)
    per_shape: str  # how a message names it: "a CloudWatch metric"

    @classmethod
    def check_trigger(cls, query: Any, per: Any, when: Condition, period: float) -> None:
        """Raise ValueError when this source cannot judge the trigger as written."""
        ...

    @classmethod
    def check_period(cls, period: float) -> None:
        """Raise ValueError for a period this source cannot fetch."""
        ...


class ChannelSettings(Strict):
    """The base of a channel's settings; `secret_fields` are masked wherever text leaves lastgood."""

    secret_fields: ClassVar[tuple[str, ...]] = ()

    def secrets(self) -> list[str]:
        return [str(v) for v in (getattr(self, name) for name in self.secret_fields) if v]


class ChannelPlugin(Protocol):
    """A notifier class, as the file sees it (its instances' `name` says where the channel is in the file)."""

    key: str  # the channel's key
    settings: type[ChannelSettings]


SOURCES: LazyRegistry[SourcePlugin] = LazyRegistry({})
CHANNELS: LazyRegistry[ChannelPlugin] = LazyRegistry({})
_loaded: list[bool] = []
_P = TypeVar("_P")


def register_source(plugin: SourcePlugin) -> None:
    SOURCES[plugin.name] = plugin


def register_channel(plugin: ChannelPlugin) -> None:
    CHANNELS[plugin.key] = plugin


def list_sources(where: Mapping[str, str]) -> None:
    """Built-in sources by name and "module:Class", imported when a file first names one."""
    for name, place in where.items():
        SOURCES.list_lazily(name, place)


def list_channels(where: Mapping[str, str]) -> None:
    for key, place in where.items():
        CHANNELS.list_lazily(key, place)


def _load_builtins() -> None:
    if not _loaded:
        _loaded.append(True)
        for module in _BUILTIN_REGISTRIES:
            importlib.import_module(module)


def sources() -> Mapping[str, SourcePlugin]:
    _load_builtins()
    return SOURCES


def channels() -> Mapping[str, ChannelPlugin]:
    _load_builtins()
    return CHANNELS


def one_of(names: list[str]) -> str:
    """'a, b or c'"""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def validate_plugged(
    data: dict[str, Any], plugins: Mapping[str, _P], settings: Callable[[_P], Any]
) -> tuple[list[str], Any, dict[str, Any], list[InitErrorDetails]]:
    """Pops the plugged keys out of `data`; when there is exactly one, validates its value against that plug-in's
    settings. Returns (the keys given, the settings, the rest of data, errors located under the key)."""
    given = [key for key in plugins if key in data and data[key] is not None]
    rest = {k: v for k, v in data.items() if k not in plugins}
    if len(given) != 1:
        return given, None, rest, []
    value, errors = validate_value(_narrowed(settings(plugins[given[0]]), data[given[0]]), data[given[0]], (given[0],))
    return given, value, rest, errors


def _narrowed(annotation: Any, value: Any) -> Any:
    """Of a union of models, the one model whose keys the value uses (`expression:` picks metric math), so that
    a mistake is reported once, against the shape meant; else the union."""
    models = plugged_models(annotation)
    if len(models) < 2 or not isinstance(value, dict):
        return annotation
    fits = [
        m for m in models if set(value) <= {f.alias or name for name, f in m.model_fields.items()} | set(m.model_fields)
    ]
    return fits[0] if len(fits) == 1 else annotation


def validate_value(annotation: Any, value: Any, loc: tuple[str | int, ...]) -> tuple[Any, list[InitErrorDetails]]:
    try:
        return TypeAdapter(annotation).validate_python(value), []
    except ValidationError as error:
        return None, details(error, loc)


def details(error: ValidationError, loc: tuple[str | int, ...] = ()) -> list[InitErrorDetails]:
    """The errors, to raise again (with others) from a validator, under `loc`."""
    return [_relocated(item, loc) for item in error.errors(include_url=False)]


def _relocated(item: Any, loc: tuple[str | int, ...]) -> InitErrorDetails:
    details: InitErrorDetails = {"type": item["type"], "loc": (*loc, *item["loc"]), "input": item["input"]}
    if item["type"] == "value_error" or "ctx" in item:
        details["ctx"] = item.get("ctx", {})
    if item["type"] not in _PYDANTIC_TYPES:
        details["type"] = PydanticCustomError(item["type"], item["msg"])
    return details


def value_error(loc: tuple[str | int, ...], message: str) -> InitErrorDetails:
    return {"type": "value_error", "loc": loc, "input": None, "ctx": {"error": ValueError(message)}}


def raise_errors(title: str, errors: list[InitErrorDetails]) -> None:
    if errors:
        raise ValidationError.from_exception_data(title, errors)


def plugged_models(annotation: Any) -> list[type[BaseModel]]:
    """The models in a settings annotation (a model or a union of models), for hints and the schema."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]


_PYDANTIC_TYPES = frozenset(get_args(ErrorType))
