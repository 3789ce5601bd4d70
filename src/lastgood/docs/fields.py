"""A settings model as Markdown: one table row per key (type, default, meaning), nested models below it."""

from __future__ import annotations

import json
import re
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from lastgood.config.durations import format_duration, parse_condition, parse_duration

_NAMED_VALIDATORS = {parse_duration: "duration (`30s`, `5m`, `1h`)", parse_condition: "condition (`> 5%`)"}
_PLAIN = {str: "string", int: "integer", float: "number", bool: "boolean", Any: "any", type(None): "null"}


def model_section(model: type[BaseModel], level: int = 2, title: str | None = None, skip: tuple[str, ...] = ()) -> str:
    """The model's table, then one section per nested model it uses (each once)."""
    nested: list[type[BaseModel]] = []
    out = [_table(model, nested, skip)]
    seen = {model}
    while nested:
        inner = nested.pop(0)
        if inner in seen:
            continue
        seen.add(inner)
        out += [f"{'#' * level} {inner.__name__}", *_doc(inner), _table(inner, nested, ())]
    heading = [f"{'#' * level} {title}", *_doc(model)] if title else []
    return "\n\n".join([*heading, *out])


def _doc(model: type[BaseModel]) -> list[str]:
    text = " ".join((model.__doc__ or "").split())
    return [text] if text and not text.startswith(("Usage docs", "!!! abstract")) else []


def _table(model: type[BaseModel], nested: list[type[BaseModel]], skip: tuple[str, ...]) -> str:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        key = info.alias or name
        kind = _type(info.annotation, nested, info.metadata)
        rows.append(f"| `{key}` | {kind} | {_default(info)} | {_cell(info.description or '')} |")
    return "\n".join(rows)


def _type(annotation: Any, nested: list[type[BaseModel]], metadata: list[Any] | None = None) -> str:
    for item in metadata or []:
        named = _NAMED_VALIDATORS.get(getattr(item, "func", None))  # type: ignore[arg-type]
        if named:
            return named
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type(args[0], nested, list(args[1:]))
    if origin is Literal:
        return " \\| ".join(f"`{value}`" for value in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_type(a, nested) for a in args if a is not type(None))
    if origin is list:
        return f"list of {_type(args[0], nested)}" if args else "list"
    if origin is dict:
        return f"map of {_type(args[0], nested)} to {_type(args[1], nested)}" if args else "map"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        nested.append(annotation)
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return _PLAIN.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    if value is PydanticUndefined or value is None:
        return "-"
    if isinstance(value, BaseModel):
        return "its defaults"
    if isinstance(value, float) and any(getattr(m, "func", None) is parse_duration for m in info.metadata):
        return f"`{format_duration(value)}`"
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|").replace("<", "&lt;")
