"""What exists in the account: a stack's template and resources, tagged resources, and the aliases and stages
a component is rolled back through. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lastgood.aws.clients import AwsClients
from lastgood.aws.errors import map_aws_errors
from lastgood.errors import BadInput, ResourceNotFound
from lastgood.service.starter.template import Resource, load_template, template_resources


@dataclass(frozen=True)
class Stack:
    name: str
    resources: dict[str, Resource]
    physical: dict[str, str]  # logical id -> physical id, for the resources the stack has created
    values: dict[str, str]  # what a Ref or ${...} to a parameter or a pseudo parameter reads


def read_stack(clients: AwsClients, name: str) -> Stack:
    cloudformation = clients.client("cloudformation")
    try:
        with map_aws_errors(f"cloudformation:GetTemplate {name}"):
            body = cloudformation.get_template(StackName=name)["TemplateBody"]
    except ResourceNotFound:
        raise BadInput(f"--from-stack: no stack named {name!r} in {clients.region}") from None
    physical: dict[str, str] = {}
    with map_aws_errors(f"cloudformation:ListStackResources {name}"):
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=name):
            for summary in page["StackResourceSummaries"]:
                if summary.get("PhysicalResourceId"):
                    physical[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
    with map_aws_errors(f"cloudformation:DescribeStacks {name}"):
        described = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    return Stack(name, template_resources(load_template(body)), physical, _values(described, clients.region))


def _values(described: dict[str, Any], region: str) -> dict[str, str]:
    """The stack's parameters and the pseudo parameters a name may be built from."""
    arn = str(described.get("StackId", "")).split(":")
    values = {"AWS::Region": region, "AWS::StackName": str(described["StackName"]), "AWS::Partition": "aws"}
    if len(arn) > 4:
        values |= {"AWS::AccountId": arn[4], "AWS::Partition": arn[1], "AWS::StackId": str(described["StackId"])}
    for parameter in described.get("Parameters") or []:
        values[parameter["ParameterKey"]] = str(parameter.get("ResolvedValue") or parameter.get("ParameterValue", ""))
    return values


def tagged_arns(clients: AwsClients, key: str, value: str) -> list[str]:
    tagging = clients.client("resourcegroupstaggingapi")
    arns: list[str] = []
    with map_aws_errors(f"tag:GetResources {key}={value}"):
        for page in tagging.get_paginator("get_resources").paginate(TagFilters=[{"Key": key, "Values": [value]}]):
            arns += [item["ResourceARN"] for item in page["ResourceTagMappingList"]]
    return sorted(arns)


class AwsLookups:
    """The `Lookups` the drafts need, answered by the account."""

    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    def lambda_aliases(self, function: str) -> list[str]:
        with map_aws_errors(f"lambda:ListAliases {function}"):
            pages = self._clients.client("lambda").get_paginator("list_aliases").paginate(FunctionName=function)
            return sorted(alias["Name"] for page in pages for alias in page["Aliases"])

    def api_stages(self, rest_api_id: str) -> list[str]:
        with map_aws_errors(f"apigateway:GetStages {rest_api_id}"):
            answer: dict[str, Any] = self._clients.client("apigateway").get_stages(restApiId=rest_api_id)
        return sorted(stage["stageName"] for stage in answer.get("item", []))

    def state_machine_aliases(self, state_machine_arn: str) -> list[str]:
        client = self._clients.client("stepfunctions")
        with map_aws_errors(f"states:ListStateMachineAliases {state_machine_arn}"):
            answer = client.list_state_machine_aliases(stateMachineArn=state_machine_arn)
        return sorted(alias["stateMachineAliasArn"] for alias in answer.get("stateMachineAliases", []))
