"""A planted secret never appears in any output or anywhere in the ledger file."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from lastgood import redact
from lastgood.cli.app import main
from lastgood.kinds.fake import FakeWorld, installed

TOKEN = "tok-PLANTED-7f3a9c2e"
PASSWORD = "pw-PLANTED-51d0b8"
KEY = "key-PLANTED-c4e2a1"

RUNBOOK = """
app: shop
state: sqlite:///state.db
environments: {staging: {}}
components:
  - {name: api, kind: fake}
  - name: deploy-tool
    kind: command
    record: "cat version.txt"
    rollback: "echo calling the deploy API with ${SHOP_API_TOKEN} for {value}; printf %s {value} > version.txt"
    cwd: .
policy:
  approval_key: ${SHOP_APPROVAL_KEY}
notifications:
  channels:
    - webhook: {url: "http://127.0.0.1:9/hook", secret: "${SHOP_WEBHOOK_SECRET}"}
    - email:
        {smtp_host: 127.0.0.1, from: lastgood@example.com, to: [oncall@example.com], password: "${SHOP_SMTP_PASSWORD}"}
"""


@pytest.fixture
def world() -> Iterator[FakeWorld]:
    with installed(FakeWorld({"api": "v1"})) as w:
        yield w
    redact.clear()


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_planted_secrets_stay_out_of_outputs_and_ledger(tmp_path, world, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", TOKEN + "-webhook")
    monkeypatch.setenv("SHOP_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("SHOP_APPROVAL_KEY", KEY)
    monkeypatch.setenv("LASTGOOD_FILE", str(tmp_path / "lastgood.yaml"))
    (tmp_path / "lastgood.yaml").write_text(RUNBOOK)
    (tmp_path / "version.txt").write_text("1.0")
    outputs: list[str] = []

    def run(*args: str) -> int:
        code = main(list(args))
        out, err = capsys.readouterr()
        outputs.extend([out, err])
        return code

    assert run("validate") == 0
    assert run("release", "record", "staging", "--version", "v1", "-o", "json") == 0
    world.set("api", "v2")
    (tmp_path / "version.txt").write_text("2.0")
    assert run("release", "record", "staging", "--version", "v2") == 0
    assert run("plan", "staging") == 0
    assert run("rollback", "staging", "--yes", "-o", "json") == 0
    rollback_id = json.loads(outputs[-2])["id"]
    for args in (("audit", "log"), ("audit", "verify"), ("iam-policy",), ("schema",), ("release", "list", "staging")):
        assert run(*args) == 0
    assert run("show", rollback_id) == 0
    assert run("show", rollback_id, "-o", "json") == 0
    # The command really printed the token: it is the redaction that keeps it out.
    assert (tmp_path / "version.txt").read_text() == "1.0"
    everything = "\n".join(outputs)
    assert "****" in everything
    ledger = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    for secret in (TOKEN, PASSWORD, KEY):
        assert secret not in everything
        assert secret.encode() not in ledger


def test_a_secret_in_recorded_state_is_refused(tmp_path, world, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)
    (tmp_path / "lastgood.yaml").write_text(
        "app: shop\nstate: sqlite:///state.db\nenvironments: {staging: {}}\ncomponents:\n"
        "  - {name: leaky, kind: command, record: 'echo ${SHOP_API_TOKEN}', rollback: 'true'}\n"
    )
    assert main(["release", "record", "staging", "--version", "v1", "-f", str(tmp_path / "lastgood.yaml")]) == 2
    out, err = capsys.readouterr()
    assert "contains a secret value" in err and TOKEN not in out + err
    ledger = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert TOKEN.encode() not in ledger
