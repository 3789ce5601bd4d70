"""The table of lazily imported commands in cli/app.py stays true to the command modules."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer._click.utils import make_default_short_help
from typer.testing import CliRunner

from lastgood.cli.app import COMMANDS, app
from lastgood.cli.lazy import load_module_commands

CLI_DIR = Path(__file__).parents[2] / "src" / "lastgood" / "cli"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_line_is_the_commands_own_help(name: str) -> None:
    entry = COMMANDS[name]
    command = load_module_commands(entry.module)[name]
    assert make_default_short_help(entry.help, 10_000) == command.get_short_help_str(10_000)


def test_every_registered_command_is_in_the_table() -> None:
    modules = {entry.module for entry in COMMANDS.values()}
    on_disk = {f"lastgood.cli.{path.stem}" for path in CLI_DIR.glob("*_cmd.py")}
    assert on_disk <= modules, f"command modules missing from cli/app.py's COMMANDS: {sorted(on_disk - modules)}"
    for module in modules:
        for name in load_module_commands(module):
            assert COMMANDS.get(name) is not None and COMMANDS[name].module == module, (module, name)


def test_help_is_the_same_as_an_eagerly_built_group() -> None:
    eager = typer.Typer(rich_markup_mode=None, add_completion=False)
    eager.callback(help=app.info.help)(lambda: None)
    for module in dict.fromkeys(entry.module for entry in COMMANDS.values()):
        __import__(module, fromlist=["register"]).register(eager)
    runner = CliRunner()
    lazy_help = runner.invoke(app, ["--help"], prog_name="lastgood").output
    eager_help = runner.invoke(eager, ["--help"], prog_name="lastgood").output
    assert sorted(_commands_section(lazy_help)) == sorted(_commands_section(eager_help))
    assert sorted(line.split()[0] for line in _commands_section(lazy_help)) == sorted(COMMANDS)


def _commands_section(help_text: str) -> list[str]:
    return [line for line in help_text.split("Commands:", 1)[1].splitlines() if line.strip()]


def test_a_lazy_command_runs_and_a_typo_is_answered_with_the_nearest_names() -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["schema"], prog_name="lastgood")
    assert done.exit_code == 0 and '"$defs"' in done.output
    typo = runner.invoke(app, ["relase", "list"], prog_name="lastgood")
    assert typo.exit_code == 2 and "Did you mean 'release'" in typo.output
