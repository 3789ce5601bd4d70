"""Slack's side of approvals, as pure functions: the buttons on an approval-needed message, the v0 signature,
and which clicks in an interaction are ours."""

from __future__ import annotations

import pytest

from lastgood.config.notifications import Notifications
from lastgood.notify.messages import message_from_rollback
from lastgood.notify.slack import SlackSettings, payload, with_server_url
from lastgood.server.slack import BadSignature, clicks, signature, verify

FACTS = {"id": "rb-0a1b2c3d4e", "app": "shop", "env": "prod", "from_release": "v2", "to_release": "v1"}

# Slack's published example (api.slack.com/authentication/verifying-requests-from-slack): a vector we did not
# compute ourselves, so a wrongly assembled base string cannot agree with itself.
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = "1531420618"
VECTOR_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def _actions(body: dict[str, object]) -> list[dict[str, object]]:
    return [b for b in body["blocks"] if b["type"] == "actions"]  # type: ignore[attr-defined,index]


def test_an_approval_needed_message_carries_approve_deny_and_a_link() -> None:
    message = message_from_rollback("approval-needed", FACTS)
    (actions,) = _actions(payload(message, "https://lastgood.example.com/"))
    approve, deny, link = actions["elements"]  # type: ignore[misc]
    assert actions["block_id"] == "lastgood-approval"
    assert (approve["action_id"], approve["value"]) == ("approve:rb-0a1b2c3d4e", "rb-0a1b2c3d4e")
    assert approve["style"] == "primary"
    assert approve["text"] == {"type": "plain_text", "text": "Approve"} and "confirm" not in approve
    assert (deny["action_id"], deny["style"]) == ("deny:rb-0a1b2c3d4e", "danger")
    assert deny["confirm"]["confirm"]["text"] == "Deny" and "rb-0a1b2c3d4e" in deny["confirm"]["text"]["text"]
    assert link["url"] == "https://lastgood.example.com/rollbacks/rb-0a1b2c3d4e"
    assert len({e["action_id"] for e in actions["elements"]}) == 3  # type: ignore[index]  # unique, as Slack requires


def test_no_buttons_without_a_server_or_on_other_events() -> None:
    assert _actions(payload(message_from_rollback("approval-needed", FACTS))) == []
    for event in ("rollback-started", "rollback-succeeded", "rollback-failed"):
        assert _actions(payload(message_from_rollback(event, FACTS), "https://lastgood.example.com")) == []


def test_the_servers_url_fills_only_slack_channels_without_their_own() -> None:
    notifications = Notifications.model_validate(
        {
            "channels": [
                {"slack": {"webhook_url": "https://hooks.slack.com/services/a"}},
                {"slack": {"webhook_url": "https://hooks.slack.com/services/b", "server_url": "https://own.example"}},
                {"webhook": {"url": "https://hooks.example/x", "secret": "whsec-unit-test-0001"}},
            ]
        }
    )
    filled = with_server_url(notifications, "https://lastgood.example.com")
    settings = [c.settings for c in filled.channels]
    assert isinstance(settings[0], SlackSettings) and settings[0].server_url == "https://lastgood.example.com"
    assert settings[0].webhook_url == "https://hooks.slack.com/services/a"
    assert isinstance(settings[1], SlackSettings) and settings[1].server_url == "https://own.example"
    assert filled.channels[2].type == "webhook"
    assert notifications.channels[0].settings.server_url is None  # type: ignore[attr-defined]  # a copy


def test_slacks_published_signature_verifies() -> None:
    assert signature(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    verify(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_SIGNATURE, VECTOR_BODY, now=1531420618 + 299)


@pytest.mark.parametrize(
    ("secret", "timestamp", "sent", "body", "now", "why"),
    [
        ("wrong-secret-000", VECTOR_TIMESTAMP, VECTOR_SIGNATURE, VECTOR_BODY, 1531420618, "does not match"),
        (VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_SIGNATURE, VECTOR_BODY + b"&x=1", 1531420618, "does not match"),
        (VECTOR_SECRET, "1531420619", VECTOR_SIGNATURE, VECTOR_BODY, 1531420618, "does not match"),
        (VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_SIGNATURE, VECTOR_BODY, 1531420618 + 301, "replay"),
        (VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_SIGNATURE, VECTOR_BODY, 1531420618 - 301, "replay"),
        (VECTOR_SECRET, None, VECTOR_SIGNATURE, VECTOR_BODY, 1531420618, "missing"),
        (VECTOR_SECRET, VECTOR_TIMESTAMP, None, VECTOR_BODY, 1531420618, "missing"),
        (VECTOR_SECRET, "soon", VECTOR_SIGNATURE, VECTOR_BODY, 1531420618, "not a number"),
    ],
)
def test_a_wrong_or_old_signature_is_refused(
    secret: str, timestamp: str | None, sent: str | None, body: bytes, now: float, why: str
) -> None:
    with pytest.raises(BadSignature, match=why):
        verify(secret, timestamp, sent, body, now)


def test_only_our_buttons_are_clicks() -> None:
    def interaction(*action_ids: str, kind: str = "block_actions") -> dict[str, object]:
        return {
            "type": kind,
            "user": {"id": "U0ABE"},
            "response_url": "https://hooks.slack.com/actions/T1/1/x",
            "message": {"blocks": [{"type": "header"}]},
            "actions": [{"action_id": a, "type": "button"} for a in action_ids],
        }

    (click,) = clicks(interaction("approve:rb-0a1b2c3d4e", "open:rb-0a1b2c3d4e", "someone-elses-button"))
    assert (click.verb, click.rollback_id, click.member) == ("approve", "rb-0a1b2c3d4e", "U0ABE")
    assert click.blocks == [{"type": "header"}]
    assert [c.verb for c in clicks(interaction("deny:rb-1"))] == ["deny"]
    assert clicks(interaction("approve:rb-1", kind="view_submission")) == []
    assert clicks(interaction("approve:../../etc")) == []
    assert clicks(interaction("approve:")) == []
