"""A stack's resources as draft components: one maker per resource type that a kind rolls back."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lastgood.service.starter.discover import Stack
from lastgood.service.starter.drafts import Draft, Lookups, component_name
from lastgood.service.starter.template import Resource, references

_SUB = re.compile(r"\$\{([A-Za-z0-9:]+)\}")  # ${Name} (not ${Name.Attribute}: that is not a name)

# Resources that are part of a component made for another one (a function's versions, an API's methods).
PARTS = frozenset(
    {
        "AWS::Lambda::Version",
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::Stage",
        "AWS::ApiGateway::Method",
        "AWS::ApiGateway::Resource",
        "AWS::StepFunctions::StateMachineVersion",
    }
)


@dataclass(frozen=True)
class Scan:
    stack: Stack
    lookups: Lookups
    pointers: dict[str, tuple[dict[str, Any], list[str]]]  # a table's or database's logical id -> (pointer, notes)

    def text(self, value: Any) -> str | None:
        """A property as text: a string, a Ref / GetAtt of a resource whose physical id is known or of a
        parameter, or a Sub of those; None when it cannot be known from here."""
        if isinstance(value, str):
            return value
        if not isinstance(value, dict) or len(value) != 1:
            return None
        (function, argument), known = next(iter(value.items())), {**self.stack.values, **self.stack.physical}
        if function == "Ref" and isinstance(argument, str):
            return known.get(argument)
        if function == "Fn::GetAtt" and isinstance(argument, list) and argument:
            return self.stack.physical.get(argument[0])
        if function == "Fn::Sub" and isinstance(argument, str):
            parts = [known.get(name) for name in _SUB.findall(argument)]
            text = None if None in parts else _SUB.sub(lambda m: known[m.group(1)], argument)
            return None if text is None or re.search(r"\$\{[^!]", text) else text
        return None

    def named(self, logical: str, resource: Resource, key: str) -> str | None:
        return self.stack.physical.get(logical) or self.text(resource.properties.get(key))

    def referring(self, logical: str, kind: str) -> list[Resource]:
        return [r for r in self.stack.resources.values() if r.type == kind and logical in r.refers_to]


def stack_drafts(stack: Stack, lookups: Lookups) -> tuple[list[Draft], list[str]]:
    """The drafts, and what the stack holds that no kind rolls back (for a closing comment)."""
    scan = Scan(stack, lookups, {})
    scan.pointers.update(_pointers(scan))
    pointer_ids = _pointer_parameters(scan)
    drafts: list[Draft] = []
    skipped: list[str] = []
    for logical, resource in stack.resources.items():
        maker = MAKERS.get(resource.type)
        if maker is not None and logical not in pointer_ids:
            made = maker(logical, resource, scan)
            drafts += made or []
            skipped += [] if made is not None else [f"{logical} ({resource.type}): its name or id could not be read"]
        elif maker is None and resource.type not in PARTS:
            skipped.append(f"{logical} ({resource.type})")
    return drafts, skipped


def _function(logical: str, resource: Resource, scan: Scan) -> list[Draft] | None:
    function = scan.named(logical, resource, "FunctionName")
    if function is None:
        return None
    in_template = {scan.text(alias.properties.get("Name")) for alias in scan.referring(logical, "AWS::Lambda::Alias")}
    owned = {logical} | {r.logical_id for r in scan.referring(logical, "AWS::Lambda::Version")}
    found = scan.lookups.lambda_aliases(function) if logical in scan.stack.physical else []
    drafts = [
        Draft(component_name(f"{logical}-{alias}"), "lambda-alias", {"function": function, "alias": alias}, owned)
        for alias in found
        if alias not in in_template
    ]
    if drafts or in_template:
        return drafts
    note = (
        f"CHOOSE: {function} has no alias; lastgood rolls a function back by moving an alias. Create one (e.g. "
        "`live`), send the traffic through it, then uncomment this."
    )
    return [
        Draft(
            component_name(logical),
            "lambda-alias",
            {"function": function, "alias": "live"},
            owned,
            [note],
            disabled=True,
        )
    ]


def _lambda_alias(logical: str, resource: Resource, scan: Scan) -> list[Draft] | None:
    function, alias = scan.text(resource.properties.get("FunctionName")), scan.text(resource.properties.get("Name"))
    if function is None or alias is None:
        return None
    owned = {logical} | {r for r in resource.refers_to if scan.stack.resources[r].type == "AWS::Lambda::Function"}
    return [Draft(component_name(logical), "lambda-alias", {"function": function, "alias": alias}, owned)]


def _parameter(logical: str, resource: Resource, scan: Scan) -> list[Draft] | None:
    name = scan.named(logical, resource, "Name")
    return [Draft(component_name(logical), "ssm-parameter", {"parameters": [name]}, {logical})] if name else None


def _secret(logical: str, resource: Resource, scan: Scan) -> list[Draft] | None:
    secret = scan.named(logical, resource, "Name")
    return [Draft(component_name(logical), "secret", {"secret": secret}, {logical})] if secret else None


def _bucket(logical: str, resource: Resource, scan: Scan) -> list[Draft] | None:
    bucket = scan.named(logical, resource, "BucketName")
    if bucket is None:
        return None
    notes = ["CHOOSE: the prefix the releases change ('' is the whole bucket; at most 10,000 keys under it)."]
    versioning = resource.properties.get("VersioningConfiguration") or {}
    if versioning.get("Status") != "Enabled":
        notes.append("CHOOSE: the template does not enable versioning; s3-prefix needs it to restore old objects.")
    return [Draft(component_name(logical), "s3-prefix", {"bucket": bucket, "prefix": ""}, {logical}, notes)]


def _table(logical: str, resource: Resource, scan: Scan) -> list[Draft] | None:
    table = scan.named(logical, resource, "TableName")
    if table is None:
        return None
    pointer, notes = scan.pointers.get(logical, ({}, []))
    spec = resource.properties.get("PointInTimeRecoverySpecification") or {}
    if str(spec.get("PointInTimeRecoveryEnabled")).lower() != "true":
        notes = [
            *notes,
            "CHOOSE: point-in-time recovery is off in the template: turn it on, or restore from "
            "backups (backup: true, restore_from: backup).",
        ]
    keys = {"table": table, "pointer": pointer or {"ssm_parameter": f"/CHOOSE/{table}"}}
    return [Draft(component_name(logical), "dynamodb-table", keys, {logical}, notes, disabled=not pointer)]


def _database(logical: str, resource: Resource, scan: Scan) -> list[Draft] | None:
    instance = scan.named(logical, resource, "DBInstanceIdentifier")
    if instance is None:
        return None
    pointer, notes = scan.pointers.get(logical, ({}, []))
    keys = {"instance": instance, "pointer": pointer or {"ssm_parameter": f"/CHOOSE/{instance}"}}
    return [Draft(component_name(logical), "rds-instance", keys, {logical}, notes, disabled=not pointer)]


def _state_machine(logical: str, resource: Resource, scan: Scan) -> list[Draft] | None:
    arn = scan.stack.physical.get(logical)
    in_template = scan.referring(logical, "AWS::StepFunctions::StateMachineVersion")
    aliases = [
        r
        for r in scan.stack.resources.values()
        if r.type == "AWS::StepFunctions::StateMachineAlias"
        and r.refers_to & {logical, *(v.logical_id for v in in_template)}
    ]
    known = {scan.stack.physical.get(a.logical_id) for a in aliases}
    found = [a for a in scan.lookups.state_machine_aliases(arn) if a not in known] if arn else []
    owned = {logical} | {v.logical_id for v in in_template}
    drafts = [
        Draft(
            component_name(f"{logical}-{alias_arn.rsplit(':', 1)[-1]}"),
            "stepfunctions-alias",
            {"alias_arn": alias_arn},
            owned,
        )
        for alias_arn in found
    ]
    if drafts or aliases or arn is None:
        return drafts
    note = (
        "CHOOSE: this state machine has no alias; lastgood rolls a state machine back by moving an alias. Publish "
        "a version, create an alias (e.g. `live`), start executions through it, then uncomment this."
    )
    keys = {"state_machine": arn, "alias": "live"}
    return [Draft(component_name(logical), "stepfunctions-alias", keys, owned, [note], disabled=True)]


def _state_machine_alias(logical: str, resource: Resource, scan: Scan) -> list[Draft] | None:
    arn = scan.stack.physical.get(logical)
    if arn is not None:
        return [Draft(component_name(logical), "stepfunctions-alias", {"alias_arn": arn}, {logical})]
    machines = [
        m for m in _closure(logical, scan) if scan.stack.resources[m].type == "AWS::StepFunctions::StateMachine"
    ]
    machine = scan.stack.physical.get(machines[0]) if machines else None
    name = scan.text(resource.properties.get("Name"))
    if machine is None or name is None:
        return None
    return [
        Draft(
            component_name(logical),
            "stepfunctions-alias",
            {"state_machine": machine, "alias": name},
            {logical, machines[0]},
        )
    ]


def _rest_api(logical: str, resource: Resource, scan: Scan) -> list[Draft] | None:
    api_id = scan.stack.physical.get(logical)
    parts = {r.logical_id for r in scan.stack.resources.values() if r.type in PARTS and logical in r.refers_to}
    stages = set(scan.lookups.api_stages(api_id)) if api_id else set()
    for part in parts:
        stage = scan.text(scan.stack.resources[part].properties.get("StageName"))
        stages |= {stage} if stage else set()
    if api_id is None:
        return None
    owned = {logical} | parts
    if not stages:
        note = "CHOOSE: this API has no stage yet; lastgood rolls an API back by moving a stage's deployment."
        keys = {"rest_api_id": api_id, "stage": "prod"}
        return [Draft(component_name(logical), "apigateway-stage", keys, owned, [note], disabled=True)]
    return [
        Draft(component_name(f"{logical}-{stage}"), "apigateway-stage", {"rest_api_id": api_id, "stage": stage}, owned)
        for stage in sorted(stages)
    ]


def _closure(logical: str, scan: Scan) -> list[str]:
    seen: list[str] = []
    todo = [logical]
    while todo:
        for target in sorted(scan.stack.resources[todo.pop()].refers_to):
            if target not in seen:
                seen.append(target)
                todo.append(target)
    return seen


def _pointers(scan: Scan) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """Where the application reads each table's name or database's endpoint: an SSM parameter or a function's
    environment variable whose value refers to it (the first found is used; the others are named)."""
    found: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for logical, resource in scan.stack.resources.items():
        if resource.type not in ("AWS::DynamoDB::Table", "AWS::RDS::DBInstance"):
            continue
        candidates = _pointer_candidates(logical, scan)
        if not candidates:
            what = "name" if resource.type == "AWS::DynamoDB::Table" else "endpoint"
            note = (
                f"CHOOSE: nothing in the template holds this {what} (an SSM parameter or a function's environment "
                "variable): give the pointer the application reads, then uncomment this and add it to the code "
                "components' depends_on."
            )
            found[logical] = ({}, [note])
            continue
        (pointer, where), others = candidates[0], candidates[1:]
        notes = [
            f"the pointer (what a restore switches to the new copy) is {where}, which refers to {logical}; "
            "it is not a component of its own."
        ]
        notes += [f"CHOOSE: or {other}" for _, other in others]
        found[logical] = (pointer, notes)
    return found


def _pointer_candidates(logical: str, scan: Scan) -> list[tuple[dict[str, Any], str]]:
    candidates: list[tuple[dict[str, Any], str]] = []
    for parameter in scan.referring(logical, "AWS::SSM::Parameter"):
        name = scan.named(parameter.logical_id, parameter, "Name")
        if name:
            candidates.append(({"ssm_parameter": name}, f"the parameter {name}"))
    for function in scan.referring(logical, "AWS::Lambda::Function"):
        name = scan.named(function.logical_id, function, "FunctionName")
        variables = (function.properties.get("Environment") or {}).get("Variables") or {}
        for variable, value in variables.items():
            if name and logical in references(value, set(scan.stack.resources)):
                candidates.append(({"lambda_env": {"function": name, "variable": variable}}, f"{name}'s {variable}"))
    return candidates


def _pointer_parameters(scan: Scan) -> set[str]:
    """Parameters that are a pointer: the restore writes them, so they are not components of their own."""
    names = {p["ssm_parameter"] for p, _ in scan.pointers.values() if "ssm_parameter" in p}
    return {
        logical
        for logical, r in scan.stack.resources.items()
        if r.type == "AWS::SSM::Parameter" and scan.named(logical, r, "Name") in names
    }


MAKERS: dict[str, Callable[[str, Resource, Scan], list[Draft] | None]] = {
    "AWS::Lambda::Function": _function,
    "AWS::Lambda::Alias": _lambda_alias,
    "AWS::SSM::Parameter": _parameter,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::S3::Bucket": _bucket,
    "AWS::DynamoDB::Table": _table,
    "AWS::RDS::DBInstance": _database,
    "AWS::StepFunctions::StateMachine": _state_machine,
    "AWS::StepFunctions::StateMachineAlias": _state_machine_alias,
    "AWS::ApiGateway::RestApi": _rest_api,
}
