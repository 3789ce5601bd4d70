"""lastgood validate, lastgood schema."""

from __future__ import annotations

import json

import typer

from lastgood.cli.common import FileOption, OutputFormat, OutputOption, emit, open_runbook, stderr, stdout
from lastgood.cli.plain import escape


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("schema")(schema)


def validate(file: FileOption = None, output: OutputOption = OutputFormat.text) -> None:
    """Check a runbook file; print one line per problem, with its path in the file (warnings: exit 0)."""
    runbook = open_runbook(file)
    for warning in runbook.warnings:
        stderr.say(f"[yellow]warning[/]: {escape(warning)}", soft_wrap=True)
    summary = {
        "valid": True,
        "app": runbook.app,
        "environments": sorted(runbook.environments),
        "components": [{"name": c.name, "kind": c.kind} for c in runbook.components],
        "triggers": [t.name for t in runbook.triggers],
        "warnings": runbook.warnings,
    }
    emit(
        output,
        summary,
        lambda: stdout.say(
            f"[green]ok[/]: {runbook.app}: {len(runbook.components)} components, {len(runbook.triggers)} triggers, "
            f"environments: {', '.join(sorted(runbook.environments))}"
        ),
    )


def schema() -> None:
    """Print the JSON Schema of the runbook file (for editors and linters)."""
    from lastgood.config.schema import runbook_schema  # every model's schema: `validate` needs none of it

    print(json.dumps(runbook_schema(), indent=2))
