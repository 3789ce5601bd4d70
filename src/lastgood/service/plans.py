"""Saved plans: `plan --out FILE` writes what a rollback would do and the live state it was planned against;
`rollback --plan FILE` runs it only if nothing changed since (as `terraform plan -out` / `apply PLAN`).

The file holds, per component, the fingerprint of its live state when planned (`domain.state.state_hash`,
never a value: a component's state holds hashes of secret values, not the values) and of the target's
recorded state, the release that was live and the target release; a digest over the whole file tells an
edited file from a written one. The rollback re-plans under its hold on the environment and refuses (exit 3,
nothing changed) when any of that differs, naming what.

`plan --detailed-exitcode` tells "changes pending" from "nothing to do" by exit code: 0 nothing to change,
`CHANGES_PENDING` (10) changes pending, 3 a plan that the rollback would refuse (blocked); 2 bad input and 1
other errors as for every command. 2 is taken ("bad input"), so terraform's 2 is 10 here.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from lastgood.domain.state import state_hash
from lastgood.engine.planner import Plan
from lastgood.errors import BadInput, Refused
from lastgood.redact import redact

FORMAT: Literal["lastgood-plan/1"] = "lastgood-plan/1"
CHANGES_PENDING = 10
MAX_PLAN_BYTES = 4 * 1024 * 1024


class PlanChanged(Refused):
    """The live state (or the release live) is not what the saved plan was written against."""


class SavedStep(BaseModel):
    component: str
    kind: str
    action: str
    before: str
    after: str
    target_hash: str  # the recorded state the step goes back to


class SavedPlan(BaseModel):
    format: Literal["lastgood-plan/1"] = FORMAT
    app: str
    env: str
    from_release: str | None
    to_release: str
    only: list[str] | None
    written_at: str
    written_by: str
    live: dict[str, str]  # component -> fingerprint of its live state when planned
    steps: list[SavedStep]
    digest: str = ""

    def computed_digest(self) -> str:
        body = self.model_dump(mode="json", exclude={"digest"})
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def saved_plan(plan: Plan, only: list[str] | None, by: str) -> SavedPlan:
    steps = [
        SavedStep(
            component=s.component,
            kind=s.kind,
            action=s.change.action,
            before=redact(s.change.before),
            after=redact(s.change.after),
            target_hash=state_hash(s.target),
        )
        for s in plan.steps
    ]
    saved = SavedPlan(
        app=plan.app,
        env=plan.env,
        from_release=plan.from_release,
        to_release=plan.to_release,
        only=only,
        written_at=datetime.now(UTC).isoformat(),
        written_by=redact(by),
        live=dict(plan.live_hashes),
        steps=steps,
    )
    saved.digest = saved.computed_digest()
    return saved


def write_plan(saved: SavedPlan, path: Path) -> None:
    """Written whole or not at all (a temporary file renamed), readable by its owner only."""
    text = redact(json.dumps(saved.model_dump(mode="json"), indent=2)) + "\n"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise BadInput(f"--out {path}: cannot write the plan: {error.strerror or error}") from None


def read_plan(path: Path) -> SavedPlan:
    """The saved plan; bad input (exit 2) when it is missing, not a plan, or was edited."""
    try:
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise BadInput(f"--plan {path}: larger than {MAX_PLAN_BYTES // 1024 // 1024} MiB, not a saved plan")
        saved = SavedPlan.model_validate_json(path.read_bytes())
    except OSError as error:
        raise BadInput(f"--plan {path}: cannot read it: {error.strerror or error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise BadInput(
            f"--plan {path}: not a plan written by `lastgood plan --out` ({where}: {first['msg']})"
        ) from None
    if saved.digest != saved.computed_digest():
        raise BadInput(f"--plan {path}: the file was edited after it was written (its digest does not match)")
    return saved


def check_against(saved: SavedPlan, fresh: Plan) -> None:
    """Refused (PlanChanged, exit 3) when the plan made now differs from the saved one, naming each difference."""
    changes = differences(saved, fresh)
    if changes:
        raise PlanChanged(
            f"the plan written at {saved.written_at} no longer holds: " + "; ".join(changes) + ". Nothing was "
            f"changed; look at the new plan (lastgood plan {saved.env}) and write it again if it is right"
        )


def differences(saved: SavedPlan, fresh: Plan) -> list[str]:
    out = []
    if (saved.app, saved.env) != (fresh.app, fresh.env):
        out.append(f"the plan is for {saved.app}/{saved.env}, not {fresh.app}/{fresh.env}")
    if saved.from_release != fresh.from_release:
        out.append(f"the live release is {fresh.from_release or '(none)'}, not {saved.from_release or '(none)'}")
    if saved.to_release != fresh.to_release:
        out.append(f"the target is {fresh.to_release}, not {saved.to_release}")
    for name in sorted(set(saved.live) | set(fresh.live_hashes)):
        was, now = saved.live.get(name), fresh.live_hashes.get(name)
        if was != now:
            out.append(f"{name}'s live state changed" if was and now else f"{name} is {'new' if now else 'gone'}")
    planned = {s.component: s.target_hash for s in saved.steps}
    now_planned = {s.component: state_hash(s.target) for s in fresh.steps}
    if planned != now_planned and not out:
        out.append(f"the steps differ: planned {sorted(planned)}, now {sorted(now_planned)}")
    return out
