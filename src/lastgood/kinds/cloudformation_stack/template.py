"""Templates: reading them (JSON or YAML with CloudFormation's tags), hashing them, and what an update to
another template does to the stack's resources."""

from __future__ import annotations

import json
from typing import Any

import yaml

from lastgood.kinds.base import State, value_hash

MAX_TEMPLATE_BODY = 51_200  # bytes UpdateStack accepts inline; larger templates need a TemplateURL in S3
KEEPING_POLICIES = frozenset({"Retain", "RetainExceptOnCreate"})


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, !GetAtt ...) read as plain values."""


def _construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return None


_CfnLoader.add_multi_constructor("!", _construct_tagged)


def parse_template(body: str) -> dict[str, Any] | None:
    """The template as a dict (JSON or YAML), or None when it cannot be read."""
    try:
        parsed = json.loads(body)
    except ValueError:
        try:
            parsed = yaml.load(body, Loader=_CfnLoader)  # a SafeLoader subclass: no arbitrary objects
        except yaml.YAMLError:
            return None
    return parsed if isinstance(parsed, dict) else None


def template_hash(body: str) -> str:
    """JSON is hashed in canonical form: boto3 decodes a JSON TemplateBody, so lastgood re-serialises it."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body
    return value_hash(canonical)


def no_echo(declaration: Any) -> bool:
    return isinstance(declaration, dict) and str(declaration.get("NoEcho", "")).lower() == "true"


def resources(body: str) -> dict[str, dict[str, Any]] | None:
    template = parse_template(body)
    if template is None:
        return None
    found = template.get("Resources") or {}
    return {str(k): v for k, v in found.items() if isinstance(v, dict)} if isinstance(found, dict) else None


def short(state: State) -> str:
    return str(state["template_hash"]).removeprefix("sha256:")[:8]


def template_problem(state: State) -> str | None:
    """Why the recorded template cannot be sent back with UpdateStack (None: it can)."""
    body = state.get("template_body") or ""
    if not body or template_hash(body) != state.get("template_hash"):
        return "the recorded template is not stored in the ledger"
    size = len(body.encode())
    if size > MAX_TEMPLATE_BODY:
        return f"the recorded template is {size} bytes; UpdateStack takes at most {MAX_TEMPLATE_BODY} inline"
    return None


def names(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def resource_summary(current: State, target: State) -> str:
    now, then = resources(current["template_body"]), resources(target["template_body"])
    if now is None or then is None:
        return ""
    removes, adds = sorted(set(now) - set(then)), sorted(set(then) - set(now))
    parts = ([f"removes {names(removes)}"] if removes else []) + ([f"adds {names(adds)}"] if adds else [])
    return f" ({'; '.join(parts)})" if parts else ""


def resource_notes(current: State, target: State) -> tuple[list[str], bool]:
    """Notes on what the update does to resources, and whether it deletes any (destructive)."""
    now, then = resources(current["template_body"]), resources(target["template_body"])
    if now is None or then is None:
        return ["could not read the resources of both templates: treat this update as one that may delete some"], True
    gone = sorted(set(now) - set(then))
    kept = [i for i in gone if now[i].get("DeletionPolicy") in KEEPING_POLICIES]
    deleted = [i for i in gone if i not in kept]
    shared = sorted(set(now) & set(then))
    replaced = [i for i in shared if now[i].get("Type") != then[i].get("Type")]
    changed = [i for i in shared if i not in replaced and now[i] != then[i]]
    created = sorted(set(then) - set(now))
    notes = []
    if deleted:
        notes.append("deletes " + names([f"{i} ({now[i].get('Type')})" for i in deleted]))
    if kept:
        notes.append(f"removes {names(kept)} from the stack without deleting (DeletionPolicy Retain)")
    if replaced:
        notes.append(
            "replaces (deletes, then creates) "
            + names([f"{i} ({now[i].get('Type')} -> {then[i].get('Type')})" for i in replaced])
        )
    if changed:
        notes.append(
            f"updates {names(changed)}; CloudFormation replaces a resource when a changed property requires it "
            "(a change set shows which)"
        )
    if created:
        notes.append(f"creates {names(created)}")
    return notes, bool(deleted or replaced)
