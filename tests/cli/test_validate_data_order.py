"""`lastgood validate` warns (exit 0, stderr, --output json) when a data restore is not ordered after the code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lastgood.cli.app import main
from lastgood.config.loader import parse_runbook

HEAD = "app: shop\nenvironments: {prod: {}}\ncomponents:\n"
API = "  - {name: api, kind: lambda-alias, function: shop-api, depends_on: [%s]}\n"
WORKER = "  - {name: worker, kind: lambda-alias, function: shop-worker, depends_on: [%s]}\n"
DATA = {
    "dynamodb-table": "  - {name: data, kind: dynamodb-table, table: orders, pointer: {ssm_parameter: /t}%s}\n",
    "rds-instance": "  - {name: data, kind: rds-instance, instance: db, pointer: {ssm_parameter: /t}%s}\n",
    "aurora-cluster": "  - {name: data, kind: aurora-cluster, cluster: db, pointer: {ssm_parameter: /t}%s}\n",
    "s3-prefix": "  - {name: data, kind: s3-prefix, bucket: assets%s}\n",
}


def runbook(api: str, worker: str, data_kind: str = "dynamodb-table", data_deps: str = "") -> str:
    return HEAD + API % api + WORKER % worker + DATA[data_kind] % data_deps


@pytest.mark.parametrize("kind", sorted(DATA))
def test_a_data_restore_the_code_does_not_wait_for_is_a_warning(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(runbook("data", "", kind))  # the worker would be rolled back alongside the restore
    assert main(["validate", "-f", str(file)]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(f"warning: components[2] (data, {kind}): a data restore not ordered after worker,")
    assert "add 'data' to their depends_on" in captured.err
    assert captured.out.startswith("ok: shop: 3 components")
    assert main(["validate", "-f", str(file), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == [captured.err.removeprefix("warning: ").strip()]


@pytest.mark.parametrize(
    ("api", "worker", "data_deps", "warned"),
    [
        ("data", "data", "", []),  # both wait for the data: no warning
        ("data", "api", "", []),  # the worker waits for the api, which waits for the data
        ("", "", "", ["api, worker"]),
        ("", "", ", depends_on: [api, worker]", ["api, worker"]),  # the wrong way round: the data goes first
    ],
)
def test_the_order_is_followed_through_depends_on(api: str, worker: str, data_deps: str, warned: list[str]) -> None:
    found = parse_runbook(runbook(api, worker, data_deps=data_deps)).warnings
    assert [w.split("not ordered after ")[1].split(", which")[0] for w in found] == warned


def test_schema_kinds_are_not_warned_about_the_planner_runs_them_after_the_code() -> None:
    text = (
        HEAD
        + API % ""
        + "  - {name: schema, kind: sql-migrations, url: 'sqlite:///x.db', tool: sql-files, directory: m}\n"
    )
    assert parse_runbook(text).warnings == []
