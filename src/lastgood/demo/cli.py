"""lastgood demo, lastgood sandbox."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("sandbox")(sandbox)


class Scenario(StrEnum):
    bad_release = "bad-release"
    data_corruption = "data-corruption"


def demo(
    keep: Annotated[Path | None, typer.Option("--keep", help="Keep the demo's files (runbook, ledger) in DIR")] = None,
    scenario: Annotated[Scenario, typer.Option("--scenario", help="Which story to run")] = Scenario.bad_release,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then keep the team server up on the demo, until Ctrl-C")
    ] = False,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="The server's port (0: a free one)")] = 8080,
) -> None:
    """Run a whole story on a local endpoint: release, bad release, guard, automatic rollback, timeline.

    bad-release: the guard catches a bad Lambda release and rolls it back. data-corruption: emergency stop,
    restore the table into a new copy, data checks, switch, release the stop. --serve (bad-release): then the
    server on the demo's endpoint, runbook and ledger, its URL and sign-in tokens printed, until Ctrl-C.
    """
    if scenario == Scenario.data_corruption:
        if serve:
            raise typer.BadParameter("--serve runs after the bad-release story", param_hint="--serve")
        from lastgood.demo.data_corruption import run_data_corruption

        code = run_data_corruption(keep)
    else:
        from lastgood.demo.run import run_demo

        code = run_demo(keep, serve_port=port if serve else None)
    if code:
        raise typer.Exit(code)


def sandbox(
    directory: Annotated[Path | None, typer.Option("--dir", help="Where to write the runbook and ledger")] = None,
    port: Annotated[int, typer.Option("--port", help="Endpoint port [default: a free one]")] = 0,
) -> None:
    """Start the local endpoint with the shop app (v1 good, v2 bad and live) and stay up, for trying commands."""
    from lastgood.demo.sandbox import run_sandbox

    run_sandbox(directory, port or None)
