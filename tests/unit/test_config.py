"""The runbook file: the documented example, substitution, one clear message per problem, validate and schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from lastgood.cli.app import main
from lastgood.config.loader import load_runbook, parse_runbook
from lastgood.config.models import Runbook
from lastgood.errors import ConfigError
from lastgood.kinds.lambda_alias import LambdaAliasSpec
from lastgood.kinds.secret import SecretSpec
from lastgood.kinds.ssm_parameter import SsmParameterSpec

EXAMPLE = """\
app: shop
state: sqlite:///.lastgood/state.db     # optional; LASTGOOD_STATE overrides; postgresql+psycopg://... must work too
environments:
  staging:
    aws: {region: us-east-1}            # optional profile, endpoint_url; standard AWS_* variables honoured
  prod:
    aws: {region: us-east-1}
    protected: true                     # rollback needs the typed phrase or --yes
    confirm_phrase: rollback-production
components:
  - name: api
    kind: lambda-alias
    function: shop-api-{env}
    alias: live
  - name: worker
    kind: lambda-alias
    function: shop-worker-{env}
    alias: live
    depends_on: [api-config]
  - name: api-config
    kind: ssm-parameter
    parameters: [/shop/{env}/api/]      # a trailing slash means every parameter under the path
  - name: db-credentials
    kind: secret
    secret: shop/{env}/db
triggers:
  - name: api-errors
    cloudwatch: {namespace: AWS/Lambda, metric: Errors, stat: Sum, dimensions: {FunctionName: shop-api-{env}}}
    per: {namespace: AWS/Lambda, metric: Invocations, stat: Sum, dimensions: {FunctionName: shop-api-{env}}}
    when: "> 5%"
    for: 5m
    period: 1m
    severity: critical
    action: rollback                  # or: alert
