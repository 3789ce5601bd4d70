"""GET /metrics in Prometheus' text format, scraped by a real Prometheus: the rollback counter after a rollback,
read back with PromQL through Prometheus's HTTP API."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lastgood.server.state import ServerState
from lastgood.service import releases
from lastgood.testing import shop
from prometheus_fixture import get_json, running_prometheus
from server_fixture import LiveServer, Users, add_users


def two_releases(state: ServerState) -> None:
    ctx = state.apps.env_context("shop", "prod", "setup")
    releases.record(ctx, "v1")
    for function in ("shop-api-prod", "shop-worker-prod"):
        shop.shift_alias(ctx.aws, function, shop.publish_new_version(ctx.aws, function, "v2"), None, 0)
    releases.record(ctx, "v2")


def roll_back(server: LiveServer, users: Users) -> str:
    url = f"{server.url}/api/v1/apps/shop/environments/prod/rollbacks"
    body = {"reason": "bad v2", "confirm": "rollback-production"}
    started = httpx.post(url, json=body, headers=users.headers("operator"), timeout=60)
    assert started.status_code in (200, 202), started.text
    rollback_id: str = started.json()["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        detail = httpx.get(f"{server.url}/api/v1/rollbacks/{rollback_id}", headers=users.headers("viewer")).json()
        if detail["status"] != "running":
            assert detail["status"] == "succeeded", detail
            return rollback_id
        time.sleep(0.1)
    raise AssertionError("the rollback did not finish in 30 s")


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_metrics_need_no_sign_in_and_count_what_happened(live_server: LiveServer, server_state: ServerState) -> None:
    users = add_users(server_state)
    before = httpx.get(f"{live_server.url}/metrics")
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
    assert "lastgood_rollbacks_total" not in samples(before.text)
    two_releases(server_state)
    roll_back(live_server, users)
    found = samples(httpx.get(f"{live_server.url}/metrics").text)
    assert found["lastgood_rollbacks_total"] == [({"app": "shop", "env": "prod", "status": "succeeded"}, 1.0)]
    counts = {s[0]["le"]: s[1] for s in found["lastgood_rollback_duration_seconds_bucket"]}
    assert counts["+Inf"] == 1.0
    steps = found["lastgood_step_duration_seconds_count"]
    assert steps == [({"app": "shop", "kind": "lambda-alias", "status": "succeeded"}, 2.0)]  # api and worker
    waits = [(kv, n) for kv, n in found["lastgood_lock_wait_seconds_count"] if kv["operation"] == "rollback"]
    assert waits == [({"app": "shop", "env": "prod", "operation": "rollback", "outcome": "claimed"}, 1.0)]
    assert "lastgood_guard_watched_environments" in found


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_real_prometheus_scrapes_the_rollback_counter(
    live_server: LiveServer, server_state: ServerState, tmp_path: Path
) -> None:
    users = add_users(server_state)
    two_releases(server_state)
    rollback_id = roll_back(live_server, users)
    target = live_server.url.removeprefix("http://")
    query = 'lastgood_rollbacks_total{status="succeeded"}'
    with running_prometheus(tmp_path, target, query, 1.0) as prometheus:
        answer = get_json(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
        assert answer["status"] == "success"
        (result,) = answer["data"]["result"]
        assert result["metric"]["app"] == "shop" and result["metric"]["env"] == "prod"
        assert float(result["value"][1]) == 1.0
        steps = get_json(
            f"{prometheus}/api/v1/query?"
            + urllib.parse.urlencode({"query": "sum(lastgood_step_duration_seconds_count)"})
        )["data"]["result"]
        assert float(steps[0]["value"][1]) == 2.0
    assert rollback_id.startswith("rb-")
