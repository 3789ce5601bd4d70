"""docs/reference/: generated from the models (`python -m lastgood.docs`); stale pages fail here, and every
page's example is a valid piece of a runbook file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lastgood.config import plugins
from lastgood.config.loader import parse_runbook
from lastgood.config.policy import Policy
from lastgood.docs import COMMON, examples, pages, stale, write
from lastgood.kinds.registry import KINDS

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
HEAD = "app: shop\nenvironments: {prod: {}}\n"
FILLER = "  - {name: filler, kind: secret, secret: x}\n"


def example_of(page: str) -> str:
    return re.search(r"```yaml\n(.*?)```", pages()[page], re.S).group(1)  # type: ignore[union-attr]


def test_the_committed_pages_are_the_generated_ones() -> None:
    assert stale(REFERENCE) == [], "docs/reference is stale: run `python -m lastgood.docs` and commit the pages"


def test_a_page_per_kind_source_notifier_and_policy_block() -> None:
    made = set(pages())
    assert {p for p in made if p.startswith("kinds/")} == {f"kinds/{k}.md" for k in KINDS}
    assert {p for p in made if p.startswith("sources/")} == {f"sources/{s}.md" for s in plugins.sources()}
    assert {p for p in made if p.startswith("notifiers/")} == {f"notifiers/{c}.md" for c in plugins.channels()}
    blocks = {name for name, f in Policy.model_fields.items() if plugins.plugged_models(f.annotation)}
    assert {p for p in made if p.startswith("policy/")} == {f"policy/{b}.md" for b in blocks}
    index = pages()["README.md"]
    assert all(f"]({page})" in index for page in made if page != "README.md")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_kind_page_lists_every_key_with_its_type_and_default(kind: str) -> None:
    page = pages()[f"kinds/{kind}.md"]
    for name, info in KINDS[kind].spec_model.model_fields.items():
        if name not in COMMON:  # the keys every component has: named once above the table
            assert re.search(rf"^\| `{info.alias or name}` \| .+ \| .+ \|", page, re.M), (kind, name)
    assert "| `pointer` | [Pointer](#pointer) | required |" in pages()["kinds/rds-instance.md"]
    assert '| `alias` | string | `"live"` |' in pages()["kinds/lambda-alias.md"]
    assert "| `for` | duration (`30s`, `5m`, `1h`) | `1m` |" in pages()["runbook.md"]


@pytest.mark.parametrize("page", sorted(p for p in pages() if p != "README.md"))
def test_every_example_is_valid_in_a_runbook_file(page: str) -> None:
    fragment = example_of(page)
    text = fragment if page == "runbook.md" else HEAD + fragment
    if "components:" not in text:
        text += "components:\n" + FILLER
    # Each variable's value is unlikely words: a secret field's value is registered (masked) for the process.
    variables = {name: f"docs-example-{name.lower()}" for name in re.findall(r"\$\{([A-Z_]+)\}", text)}
    runbook = parse_runbook(text, environ={**variables, "DATABASE_URL": "sqlite:///x.db"})
    data = yaml.safe_load(fragment.replace("{env}", "prod"))
    folder, name = page.removesuffix(".md").split("/") if "/" in page else ("", page)
    if folder == "kinds":
        assert name in {c.kind for c in runbook.components}
    elif folder == "sources":
        assert {t.source_type for t in runbook.triggers} == {name}
    elif folder == "notifiers":
        assert [c.type for c in runbook.notifications.channels] == [name]
    elif folder == "policy":
        assert list(data["policy"]) == [name]


@pytest.mark.slow  # a Python process, server or browser of its own
def test_stale_names_changed_missing_and_extra_pages(tmp_path: Path) -> None:
    assert len(write(tmp_path)) == len(pages())
    assert stale(tmp_path) == []
    (tmp_path / "kinds" / "secret.md").write_text("old words\n")
    (tmp_path / "kinds" / "lambda-alias.md").unlink()
    (tmp_path / "kinds" / "gone.md").write_text("a kind that no longer exists\n")
    assert stale(tmp_path) == ["kinds/gone.md", "kinds/lambda-alias.md", "kinds/secret.md"]
    check = subprocess.run(
        [sys.executable, "-m", "lastgood.docs", "--check", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 1 and "stale: " in check.stdout


def test_each_example_is_written_once() -> None:
    shown = [example_of(p) for p in pages() if p != "README.md"]
    sources = {
        **examples.KINDS,
        **examples.SOURCES,
        **examples.CHANNELS,
        **examples.POLICY,
        "runbook": examples.RUNBOOK,
        "validate": examples.VALIDATE,
    }
    assert len(shown) == len(sources)
