"""command: real shell commands against a file standing in for the system (record `cat state.txt`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.errors import StepFailed
from lastgood.kinds.base import KindContext
from lastgood.kinds.command import OUTPUT_LIMIT, Command, CommandSpec

KIND = Command()
CTX = KindContext(app="shop", env="prod", aws=AwsClients(), token="rb-7-deploy")


def spec_in(path: Path, **kwargs: Any) -> CommandSpec:
    fields = {
        "name": "deploy",
        "record": "cat state.txt",
        "rollback": "printf %s {value} > state.txt",
        "cwd": str(path),
        **kwargs,
    }
    return CommandSpec.model_validate(fields)


def test_round_trip_with_default_verify(tmp_path: Path) -> None:
    (tmp_path / "state.txt").write_text("v1\n")
    spec = spec_in(tmp_path)
    recorded = KIND.read(spec, CTX)
    assert recorded == {"value": "v1"}

    (tmp_path / "state.txt").write_text("v2")
    change = KIND.plan(spec, KIND.read(spec, CTX), recorded)
    assert change is not None and change.action == "run-command" and not change.destructive
    assert (change.before, change.after) == ("v2", "v1")
    result = KIND.apply(spec, CTX, recorded)
    assert result.changed and result.extra["exit_code"] == 0
    assert (tmp_path / "state.txt").read_text() == "v1"
    assert KIND.verify(spec, CTX, recorded) == []
    assert not KIND.apply(spec, CTX, recorded).changed
    assert KIND.plan(spec, KIND.read(spec, CTX), recorded) is None


def test_value_with_spaces_quotes_and_shell_syntax_arrives_intact(tmp_path: Path) -> None:
    value = """it's a "quoted" value; $(touch pwned) `touch pwned2` & {value}"""
    (tmp_path / "state.txt").write_text("other")
    spec = spec_in(tmp_path)
    KIND.apply(spec, CTX, {"value": value})
    assert (tmp_path / "state.txt").read_text() == value
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    assert KIND.read(spec, CTX) == {"value": value}


def test_environment_and_output_reach_the_ledger_detail(tmp_path: Path) -> None:
    (tmp_path / "state.txt").write_text("v2")
    rollback = (
        'echo "rolling $LASTGOOD_APP/$LASTGOOD_ENV back to $LASTGOOD_VALUE ($EXTRA, step $LASTGOOD_STEP)";'
        " echo warning >&2; printf %s {value} > state.txt"
    )
    spec = spec_in(tmp_path, rollback=rollback, env={"EXTRA": "from the file"})
    result = KIND.apply(spec, CTX, {"value": "v1"})
    assert "rolling shop/prod back to v1 (from the file, step rb-7-deploy)" in result.detail
    assert "warning" in result.extra["output"]


def test_long_output_is_cut_to_its_end(tmp_path: Path) -> None:
    (tmp_path / "state.txt").write_text("v2")
    spec = spec_in(tmp_path, rollback="seq 1 20000; printf %s {value} > state.txt")
    result = KIND.apply(spec, CTX, {"value": "v1"})
    assert len(result.extra["output"]) < OUTPUT_LIMIT + 100
    assert "bytes cut" in result.detail and result.detail.rstrip().endswith("20000")


def test_non_zero_exit_is_a_clear_failure(tmp_path: Path) -> None:
    (tmp_path / "state.txt").write_text("v2")
    spec = spec_in(tmp_path, rollback="echo starting; echo 'release v1 not found' >&2; exit 3")
    with pytest.raises(StepFailed, match=r"rollback command exited 3; last output:\nstarting\nrelease v1 not found"):
        KIND.apply(spec, CTX, {"value": "v1"})
    with pytest.raises(StepFailed, match=r"record command exited 1; last output:\n.*nope"):
        KIND.read(spec_in(tmp_path, record="cat nope"), CTX)


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    (tmp_path / "state.txt").write_text("v2")
    spec = spec_in(tmp_path, rollback="sleep 60 & echo $! > child.pid; echo waiting; wait", timeout="1s")
    started = time.monotonic()
    with pytest.raises(StepFailed, match=r"rollback command timed out after 1s and was killed; last output:\nwaiting"):
        KIND.apply(spec, CTX, {"value": "v1"})
    assert time.monotonic() - started < 10
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")  # a zombie is dead, just not reaped


def test_verify_command_decides_and_failures_are_polled_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "state.txt").write_text("v1")
    spec = spec_in(tmp_path, verify='test "$(cat state.txt)" = {value}')
    assert KIND.verify(spec, CTX, {"value": "v1"}) == []
    assert KIND.verify(spec, CTX, {"value": "v 2"}) == ["verify command exited 1"]
    broken = spec_in(tmp_path, record="exit 4")
    assert KIND.verify(broken, CTX, {"value": "v1"})[0].startswith("record command exited 4")


def test_declared_destructive_is_in_the_plan_and_empty_values_warn(tmp_path: Path) -> None:
    (tmp_path / "state.txt").write_text("")
    spec = spec_in(tmp_path, destructive=True)
    change = KIND.plan(spec, KIND.read(spec, CTX), {"value": "v1"})
    assert change is not None and change.destructive
    assert "declared destructive in the runbook file" in change.notes
    assert KIND.warnings(spec, KIND.read(spec, CTX)) == [
        "the record command printed nothing: a rollback would get an empty {value}"
    ]


def test_missing_working_directory_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match="record command could not start"):
        KIND.read(spec_in(tmp_path / "nope"), CTX)


def test_rollback_runs_even_when_record_cannot_answer(tmp_path: Path) -> None:
    progress: list[str] = []
    ctx = KindContext(app="shop", env="prod", aws=CTX.aws, progress=progress.append)
    spec = spec_in(tmp_path)  # no state.txt yet: `cat state.txt` fails
    assert KIND.apply(spec, ctx, {"value": "v1"}).changed
    assert (tmp_path / "state.txt").read_text() == "v1"
    assert progress[0].startswith("record command exited 1") and progress[0].endswith("running the rollback anyway")