"""


def problems(text: str, environ: Mapping[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_runbook(text, source="lastgood.yaml", environ=environ or {})
    assert str(caught.value).startswith("lastgood.yaml: ")
    return caught.value.problems


def edit(old: str, new: str, text: str = EXAMPLE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# --- the example ------------------------------------------------------------------------------------------------


def test_the_example_file_validates() -> None:
    runbook = parse_runbook(EXAMPLE, environ={})
    assert runbook.app == "shop" and runbook.state == "sqlite:///.lastgood/state.db"
    assert sorted(runbook.environments) == ["prod", "staging"]
    prod = runbook.environment("prod")
    assert prod.protected and prod.phrase("prod") == "rollback-production"
    assert runbook.environment("staging").phrase("staging") == "rollback-staging"
    assert prod.aws.region == "us-east-1"
    assert [(c.name, c.kind) for c in runbook.components] == [
        ("api", "lambda-alias"),
        ("worker", "lambda-alias"),
        ("api-config", "ssm-parameter"),
        ("db-credentials", "secret"),
    ]
    api, worker, config, secret = runbook.components_for("prod")
    assert isinstance(api, LambdaAliasSpec) and api.function == "shop-api-prod" and api.alias == "live"
    assert isinstance(worker, LambdaAliasSpec) and worker.depends_on == ["api-config"]
    assert isinstance(config, SsmParameterSpec) and config.parameters == ["/shop/prod/api/"]
    assert isinstance(secret, SecretSpec) and secret.secret == "shop/prod/db"
    assert runbook.components_for("staging")[0].function == "shop-api-staging"  # type: ignore[attr-defined]

    (trigger,) = runbook.triggers_for("prod")
    assert trigger.query.dimensions == {"FunctionName": "shop-api-prod"}
    assert trigger.per is not None and trigger.per.metric == "Invocations"
    assert str(trigger.when) == "> 5%" and trigger.when.percent
    assert (trigger.for_, trigger.period, trigger.periods_required) == (300.0, 60.0, 5)
    assert (trigger.severity, trigger.action, trigger.missing_data) == ("critical", "rollback", "ignore")


def test_unknown_environment_names_the_known_ones() -> None:
    runbook = parse_runbook(EXAMPLE, environ={})
    with pytest.raises(Exception, match=r"unknown environment 'qa' \(the file defines: prod, staging\)"):
        runbook.components_for("qa")


def test_env_placeholder_inside_flow_collections() -> None:
    text = edit(
        "parameters: [/shop/{env}/api/]",
        "parameters: [/shop/{env}/api/, /{app}/{env}/flags]\n    depends_on: [db-credentials]",
    )
    runbook = parse_runbook(text, environ={})
    config = runbook.components_for("staging")[2]
    assert isinstance(config, SsmParameterSpec)
    assert config.parameters == ["/shop/staging/api/", "/shop/staging/flags"]
    # The file's own text keeps the placeholder; it is only filled in per environment.
    assert runbook.components[2].parameters == ["/shop/{env}/api/", "/{app}/{env}/flags"]


def test_flow_mapping_with_env_placeholder() -> None:
    text = edit("secret: shop/{env}/db", "secret: shop/{env}/db\n    description: {text: x}")
    # A mapping where a string belongs is a type problem, not a YAML crash.
    assert problems(text) == ["components[3].description: input should be a valid string"]


def test_load_runbook_reads_a_file_and_reports_a_missing_one(tmp_path: Path) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(EXAMPLE)
    runbook = load_runbook(file, environ={})
    assert isinstance(runbook, Runbook) and runbook.base_dir == tmp_path.resolve()
    with pytest.raises(ConfigError, match="no runbook file at"):
        load_runbook(tmp_path / "missing.yaml")


# --- ${VAR} --------------------------------------------------------------------------------------------------------


def test_variables_are_substituted() -> None:
    text = edit("function: shop-api-{env}", "function: ${API_FUNCTION}")
    runbook = parse_runbook(text, environ={"API_FUNCTION": "shop-api-blue"})
    assert runbook.components[0].function == "shop-api-blue"


def test_variable_defaults() -> None:
    text = edit("secret: shop/{env}/db", "secret: ${DB_SECRET:-shop/{env}/db}")
    text = edit("alias: live\n  - name: worker", "alias: ${ALIAS:-live}\n  - name: worker", text)
    runbook = parse_runbook(text, environ={})
    assert runbook.components_for("prod")[3].secret == "shop/prod/db"  # type: ignore[attr-defined]
    assert runbook.components[0].alias == "live"
    runbook = parse_runbook(text, environ={"DB_SECRET": "other/db", "ALIAS": "blue"})
    assert runbook.components_for("prod")[3].secret == "other/db"  # type: ignore[attr-defined]
    assert runbook.components[0].alias == "blue"


def test_variables_come_from_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_TEST_REGION", "eu-west-1")
    text = edit("  prod:\n    aws: {region: us-east-1}", "  prod:\n    aws: {region: '${LG_TEST_REGION}'}")
    assert parse_runbook(text).environment("prod").aws.region == "eu-west-1"


def test_missing_variable_is_reported_with_its_path() -> None:
    text = edit("function: shop-api-{env}", "function: ${API_FUNCTION}")
    text = edit("metric: Errors", "metric: '${ERRORS_METRIC}'", text)  # quoted: '{' inside a flow mapping
    assert problems(text) == [
        "components[0].function: environment variable 'API_FUNCTION' is not set",
        "triggers[0].cloudwatch.metric: environment variable 'ERRORS_METRIC' is not set",
    ]


# --- one message per problem ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "kind: secret",
            "kind: lamda-alias",
            "components[3].kind: unknown kind 'lamda-alias' (did you mean 'lambda-alias'?)",
            id="unknown-kind",
        ),
        pytest.param(
            "  - name: db-credentials\n    kind: secret\n",
            "  - name: db-credentials\n",
            "components[3].kind: required key is missing (one of: {kinds})",
            id="missing-kind",
        ),
        pytest.param(
            "    alias: live\n    depends_on",
            "    alais: live\n    depends_on",
            "components[1].alais: unknown key 'alais' (did you mean 'alias'?)",
            id="unknown-component-key",
        ),
        pytest.param(
            "triggers:",
            "trigers:",
            "trigers: unknown key 'trigers' (did you mean 'triggers'?)",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "severity: critical",
            "severty: critical",
            "triggers[0].severty: unknown key 'severty' (did you mean 'severity'?)",
            id="unknown-trigger-key",
        ),
        pytest.param(
            "    protected: true",
            "    protectd: true",
            "environments.prod.protectd: unknown key 'protectd' (did you mean 'protected'?)",
            id="unknown-environment-key",
        ),
        pytest.param(
            "  staging:\n    aws: {region: us-east-1}",
            "  staging:\n    aws: {regoin: us-east-1}",
            "environments.staging.aws.regoin: unknown key 'regoin' (did you mean 'region'?)",
            id="unknown-aws-key",
        ),
        pytest.param(
            "for: 5m",
            "for: 5 minutes",
            "triggers[0].for: expected a duration such as '30s', '5m' or '1h' (units s, m, h, d; at most 3650d),"
            " got '5 minutes'",
            id="bad-duration",
        ),
        pytest.param(
            "for: 5m",
            "for: -5",
            "triggers[0].for: a duration cannot be negative",
            id="negative-duration",
        ),
        pytest.param(
            'when: "> 5%"',
            'when: "about 5"',
            "triggers[0].when: expected a condition such as '> 5%' or '>= 100', got 'about 5'",
            id="bad-condition",
        ),
        pytest.param(
            "period: 1m",
            "period: 45s",
            "triggers[0].period: CloudWatch periods are 1s, 5s, 10s, 30s or a multiple of 60s",
            id="bad-period",
        ),
        pytest.param(
            "period: 1m",
            "period: 90s",
            "triggers[0].period: CloudWatch periods are 1s, 5s, 10s, 30s or a multiple of 60s",
            id="period-not-a-minute-multiple",
        ),
        pytest.param(
            "for: 5m",
            "for: 30s",
            "triggers[0]: 'for' (30s) is shorter than 'period' (60s)",
            id="for-shorter-than-period",
        ),
        pytest.param(
            "for: 5m",
            "for: 90s",
            "triggers[0]: 'for' (90s) must be a whole number of periods (60s)",
            id="for-not-whole-periods",
        ),
        pytest.param(
            "severity: critical",
            "severity: huge",
            "triggers[0].severity: input should be 'critical', 'high', 'medium' or 'low' (got 'huge')",
            id="bad-severity",
        ),
        pytest.param(
            "name: db-credentials",
            "name: api",
            "components[3].name: 'api' is used by another component",
            id="duplicate-component",
        ),
        pytest.param(
            "depends_on: [api-config]",
            "depends_on: [api-confg]",
            "components[1].depends_on[0]: no component named 'api-confg' (did you mean 'api-config'?)",
            id="depends-on-unknown",
        ),
        pytest.param(
            "parameters: [/shop/{env}/api/]",
            "parameters: [/shop/{env}/api/]\n    depends_on: [worker]",
            "components: depends_on forms a cycle: worker -> api-config -> worker",
            id="depends-on-cycle",
        ),
        pytest.param(
            "    confirm_phrase: rollback-production",
            "    confirm_phrase: rollback-production\n  staging2:\n    confirm_phrase: go",
            "environments.staging2.confirm_phrase: only protected environments ask for a phrase",
            id="phrase-without-protection",
        ),
        pytest.param(
            "parameters: [/shop/{env}/api/]",
            "parameters: []",
            "components[2].parameters: list should have at least 1 item after validation, not 0",
            id="empty-parameters",
        ),
        pytest.param(
            "  - name: api\n",
            "  - name: -api\n",
            "components[0].name: string should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]*$' (got '-api')",
            id="bad-name",
        ),
    ],
)
def test_one_clear_message_per_problem(old: str, new: str, expected: str) -> None:
    from lastgood.kinds.registry import KINDS

    assert problems(edit(old, new)) == [expected.replace("{kinds}", ", ".join(sorted(KINDS)))]


def test_duplicate_trigger_names() -> None:
    trigger = EXAMPLE[EXAMPLE.index("  - name: api-errors") :]
    assert problems(EXAMPLE + trigger) == ["triggers[1].name: 'api-errors' is used by another trigger"]


def test_every_problem_is_reported_at_once() -> None:
    text = edit("kind: secret", "kind: lamda-alias")
    text = edit("for: 5m", "for: soon", text)
    text = edit("depends_on: [api-config]", "depends_on: [nope]", text)
    found = problems(text)
    assert "components[3].kind: unknown kind 'lamda-alias' (did you mean 'lambda-alias'?)" in found
    assert (
        "triggers[0].for: expected a duration such as '30s', '5m' or '1h' (units s, m, h, d; at most 3650d), got 'soon'"
        in found
    )
    assert len(found) == 2  # depends_on is cross-checked only once the file's shape is right
    text = edit("kind: secret", "kind: lamda-alias")
    text = edit("depends_on: [api-config]", "depends_on: [nope]", text)
    assert problems(text) == [
        "components[3].kind: unknown kind 'lamda-alias' (did you mean 'lambda-alias'?)",
        "components[1].depends_on[0]: no component named 'nope'",
    ]


def test_cross_checks_name_the_right_component_when_another_is_invalid() -> None:
    # components[0] fails its own checks; worker is still components[1], and depending on an invalid
    # component is not a second problem.
    text = edit("kind: lambda-alias\n    function: shop-api", "kind: lamda-alias\n    function: shop-api")
    text = edit("depends_on: [api-config]", "depends_on: [api, api-confg]", text)
    text = edit("name: db-credentials", "name: worker", text)
    assert problems(text) == [
        "components[0].kind: unknown kind 'lamda-alias' (did you mean 'lambda-alias'?)",
        "components[3].name: 'worker' is used by another component",
        "components[1].depends_on[1]: no component named 'api-confg' (did you mean 'api-config'?)",
    ]


def test_missing_required_top_level_keys() -> None:
    assert problems("app: shop\n") == [
        "environments: required key is missing",
        "components: required key is missing",
    ]


def test_yaml_syntax_error_has_line_and_column() -> None:
    text = edit("    alias: live\n  - name: worker", "    alias: [live\n  - name: worker")
    (problem,) = problems(text)
    assert problem.startswith("line ") and ", column " in problem and "not valid YAML" in problem
    line = int(problem.split()[1].rstrip(","))
    assert 14 <= line <= 16
    (problem,) = problems("app: shop\n  environments: x\n")
    assert problem.startswith("line 2, column 15: not valid YAML:")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "", "42\n"])
def test_a_file_that_is_not_a_mapping(text: str) -> None:
    assert problems(text) == ["the file must be a mapping with app, environments and components"]


# --- lastgood validate ---------------------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(EXAMPLE)
    code, out, _err = run(capsys, "validate", "--file", str(good))
    assert code == 0
    assert "ok" in out and "4 components, 1 triggers" in out

    code, out, _err = run(capsys, "validate", "--file", str(good), "--output", "json")
    assert code == 0
    summary = json.loads(out)
    assert summary["valid"] and summary["environments"] == ["prod", "staging"]
    assert [c["name"] for c in summary["components"]] == ["api", "worker", "api-config", "db-credentials"]

    bad = tmp_path / "bad.yaml"
    bad.write_text(edit("kind: secret", "kind: lamda-alias", edit("period: 1m", "period: 45s")))
    code, out, err = run(capsys, "validate", "--file", str(bad))
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"error: {bad} has 2 problem(s):"
    assert "  components[3].kind: unknown kind 'lamda-alias' (did you mean 'lambda-alias'?)" in lines
    assert "  triggers[0].period: CloudWatch periods are 1s, 5s, 10s, 30s or a multiple of 60s" in lines

    code, out, _err = run(capsys, "validate", "--file", str(bad), "--output", "json")
    assert code == 2
    payload = json.loads(out)
    assert payload["error"] == "ConfigError" and len(payload["problems"]) == 2

    code, _out, err = run(capsys, "validate", "--file", str(tmp_path / "missing.yaml"))
    assert code == 2 and "no runbook file at" in err


def test_validate_uses_lastgood_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "elsewhere.yaml"
    file.write_text(EXAMPLE)
    monkeypatch.setenv("LASTGOOD_FILE", str(file))
    assert run(capsys, "validate")[0] == 0


# --- lastgood schema -----------------------------------------------------------------------------------------------


def schema_from_cli(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    code, out, _err = run(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert isinstance(schema, dict)
    return schema


def example_data() -> dict:  # type: ignore[type-arg]
    # {env} in a flow collection is not plain YAML (the loader protects it); an editor sees real names.
    data = yaml.safe_load(EXAMPLE.replace("{env}", "prod"))
    assert isinstance(data, dict)
    return data


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_schema_validates_the_example_and_rejects_mistakes(capsys: pytest.CaptureFixture[str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = schema_from_cli(capsys)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    assert list(validator.iter_errors(example_data())) == []

    data = example_data()
    data["components"][3]["kind"] = "lamda-alias"
    assert not validator.is_valid(data)

    data = example_data()
    data["components"][1]["alais"] = "live"
    assert not validator.is_valid(data)

    data = example_data()
    data["triggers"][0]["when"] = "about 5"
    assert not validator.is_valid(data)

    data = example_data()
    data["triggers"][0]["for"] = "5 minutes"
    assert not validator.is_valid(data)


def test_schema_lists_each_kind(capsys: pytest.CaptureFixture[str]) -> None:
    schema = schema_from_cli(capsys)
    variants = schema["properties"]["components"]["items"]["oneOf"]
    from lastgood.kinds.registry import KINDS

    titles = sorted(v["$ref"].rsplit("/", 1)[1] for v in variants)
    assert titles == sorted(kind.spec_model.__name__ for kind in KINDS.values())
    kinds = sorted(schema["$defs"][t]["properties"]["kind"]["const"] for t in titles)
    assert kinds == sorted(KINDS)
    assert {"lambda-alias", "secret", "ssm-parameter"} <= set(kinds)
    for title in titles:
        assert "kind" in schema["$defs"][title]["required"]
        assert schema["$defs"][title]["additionalProperties"] is False


def test_trigger_environments_limit_where_a_trigger_is_judged() -> None:
    text = EXAMPLE.replace("    action: rollback", "    action: rollback\n    environments: [prod]")
    runbook = parse_runbook(text)
    assert [t.name for t in runbook.triggers_for("prod")] == ["api-errors"]
    assert runbook.triggers_for("staging") == []
    bad = EXAMPLE.replace("    action: rollback", "    action: rollback\n    environments: [prd]")
    assert problems(bad) == ["triggers[0].environments[0]: no environment 'prd' (did you mean 'prod'?)"]


def test_the_files_own_secrets_are_masked_once_loaded() -> None:
    from lastgood import redact

    text = (
        "app: shop\nstate: postgresql+psycopg://lg:db-pass-1234@db.internal/lastgood\n"
        "environments:\n  prod: {}\ncomponents:\n"
        "  - {name: cfg, kind: ssm-parameter, parameters: [/a]}\n"
        "policy: {approval_key: approval-key-5678}\n"
    )
    redact.clear()
    try:
        parse_runbook(text)
        shown = redact.redact("url postgresql://lg:db-pass-1234@db key approval-key-5678")
        assert "db-pass-1234" not in shown and "approval-key-5678" not in shown
    finally:
        redact.clear()


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("null", "policy.targets.success_rate: input should be a valid number"),  # float(None) raised TypeError
        ("[1]", "policy.targets.success_rate: input should be a valid number"),
        ("'most%'", "policy.targets.success_rate: expected a fraction such as 0.95 or '95%', got 'most%'"),
        ("150%", "policy.targets.success_rate: input should be less than or equal to 1 (got '150%')"),
    ],
)
def test_a_fraction_that_is_not_one_is_a_problem_in_the_file(given: str, says: str) -> None:
    found = problems(EXAMPLE + f"policy: {{targets: {{success_rate: {given}}}}}\n")
    assert found == [says]


def test_a_fraction_is_a_number_or_a_percentage() -> None:
    for given, expected in (("0.9", 0.9), ("'90%'", 0.9), ("' 99.5% '", 0.995), ("1", 1.0)):
        runbook = parse_runbook(EXAMPLE + f"policy: {{targets: {{success_rate: {given}}}}}\n", environ={})
        assert runbook.policy.targets.success_rate == pytest.approx(expected)
