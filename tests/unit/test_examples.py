"""examples/*.yaml: one runbook file per source runbook (/work/shared/seeds), each valid, complete and in order."""

from __future__ import annotations

import re
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from lastgood.cli.app import main
from lastgood.config.loader import load_runbook
from lastgood.config.models import Runbook
from lastgood.domain.ordering import waits_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SEEDS = {
    "distro-nation.yaml": "000_1bd2a7836154b8c5.txt",
    "propie.yaml": "001_40ed7e99128d7546.txt",
    "security-design-assistant.yaml": "002_e511c0d8b312d060.txt",
    "iracing-drivers-stats.yaml": "003_0fc0c6a3626b0765.txt",
    "cira-invoice.yaml": "004_db3d1b36e3cfb8be.txt",
}

KINDS = {
    "distro-nation.yaml": {
        "amplify-branch": 1,
        "feature-flag": 1,
        "codedeploy": 1,
        "lambda-alias": 1,
        "cloudformation-stack": 1,
        "ssm-parameter": 1,
        "secret": 1,
        "command": 2,  # the CDK app (git ref + cdk deploy) and the Firebase Realtime Database restore
        "sql-migrations": 1,
        "aurora-cluster": 1,
        "s3-prefix": 1,
        "amplify-env": 1,
        "security-group": 1,
    },
    "propie.yaml": {"amplify-branch": 1, "cloudformation-stack": 1, "dynamodb-table": 1},
    "security-design-assistant.yaml": {
        "cloudformation-stack": 1,
        "codedeploy": 2,
        "lambda-alias": 2,
        "apigateway-stage": 1,
        "dynamodb-table": 1,
    },
    "iracing-drivers-stats.yaml": {
        "cloudformation-stack": 1,
        "command": 1,
        "apigateway-stage": 1,
        "dynamodb-table": 2,
    },
    "cira-invoice.yaml": {"cloudformation-stack": 4, "sql-migrations": 1, "rds-instance": 1},
}

# The seed's stated rollback order, as chains: each component is rolled back before the next one.
ORDER = {
    "distro-nation.yaml": [
        ["frontend", "core-api", "api-stack", "database-schema", "database"],
        ["core-api-deployment", "core-api", "firebase-database"],
    ],
    "propie.yaml": [["frontend", "appsync-stack", "data"]],
    "security-design-assistant.yaml": [
        ["stack", "api-deployment", "api", "jobs"],
        ["stack", "worker-deployment", "worker", "jobs"],
        ["api-stage", "jobs"],
    ],
    "iracing-drivers-stats.yaml": [
        ["stack", "cdk-redeploy", "custid-table"],
        ["stack", "cdk-redeploy", "auth-table"],
        ["stack", "api-stage", "custid-table"],
    ],
    "cira-invoice.yaml": [
        ["monitoring-stack", "workflow-stack", "api-stack", "schema", "database-stack", "database"],
    ],
}

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


