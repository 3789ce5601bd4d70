"""Bad `validate:` blocks and escalation settings: `lastgood validate` exits 2 naming the path; good ones load."""

from __future__ import annotations

from pathlib import Path

import pytest

from lastgood.cli.app import main
from lastgood.config.loader import parse_runbook

BASE = """
app: shop
environments:
  prod: {}
components: [{name: flag, kind: ssm-parameter, parameters: [/shop/flag]}]
triggers:
  - {name: api-errors, when: "> 5", cloudwatch: {namespace: AWS/Lambda, metric: Errors}}
notifications:
  channels: [{name: team, webhook: {url: "http://127.0.0.1:9/hook", secret: s3cret-for-tests}}]
"""

BAD = [
    (
        "validate: {checks: [{name: h}]}",
        "validate.checks[0]: a check names exactly one of http, command, metric or logs",
    ),
    (
        "validate: {checks: [{name: h, http: {url: 'http://x'}, command: {argv: [x]}}]}",
        "validate.checks[0]: a check names exactly one of http, command, metric or logs (found: http, command)",
    ),
    ("validate: {checks: [{name: h, http: {url: 'ftp://x'}}]}", "validate.checks[0].http.url"),
    ("validate: {checks: [{name: h, http: {url: 'http://x', status: 700}}]}", "validate.checks[0].http.status"),
    ("validate: {checks: [{name: h, http: {url: 'http://x', body: '('}}]}", "validate.checks[0].http.body"),
    ("validate: {checks: [{name: h, http: {url: 'http://x', latency: soon}}]}", "validate.checks[0].http.latency"),
    ("validate: {checks: [{name: c, command: {}}]}", "validate.checks[0].command: a command check names exactly one"),
    ("validate: {checks: [{name: c, command: {shell: x, timout: 5}}]}", "validate.checks[0].command.timout"),
    ("validate: {checks: [{name: m, metric: {trigger: api-erors}}]}", "validate.checks[0].metric.trigger: no trigger"),
    ("validate: {checks: [{name: m, metric: {trigger: api-errors, quiet_for: 0}}]}", "metric.quiet_for"),
    ("validate: {checks: [{name: l, logs: {log_groups: [], pattern: ERROR}}]}", "validate.checks[0].logs.log_groups"),
    ("validate: {checks: [{name: l, logs: {log_groups: [g], pattern: E, max_matches: -1}}]}", "logs.max_matches"),
    (
        "validate: {checks: [{name: a, command: {shell: x}}, {name: a, command: {shell: y}}]}",
        "check names must be unique: a",
    ),
    ("validate: {check: []}", "validate.check"),
    ("policy: {escalation: [{after: 5m, contact: [lead], channels: [pager]}]}", "policy.escalation[0].channels[0]"),
    ("policy: {escalation: [{after: 5m, contact: [lead], severity: urgent}]}", "policy.escalation[0].severity"),
    ("policy: {updates: {high: often}}", "policy.updates.high"),
    ("policy: {updates: {urgent: 15m}}", "policy.updates"),
]


@pytest.mark.parametrize(("block", "where"), BAD)
def test_a_bad_block_is_bad_input_with_its_path(
    block: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(BASE + block + "\n")
    assert main(["validate", "-f", str(file)]) == 2
    assert where in " ".join(capsys.readouterr().err.split())


def test_the_base_file_is_valid(tmp_path: Path) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(BASE)
    assert main(["validate", "-f", str(file)]) == 0


def test_an_environment_block_needs_its_path_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(BASE.replace("prod: {}", "prod: {validate: {checks: [{name: m, metric: {trigger: nope}}]}}"))
    assert main(["validate", "-f", str(file)]) == 2
    assert "environments.prod.validate.checks[0].metric.trigger: no trigger 'nope'" in capsys.readouterr().err


def test_good_blocks_load_with_env_substituted_and_the_environment_replacing_the_top() -> None:
    runbook = parse_runbook(
        BASE.replace("prod: {}", "prod: {}\n  staging: {validate: {checks: [{name: s, command: {argv: ['true']}}]}}")
        + """
validate:
  checks:
    - {name: health, http: {url: "https://{env}.example.com/health", status: [200, 204], latency: 3s, within: 2m}}
    - {name: normal, metric: {trigger: api-errors, quiet_for: 10m}}
    - {name: logs, logs: {log_groups: ["/aws/lambda/api-{env}"], pattern: ERROR, max_matches: 5, within: 10m}}
policy:
  escalation:
    - {after: 15m, contact: [lead], severity: critical, channels: [team]}
    - {after: 30m, contact: [cto], channels: [webhook]}
  updates: {critical: 15m, high: 30m}
"""
    )
    prod = runbook.validation_for("prod")
    assert [c.type for c in prod.checks] == ["http", "metric", "logs"]
    assert prod.checks[0].http is not None and prod.checks[0].http.url == "https://prod.example.com/health"
    assert prod.checks[2].logs is not None and prod.checks[2].logs.log_groups == ["/aws/lambda/api-prod"]
    assert [c.name for c in runbook.validation_for("staging").checks] == ["s"]
    assert [s.after for s in runbook.policy.escalation_for("critical")] == [900.0, 1800.0]
    assert [s.after for s in runbook.policy.escalation_for("high")] == [1800.0]
    assert runbook.policy.updates == {"critical": 900.0, "high": 1800.0}


def test_the_iam_policy_lets_a_logs_check_read_its_log_groups() -> None:
    from lastgood.iam import policy_for
    from lastgood.kinds.base import IamScope

    runbook = parse_runbook(
        BASE + "validate: {checks: [{name: l, logs: {log_groups: ['/aws/lambda/api-{env}'], pattern: ERROR}}]}\n"
    )
    statements = policy_for(runbook, ["prod"], {"prod": IamScope("us-east-1", "123456789012")})["Statement"]
    logs = [s for s in statements if s["Action"] == ["logs:FilterLogEvents"]]
    assert logs and logs[0]["Resource"] == ["arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/api-prod:*"]
