"""One line of console markup written without rich, where rich would write it as plain text anyway.

rich costs ~30 ms to import, a tenth of `lastgood validate`. Written to a pipe or a file (CI, a pre-commit hook,
`| grep`), rich prints markup as its bare text: tags dropped, `\\[` kept as `[`. `say` does the same without
importing rich, and hands the line to rich wherever rich would do more: a terminal, FORCE_COLOR and the like,
tabs and control characters (which rich expands or strips). The consoles print no emoji codes (`emoji=False`),
so `:name:` in a component's name is text on either path.
"""

from __future__ import annotations

import os
import re
from typing import Protocol

# rich.markup's own patterns (RE_TAGS and escape's): a tag starts with a letter, '#', '/' or '@'.
_TAGS = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")
_ESCAPE = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")
_RICH_DOES_MORE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_COLOUR_SWITCHES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS", "JUPYTER_LINES")


class Stream(Protocol):
    def write(self, text: str) -> int: ...

    def isatty(self) -> bool: ...


def escape(text: str) -> str:
    """Text made safe to put in markup: the same as rich.markup.escape."""
    escaped = _ESCAPE.sub(lambda match: f"{match[1]}{match[1]}\\{match[2]}", text)
    if escaped.endswith("\\") and not escaped.endswith("\\\\"):
        return escaped + "\\"
    return escaped


def plain_text(markup: str) -> str | None:
    """The text rich would print for `markup` with no styles; None where rich would change more than tags."""
    if _RICH_DOES_MORE.search(markup):
        return None
    parts: list[str] = []
    position = 0
    for match in _TAGS.finditer(markup):
        full, escapes, _ = match.groups()
        start, end = match.span()
        parts.append(markup[position:start])
        backslashes, escaped = divmod(len(escapes), 2)
        parts.append("\\" * backslashes)
        if escaped:
            parts.append(full[len(escapes) :])
        position = end
    parts.append(markup[position:])
    if "[" not in markup:
        return "".join(parts)
    return "".join(part.replace("\\[", "[") for part in parts)  # rich: a `\[` outside a tag is a `[`


def writes_plain(stream: Stream) -> bool:
    """Whether rich would write to `stream` without colour or wrapping."""
    if any(os.environ.get(name) for name in _COLOUR_SWITCHES):
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return False
