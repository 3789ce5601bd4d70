"""Message templates from the file (issue 15, item 4): Jinja2 in a sandbox with StrictUndefined, checked when the
file loads (exit 2 naming the path), rendered with the rollback's facts into what a real local receiver gets,
secrets masked; a template failing at run time falls back to the built-in text."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lastgood import redact
from lastgood.cli.app import main
from lastgood.config.comms import SAMPLE_FACTS, TEMPLATE_VARIABLES
from lastgood.config.loader import parse_runbook
from lastgood.errors import ConfigError
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.notify.base import Message
from lastgood.notify.messages import message_from_rollback
from lastgood.notify.templates import with_template
from lastgood.testing.webhooks import WebhookReceiver

TOKEN = "tok-very-secret-9876"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()
    redact.clear()


def wait_for(check: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


BASE = """
app: shop
environments: {staging: {}}
components: []
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_runbook(BASE + text)
    return raised.value.problems


def test_a_template_that_does_not_render_is_a_load_error_naming_its_path() -> None:
    problems = problems_of('notifications:\n  templates:\n    rollback-started: "{{ app }} {{ releaze }}"\n')
    assert problems == [
        "notifications.templates.rollback-started: the template does not render: 'releaze' is undefined"
    ]
    assert (
        "(line 1): Expected an expression"
        in problems_of('notifications: {templates: {rollback-failed: "{% if %}"}}')[0]
    )
    problems = problems_of('notifications: {templates: {rolback-started: "x"}}')
    assert problems[0].startswith("notifications.templates.rolback-started.[key]: input should be 'rollback-started'")
    # The sandbox: no way from a template to Python's internals.
    escape = 'notifications: {templates: {rollback-started: "{{ app.__class__.__mro__ }}"}}'
    assert "access to attribute '__class__' of 'str' object is unsafe" in problems_of(escape)[0]


def test_the_cli_validate_exits_2_on_a_bad_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(BASE + 'notifications: {templates: {rollback-succeeded: "{{ nope }}"}}\n')
    assert main(["validate", "-f", str(file)]) == 2
    assert "notifications.templates.rollback-succeeded" in capsys.readouterr().err


def test_every_documented_variable_is_there_even_when_a_message_lacks_it() -> None:
    every = "\n".join(f"{name}={{{{ {name} }}}}" for name in TEMPLATE_VARIABLES)
    message = message_from_rollback("rollback-started", {"id": "rb-1", "app": "shop", "env": "prod"})
    body = with_template(message, {"rollback-started": every}, {"id": "rb-1", "app": "shop", "env": "prod"}).body
    assert body is not None
    assert [line.split("=")[0] for line in body.splitlines()] == list(TEMPLATE_VARIABLES)
    assert "severity=None" in body and "id=rb-1" in body
    assert set(SAMPLE_FACTS) == set(TEMPLATE_VARIABLES)


def test_a_template_failing_at_run_time_falls_back_to_the_built_in_text() -> None:
    message = Message("rollback-succeeded", "shop", "prod", "rb-1", "i", "m", "a", "done", "Complete")
    out = with_template(message, {"rollback-succeeded": "{{ trigger.value + 1 }}"}, {"trigger": None})
    assert out.body is None and out.text().startswith("Issue: i")
    assert "the file's template for rollback-succeeded did not render" in out.details[-1]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_rollback_sends_the_files_templates_with_its_facts_and_no_secret(
    tmp_path: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", TOKEN)
    monkeypatch.setenv("LASTGOOD_USER", "carol")
    (tmp_path / "lastgood.yaml").write_text(f"""
app: shop
state: sqlite:///state.db
environments: {{staging: {{}}}}
components: [{{name: api, kind: fake}}]
notifications:
  channels: [{{webhook: {{url: "{receiver.url}", secret: "${{API_TOKEN}}"}}}}]
  templates:
    rollback-started: |-
      [{{{{ severity | upper }}}}] {{{{ app }}}}/{{{{ env }}}}:
      rolling back {{{{ from_release }}}} -> {{{{ to_release }}}}
      asked by {{{{ requested_by }}}} because {{{{ reason }}}}
    rollback-succeeded: "{{{{ id }}}} done: {{{{ steps_done }}}}/{{{{ steps_total }}}} steps; {{{{ status }}}}"
""")
    monkeypatch.setenv("LASTGOOD_FILE", str(tmp_path / "lastgood.yaml"))
    with installed(FakeWorld({"api": "v1"})) as world:
        assert main(["release", "record", "staging", "--version", "v1"]) == 0
        world.set("api", "v2")
        assert main(["release", "record", "staging", "--version", "v2"]) == 0
        reason = f"errors after v2 (token {TOKEN} leaked in the logs)"
        assert main(["rollback", "staging", "--yes", "--severity", "high", "--reason", reason]) == 0
    by_event: dict[str, dict[str, Any]] = {}
    assert wait_for(lambda: {"rollback-started", "rollback-succeeded"} <= {m["event"] for m in receiver.received})
    for message in receiver.received:
        by_event[message["event"]] = message
    started = by_event["rollback-started"]["text"]
    assert started == (
        "[HIGH] shop/staging:\nrolling back v2 -> v1\n"
        "asked by carol because errors after v2 (token **** leaked in the logs)"
    )
    done = by_event["rollback-succeeded"]
    assert done["text"].endswith("done: 1/1 steps; Complete (1 of 1 steps done)") and done["text"].startswith("rb-")
    assert all(TOKEN not in json.dumps(m) for m in receiver.received)
