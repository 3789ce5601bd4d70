"""The starter runbook as YAML text, with comments where a person must choose."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from lastgood.service.starter.drafts import Draft

_PLAIN = re.compile(r"^[A-Za-z/_][A-Za-z0-9/_.:@+-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


@dataclass(frozen=True)
class Header:
    app: str
    env: str
    region: str
    source: str  # "the stack shop-prod", "resources tagged app=shop"
    command: str  # the command that wrote the file
    stack: str | None = None


def render(header: Header, drafts: list[Draft], skipped: list[str]) -> str:
    lines = [
        f"# A starter runbook for {header.app}, written by `{header.command}` from {header.source}.",
        "# Read the comments marked CHOOSE, then: lastgood validate, and lastgood release record "
        f"{header.env} --version v1 to store the live state as the first release.",
        "# Order: a component is rolled back before the components it depends on; the code goes first, the data last.",
        *_stack_note(header),
        f"app: {scalar(header.app)}",
        "environments:",
        f"  {scalar(header.env)}:",
        f"    aws: {{region: {scalar(header.region)}}}",
        "    # CHOOSE: protected: true  # a rollback then asks for a typed phrase (or --yes): production",
        "components:",
    ]
    for draft in drafts:
        lines += _component(draft)
    if not drafts:
        lines[-1] = "components: []  # nothing found that a kind rolls back"
    lines += [
        "# CHOOSE: the triggers that mean 'this release is bad' (lastgood guard rolls back when one holds), e.g.:",
        "# triggers:",
        "#   - name: api-errors",
        "#     cloudwatch: {namespace: AWS/Lambda, metric: Errors, stat: Sum, dimensions: {FunctionName: FUNCTION}}",
        "#     per: {namespace: AWS/Lambda, metric: Invocations, stat: Sum, dimensions: {FunctionName: FUNCTION}}",
        '#     when: "> 5%"',
        "#     for: 5m",
        "#     action: rollback",
    ]
    if skipped:
        lines.append("# Not components (no kind rolls them back):")
        lines += [f"#   {item}" for item in skipped]
    return "\n".join(lines) + "\n"


def _stack_note(header: Header) -> list[str]:
    if header.stack is None:
        return []
    return [
        "# CHOOSE: or roll the whole stack back with its recorded template, as one component:",
        f"#   - {{name: stack, kind: cloudformation-stack, stack: {scalar(header.stack)}}}",
    ]


def _component(draft: Draft) -> list[str]:
    body = [f"- name: {scalar(draft.name)}", f"  kind: {draft.kind}"]
    body += [f"  {key}: {scalar(value)}" for key, value in draft.keys.items()]
    notes = [f"# {note}" for note in draft.notes]
    if draft.depends_on:
        why = "; ".join(f"{name}: {reason}" for name, reason in draft.depends_on.items())
        notes.append(f"# depends_on: {why}")
        body.append(f"  depends_on: {scalar(list(draft.depends_on))}")
    if draft.disabled:
        body = [f"# {line}" for line in body]
    return [f"  {line}" for line in (*notes, *body)]


def scalar(value: Any) -> str:
    """A value in YAML's flow style: plain where that reads back as the same string, quoted otherwise."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {scalar(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    text = str(value)
    plain = _PLAIN.match(text) and text.lower() not in _YAML_WORDS and "${" not in text
    return text if plain else json.dumps(text)
