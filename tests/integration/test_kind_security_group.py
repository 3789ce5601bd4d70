"""security-group on moto's server: record -> change -> plan (revocations named) -> apply -> verify, a retry
after a partly applied attempt, directions, bad config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from lastgood.aws.clients import AwsClients
from lastgood.kinds.base import KindContext
from lastgood.kinds.security_group import SecurityGroup, SecurityGroupSpec

pytestmark = pytest.mark.aws

HTTPS = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
SSH_OFFICE = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}
SSH_WORLD = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


@pytest.fixture
def group(aws: AwsClients) -> str:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group_id = str(ec2.create_security_group(GroupName="api", Description="api", VpcId=vpc)["GroupId"])
    peer = ec2.create_security_group(GroupName="lb", Description="lb", VpcId=vpc)["GroupId"]
    app = {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8081, "UserIdGroupPairs": [{"GroupId": peer}]}
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[HTTPS, SSH_OFFICE, app])
    return group_id


@pytest.fixture
def ctx(aws: AwsClients) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws, token="rb-1-api-sg")


def _ingress(aws: AwsClients, group_id: str) -> list[tuple[Any, ...]]:
    group = aws.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return sorted((p.get("FromPort"), r["CidrIp"]) for p in group["IpPermissions"] for r in p.get("IpRanges") or [])


def _calls(aws: AwsClients) -> list[str]:
    sent: list[str] = []
    aws.client("ec2").meta.events.register("before-call.ec2", lambda model, **_: sent.append(model.name))
    return sent


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_restore_authorizes_removed_and_revokes_added_rules(aws: AwsClients, group: str, ctx: KindContext) -> None:
    kind = SecurityGroup()
    spec = SecurityGroupSpec(name="api-sg", group_id=group)
    recorded = kind.record(spec, ctx)
    assert kind.describe(recorded) == "3 ingress, 1 egress rules"
    peers = [r["peer"] for r in recorded["rules"]]
    assert "cidr:0.0.0.0/0" in peers and any(p.startswith("group:sg-") for p in peers)

    # The bad release: the office SSH rule was removed and SSH opened to the world.
    ec2 = aws.client("ec2")
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[SSH_OFFICE])
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[SSH_WORLD])
    current = kind.read(spec, ctx)
    assert kind.differences(spec, current, recorded) == [
        "removed since the release: ingress tcp 22 from cidr:10.1.0.0/16",
        "added since the release: ingress tcp 22 from cidr:0.0.0.0/0",
    ]
    change = kind.plan(spec, current, recorded)
    assert change is not None and change.action == "restore-rules" and not change.destructive
    assert change.notes == (
        "authorizes ingress tcp 22 from cidr:10.1.0.0/16",
        "revokes ingress tcp 22 from cidr:0.0.0.0/0: traffic it allows now is cut",
    )

    calls = _calls(aws)
    result = kind.apply(spec, ctx, recorded)
    assert calls == ["DescribeSecurityGroups", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress"]
    assert result.changed and result.detail == "1 rules authorized, 1 revoked"
    assert _ingress(aws, group) == [(22, "10.1.0.0/16"), (443, "0.0.0.0/0")]
    assert kind.verify(spec, ctx, recorded) == []
    assert not kind.apply(spec, ctx, recorded).changed


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_retry_after_a_partly_applied_attempt(aws: AwsClients, group: str, ctx: KindContext) -> None:
    """The state read before the first attempt (known_state) is stale: one rule is already back, the other
    already gone. AWS refuses the batched calls; each rule on its own, that refusal accepted."""
    kind = SecurityGroup()
    spec = SecurityGroupSpec(name="api-sg", group_id=group, directions=["ingress"])
    recorded = kind.record(spec, ctx)
    ec2 = aws.client("ec2")
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[SSH_OFFICE, HTTPS])
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[SSH_WORLD])
    stale = kind.read(spec, ctx)
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[SSH_OFFICE])  # the lost attempt's work
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[SSH_WORLD])

    retry = KindContext(app="shop", env="prod", aws=aws, token="rb-1-api-sg", known_state=stale)
    calls = _calls(aws)
    kind.apply(spec, retry, recorded)
    # Each batch refused (the office rule is there already, the world rule gone), then each rule alone.
    assert calls == ["AuthorizeSecurityGroupIngress"] * 3 + ["RevokeSecurityGroupIngress"] * 2
    assert _ingress(aws, group) == [(22, "10.1.0.0/16"), (443, "0.0.0.0/0")]
    assert kind.verify(spec, ctx, recorded) == []


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_egress_rules_are_restored_too(aws: AwsClients, group: str, ctx: KindContext) -> None:
    kind = SecurityGroup()
    spec = SecurityGroupSpec(name="api-sg", group_id=group, directions=["egress"])
    recorded = kind.record(spec, ctx)
    assert [r["direction"] for r in recorded["rules"]] == ["egress"]
    everything = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    aws.client("ec2").revoke_security_group_egress(GroupId=group, IpPermissions=[everything])
    change = kind.plan(spec, kind.read(spec, ctx), recorded)
    assert change is not None and change.notes == ("authorizes egress all traffic to cidr:0.0.0.0/0",)
    kind.apply(spec, ctx, recorded)
    assert kind.verify(spec, ctx, recorded) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"directions": []}, "at least 1"), ({"directions": ["sideways"]}, "ingress"), ({}, "group_id")],
)
def test_bad_config_is_refused(extra: dict[str, Any], message: str) -> None:
    data = {"name": "sg", "kind": "security-group", "group_id": "sg-0123"} | extra
    if not extra:
        del data["group_id"]
    with pytest.raises(ValidationError, match=message):
        SecurityGroupSpec.model_validate(data)


def test_bad_component_in_the_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lastgood.cli.app import main

    path = tmp_path / "lastgood.yaml"
    path.write_text(
        "app: shop\nstate: sqlite:///state.db\nenvironments: {prod: {}}\n"
        "components:\n  - {name: c, kind: security-group, group_id: sg-1, directions: [sideways]}\n"
    )
    code = main(["validate", "-f", str(path)])
    captured = capsys.readouterr()
    assert code == 2 and "components[0].directions[0]" in captured.out + captured.err
    assert not (tmp_path / "state.db").exists()


def test_icmp_type_0_and_all_icmp_types_are_different_rules() -> None:
    from lastgood.kinds.security_group import rules_of

    echo_reply = {"IpProtocol": "icmp", "FromPort": 0, "ToPort": -1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    every_type = {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    kind, spec = SecurityGroup(), SecurityGroupSpec(name="sg", group_id="sg-1")
    one = {"rules": rules_of([echo_reply], "ingress")}
    other = {"rules": rules_of([every_type], "ingress")}
    assert kind.differences(spec, one, other) == [
        "removed since the release: ingress icmp all types from cidr:10.0.0.0/8",
        "added since the release: ingress icmp type 0 from cidr:10.0.0.0/8",
    ]
