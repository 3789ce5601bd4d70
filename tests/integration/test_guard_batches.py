"""Many environments' guard periods judged as one batch (the server's `guard-periods` job): claimed in one
statement, each once across workers; their CloudWatch series fetched in one GetMetricData call against moto, each
environment judged on its own series; their periods and health recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lastgood.aws.clients import AwsClients
from lastgood.guard.loop import window_end
from lastgood.ledger import guard_periods
from lastgood.ledger.db import open_ledger
from lastgood.ledger.tables import GuardPeriodRow
from lastgood.server.apps import Apps
from lastgood.service import releases
from lastgood.service.watching import ReleaseWatch, evaluate_periods, live_releases, stored_health
from lastgood.testing.endpoint import LocalEndpoint

pytestmark = pytest.mark.aws

ENVS = [f"e{i}" for i in range(5)]
BAD = "e3"


def fleet(endpoint: str, state: str) -> str:
    aws = f"{{aws: {{region: us-east-1, endpoint_url: '{endpoint}'}}}}"
    envs = "".join(f"  {env}: {aws}\n" for env in ENVS)
    return (
        f"app: fleet\nstate: {state}\nguard: {{watch: 1h}}\nenvironments:\n{envs}"
        "components:\n  - {name: config, kind: ssm-parameter, parameters: ['/fleet/{env}/']}\n"
        "triggers:\n  - name: errors\n"
        "    cloudwatch: {namespace: AWS/Lambda, metric: Errors, stat: Sum, dimensions: {FunctionName: 'fn-{env}'}}\n"
        "    when: '> 5'\n    for: 60s\n    period: 60s\n    action: alert\n"
    )


@pytest.fixture
def apps(aws_env: LocalEndpoint, aws: AwsClients, ledger_url: str, tmp_path: Path) -> Apps:
    (tmp_path / "fleet.yaml").write_text(fleet(aws_env.url, ledger_url))
    ssm, cloudwatch = aws.client("ssm"), aws.client("cloudwatch")
    now = datetime.now(UTC)
    end = window_end(now, 60)
    for env in ENVS:
        ssm.put_parameter(Name=f"/fleet/{env}/level", Value="1", Type="String", Overwrite=True)
        errors = 10.0 if env == BAD else 0.0
        # in the last complete minute and in the current one: the test may cross a minute's boundary
        data = [
            {"MetricName": "Errors", "Dimensions": [{"Name": "FunctionName", "Value": f"fn-{env}"}]}
            | {"Timestamp": stamp, "Value": errors, "Unit": "Count"}
            for stamp in (end - timedelta(seconds=30), end + timedelta(seconds=30))
        ]
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data)
    loaded = Apps.load([tmp_path], ledger_url)
    for env in ENVS:
        releases.record(loaded.env_context("fleet", env, "tester"), "r1")
    return loaded


def watches(apps: Apps, worker: str) -> list[ReleaseWatch]:
    found = sorted(live_releases(apps.ledger_of("fleet"), ["fleet"]), key=lambda r: r.env)
    return [ReleaseWatch(apps.env_context("fleet", r.env, "guard", via="guard"), r, worker=worker) for r in found]


def count_calls(watched: list[ReleaseWatch]) -> list[int]:
    calls: list[int] = []
    clients = {id(client): client for client in (w.ctx.aws.client("cloudwatch") for w in watched)}
    for client in clients.values():  # environments with the same AWS settings may share one client
        client.meta.events.register("before-call.monitoring.GetMetricData", lambda **_: calls.append(1))
    return calls


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_batch_is_judged_with_one_getmetricdata_call_each_environment_on_its_own_series(apps: Apps) -> None:
    batch = watches(apps, "w1")
    calls = count_calls(batch)
    due = window_end(datetime.now(UTC), 60)
    evaluations = evaluate_periods(batch, due)
    assert len(calls) == 1
    states = {w.ctx.env: {v.trigger: v.state for v in e.verdicts} for w, e in zip(batch, evaluations, strict=True)}
    assert states == {env: {"errors": "firing" if env == BAD else "ok"} for env in ENVS}
    assert not any(e.skipped or e.error for e in evaluations)
    ledger = apps.ledger_of("fleet")
    with ledger.session() as session:
        rows = session.scalars(select(GuardPeriodRow)).all()
    assert sorted((r.env, r.period_end, r.claimed_by, r.outcome) for r in rows) == [
        (env, due, "w1", "watching") for env in ENVS
    ]
    assert all(r.finished_at is not None for r in rows)
    health = {env: stored_health(ledger, "fleet", env) for env in ENVS}
    assert {env: (h.evaluations, h.triggers["errors"].state) for env, h in health.items() if h} == {
        env: (1, "firing" if env == BAD else "ok") for env in ENVS
    }


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_second_worker_judges_none_of_the_periods_claimed_and_the_next_period_once(apps: Apps) -> None:
    due = window_end(datetime.now(UTC), 60)
    first = evaluate_periods(watches(apps, "w1"), due)
    again = evaluate_periods(watches(apps, "w2"), due)
    assert not any(e.skipped for e in first)
    assert all(e.skipped for e in again)
    later = due + timedelta(seconds=60)
    split = watches(apps, "w2")
    # the next period: w2 claims two of them, then w1 the rest of the batch
    assert not any(e.skipped for e in evaluate_periods(split[:2], later))
    rest = evaluate_periods(watches(apps, "w1"), later)
    assert [e.skipped for e in rest] == [True, True, False, False, False]
    with apps.ledger_of("fleet").session() as session:
        rows = session.scalars(select(GuardPeriodRow)).all()
    judged: dict[tuple[str, datetime], list[str]] = {}
    for row in rows:
        judged.setdefault((row.env, row.period_end), []).append(row.claimed_by)
    assert judged == {(env, d): ["w1"] for env in ENVS for d in (due, later)} | {
        (env, later): ["w2"] for env in ENVS[:2]
    }


def test_claims_of_many_periods_in_one_statement_return_only_those_won(ledger_url: str) -> None:
    ledger = open_ledger(ledger_url)
    due = datetime(2026, 1, 1, tzinfo=UTC)
    claims = [guard_periods.Claim("a", env, 1, due) for env in ("x", "y", "z")]
    now = datetime.now(UTC)
    with ledger.session() as session:
        first = guard_periods.claim_many(session, claims[:2], "w1", now)
    with ledger.session() as session:
        second = guard_periods.claim_many(session, claims, "w2", now)
        finished: list[tuple[guard_periods.Claim, str]] = [(c, "watching") for c in second]
        guard_periods.finish_many(session, finished, now)
    assert first == set(claims[:2])
    assert second == {claims[2]}
    with ledger.session() as session:
        rows: list[Any] = session.execute(
            select(GuardPeriodRow.env, GuardPeriodRow.claimed_by, GuardPeriodRow.outcome).order_by(GuardPeriodRow.env)
        ).all()
    assert [tuple(r) for r in rows] == [("x", "w1", None), ("y", "w1", None), ("z", "w2", "watching")]
