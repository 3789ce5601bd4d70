"""record -> bad deploy -> record -> rollback -> release list through the CLI, with the ledger on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.domain.states import RollbackStatus, StepStatus
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger
from lastgood.testing import shop

COMPONENTS = ["api", "api-config", "db-credentials", "worker"]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main([*args, "--output", "json"])
    out, err = capsys.readouterr()
    assert out, f"lastgood {' '.join(args)} printed nothing (exit {code}): {err}"
    return code, json.loads(out)


def bad_deploy(aws: AwsClients, weight: float) -> None:
    """As in test_rollback_flow: version 2 of both functions gets a share of traffic, and new config."""
    s = shop.Shop("prod", ("shop-api-prod", "shop-worker-prod"), "/shop/prod/api/", "shop/prod/db")
    for name in s.functions:
        version = shop.publish_new_version(aws, name, "v2")
        shop.shift_alias(aws, name, "1", version, weight)
    shop.deploy_config_change(aws, s, "v2")


@pytest.fixture
def pg_shop_dir(pg_database_url: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """shop_dir with its ledger on a fresh PostgreSQL database: LASTGOOD_TEST_STATE is set before shop_dir reads it."""
    monkeypatch.setenv("LASTGOOD_TEST_STATE", pg_database_url)
    directory: Path = request.getfixturevalue("shop_dir")
    assert pg_database_url in (directory / "lastgood.yaml").read_text()
    return directory


def test_record_rollback_list_on_postgres(  # type: ignore[no-untyped-def]
    pg_shop_dir: Path, pg_database_url: str, aws: AwsClients, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(pg_shop_dir)
    code, v1 = run_json(capsys, "release", "record", "prod", "--version", "v1")
    assert code == 0
    assert v1["components"]["api"]["state"] == {"version": "1", "weights": {}}

    bad_deploy(aws, weight=0.1)
    code, v2 = run_json(capsys, "release", "record", "prod", "--version", "v2")
    assert code == 0
    assert v2["components"]["api"]["state"] == {"version": "1", "weights": {"2": 0.1}}

    code, result = run_json(capsys, "rollback", "prod", "--yes")
    assert result["status"] == "succeeded", json.dumps(result)
    assert code == 0
    assert sorted(result["done"]) == COMPONENTS
    assert result["from_release"] == "v2" and result["to_release"] == "v1"
    assert aws.client("lambda").get_alias(FunctionName="shop-api-prod", Name="live")["FunctionVersion"] == "1"

    code, listing = run_json(capsys, "release", "list", "prod")
    assert code == 0
    assert [r["label"] for r in listing["releases"]] == ["v2", "v1"]
    by_label = {r["label"]: r for r in listing["releases"]}
    assert by_label["v1"]["live"] and not by_label["v1"]["bad"]
    assert by_label["v2"]["bad"] and not by_label["v2"]["live"]

    # What the CLI said is what PostgreSQL holds.
    ledger = open_ledger(pg_database_url)
    try:
        assert ledger.engine.dialect.name == "postgresql"
        with ledger.session() as session:
            releases = store.list_releases(session, "shop", "prod")
            assert [r.label for r in releases] == ["v2", "v1"]
            v2_row, v1_row = releases
            live = store.live_release(session, "shop", "prod")
            assert live is not None and live.id == v1_row.id
            assert v2_row.bad and v2_row.bad_reason and v2_row.marked_bad_at is not None
            assert not v1_row.bad and v1_row.marked_bad_at is None
            assert sorted(c.component for c in v1_row.components) == COMPONENTS
            v1_states = {c.component: c.state for c in v1_row.components}
            assert v1_states["api"] == {"version": "1", "weights": {}}
            assert {c.component: c.state for c in v2_row.components}["api"] == {"version": "1", "weights": {"2": 0.1}}
            assert {name: v1["components"][name]["state"] for name in COMPONENTS} == v1_states
            assert store.rollback_target(session, "shop", "prod") is None

            rollbacks = store.list_rollbacks(session, "shop", "prod")
            assert [r.id for r in rollbacks] == [result["id"]]
            rollback = rollbacks[0]
            assert rollback.status == RollbackStatus.SUCCEEDED and not rollback.partial
            assert (rollback.from_release_id, rollback.to_release_id) == (v2_row.id, v1_row.id)
            assert rollback.finished_at is not None and rollback.finished_at >= rollback.created_at
            assert sorted(s.component for s in rollback.steps) == COMPONENTS
            assert [s.position for s in rollback.steps] == list(range(len(COMPONENTS)))
            assert all(s.status == StepStatus.SUCCEEDED and s.attempts >= 1 for s in rollback.steps)
            assert {s.component: s.waits_for for s in rollback.steps}["api-config"] == ["worker"]

            timeline = store.events_of(session, result["id"])
            types = [e.type for e in timeline]
            assert types[0] == "rollback-requested" and types[-1] == "rollback-succeeded"
            assert types.count("step-succeeded") == 4
            assert [e.id for e in timeline] == sorted(e.id for e in timeline)
            every = store.events_since(session, "shop", "prod")
            assert [e.type for e in every][:2] == ["release-recorded", "release-recorded"]
            assert "release-marked-bad" in [e.type for e in every]
            stamps = [v1_row.recorded_at, v2_row.marked_bad_at, rollback.created_at, *(e.at for e in every)]
            assert all(
                t is not None and t.utcoffset() is not None and t.utcoffset().total_seconds() == 0 for t in stamps
            )
    finally:
        ledger.close()
