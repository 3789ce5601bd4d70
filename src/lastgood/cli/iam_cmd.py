"""lastgood iam-policy."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from lastgood.cli.common import FileOption, open_runbook
from lastgood.iam import policy_for
from lastgood.kinds.base import IamScope


def register(app: typer.Typer) -> None:
    app.command("iam-policy")(iam_policy)


def iam_policy(
    env: Annotated[list[str] | None, typer.Argument(help="Environments [default: all in the file]")] = None,
    account: Annotated[str, typer.Option("--account", help="AWS account id for resource ARNs")] = "*",
    partition: Annotated[str, typer.Option("--partition", help="aws, aws-cn or aws-us-gov")] = "aws",
    file: FileOption = None,
) -> None:
    """Print the least-privilege IAM policy (JSON) that lastgood needs for this file."""
    runbook = open_runbook(file)
    envs = env or sorted(runbook.environments)
    scopes = {}
    for name in envs:
        region = runbook.environment(name).aws.region or "*"
        scopes[name] = IamScope(region=region, account=account, partition=partition)
    print(json.dumps(policy_for(runbook, envs, scopes), indent=2))
