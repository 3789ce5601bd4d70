"""The runbook file's YAML limits hold the same with libyaml's parser (the fast path) and PyYAML's pure Python one
(an installation without libyaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lastgood.config import loader as loader_module
from lastgood.config import reading

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
LOADERS = [reading._PythonLoader, *([reading._CLoader] if getattr(reading, "_CLoader", None) else [])]


def load(loader: Any, text: str) -> Any:
    return reading.parse_with(loader, text)


def deep_block(levels: int) -> str:
    return "".join(f"{'  ' * level}k{level}:\n" for level in range(levels)) + "  " * levels + "leaf\n"


def test_libyaml_is_the_fast_path_here() -> None:
    assert yaml.__with_libyaml__ and reading._Loader is reading._CLoader


@pytest.mark.parametrize("loader", LOADERS, ids=lambda loader: loader.__name__)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_both_parsers_read_the_examples_alike(loader: Any, example: Path) -> None:
    text = example.read_text()
    for token, safe in loader_module._PLACEHOLDERS.items():  # as the loader does before parsing
        text = text.replace(token, safe)
    assert load(loader, text) == yaml.safe_load(text)


@pytest.mark.parametrize("loader", LOADERS, ids=lambda loader: loader.__name__)
@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("[" * 100 + "]" * 100, "nested deeper than 64 levels", 1),
        (deep_block(70), "nested deeper than 64 levels", 64),
        ("a: &a [*a]\n", "an alias refers to the value that contains it", 1),
        ("x: " + "9" * 50 + "\n", "a number longer than 40 characters", 1),
        ("when: 2026-02-30\n", "not a valid date or time", 1),
    ],
)
def test_both_parsers_refuse_alike(loader: Any, text: str, message: str, line: int) -> None:
    with pytest.raises(yaml.YAMLError) as raised:
        load(loader, text)
    problem = getattr(raised.value, "problem", "") or ""
    assert message in problem
    assert raised.value.problem_mark.line + 1 == line  # type: ignore[attr-defined]


@pytest.mark.parametrize("loader", LOADERS, ids=lambda loader: loader.__name__)
def test_an_anchor_used_deeper_than_it_is_written_counts_where_it_is_written(loader: Any) -> None:
    """Depth is the nesting as written; a shallow anchor used at depth 60 is not a 70-level document."""
    anchored = "base: &b " + "[" * 10 + "]" * 10 + "\n"
    text = anchored + "deep: " + "[" * 59 + "*b" + "]" * 59 + "\n"
    assert load(loader, text)["deep"] is not None


def test_the_billion_laughs_are_refused_by_the_fast_parser() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        name, previous = chr(97 + level), chr(96 + level)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    with pytest.raises(yaml.YAMLError, match="expand to more than 100,000 values"):
        reading.load_yaml("\n".join(lines) + "\n")
