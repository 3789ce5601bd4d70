"""security-group: a VPC security group's ingress and egress rules, recorded and restored.

A rule is (direction, protocol, port range, peer): one CIDR, IPv6 CIDR, prefix list or security group.
A restore authorizes the rules removed since the release first, then revokes the rules added since: a
revocation can cut traffic that flows now, so the plan names each one. Descriptions are recorded and shown,
not part of a rule's identity (AWS matches rules without them), and not restored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import AwsError
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, State

Direction = Literal["ingress", "egress"]
DIRECTIONS: tuple[Direction, ...] = ("ingress", "egress")
_PEERS = (
    ("IpRanges", "CidrIp", "cidr"),
    ("Ipv6Ranges", "CidrIpv6", "cidr6"),
    ("PrefixListIds", "PrefixListId", "prefix-list"),
    ("UserIdGroupPairs", "GroupId", "group"),
)
_ICMP = {"icmp", "icmpv6", "1", "58"}
_ALREADY = {"authorize": "InvalidPermission.Duplicate", "revoke": "InvalidPermission.NotFound"}


class SecurityGroupSpec(Component):
    kind: Literal["security-group"] = "security-group"
    group_id: str = Field(description="The security group's id (sg-...); {env} is substituted.")
    directions: list[Direction] = Field(
        default_factory=lambda: list(DIRECTIONS), min_length=1, description="Which rules: ingress, egress or both."
    )


def rules_of(permissions: Iterable[dict[str, Any]], direction: Direction) -> list[dict[str, Any]]:
    """AWS's IpPermissions, one rule per peer, sorted."""
    out = []
    for permission in permissions:
        for field, key, prefix in _PEERS:
            for peer in permission.get(field) or []:
                out.append(
                    {
                        "direction": direction,
                        "protocol": str(permission["IpProtocol"]),
                        "from": permission.get("FromPort"),
                        "to": permission.get("ToPort"),
                        "peer": f"{prefix}:{peer[key]}",
                        "description": peer.get("Description") or "",
                    }
                )
    return sorted(out, key=_identity)


def _identity(rule: dict[str, Any]) -> tuple[str, str, int, int, str]:
    # No port (all traffic) sorts first; 0 and -1 are real values (ICMP echo reply, all ICMP types).
    def port(value: int | None) -> int:
        return -2 if value is None else int(value)

    return (rule["direction"], rule["protocol"], port(rule["from"]), port(rule["to"]), rule["peer"])


def _permission(rule: dict[str, Any]) -> dict[str, Any]:
    """One rule as the IpPermissions entry that authorizes or revokes exactly it."""
    prefix, value = rule["peer"].split(":", 1)
    field, key = next((f, k) for f, k, p in _PEERS if p == prefix)
    peer = {key: value} | ({"Description": rule["description"]} if rule["description"] else {})
    permission: dict[str, Any] = {"IpProtocol": rule["protocol"], field: [peer]}
    if rule["from"] is not None:
        permission |= {"FromPort": rule["from"], "ToPort": rule["to"]}
    return permission


def show(rule: dict[str, Any]) -> str:
    protocol = "all traffic" if rule["protocol"] == "-1" else rule["protocol"]
    ports = ""
    if rule["protocol"] in _ICMP and rule["from"] is not None:  # ICMP's "ports" are a type and a code
        ports = " all types" if rule["from"] == -1 else f" type {rule['from']}"
        ports += f" code {rule['to']}" if rule["to"] not in (None, -1) else ""
    elif rule["from"] is not None:
        ports = f" {rule['from']}" + (f"-{rule['to']}" if rule["to"] != rule["from"] else "")
    way = "from" if rule["direction"] == "ingress" else "to"
    return f"{rule['direction']} {protocol}{ports} {way} {rule['peer']}"


