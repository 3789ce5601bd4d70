"""What each seed runbook lists under its trigger and validation headings: the items an example must state.

An item is a list entry (`-`, `- [ ]`, `□`, `1.`), a table row (its first cell), a sub-heading (where the spec
asks for them) or a command in a code block (named by the comment above it, else by the label before the
block). Only the text before a bold label's closing `**` is kept: "**High error rate** (>10%)" -> "High error
rate"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_BULLET = re.compile(r"^\s*(?:[-*]\s+(?:\[[ x]\]\s+)?|□\s+|\d+\.\s+)(.+?)\s*$")
_BOLD = re.compile(r"^\*\*(.+?)\*\*")
_LABEL = re.compile(r"^\s*(?:\d+\.\s+)?\*\*(.+?)\*\*:?\s*$")
_COMMAND = re.compile(r"^(?:curl|aws|python|pytest|\./\S+)\b")


@dataclass(frozen=True)
class SeedItem:
    section: str
    text: str


@dataclass(frozen=True)
class Section:
    heading: str
    only_after: str | None = None  # a bold label inside the section ("Trigger Conditions"): only its block
    subheadings: bool = False  # the section's sub-headings are its items (scenarios)


def _section_lines(lines: list[str], spec: Section) -> list[str]:
    body: list[str] = []
    level = 0
    inside = in_code = False
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match and inside and len(match.group(1)) <= level:
            break
        if match and not inside and match.group(2) == spec.heading:
            inside, level = True, len(match.group(1))
            continue
        if inside:
            body.append(line)
    return _block(body, spec.only_after) if spec.only_after else body


def _block(body: list[str], label: str) -> list[str]:
    start = next((i for i, line in enumerate(body) if line.startswith(f"**{label}**")), None)
    if start is None:
        return []
    rest = body[start + 1 :]
    end = next((i for i, line in enumerate(rest) if line.startswith("**")), len(rest))
    return rest[:end]


def _clean(text: str) -> str:
    bold = _BOLD.match(text)
    return (bold.group(1) if bold else text).rstrip(":").strip()


def _items(body: list[str], spec: Section) -> list[str]:
    if spec.subheadings:
        return [_clean(re.sub(r"^[^:]*:\s*", "", m.group(2))) for line in body if (m := _HEADING.match(line))]
    items: list[str] = []
    label = comment = ""
    in_code = table_header = False
    for line in body:
        stripped = line.strip()
        if stripped.startswith("```"):
            in_code, comment, table_header = not in_code, "", False
            continue
        if in_code and stripped.startswith("#"):
            comment = stripped.lstrip("# ").strip()
        elif in_code and _COMMAND.match(stripped):
            items.append(comment or label)
            comment = ""
        elif (bold := _LABEL.match(line)) and not in_code:
            label = bold.group(1)
        elif stripped.startswith("|"):
            cell = stripped.strip("|").split("|")[0].strip()
            if table_header and cell and not set(cell) <= set("-: "):
                items.append(_clean(cell))
            table_header = True
        elif (bullet := _BULLET.match(line)) and not bullet.group(1).endswith(":"):
            items.append(_clean(bullet.group(1)))
    return [text for text in items if text]


def seed_items(path: Path, sections: tuple[Section, ...]) -> list[SeedItem]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [SeedItem(spec.heading, text) for spec in sections for text in _items(_section_lines(lines, spec), spec)]
