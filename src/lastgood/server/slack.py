"""Approve / Deny from Slack: `POST /slack/interactions` checks Slack's signature (v0), answers at once, and a
background job acts as the person of the file whose `slack:` is the clicking member, through the service, then
posts the result to the interaction's `response_url`.

A click by a member no person of the file names, or by a person who is not an approver on this server, changes
nothing and is told so (only to them). The requester's own approval is refused by the service, as in the API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import APIRouter, HTTPException, Request, Response

from lastgood.config.policy import Person
from lastgood.domain.actor import role_allows
from lastgood.errors import LastgoodError
from lastgood.notify.slack import ACTIONS_BLOCK, APPROVE, DENY, escape, with_server_url
from lastgood.redact import redact, register_secret
from lastgood.server.apps import Apps
from lastgood.server.background import start_resume
from lastgood.server.deps import State
from lastgood.server.jobs import job
from lastgood.server.settings import ServerSettings
from lastgood.server.state import ServerState
from lastgood.service.access import user_named
from lastgood.service.rollbacks import approve_rollback, deny_rollback, runs_when_approved

log = logging.getLogger("lastgood.server.slack")
router = APIRouter(tags=["slack"])

MAX_AGE = 300  # seconds: an older (or as far future) timestamp is a replay
MAX_BODY = 256 * 1024
REPLY_TIMEOUT = 10.0
_ACTION = re.compile(rf"^({APPROVE}|{DENY}):([A-Za-z0-9][A-Za-z0-9_.-]{{0,127}})$")


class BadSignature(Exception):
    """The request is not from Slack (401)."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 scheme: v0= + HMAC-SHA256 of `v0:{timestamp}:{body}` keyed with the signing secret."""
    mac = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v0=" + mac.hexdigest()


