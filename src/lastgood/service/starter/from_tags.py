"""Tagged resources (their ARNs, from the Resource Groups Tagging API) as draft components."""

from __future__ import annotations

from collections.abc import Callable

from lastgood.service.starter.drafts import Draft, Lookups, component_name

_POINTER_NOTE = (
    "CHOOSE: the pointer, where the application reads which {what} to use (ssm_parameter: NAME, lambda_env: "
    "{{function, variable}} or secret_key: {{secret, key}}); then uncomment this."
)


def tag_drafts(arns: list[str], lookups: Lookups) -> tuple[list[Draft], list[str]]:
    drafts: list[Draft] = []
    skipped: list[str] = []
    for arn in arns:
        parts = arn.split(":", 5)
        maker = MAKERS.get(parts[2]) if len(parts) == 6 else None
        made = maker(parts[5], arn, lookups) if maker else None
        if made is None:
            skipped.append(arn)
        else:
            drafts += made
    return drafts, skipped


def _function(resource: str, arn: str, lookups: Lookups) -> list[Draft] | None:
    if not resource.startswith("function:"):
        return None
    function = resource.split(":")[1]
    aliases = lookups.lambda_aliases(function)
    drafts = [
        Draft(component_name(f"{function}-{alias}"), "lambda-alias", {"function": function, "alias": alias})
        for alias in aliases
    ]
    note = f"CHOOSE: {function} has no alias; lastgood rolls a function back by moving an alias: create one."
    keys = {"function": function, "alias": "live"}
    return drafts or [Draft(component_name(function), "lambda-alias", keys, notes=[note], disabled=True)]


def _parameter(resource: str, arn: str, lookups: Lookups) -> list[Draft] | None:
    name = resource.removeprefix("parameter")
    name = name if name.count("/") > 1 else name.lstrip("/")  # a name in a hierarchy starts with '/'
    return [Draft(component_name(name), "ssm-parameter", {"parameters": [name]})]


def _secret(resource: str, arn: str, lookups: Lookups) -> list[Draft] | None:
    name = resource.removeprefix("secret:").rsplit("-", 1)[0]  # Secrets Manager appends "-" and 6 characters
    return [Draft(component_name(name), "secret", {"secret": arn})]


def _bucket(resource: str, arn: str, lookups: Lookups) -> list[Draft] | None:
    if "/" in resource:
        return None
    note = "CHOOSE: the prefix the releases change ('' is the whole bucket; versioning must be on)."
    return [Draft(component_name(resource), "s3-prefix", {"bucket": resource, "prefix": ""}, notes=[note])]


def _table(resource: str, arn: str, lookups: Lookups) -> list[Draft] | None:
    table = resource.removeprefix("table/")
    if "/" in table:
        return None
    keys = {"table": table, "pointer": {"ssm_parameter": f"/CHOOSE/{table}"}}
    note = _POINTER_NOTE.format(what="table")
    return [Draft(component_name(table), "dynamodb-table", keys, notes=[note], disabled=True)]


def _database(resource: str, arn: str, lookups: Lookups) -> list[Draft] | None:
    if not resource.startswith("db:"):
        return None
    instance = resource.removeprefix("db:")
    keys = {"instance": instance, "pointer": {"ssm_parameter": f"/CHOOSE/{instance}"}}
    return [
        Draft(
            component_name(instance), "rds-instance", keys, notes=[_POINTER_NOTE.format(what="database")], disabled=True
        )
    ]


def _state_machine(resource: str, arn: str, lookups: Lookups) -> list[Draft] | None:
    if not resource.startswith("stateMachine:") or resource.count(":") != 1:
        return None
    name = resource.split(":")[1]
    drafts = [
        Draft(component_name(f"{name}-{alias.rsplit(':', 1)[-1]}"), "stepfunctions-alias", {"alias_arn": alias})
        for alias in lookups.state_machine_aliases(arn)
    ]
    note = f"CHOOSE: {name} has no alias; lastgood rolls a state machine back by moving an alias: create one."
    keys = {"state_machine": arn, "alias": "live"}
    return drafts or [Draft(component_name(name), "stepfunctions-alias", keys, notes=[note], disabled=True)]


def _rest_api(resource: str, arn: str, lookups: Lookups) -> list[Draft] | None:
    api_id = resource.removeprefix("/restapis/")
    if not resource.startswith("/restapis/") or "/" in api_id:
        return None
    return [
        Draft(component_name(f"api-{api_id}-{stage}"), "apigateway-stage", {"rest_api_id": api_id, "stage": stage})
        for stage in lookups.api_stages(api_id)
    ]


MAKERS: dict[str, Callable[[str, str, Lookups], list[Draft] | None]] = {
    "lambda": _function,
    "ssm": _parameter,
    "secretsmanager": _secret,
    "s3": _bucket,
    "dynamodb": _table,
    "rds": _database,
    "states": _state_machine,
    "apigateway": _rest_api,
}
