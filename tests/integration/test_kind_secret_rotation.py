"""secret: automatic rotation paused while AWSCURRENT moves back, resumed after (also when the move fails).

On moto's server: CancelRotateSecret and RotateSecret are moto's own; RotateSecret invokes the rotation function,
which moto runs without Docker once its Lambda config says so (set for these tests, restored after).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.errors import StepFailed
from lastgood.kinds.base import IamScope, KindContext
from lastgood.kinds.secret import PAUSE_TAG, Secret, SecretSpec
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint

pytestmark = pytest.mark.aws


def _moto_config(endpoint: LocalEndpoint, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{endpoint.url}/moto-api/config", data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.loads(answer.read()))


@pytest.fixture
def rotating(aws: AwsClients, aws_env: LocalEndpoint) -> Iterator[str]:
    """A secret `db` with two versions and rotation on (every 30 days); yields the rotation function's ARN."""
    before = _moto_config(aws_env)
    _moto_config(aws_env, {"lambda": {"use_docker": False}})
    shop.create_function(aws, "rotator", shop._role(aws))
    arn = str(aws.client("lambda").get_function(FunctionName="rotator")["Configuration"]["FunctionArn"])
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="db", SecretString="password-1")
    sm.rotate_secret(
        SecretId="db", RotationLambdaARN=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False
    )
    yield arn
    _moto_config(aws_env, {"lambda": before.get("lambda", {"use_docker": True})})


def _current(aws: AwsClients) -> str:
    stages = aws.client("secretsmanager").describe_secret(SecretId="db")["VersionIdsToStages"]
    return next(v for v, labels in stages.items() if "AWSCURRENT" in labels)


def _described(aws: AwsClients) -> dict[str, Any]:
    return dict(aws.client("secretsmanager").describe_secret(SecretId="db"))


def _tags(aws: AwsClients) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in _described(aws).get("Tags") or []}


def _ctx(aws: AwsClients, events: list[str]) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws, token="rb-0000000007-db", progress=events.append)


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_rotation_is_paused_for_the_move_and_resumed_after(aws: AwsClients, rotating: str) -> None:
    kind, spec = Secret(), SecretSpec(name="db", secret="db")
    events: list[str] = []
    recorded = kind.read(spec, _ctx(aws, events))
    assert recorded["rotation"] == {"lambda_arn": rotating, "rules": {"AutomaticallyAfterDays": 30}}
    aws.client("secretsmanager").put_secret_value(SecretId="db", SecretString="password-2")
    assert _current(aws) != recorded["version_id"]

    change = kind.plan(spec, kind.read(spec, _ctx(aws, events)), recorded)
    assert change is not None and change.action == "move-stage"
    assert any("every 30 days" in n and "paused (CancelRotateSecret)" in n and "resumed" in n for n in change.notes)

    result = kind.apply(spec, _ctx(aws, events), recorded)
    assert result.changed and "rotation resumed (every 30 days)" in result.detail
    assert events[0] == "automatic rotation of db paused" and "resumed" in events[-1]
    described = _described(aws)
    assert described["RotationEnabled"] is True and described["RotationLambdaARN"] == rotating
    assert described["RotationRules"]["AutomaticallyAfterDays"] == 30
    # Resumed without rotating now: the recorded version is still the current one.
    assert _current(aws) == recorded["version_id"] and PAUSE_TAG not in _tags(aws)
    assert kind.verify(spec, _ctx(aws, events), recorded) == []
    assert not kind.apply(spec, _ctx(aws, events), recorded).changed


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_rotation_is_resumed_when_the_move_fails(aws: AwsClients, rotating: str) -> None:
    kind, spec = Secret(), SecretSpec(name="db", secret="db")
    events: list[str] = []
    gone = {"version_id": "00000000-0000-0000-0000-000000000000", "rotation": None}
    with pytest.raises(StepFailed, match="no longer exists"):
        kind.apply(spec, _ctx(aws, events), gone)
    assert events[0] == "automatic rotation of db paused"
    assert _described(aws)["RotationEnabled"] is True and PAUSE_TAG not in _tags(aws)


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_pause_left_by_a_crash_is_resumed_by_the_retry(aws: AwsClients, rotating: str) -> None:
    """An earlier attempt paused, moved AWSCURRENT back and died: the retry finds the tag and resumes."""
    kind, spec = Secret(), SecretSpec(name="db", secret="db")
    events: list[str] = []
    recorded = kind.read(spec, _ctx(aws, events))
    sm = aws.client("secretsmanager")
    sm.tag_resource(SecretId="db", Tags=[{"Key": PAUSE_TAG, "Value": "earlier"}])
    sm.cancel_rotate_secret(SecretId="db")
    assert _described(aws)["RotationEnabled"] is False
    assert kind.plan(spec, kind.read(spec, _ctx(aws, events)), recorded) is None  # AWSCURRENT is already back

    result = kind.apply(spec, _ctx(aws, events), recorded)
    assert result.changed and "AWSCURRENT already on" in result.detail and "rotation resumed" in result.detail
    assert _described(aws)["RotationEnabled"] is True and PAUSE_TAG not in _tags(aws)
    assert not kind.apply(spec, _ctx(aws, events), recorded).changed


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_pause_rotation_false_leaves_rotation_alone(aws: AwsClients, rotating: str) -> None:
    kind, spec = Secret(), SecretSpec(name="db", secret="db", pause_rotation=False)
    events: list[str] = []
    recorded = kind.read(spec, _ctx(aws, events))
    aws.client("secretsmanager").put_secret_value(SecretId="db", SecretString="password-2")
    change = kind.plan(spec, kind.read(spec, _ctx(aws, events)), recorded)
    assert change is not None and not any("rotation" in n for n in change.notes)
    result = kind.apply(spec, _ctx(aws, events), recorded)
    assert result.detail == f"AWSCURRENT moved to {recorded['version_id'][:8]}" and events == []
    assert _current(aws) == recorded["version_id"]
    actions = {a for s in kind.iam_statements(spec, IamScope(region="us-east-1")) for a in s.actions}
    assert "secretsmanager:CancelRotateSecret" not in actions
    actions = {
        a for s in kind.iam_statements(SecretSpec(name="db", secret="db"), IamScope("us-east-1")) for a in s.actions
    }
    assert {"secretsmanager:CancelRotateSecret", "secretsmanager:RotateSecret", "lambda:InvokeFunction"} <= actions


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_secret_without_rotation_is_moved_as_before(aws: AwsClients) -> None:
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="db", SecretString="password-1")
    kind, spec = Secret(), SecretSpec(name="db", secret="db")
    events: list[str] = []
    recorded = kind.read(spec, _ctx(aws, events))
    assert recorded["rotation"] is None
    sm.put_secret_value(SecretId="db", SecretString="password-2")
    assert kind.apply(spec, _ctx(aws, events), recorded).detail.startswith("AWSCURRENT moved to")
    assert events == [] and "RotationEnabled" not in _described(aws)


def test_a_bad_pause_rotation_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(
        "app: shop\nenvironments: {prod: {}}\ncomponents:\n"
        "  - {name: db, kind: secret, secret: db, pause_rotation: sometimes}\n"
    )
    assert main(["validate", "-f", str(file)]) == 2
    assert "pause_rotation" in capsys.readouterr().err
