"""The `lastgood` process ends without the interpreter's teardown (cli/entry.py): nothing may be lost by it. Its
status is the command's, its output reaches a pipe whole, a reader that stops early ends it quietly, and what
the exit handlers do (queued notifications) is done before it ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.entry import exit_status
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger
from lastgood.testing.endpoint import LocalEndpoint
from lastgood.testing.webhooks import WebhookReceiver

pytestmark = pytest.mark.slow  # Python processes of their own
EXAMPLE = Path(__file__).parents[2] / "examples" / "distro-nation.yaml"


def lastgood(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lastgood", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LASTGOOD_FILE": "", **(env or {})},
    )


def test_exit_status_is_the_interpreters_reading_of_sys_exit() -> None:
    assert [exit_status(code) for code in (None, 0, 3, 130, "a message", 2.5)] == [0, 0, 3, 130, 1, 1]


def test_each_outcome_keeps_its_status(tmp_path: Path) -> None:
    assert lastgood("validate", "-f", str(EXAMPLE)).returncode == 0
    broken = tmp_path / "lastgood.yaml"
    broken.write_text("app: shop\nenvironments: [not, a, mapping]\n")
    refused = lastgood("validate", "-f", str(broken))
    assert refused.returncode == 2 and "problem" in refused.stderr
    wrong_flag = lastgood("validate", "--no-such-flag")
    assert wrong_flag.returncode == 2 and "no-such-flag" in wrong_flag.stderr


def test_the_whole_output_reaches_a_pipe_and_a_reader_that_stops_ends_it_quietly() -> None:
    whole = lastgood("schema")
    assert whole.returncode == 0
    schema = json.loads(whole.stdout)  # 140 kB, every byte of it: parsed whole
    assert "components" in schema["properties"] and len(whole.stdout) > 100_000
    with subprocess.Popen(
        [sys.executable, "-m", "lastgood", "schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as head:
        assert head.stdout is not None and head.stderr is not None
        assert head.stdout.read(10)
        head.stdout.close()  # `lastgood schema | head -c 10`
        assert head.wait(60) in (0, 1, 120)
        assert b"Traceback" not in head.stderr.read()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """Answers after half a second: the rollback's messages are still queued when its command returns."""
    hook = WebhookReceiver(delay=0.5)
    yield hook
    hook.stop()


def test_queued_notifications_are_sent_and_recorded_before_the_process_ends(
    aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/shop/level", Value="good", Type="String")
    (tmp_path / "lastgood.yaml").write_text(
        "app: shop\nstate: sqlite:///state.db\n"
        f"environments: {{prod: {{aws: {{region: us-east-1, endpoint_url: '{aws_env.url}'}}, protected: false}}}}\n"
        "components: [{name: config, kind: ssm-parameter, parameters: ['/shop/level']}]\n"
        f"notifications: {{channels: [{{webhook: {{url: '{receiver.url}', secret: '${{HOOK_SECRET}}'}}}}]}}\n"
    )
    env = {"LASTGOOD_FILE": str(tmp_path / "lastgood.yaml"), "HOOK_SECRET": "whsec-exit-test-1234"}
    assert lastgood("release", "record", "prod", "--version", "v1", env=env).returncode == 0
    ssm.put_parameter(Name="/shop/level", Value="bad", Type="String", Overwrite=True)
    assert lastgood("release", "record", "prod", "--version", "v2", env=env).returncode == 0
    done = lastgood("rollback", "prod", "--yes", "-o", "json", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ssm.get_parameter(Name="/shop/level")["Parameter"]["Value"] == "good"
    # Delivered before the process ended (the receiver is not waited for here), and each recorded as sent.
    events = [message["event"] for message in receiver.received]
    assert events[0] == "rollback-started" and "rollback-succeeded" in events
    with open_ledger(f"sqlite:///{tmp_path / 'state.db'}").session() as session:
        sent = [e for e in store.events_since(session, "shop", "prod") if e.type == "notify-sent"]
    assert len(sent) == len(events)
