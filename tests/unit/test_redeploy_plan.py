"""plan_redeploys: which redeploy steps a plan gets, what they wait for, how they are described."""

from __future__ import annotations

from typing import Any

from lastgood.config.models import Component
from lastgood.kinds.base import Kind
from lastgood.kinds.cloudformation_stack import CloudFormationStack, CloudFormationStackSpec
from lastgood.kinds.command import Command, CommandSpec
from lastgood.kinds.redeploy import can_redeploy, component_of, is_redeploy, plan_redeploys, step_name
from lastgood.kinds.secret import Secret, SecretSpec

KINDS: dict[str, Kind[Any]] = {"cloudformation-stack": CloudFormationStack(), "command": Command(), "secret": Secret()}
API = CloudFormationStackSpec(name="api", stack="api", redeploy_after=["db", "cache"])
WORKER = CommandSpec(name="worker", record="true", rollback="true", redeploy_after=["db"], redeploy_command="./go")
DB = SecretSpec(name="db", secret="db")


def kind_of(spec: Component) -> Kind[Any]:
    return KINDS[spec.kind]


def test_only_changed_dependencies_call_for_a_redeploy() -> None:
    assert plan_redeploys([API, WORKER, DB], kind_of, set()) == []
    assert [r.step for r in plan_redeploys([API, WORKER, DB], kind_of, {"cache"})] == ["api:redeploy"]
    planned = plan_redeploys([API, WORKER, DB], kind_of, {"db"})
    assert [(r.step, r.kind, r.waits_for) for r in planned] == [
        ("api:redeploy", "cloudformation-stack", ["db"]),
        ("worker:redeploy", "command", ["db"]),
    ]
    api, worker = planned
    assert api.change.after == "UpdateStack with the same template and parameters" and api.change.slow
    assert api.change.estimate_seconds == 300 and api.target == {"after": ["db"]}
    assert worker.change.after == "runs redeploy_command" and not worker.change.slow


def test_a_redeploy_waits_for_the_components_own_rollback_too() -> None:
    (api,) = plan_redeploys([API], kind_of, {"db", "cache", "api"})
    assert api.waits_for == ["api", "cache", "db"]
    assert api.change.before == "after cache, db changed"


def test_step_names_cannot_clash_with_components() -> None:
    assert step_name("api") == "api:redeploy" and component_of("api:redeploy") == "api"
    assert is_redeploy("api:redeploy") and not is_redeploy("api") and component_of("api") == "api"
    assert can_redeploy(API, KINDS["cloudformation-stack"]) and can_redeploy(WORKER, KINDS["command"])
    assert not can_redeploy(DB, KINDS["secret"])
