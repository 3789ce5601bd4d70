"""What a deployment looks like to its callers: Pydantic views of the ledger row, and the steps parsed."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from lastgood.domain.states import DeploymentStatus
from lastgood.engine.executor import RollbackResult
from lastgood.errors import BadInput
from lastgood.ledger.tables import DeploymentRow


class Deployment(BaseModel):
    """One deployment as the ledger has it."""

    id: str
    env: str
    component: str
    status: DeploymentStatus
    from_version: str
    to_version: str
    release: str
    previous_release: str | None
    steps: list[float]
    current_step: int
    weight: float
    pause_seconds: float
    requested: str | None = None
    requested_by: str | None = None
    started_by: str
    message: str = ""
    decisions: list[dict[str, Any]] = []
    rollback_id: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    @classmethod
    def of(cls, row: DeploymentRow) -> Deployment:
        return cls(
            id=row.id,
            env=row.env,
            component=row.component,
            status=DeploymentStatus(row.status),
            from_version=row.from_version,
            to_version=row.to_version,
            release=row.release_label,
            previous_release=row.previous_release,
            steps=[float(s) for s in row.steps],
            current_step=row.current_step,
            weight=row.weight,
            pause_seconds=row.pause_seconds,
            requested=row.requested,
            requested_by=row.requested_by,
            started_by=row.started_by,
            message=row.message,
            decisions=list(row.decisions),
            rollback_id=row.rollback_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            finished_at=row.finished_at,
        )

    def resume_command(self) -> str:
        return f"lastgood deploy {self.env} --resume {self.id}"


class DeployResult(Deployment):
    """A deployment where its run left it, with the abort's rollback when there was one."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    rollback: RollbackResult | None = None

    @classmethod
    def of_deployment(cls, deployment: Deployment, rollback: RollbackResult | None = None) -> DeployResult:
        return cls(**deployment.model_dump(), rollback=rollback)

    @property
    def exit_code(self) -> int:
        """0 promoted, 130 paused (as after Ctrl-C), 1 aborted or failed."""
        if self.status == DeploymentStatus.PROMOTED:
            return 0
        return 130 if self.status == DeploymentStatus.PAUSED else 1

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"rollback"})
        data["rollback"] = self.rollback.to_dict() if self.rollback else None
        data["resume"] = self.resume_command() if self.status == DeploymentStatus.PAUSED else None
        return data


def parse_steps(text: str) -> list[float]:
    """'10,50,100' -> [10.0, 50.0, 100.0]: increasing percentages that end at 100."""
    try:
        steps = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadInput(f"--steps: {text!r} is not a comma-separated list of percentages, e.g. 10,50,100") from None
    if not steps or any(not 0 < s <= 100 for s in steps):
        raise BadInput(f"--steps: each step is a percentage in (0, 100], got {text!r}")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise BadInput(f"--steps: the percentages must increase, got {text!r}")
    if steps[-1] != 100:
        steps.append(100.0)
    return steps
