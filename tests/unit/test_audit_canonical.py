"""The audit chain's canonical JSON: the C encoder made once is json.dumps with the chain's arguments."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from lastgood.ledger import audit

VALUES: list[Any] = [
    ["0" * 64, "2026-05-01T09:00:00.000000+00:00", "shop", "prod", None, "step-succeeded", "done", {}, ""],
    {"b": 1, "a": [1.5, 2e-7, -0.0, 10**20], "c": {"z": None, "y": True, "é": "naïve ✓ \u2028"}},
    {"when": datetime(2026, 5, 1, tzinfo=UTC), "amount": Decimal("1.10"), "nested": [{"k": "v"}, []]},
    ['quotes " and \\ and \n and \t', float("inf"), float("nan")],
]


@pytest.mark.parametrize("value", VALUES)
def test_canonical_json_is_json_dumps_sorted_and_compact(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    assert audit.canonical_json(value) == expected


@pytest.mark.parametrize("text", ['{"n": 1, "a": [1, 2]}', "{}", '{"x": "y"} ', '{"x": 1}{"y": 2}'])
def test_data_read_as_text_hashes_as_the_parsed_value(text: str) -> None:
    entry = {"at": datetime(2026, 5, 1, tzinfo=UTC), "app": "a", "env": "e", "type": "t", "message": "m"}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        with pytest.raises(json.JSONDecodeError):  # trailing content is no entry's data: not taken as the first
            audit.entry_hash("0" * 64, {**entry, "data": text})
        return
    assert audit.entry_hash("0" * 64, {**entry, "data": text}) == audit.entry_hash("0" * 64, {**entry, "data": parsed})


def test_canonical_times_are_left_alone_and_sqlite_times_rewritten() -> None:
    moment = datetime(2026, 5, 1, 9, 0, 0, 120, tzinfo=UTC)
    assert audit._at(moment) == "2026-05-01T09:00:00.000120+00:00"
    assert audit._at("2026-05-01T09:00:00.000120+00:00") == audit._at(moment)
    assert audit._at("2026-05-01 09:00:00.000120") == audit._at(moment)
    assert audit._at("2026-05-01T11:00:00.000120+02:00") == audit._at(moment)
