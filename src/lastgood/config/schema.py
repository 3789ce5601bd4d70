"""The JSON Schema of lastgood.yaml, for editors (yaml-language-server) and CI linting."""

from __future__ import annotations

from typing import Any

from lastgood.config import plugins
from lastgood.config.models import Runbook, Trigger
from lastgood.config.notifications import Channel


def runbook_schema() -> dict[str, Any]:
    from lastgood.kinds.registry import KINDS

    schema = Runbook.model_json_schema(by_alias=True)
    defs = schema.setdefault("$defs", {})
    variants = []
    for name, kind in sorted(KINDS.items()):
        kind_schema = kind.spec_model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(kind_schema.pop("$defs", {}))
        title = kind.spec_model.__name__
        defs[title] = kind_schema
        variants.append({"$ref": f"#/$defs/{title}"})
        kind_schema["properties"]["kind"] = {"const": name, "title": "Kind"}
        kind_schema.setdefault("required", []).append("kind")
    schema["properties"]["components"] = {
        "type": "array",
        "description": "Components; `kind` picks the keys each one takes.",
        "items": {"oneOf": variants},
    }
    for model in (Trigger, Channel):
        _add_plugged(defs, model.__name__, model.plugged_fields())
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "lastgood runbook file"
    return schema


def _add_plugged(defs: dict[str, Any], title: str, fields: dict[str, Any]) -> None:
    """The keys registered sources and notifiers add to a trigger or a channel, each with its settings."""
    properties = defs[title].setdefault("properties", {})
    for key, annotation in fields.items():
        variants = []
        for model in plugins.plugged_models(annotation):
            model_schema = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
            defs.update(model_schema.pop("$defs", {}))
            defs[model.__name__] = model_schema
            variants.append({"$ref": f"#/$defs/{model.__name__}"})
        properties[key] = variants[0] if len(variants) == 1 else {"anyOf": variants}
