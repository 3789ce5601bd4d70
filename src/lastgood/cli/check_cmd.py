"""lastgood check ID ITEM: tick a rollback's checklist item by hand, with the actor and a note."""

from __future__ import annotations

from typing import Annotated

import typer

from lastgood.cli.common import FileOption, OutputFormat, OutputOption, emit, open_app_ctx, stdout
from lastgood.service.checklists import check_item


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    rollback_id: Annotated[str, typer.Argument(help="The rollback id", metavar="ID")],
    item: Annotated[str, typer.Argument(help="The item's key (`lastgood show ID` lists them)", metavar="ITEM")],
    note: Annotated[str, typer.Option("--note", help="What was checked, and what it showed")] = "",
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Tick a rollback's checklist item by hand (the file's checklists, else the built-in list), with a note."""
    checked = check_item(open_app_ctx(file), rollback_id, item, note)
    emit(output, checked.model_dump(mode="json"), lambda: stdout.print(checked.message))
