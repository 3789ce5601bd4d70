"""`say` writes what rich would write to a pipe, without importing rich: the same text for any markup, and the
same escaping (cli/plain.py copies rich's two patterns; these tests hold them to rich's own results)."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape as rich_escape

from lastgood.cli import common, plain

PIECES = st.sampled_from(["[bold]", "[/]", "[/bold]", "[green]", "\\", "[", "]", "a", " ", ":", "x:y", "[link=u]"])
MARKUP = st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=12).map("".join)


def rich_plain(markup: str) -> str:
    out = io.StringIO()
    Console(file=out, width=10_000, highlight=False, emoji=False, color_system=None).print(markup)
    return out.getvalue()


@settings(max_examples=400, deadline=None)
@given(MARKUP)
def test_plain_text_is_what_rich_prints_to_a_pipe(markup: str) -> None:
    try:
        expected = rich_plain(markup)
    except MarkupError:
        return  # an unmatched closing tag: rich refuses it; lastgood's own lines are well formed
    text = plain.plain_text(markup)
    if text is not None:  # None: tabs or control characters, left to rich
        assert text + "\n" == expected


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="[]\\/ab#@:= ", max_size=16))
def test_escape_is_rich_escape(text: str) -> None:
    assert plain.escape(text) == rich_escape(text)
    assert plain.plain_text(plain.escape(text)) + "\n" == rich_plain(rich_escape(text))


def test_say_writes_plain_text_to_a_pipe_and_hands_a_terminal_to_rich(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    console = common.LazyConsole("stdout")
    console.say("[green]ok[/]: a \\[b] c")
    assert capsys.readouterr().out == "ok: a [b] c\n"
    assert object.__getattribute__(console, "_console") is None  # rich was not needed
    monkeypatch.setenv("FORCE_COLOR", "1")
    console.say("[green]ok[/]")
    assert "\x1b[" in capsys.readouterr().out  # coloured: rich did it
