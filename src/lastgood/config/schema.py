"""The JSON Schema of lastgood.yaml, for editors (yaml-language-server) and CI linting."""

from __future__ import annotations

from typing import Any

from lastgood.config.models import Runbook


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
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "lastgood runbook file"
    return schema
