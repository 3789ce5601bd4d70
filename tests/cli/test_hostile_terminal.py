"""Issue 14, terminals and AWS habits: tables that fit or stack, pipes unwrapped, the sandbox's exports,
global AWS flags, --debug without secrets, shell completion."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import boto3
import pytest
from rich.table import Table

from lastgood.aws.clients import AwsClients
from lastgood.aws.overrides import AwsOverrides, set_overrides
from lastgood.cli.app import main
from lastgood.cli.tables import FittingConsole, print_table
from lastgood.config.models import AwsSettings
from lastgood.testing.endpoint import FAKE_CREDENTIALS, LocalEndpoint, export_lines


def wide_table() -> Table:
    table = Table(title="plan: prod from v42 back to v41", title_justify="left")
    for column in ("#", "component", "action", "from", "to", "estimate", "after"):
        table.add_column(column, overflow="fold")
    table.add_row("1", "api", "update-alias", "version 7 (10% to 8) " * 2, "version 7", "1s", "-")
    table.add_row("2", "api-config", "put-parameter", "pricing-engine@v5", "pricing-engine@v4", "1s", "worker")
    return table


def terminal(width: int) -> tuple[FittingConsole, io.StringIO]:
    out = io.StringIO()
    return FittingConsole(file=out, force_terminal=True, width=width, color_system=None), out


def test_a_table_too_wide_for_the_terminal_is_stacked_with_every_cell_whole() -> None:
    console, out = terminal(60)
    print_table(console, wide_table())
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "plan: prod from v42 back to v41 [1/2]" in text
    for header, value in [("action", "update-alias"), ("to", "pricing-engine@v4"), ("after", "worker")]:
        assert any(line.split() == [header, value] for line in text.splitlines()), (header, text)


def test_a_table_that_fits_is_a_grid() -> None:
    console, out = terminal(200)
    print_table(console, wide_table())
    lines = out.getvalue().splitlines()
    assert any("update-alias" in line and "version 7" in line for line in lines)
    assert "[1/2]" not in out.getvalue()


def test_piped_output_is_not_wrapped() -> None:
    out = io.StringIO()  # not a terminal
    console = FittingConsole(file=out)
    print_table(console, wide_table())
    console.print("x" * 300)
    lines = out.getvalue().splitlines()
    assert "x" * 300 in lines
    assert any(len(line) > 80 and "update-alias" in line for line in lines)


def test_sandbox_exports_one_variable_per_line_with_the_endpoint(tmp_path: Path) -> None:
    lines = export_lines("http://127.0.0.1:4566", tmp_path / "lastgood.yaml")
    names = [line.removeprefix("export ").split("=", 1)[0] for line in lines]
    assert all(line.startswith("export ") and line.count("=") == 1 for line in lines)
    assert names == [*FAKE_CREDENTIALS, "AWS_ENDPOINT_URL", "LASTGOOD_FILE"]
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:4566" in lines


@pytest.mark.slow  # a Python process, server or browser of its own
def test_the_sandbox_prints_its_exports_unwrapped_in_a_narrow_terminal(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "40", "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "lastgood", "sandbox", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    try:
        assert sandbox.stdout is not None
        for line in sandbox.stdout:  # ends when the sandbox exits; the timeout below bounds a hang
            lines.append(line.strip())
            if "Ctrl-C stops" in line:
                break
    finally:
        sandbox.terminate()
        sandbox.wait(60)
    exports = [line for line in lines if line.startswith("export ")]
    names = [*FAKE_CREDENTIALS, "AWS_ENDPOINT_URL", "LASTGOOD_FILE"]
    assert [e.split("=", 1)[0] for e in exports] == [f"export {n}" for n in names]
    assert any(e.startswith("export AWS_ENDPOINT_URL=http://127.0.0.1:") for e in exports)
    assert f"export LASTGOOD_FILE={tmp_path / 'lastgood.yaml'}" in exports


@pytest.fixture
def no_overrides() -> Iterator[None]:
    yield
    set_overrides(AwsOverrides())


def test_global_flags_beat_the_file(tmp_path: Path, no_overrides: None) -> None:
    (tmp_path / "lastgood.yaml").write_text("app: x\n")
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        main(
            [
                "--region",
                "eu-west-2",
                "--endpoint-url",
                "http://127.0.0.1:4566",
                "--profile",
                "ops",
                "validate",
                "--file",
                str(tmp_path / "lastgood.yaml"),
            ]
        )
    clients = AwsClients(AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9"))
    assert (clients.region, clients.endpoint_url, clients.settings.profile) == (
        "eu-west-2",
        "http://127.0.0.1:4566",
        "ops",
    )
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        main(["validate", "--file", str(tmp_path / "lastgood.yaml")])  # the next command starts afresh
    assert AwsClients(AwsSettings(region="us-east-1")).region == "us-east-1"


def test_shell_completion_is_on() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["--help"]) == 0
    assert "--install-completion" in out.getvalue() and "--show-completion" in out.getvalue()


@pytest.mark.slow  # a Python process, server or browser of its own
def test_debug_logs_never_show_a_secret_the_rollback_writes(
    shop_dir: Path, aws_env: LocalEndpoint, no_overrides: None
) -> None:
    """The rollback puts the old SecureString back (PutParameter with its value): botocore logs that request."""
    ssm = boto3.client("ssm", region_name="us-east-1", endpoint_url=aws_env.url)
    env = {**os.environ, "LASTGOOD_FILE": str(shop_dir / "lastgood.yaml")}
    lastgood = [sys.executable, "-m", "lastgood"]
    subprocess.run([*lastgood, "release", "record", "prod", "--version", "v1"], env=env, check=True, timeout=120)
    ssm.put_parameter(
        Name="/shop/prod/api/signing-key", Value="rotated-signing-key-2", Type="SecureString", Overwrite=True
    )
    subprocess.run([*lastgood, "release", "record", "prod", "--version", "v2"], env=env, check=True, timeout=120)
    done = subprocess.run(
        [*lastgood, "--debug", "rollback", "prod", "--yes"], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    value = ssm.get_parameter(Name="/shop/prod/api/signing-key", WithDecryption=True)["Parameter"]["Value"]
    assert value == "demo-signing-key-1"  # the rollback wrote it
    logs = done.stdout + done.stderr
    assert "botocore" in logs and "PutParameter" in logs  # the debug logs are there
    for secret in (
        "demo-signing-key-1",
        "rotated-signing-key-2",
        "demo-password-1",
        FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    ):
        assert secret not in logs