def verify(secret: str, timestamp: str | None, sent: str | None, body: bytes, now: float) -> None:
    """Raise BadSignature unless `sent` signs `body` at a timestamp within MAX_AGE of `now`."""
    if not timestamp or not sent:
        raise BadSignature("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        at = int(timestamp)
    except ValueError:
        raise BadSignature("X-Slack-Request-Timestamp is not a number") from None
    if abs(now - at) > MAX_AGE:
        raise BadSignature("the request's timestamp is more than 5 minutes away: a replay is refused")
    if not hmac.compare_digest(sent.encode(), signature(secret, timestamp, body).encode()):
        raise BadSignature("the signature does not match the body (is the signing secret right?)")


@dataclass(frozen=True)
class Click:
    verb: str  # approve | deny
    rollback_id: str
    member: str  # the Slack member id who clicked
    response_url: str
    blocks: list[dict[str, Any]]  # the message clicked on, to answer in place


def clicks(payload: dict[str, Any]) -> list[Click]:
    """Our buttons' clicks in a block_actions payload; anything else (the link button, other apps) is none."""
    if payload.get("type") != "block_actions":
        return []
    member = str((payload.get("user") or {}).get("id") or "")
    response_url = str(payload.get("response_url") or "")
    blocks = list((payload.get("message") or {}).get("blocks") or [])
    found = []
    for action in payload.get("actions") or []:
        matched = _ACTION.match(str(action.get("action_id") or ""))
        if matched and member and response_url.startswith(("https://", "http://")):
            found.append(Click(matched[1], matched[2], member, response_url, blocks))
    return found


def _payload(body: bytes) -> dict[str, Any]:
    try:
        values = parse_qs(body.decode(), strict_parsing=True).get("payload")
        payload = json.loads(values[0]) if values else None
    except (UnicodeDecodeError, ValueError):
        payload = None
    if not isinstance(payload, dict):
        raise HTTPException(400, "expected a form with a JSON `payload`, as Slack sends interactions")
    return payload


@router.post("/slack/interactions", include_in_schema=False)
async def interactions(request: Request, state: State) -> Response:
    """Slack's Interactivity Request URL. Answers 200 at once (Slack waits 3 s at most); the work is a job."""
    secret = state.settings.slack_signing_secret
    if not secret:
        raise HTTPException(503, "Slack approvals are off: start the server with LASTGOOD_SLACK_SIGNING_SECRET set")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, "the interaction is too large")
    headers = request.headers
    try:
        verify(secret, headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature"), body, time.time())
    except BadSignature as error:
        raise HTTPException(401, f"not from Slack: {error}") from None
    for click in clicks(_payload(body)):
        if state.jobs is None:
            _post(click.response_url, _ephemeral("This lastgood server runs no background work: nothing was done."))
            continue
        state.jobs.submit("slack-click", **click.__dict__)
    return Response(status_code=200)


@job("slack-click")
def slack_click_job(
    state: ServerState, verb: str, rollback_id: str, member: str, response_url: str, blocks: list[dict[str, Any]]
) -> dict[str, Any]:
    reply = act(state, Click(verb, rollback_id, member, response_url, blocks))
    _post(response_url, reply)
    return {"rollback": rollback_id, "reply": reply.get("text", "")}


def act(state: ServerState, click: Click) -> dict[str, Any]:
    """Do what the click asks as its person; the reply to post to Slack."""
    try:
        app, env = state.apps.find_rollback(click.rollback_id)
        person = _approver(state, app, click.member)
        ctx = state.apps.env_context(app, env, person.name, via="slack")
        if click.verb == DENY:
            deny_rollback(ctx, click.rollback_id, f"denied in Slack by {person.name}")
            return _final(click, f"Denied in Slack by {person.name}: rollback {click.rollback_id} will not run.")
        outcome = approve_rollback(ctx, click.rollback_id, token=None, run=False, authenticated=True)
    except LastgoodError as error:
        return _ephemeral(f"{str(error).rstrip('.')}. Nothing was changed.")
    approved = f"{outcome.message} in Slack"  # "rb-...: approved by abe (1 of 1) in Slack"
    if not runs_when_approved(ctx, click.rollback_id):
        if outcome.status == "awaiting-approval":
            return _in_channel(f"{approved}; it waits for more approvals.")
        return _final(click, f"{approved}; a planned rollback runs in its window (lastgood resume).")
    try:
        started = start_resume(state, app, env, person.name, click.rollback_id)
    except LastgoodError as error:
        return _final(click, f"{approved}; but it did not start: {error}")
    return _final(click, f"{approved}; the rollback is {started.status}.")


def _approver(state: ServerState, app: str, member: str) -> Person:
    """The file's person for this Slack member, who must be an approver (or admin) of this server."""
    person = state.apps.runbook(app).policy.person_on_slack(member)
    if person is None:
        raise NotOnFile(
            f"Slack member {member} is none of {app}'s people: add `slack: {member}` to your entry under "
            "policy.people in its runbook file"
        )
    user = user_named(state.ledger, person.name)
    if user is None or not role_allows(user.role, "approver"):
        role = user.role if user else "not a user"
        raise NotOnFile(f"{person.name} ({role} on this server) needs the approver role to approve or deny")
    return person


class NotOnFile(LastgoodError):
    """The clicking member may not act here; told to them only."""


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "replace_original": False, "text": escape(text)}


def _in_channel(text: str) -> dict[str, Any]:
    return {"response_type": "in_channel", "replace_original": False, "text": escape(text)}


def _final(click: Click, text: str) -> dict[str, Any]:
    """Replace the message: the same blocks without the buttons (nothing more to click), and the result."""
    kept = [b for b in click.blocks if not (b.get("type") == "actions" and b.get("block_id") == ACTIONS_BLOCK)]
    result = {"type": "section", "text": {"type": "plain_text", "text": text[:3000]}}
    return {"replace_original": True, "text": escape(text), "blocks": [*kept, result]}


def _post(url: str, body: dict[str, Any]) -> None:
    """Answer Slack; failures are logged without the URL (it lets anyone post into the conversation)."""
    try:
        answer = httpx.post(url, json=redact(body), timeout=REPLY_TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as error:
        log.warning("could not answer Slack: %s", type(error).__name__)
        return
    if answer.status_code >= 300:
        log.warning("Slack refused an answer: HTTP %s %s", answer.status_code, answer.text[:200])


def prepare(settings: ServerSettings, apps: Apps) -> None:
    """Keep the signing secret out of every output; give Slack channels the server's public URL for buttons."""
    register_secret(settings.slack_signing_secret)
    if not settings.public_url:
        return
    for name, runbook in list(apps.runbooks.items()):
        notifications = with_server_url(runbook.notifications, settings.public_url)
        apps.runbooks[name] = runbook.model_copy(update={"notifications": notifications})
