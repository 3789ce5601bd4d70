"""Turning pydantic errors into one line per problem: a path into the file, what is wrong, a hint."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any, get_origin

from pydantic import BaseModel, ValidationError


def format_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _field_names(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys allowed at the mapping that holds loc's last part, for 'did you mean' hints."""
    current: Any = model
    mapping_key = False
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if mapping_key:  # a key of a dict field (environments.<name>), not a field name
            mapping_key = False
            continue
        field = getattr(current, "model_fields", {}).get(part)
        annotation = field.annotation if field is not None else _plugged(current).get(part)
        if annotation is None:
            return []
        mapping_key = get_origin(annotation) is dict
        args = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type)]
        candidates = [annotation, *args]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    fields = getattr(current, "model_fields", {})
    return [f.alias or name for name, f in fields.items()] + list(_plugged(current))


def _plugged(model: Any) -> dict[str, Any]:
    """The keys registered plug-ins add to a model (a trigger's sources, a channel's notifiers)."""
    plugged = getattr(model, "plugged_fields", None)
    return dict(plugged()) if callable(plugged) else {}


def pydantic_problems(error: ValidationError, model: type[BaseModel], prefix: Sequence[int | str] = ()) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        path = format_path([*prefix, *loc])
        kind = item["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _field_names(model, loc)
            hint = did_you_mean(key, allowed) or (f" (allowed: {', '.join(allowed)})" if allowed else "")
            problems.append(f"{path}: unknown key {key!r}{hint}")
        elif kind == "missing":
            problems.append(f"{path}: required key is missing")
        elif kind == "value_error":
            problems.append(f"{path}: {item['msg'].removeprefix('Value error, ')}")
        else:
            got = item.get("input")
            shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) else ""
            problems.append(f"{path}: {item['msg'][0].lower()}{item['msg'][1:]}{shown}")
    return problems