def _delta(current: State, target: State) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(to authorize: recorded rules missing now, to revoke: live rules added since)."""
    now = {_identity(r): r for r in current["rules"]}
    then = {_identity(r): r for r in target["rules"]}
    return [r for k, r in then.items() if k not in now], [r for k, r in now.items() if k not in then]


class SecurityGroup(Kind[SecurityGroupSpec]):
    name = "security-group"
    spec_model = SecurityGroupSpec
    estimate_seconds = 2.0

    def read(self, spec: SecurityGroupSpec, ctx: KindContext) -> State:
        with map_aws_errors(f"ec2:DescribeSecurityGroups {spec.group_id}"):
            group = ctx.aws.client("ec2").describe_security_groups(GroupIds=[spec.group_id])["SecurityGroups"][0]
        rules = []
        if "ingress" in spec.directions:
            rules += rules_of(group.get("IpPermissions") or [], "ingress")
        if "egress" in spec.directions:
            rules += rules_of(group.get("IpPermissionsEgress") or [], "egress")
        return {"rules": sorted(rules, key=_identity)}

    def differences(self, spec: SecurityGroupSpec, current: State, target: State) -> list[str]:
        authorize, revoke = _delta(current, target)
        return [f"removed since the release: {show(r)}" for r in authorize] + [
            f"added since the release: {show(r)}" for r in revoke
        ]

    def plan(self, spec: SecurityGroupSpec, current: State, target: State) -> Change | None:
        authorize, revoke = _delta(current, target)
        if not authorize and not revoke:
            return None
        notes = [f"authorizes {show(r)}" for r in authorize]
        notes += [f"revokes {show(r)}: traffic it allows now is cut" for r in revoke]
        return Change(
            action=self.action_name(current, target),
            before=self.describe(current),
            after=self.describe(target),
            estimate_seconds=self.estimate_seconds,
            notes=tuple(notes),
        )

    def apply(self, spec: SecurityGroupSpec, ctx: KindContext, target: State) -> ApplyResult:
        current = ctx.known_state if ctx.known_state is not None else self.read(spec, ctx)
        authorize, revoke = _delta(current, target)
        if not authorize and not revoke:
            return ApplyResult("already at target", changed=False, observed=current)
        for direction in DIRECTIONS:  # the recorded rules first, so that traffic they allow never stops
            self._send(spec, ctx, "authorize", direction, [r for r in authorize if r["direction"] == direction])
        for direction in DIRECTIONS:
            self._send(spec, ctx, "revoke", direction, [r for r in revoke if r["direction"] == direction])
        return ApplyResult(f"{len(authorize)} rules authorized, {len(revoke)} revoked")

    def _send(
        self, spec: SecurityGroupSpec, ctx: KindContext, verb: str, direction: Direction, rules: list[dict[str, Any]]
    ) -> None:
        """All rules of one direction in one call. If AWS refuses it because one of them is already there
        (or gone), an earlier attempt got through in part: each rule again on its own, that refusal accepted."""
        if not rules:
            return
        try:
            self._call(spec, ctx, verb, direction, rules)
        except AwsError as error:
            if _ALREADY[verb] not in str(error):
                raise
            for rule in rules:
                try:
                    self._call(spec, ctx, verb, direction, [rule])
                except AwsError as again:
                    if _ALREADY[verb] not in str(again):
                        raise

    @staticmethod
    def _call(
        spec: SecurityGroupSpec, ctx: KindContext, verb: str, direction: Direction, rules: list[dict[str, Any]]
    ) -> None:
        operation = f"{verb}_security_group_{direction}"
        name = "".join(part.title() for part in operation.split("_"))
        with map_aws_errors(f"ec2:{name} {spec.group_id}"):
            getattr(ctx.aws.client("ec2"), operation)(
                GroupId=spec.group_id, IpPermissions=[_permission(r) for r in rules]
            )

    def action_name(self, current: State, target: State) -> str:
        return "restore-rules"

    def describe(self, state: State) -> str:
        rules = state["rules"]
        counts = {d: sum(r["direction"] == d for r in rules) for d in DIRECTIONS}
        return f"{counts['ingress']} ingress, {counts['egress']} egress rules"

    def iam_statements(self, spec: SecurityGroupSpec, scope: IamScope) -> list[IamStatement]:
        arn = f"arn:{scope.partition}:ec2:{scope.region}:{scope.account}:security-group/{spec.group_id}"
        return [
            IamStatement(
                actions=("ec2:DescribeSecurityGroups",),
                resources=("*",),
                purpose="read the rules (DescribeSecurityGroups takes no resource)",
            ),
            IamStatement(
                actions=tuple(
                    f"ec2:{verb}SecurityGroup{d.title()}" for verb in ("Authorize", "Revoke") for d in DIRECTIONS
                ),
                resources=(arn,),
                purpose="authorize the recorded rules removed since, revoke the ones added since",
            ),
        ]
