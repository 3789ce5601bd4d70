"""The served OpenAPI document, fuzzed: every operation, valid and invalid inputs, as admin on a live server
over HTTP (background jobs on, AWS on moto). Nothing may answer 5xx. Path parameters are drawn both freely
and from what exists (the shop app, its environments, a real rollback and releases), so that the handlers
behind the 404s are reached too. Bounded examples, so it runs in under a minute."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import httpx
import pytest
from api_helpers import poll, two_releases
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case
from schemathesis.openapi import from_url
from schemathesis.schemas import APIOperation

from lastgood.server.state import ServerState
from server_fixture import LiveServer, add_users

EXAMPLES = 6  # per operation, for each way of choosing its path parameters and each generation mode


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


def existing(rollback_id: str) -> dict[str, list[str]]:
    return {
        "app": ["shop"],
        "env": ["prod", "staging"],
        "label": ["v1", "v2"],
        "rollback_id": [rollback_id],
        "deployment_id": ["dp-0000000000"],
        "drill_id": ["drill-00000000"],
        "item": ["test-api-endpoints", "no-such-item"],  # a checklist item: the built-in list's, and none
    }


def strategies(operation: APIOperation, known: dict[str, list[str]]) -> st.SearchStrategy[Case]:
    names = re.findall(r"{(\w+)}", operation.path)
    choices = [operation.as_strategy(mode) for mode in GenerationMode]
    if names:
        for values in ({n: known[n][0] for n in names}, {n: known[n][-1] for n in names}):
            choices += [operation.as_strategy(mode, path_parameters=values) for mode in GenerationMode]
    return st.one_of(choices)


def a_rollback(url: str, headers: dict[str, str]) -> str:
    body = {"reason": "fuzzing", "confirm": "rollback-production"}
    started = httpx.post(f"{url}/api/v1/apps/shop/environments/prod/rollbacks", json=body, headers=headers, timeout=60)
    rollback_id: str = started.json()["id"]
    poll(
        lambda: httpx.get(f"{url}/api/v1/rollbacks/{rollback_id}", headers=headers).json()["status"],
        lambda status: status not in ("planned", "running"),
    )
    return rollback_id


def test_no_operation_answers_5xx(server_state: ServerState, live_server: LiveServer) -> None:
    two_releases(server_state)
    headers = add_users(server_state).headers("admin")
    known = existing(a_rollback(live_server.url, headers))
    schema = from_url(f"{live_server.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 29, [op.label for op in operations]
    failures: list[str] = []
    statuses: Counter[int] = Counter()

    for operation in operations:

        @given(case=strategies(operation, known))
        @settings(
            max_examples=EXAMPLES * 6,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Case) -> None:
            response = case.call(base_url=live_server.url, headers=headers, timeout=90)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} {case.body!r}: {response.text}")

        call()
    assert not failures, "\n".join(failures[:20])
    reached: dict[str, Any] = {k: v for k, v in statuses.items() if k < 300}
    assert sum(reached.values()) >= 30, statuses  # the handlers themselves ran, not only the validation
