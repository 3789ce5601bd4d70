"""Options every command shares, opening an environment, and printing for people or for scripts."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lastgood.aws.clients import AwsClients
from lastgood.config.loader import load_runbook
from lastgood.config.models import Runbook
from lastgood.domain.actor import Actor
from lastgood.ledger.db import Ledger, open_ledger, resolve_url
from lastgood.redact import RedactingStream, redact
from lastgood.runtime.context import EnvContext
from lastgood.runtime.notifications import dispatcher_for


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


FileOption = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="The runbook file [default: $LASTGOOD_FILE or ./lastgood.yaml]"),
]
EnvArgument = Annotated[str, typer.Argument(help="Environment name from the file", metavar="ENV", show_default=False)]
OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="text for people, json for scripts", case_sensitive=False)
]
ParallelOption = Annotated[
    int, typer.Option("--parallel", min=1, max=256, help="How many components are worked on at once")
]

stdout = Console(highlight=False, file=RedactingStream("stdout"))  # type: ignore[arg-type]
stderr = Console(highlight=False, file=RedactingStream("stderr"))  # type: ignore[arg-type]


def emit(output: OutputFormat, data: Any, render: Callable[[], None]) -> None:
    if output == OutputFormat.json:
        sys.stdout.write(redact(json.dumps(data, indent=2, default=str)) + "\n")
    else:
        render()


def open_runbook(file: Path | None) -> Runbook:
    return load_runbook(file)


def ledger_for(runbook: Runbook) -> Ledger:
    return open_ledger(resolve_url(runbook.state, runbook.base_dir))


def cli_actor(runbook: Runbook) -> Actor:
    """The one place the acting user is read: LASTGOOD_USER, else the OS user; roles from the file's policy."""
    name = os.environ.get("LASTGOOD_USER") or getpass.getuser()
    return Actor(name=name, roles=frozenset(runbook.policy.roles_of(name)), via="cli")


def open_env(file: Path | None, env: str, parallel: int = 16) -> EnvContext:
    runbook = open_runbook(file)
    environment = runbook.environment(env)
    ctx = EnvContext(
        runbook=runbook,
        env=env,
        ledger=ledger_for(runbook),
        aws=AwsClients(environment.aws, max_pool_connections=parallel + 4),
        concurrency=parallel,
        actor=cli_actor(runbook),
    )
    ctx.dispatch = dispatcher_for(ctx)
    return ctx


def split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    return names or None