@pytest.fixture(autouse=True)
def no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ${VAR} the examples use is unset: the files must validate on their defaults alone."""
    for path in example_files():
        for name in _VARIABLE.findall(path.read_text()):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("LASTGOOD_FILE", raising=False)


def load(name: str) -> Runbook:
    return load_runbook(EXAMPLES / name)


def spec(runbook: Runbook, env: str, name: str) -> Any:
    return next(c for c in runbook.components_for(env) if c.name == name)


def rolled_back_before(wait: dict[str, list[str]], first: str, then: str) -> bool:
    """Whether `then` waits, directly or through other steps, for `first`."""
    seen: set[str] = set()
    todo = list(wait[then])
    while todo:
        name = todo.pop()
        if name == first:
            return True
        if name not in seen:
            seen.add(name)
            todo += wait[name]
    return False


def test_there_is_one_example_per_seed() -> None:
    assert sorted(p.name for p in example_files()) == sorted(SEEDS)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_the_file_names_its_seed_at_the_top(name: str) -> None:
    head = (EXAMPLES / name).read_text().splitlines()[:5]
    assert head[0].startswith("#")
    assert any(SEEDS[name] in line for line in head)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_the_file_loads_in_every_environment_without_variables(name: str) -> None:
    runbook = load(name)
    assert runbook.environments
    for env in runbook.environments:
        components = runbook.components_for(env)
        assert all("${" not in str(c.model_dump()) for c in components)
        assert all("{env}" not in str(c.model_dump()) for c in components)
        for trigger in runbook.triggers_for(env):
            assert "{env}" not in str(trigger.model_dump())


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_the_file_has_the_seeds_components(name: str) -> None:
    runbook = load(name)
    assert Counter(c.kind for c in runbook.components) == Counter(KINDS[name])


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_the_rollback_order_is_the_seeds(name: str) -> None:
    runbook = load(name)
    graph = {c.name: c.depends_on for c in runbook.components}
    wait = waits_for(graph, set(graph))
    for chain in ORDER[name]:
        for first, then in pairwise(chain):
            assert rolled_back_before(wait, first, then), f"{first} should be rolled back before {then}"
            assert not rolled_back_before(wait, then, first)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_lastgood_validate_accepts_the_file(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-f", str(EXAMPLES / name)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


# Per seed: names, environments, pointers and triggers as the seed states them.


def test_distro_nation() -> None:
    runbook = load("distro-nation.yaml")
    production = runbook.environments["production"]
    assert production.protected and production.phrase("production") == "rollback-production"
    assert production.rto == 4 * 3600  # "Full System Recovery: 2-4 hours"
    assert spec(runbook, "production", "core-api").alias == "PROD"
    assert spec(runbook, "production", "frontend").branch == "main"
    assert spec(runbook, "production", "feature-flags").kill_switch
    assert spec(runbook, "production", "feature-flags").gradual is not None
    assert spec(runbook, "production", "database").restore_from == "point-in-time"
    assert spec(runbook, "production", "firebase-database").destructive
    triggers = {t.name: t for t in runbook.triggers_for("production")}
    assert (triggers["error-rate"].when.threshold, triggers["error-rate"].for_) == (5.0, 300.0)
    assert triggers["error-rate"].action == "rollback"
    assert triggers["response-time-p95"].query.stat == "p95"
    assert (triggers["deployment-error-rate"].for_, triggers["deployment-duration"].for_) == (120.0, 180.0)
    assert triggers["deployment-throttles"].when.threshold == 0


def test_propie() -> None:
    runbook = load("propie.yaml")
    assert runbook.environments["production"].protected
    frontend = spec(runbook, "production", "frontend")
    assert (frontend.branch, frontend.domain, frontend.prefix) == ("production", "prop-ie-app.com", "")
    assert spec(runbook, "production", "appsync-stack").stack == "prop-ie-production-appsync-stack"
    data = spec(runbook, "production", "data")
    assert data.table == "prop-ie-production-data" and data.restore_from == "point-in-time"
    assert data.pointer.lambda_env is not None
    triggers = {t.name: t for t in runbook.triggers}
    rate = triggers["5xx-error-rate"]
    assert (rate.when.threshold, rate.when.percent, rate.for_, rate.action) == (5.0, True, 300.0, "rollback")
    latency = triggers["latency-p99"]
    assert (latency.query.stat, latency.when.threshold, latency.action) == ("p99", 3.0, "alert")


def test_security_design_assistant() -> None:
    runbook = load("security-design-assistant.yaml")
    assert runbook.environments["prod"].protected and not runbook.environments["staging"].protected
    assert {env.aws.region for env in runbook.environments.values()} == {"us-east-1"}
    assert spec(runbook, "prod", "stack").stack == "security-assistant-prod"
    assert spec(runbook, "staging", "stack").stack == "security-assistant-staging"
    stage = spec(runbook, "prod", "api-stage")
    assert (stage.rest_api, stage.stage) == ("security-assistant-prod", "prod")
    assert spec(runbook, "prod", "jobs").table == "security-assistant-jobs-prod"
    triggers = {t.name: t for t in runbook.triggers_for("prod")}
    staging_triggers = {t.name: t for t in runbook.triggers_for("staging")}
    # Each environment judges only its own error-rate triggers (5% prod, 10% staging).
    assert not any(name.endswith("-staging") for name in triggers)
    assert not any(name.endswith("-prod") for name in staging_triggers)
    for function in ("api", "worker"):
        prod, staging = triggers[f"{function}-error-rate-prod"], staging_triggers[f"{function}-error-rate-staging"]
        assert prod.query.dimensions == {"FunctionName": f"security-assistant-{function}-prod"}
        assert staging.query.dimensions == {"FunctionName": f"security-assistant-{function}-staging"}
        assert (prod.when.threshold, staging.when.threshold) == (5.0, 10.0)
        assert prod.action == staging.action == "rollback"
    five_xx = triggers["api-5xx"]
    assert (five_xx.when.threshold, five_xx.when.percent, five_xx.period, five_xx.for_) == (5.0, False, 300.0, 300.0)
    assert triggers["dlq-messages"].when.threshold == 0


def test_iracing_drivers_stats() -> None:
    runbook = load("iracing-drivers-stats.yaml")
    assert runbook.environments["prod"].protected
    assert runbook.policy.targets.rollback_time["critical"] == 15 * 60  # "Critical Issues: < 15 minutes"
    assert spec(runbook, "prod", "stack").stack == "CdkInfrastructureStack-prod"
    assert spec(runbook, "staging", "stack").stack == "CdkInfrastructureStack-staging"
    custid = spec(runbook, "prod", "custid-table")
    assert custid.table == "ir_custid" and custid.restore_from == "point-in-time"
    assert (custid.pointer.lambda_env.function, custid.pointer.lambda_env.variable) == ("ir-custid", "TABLE_NAME")
    auth = spec(runbook, "prod", "auth-table")
    assert (auth.table, auth.backup, auth.restore_from) == ("ir_auth", True, "backup")
    assert "./scripts/deploy.sh -e prod --force" in spec(runbook, "prod", "cdk-redeploy").rollback
    assert runbook.triggers == []  # the seed states no thresholds


def test_cira_invoice() -> None:
    runbook = load("cira-invoice.yaml")
    assert sorted(runbook.environments) == ["dev", "prod", "staging"]
    prod = runbook.environments["prod"]
    assert prod.protected and prod.phrase("prod") == "rollback-production"
    assert not runbook.environments["staging"].protected
    stacks = [c.stack for c in runbook.components_for("prod") if c.kind == "cloudformation-stack"]
    assert sorted(stacks) == sorted(
        f"CiraInvoice-{part}-prod" for part in ("Monitoring", "Workflow", "Api", "Database")
    )
    database = spec(runbook, "prod", "database")
    assert (database.instance, database.restore_from, database.instance_class) == (
        "cira-invoice-prod",
        "snapshot",
        "db.r5.large",
    )
    assert database.pointer.secret_key is not None
    assert spec(runbook, "prod", "schema").checks.tables == ["jobs"]
    triggers = {t.name: t for t in runbook.triggers_for("prod")}
    assert triggers["api-error-rate"].when.threshold == 10.0
    assert triggers["job-management-error-rate"].query.dimensions == {"FunctionName": "CiraInvoice-JobManagement-prod"}
