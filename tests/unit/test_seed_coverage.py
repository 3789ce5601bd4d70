"""Every trigger and every validation step a seed runbook lists is stated by its example file: as a trigger,
a manual trigger, a validation check or a checklist item whose text carries the seed's words, or in the file's
"Out of scope" list with the reason. A seed item the example forgets fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from seed_items import Section, SeedItem, seed_items

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "tests" / "seeds"  # copies of the five source runbooks (/work/shared/seeds)

COVERED: dict[str, tuple[str, tuple[Section, ...]]] = {
    "distro-nation.yaml": (
        "000_1bd2a7836154b8c5.txt",
        (
            Section("Rollback Triggers"),
            Section("Functional Validation Checklist"),
            Section("Post-Rollback Validation"),
            Section("Post-Rollback Validation Checklist"),
        ),
    ),
    "propie.yaml": ("001_40ed7e99128d7546.txt", (Section("Automated Rollback Triggers"),)),
    "security-design-assistant.yaml": (
        "002_e511c0d8b312d060.txt",
        (Section("1. Automatic Rollback", only_after="Trigger Conditions"), Section("Validation After Rollback")),
    ),
    "iracing-drivers-stats.yaml": (
        "003_0fc0c6a3626b0765.txt",
        (Section("Rollback Scenarios", subheadings=True), Section("Rollback Validation")),
    ),
    "cira-invoice.yaml": (
        "004_db3d1b36e3cfb8be.txt",
        (Section("Critical Issues"), Section("Serious Issues"), Section("Verification After Rollback")),
    ),
}

_OUT_OF_SCOPE = re.compile(r"^# Out of scope\b.*$", re.M)


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9%<>]+", " ", text.lower()).split())


def statements(data: Any) -> list[str]:
    """Every string the file states (names, descriptions, checks, checklist items), comments excluded."""
    if isinstance(data, dict):
        return [s for key, value in data.items() for s in [str(key), *statements(value)]]
    if isinstance(data, list):
        return [s for value in data for s in statements(value)]
    return [str(data)] if data is not None else []


def out_of_scope(text: str) -> dict[str, str]:
    """The file's `# Out of scope` comment list: `# - <seed item>: <why>` lines (continued on `#   ` lines)."""
    match = _OUT_OF_SCOPE.search(text)
    if not match:
        return {}
    entries: dict[str, str] = {}
    current = ""
    for line in text[match.end() :].splitlines()[1:]:
        if not line.startswith("#"):
            break
        if line.startswith("# - "):
            current = line[4:]
            item, _, why = current.partition(": ")
            entries[item.strip()] = why.strip()
        elif line.startswith("#   ") and entries:
            last = next(reversed(entries))
            entries[last] = f"{entries[last]} {line[4:].strip()}".strip()
    return entries


def uncovered(example: str) -> list[SeedItem]:
    seed, sections = COVERED[example]
    text = (ROOT / "examples" / example).read_text(encoding="utf-8")
    # lastgood's `{env}`-style placeholders are not YAML; their names stand in for them here.
    stated = [words(s) for s in statements(yaml.safe_load(re.sub(r"\{(\w+)\}", r"\1", text)))]
    excused = [words(item) for item in out_of_scope(text)]
    return [
        item
        for item in seed_items(SEEDS / seed, sections)
        if not any(words(item.text) in s for s in stated) and not any(words(item.text) in e for e in excused)
    ]


@pytest.mark.parametrize("example", sorted(COVERED))
def test_the_seed_lists_what_the_test_reads(example: str) -> None:
    """The extraction itself: each seed gives items under every heading named (a renamed heading fails here)."""
    seed, sections = COVERED[example]
    items = seed_items(SEEDS / seed, sections)
    assert {item.section for item in items} == {s.heading for s in sections}


@pytest.mark.parametrize("example", sorted(COVERED))
def test_every_trigger_and_validation_step_of_the_seed_is_stated(example: str) -> None:
    missing = uncovered(example)
    assert not missing, "\n".join(f"{item.section}: {item.text}" for item in missing)


@pytest.mark.parametrize("example", sorted(COVERED))
def test_what_is_out_of_scope_says_why(example: str) -> None:
    entries = out_of_scope((ROOT / "examples" / example).read_text(encoding="utf-8"))
    assert all(len(why.split()) >= 3 for why in entries.values()), entries


def test_an_example_that_forgets_a_seed_item_fails(tmp_path: Path) -> None:
    seed = tmp_path / "seed.txt"
    seed.write_text("## Rollback Triggers\n- Error rate > 5%\n- Queue depth > 100\n", encoding="utf-8")
    example = yaml.safe_load("triggers: [{name: errors, description: 'Error rate > 5%'}]")
    stated = [words(s) for s in statements(example)]
    items = seed_items(seed, (Section("Rollback Triggers"),))
    assert [i.text for i in items if not any(words(i.text) in s for s in stated)] == ["Queue depth > 100"]
