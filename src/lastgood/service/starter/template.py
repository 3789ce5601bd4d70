"""A CloudFormation template as data: its resources and which resource refers to which (Ref, GetAtt, Sub)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

_SUB_NAMES = re.compile(r"\$\{([^!}][^}]*)\}")


class _TaggedLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms kept as their long forms: `!Ref X` is {"Ref": "X"}."""


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_TaggedLoader.add_multi_constructor("!", _construct)


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any] = field(default_factory=dict)
    refers_to: frozenset[str] = frozenset()


def load_template(body: str | dict[str, Any]) -> dict[str, Any]:
    """boto3 hands a JSON template back decoded, a YAML one as text."""
    if isinstance(body, dict):
        return body
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = yaml.load(body, Loader=_TaggedLoader)  # a SafeLoader subclass: no arbitrary objects
    return parsed if isinstance(parsed, dict) else {}


def template_resources(template: dict[str, Any]) -> dict[str, Resource]:
    declared = template.get("Resources") or {}
    names = {str(name) for name in declared}
    found = {}
    for name, body in declared.items():
        if not isinstance(body, dict):
            continue
        properties = body.get("Properties") or {}
        refers = references(properties, names) - {str(name)}
        found[str(name)] = Resource(str(name), str(body.get("Type", "")), properties, frozenset(refers))
    return found


def references(value: Any, names: set[str]) -> set[str]:
    """The resources `value` names through Ref, Fn::GetAtt or Fn::Sub (parameters and AWS:: names are not)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item, names)
    elif isinstance(value, dict):
        for key, item in value.items():
            found |= _named(key, item, names) if key in ("Ref", "Fn::GetAtt", "Fn::Sub") else set()
            found |= references(item, names)
    return found & names


def _named(key: str, value: Any, names: set[str]) -> set[str]:
    if key == "Ref":
        return {value} if isinstance(value, str) else set()
    if key == "Fn::GetAtt":
        target = value.split(".", 1)[0] if isinstance(value, str) else value[0] if isinstance(value, list) else None
        return {target} if isinstance(target, str) else set()
    text, local = (value[0], value[1]) if isinstance(value, list) and len(value) == 2 else (value, {})
    if not isinstance(text, str):
        return set()
    variables = set(local) if isinstance(local, dict) else set()
    return {match.split(".", 1)[0] for match in _SUB_NAMES.findall(text)} - variables


def literal(value: Any, physical: dict[str, str]) -> str | None:
    """A property's value as text: a string, or a Ref to a resource whose physical id is known."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("Ref"), str):
        return physical.get(value["Ref"])
    return None
