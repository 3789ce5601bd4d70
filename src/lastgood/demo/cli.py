"""lastgood demo, lastgood sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("sandbox")(sandbox)


def demo(
    keep: Annotated[Path | None, typer.Option("--keep", help="Keep the demo's files (runbook, ledger) in DIR")] = None,
) -> None:
    """Run the whole story on a local endpoint: release, bad release, guard, automatic rollback, timeline."""
    from lastgood.demo.run import run_demo

    code = run_demo(keep)
    if code:
        raise typer.Exit(code)


def sandbox(
    directory: Annotated[Path | None, typer.Option("--dir", help="Where to write the runbook and ledger")] = None,
    port: Annotated[int, typer.Option("--port", help="Endpoint port [default: a free one]")] = 0,
) -> None:
    """Start the local endpoint with the shop app (v1 good, v2 bad and live) and stay up, for trying commands."""
    from lastgood.demo.sandbox import run_sandbox

    run_sandbox(directory, port or None)
