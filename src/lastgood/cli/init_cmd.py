"""lastgood init: write a starter runbook from a CloudFormation stack or from tagged resources."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lastgood.aws.clients import AwsClients
from lastgood.cli.common import stderr
from lastgood.config.models import AwsSettings
from lastgood.errors import BadInput, Refused
from lastgood.service.starter import Starter, starter_from_stack, starter_from_tags


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    from_stack: Annotated[
        str | None, typer.Option("--from-stack", metavar="NAME", help="A CloudFormation stack's resources")
    ] = None,
    from_tags: Annotated[
        str | None,
        typer.Option(
            "--from-tags", metavar="KEY=VALUE", help="The resources with this tag (Resource Groups Tagging API)"
        ),
    ] = None,
    app_name: Annotated[
        str | None, typer.Option("--app", help="The app's name [default: the stack or the tag's value]")
    ] = None,
    env: Annotated[str, typer.Option("--env", help="The environment these resources are")] = "prod",
    out: Annotated[Path | None, typer.Option("--out", help="Write the runbook here [default: stdout]")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the --out file if it exists")] = False,
    region: Annotated[str | None, typer.Option("--region", help="AWS region [default: boto3's]")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="AWS profile [default: boto3's]")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", help="AWS endpoint [default: AWS_ENDPOINT_URL]")
    ] = None,
) -> None:
    """Write a starter runbook for an app from what exists in the account; read its CHOOSE comments."""
    if (from_stack is None) == (from_tags is None):
        raise BadInput("give one of --from-stack NAME or --from-tags KEY=VALUE")
    if out is not None and out.exists() and not force:
        raise Refused(f"{out} exists: nothing was written (add --force to overwrite it)")
    clients = AwsClients(AwsSettings(region=region, profile=profile, endpoint_url=endpoint_url))
    if from_stack is not None:
        starter = starter_from_stack(clients, from_stack, app_name, env)
    else:
        starter = starter_from_tags(clients, str(from_tags), app_name, env)
    if out is None:
        sys.stdout.write(starter.text)
    else:
        out.write_text(starter.text)
    _summary(starter, out)


def _summary(starter: Starter, out: Path | None) -> None:
    where = str(out) if out is not None else "stdout"
    stderr.print(
        f"wrote {escape(where)}: {len(starter.components)} components"
        + (
            f", {len(starter.to_choose)} commented out until you choose: {escape(', '.join(starter.to_choose))}"
            if starter.to_choose
            else ""
        )
        + (f"; {len(starter.skipped)} resources no kind rolls back" if starter.skipped else ""),
        soft_wrap=True,
    )
    if out is not None:
        stderr.print(f"next: read the CHOOSE comments, then lastgood validate -f {escape(str(out))}", soft_wrap=True)
