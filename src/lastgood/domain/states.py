"""Rollback, step, deployment, stop and drill states. Every state change goes through `transition`; nothing else
assigns a state."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    UNCHANGED = "unchanged"  # already at target when the step ran
    FAILED = "failed"


class RollbackStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting-approval"
    DENIED = "denied"
    DECLINED = "declined"  # the decision matrix said fix forward: no rollback
    PLANNED = "planned"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM: no new step started, the calls in flight recorded
    SUPERSEDED = "superseded"  # left unfinished, then a newer rollback of the environment was run instead
    RESTORED_UNHEALTHY = "restored-unhealthy"  # every component restored and verified, the validate: block failed


DONE_STEP = {StepStatus.SUCCEEDED, StepStatus.UNCHANGED}

# A RUNNING step may be found RUNNING again when resuming after a crash; steps are idempotent, so rerun it.
STEP_TRANSITIONS: dict[str, set[str]] = {
    StepStatus.PENDING: {StepStatus.RUNNING},
    StepStatus.RUNNING: {StepStatus.SUCCEEDED, StepStatus.UNCHANGED, StepStatus.FAILED, StepStatus.RUNNING},
    StepStatus.FAILED: {StepStatus.RUNNING},
    StepStatus.SUCCEEDED: set(),
    StepStatus.UNCHANGED: set(),
}

ROLLBACK_TRANSITIONS: dict[str, set[str]] = {
    RollbackStatus.PLANNED: {RollbackStatus.RUNNING, RollbackStatus.AWAITING_APPROVAL, RollbackStatus.DECLINED},
    RollbackStatus.AWAITING_APPROVAL: {RollbackStatus.PLANNED, RollbackStatus.DENIED},
    RollbackStatus.DENIED: set(),
    RollbackStatus.DECLINED: set(),
    RollbackStatus.RUNNING: {
        RollbackStatus.SUCCEEDED,
        RollbackStatus.FAILED,
        RollbackStatus.RUNNING,
        RollbackStatus.INTERRUPTED,
        RollbackStatus.SUPERSEDED,  # its owner died and its lease expired
        RollbackStatus.RESTORED_UNHEALTHY,
    },
    RollbackStatus.FAILED: {RollbackStatus.RUNNING, RollbackStatus.SUPERSEDED},
    RollbackStatus.INTERRUPTED: {RollbackStatus.RUNNING, RollbackStatus.SUPERSEDED},
    RollbackStatus.SUCCEEDED: set(),
    RollbackStatus.SUPERSEDED: set(),
    RollbackStatus.RESTORED_UNHEALTHY: set(),  # nothing rolls back again by itself: people take it from here
}

# Open incidents: escalation and stakeholder updates run for these until acknowledged (service/escalation.py).
OPEN_ROLLBACK = {
    RollbackStatus.RUNNING,
    RollbackStatus.FAILED,
    RollbackStatus.INTERRUPTED,
    RollbackStatus.AWAITING_APPROVAL,
}
ESCALATING_ROLLBACK = OPEN_ROLLBACK | {RollbackStatus.RESTORED_UNHEALTHY}

UNFINISHED_ROLLBACK = {RollbackStatus.RUNNING, RollbackStatus.FAILED, RollbackStatus.INTERRUPTED}


class IllegalTransition(Exception):
    pass


class HasStatus(Protocol):
    status: str


def transition(obj: HasStatus, to: str, rules: dict[str, set[str]]) -> None:
    if to not in rules.get(obj.status, set()):
        raise IllegalTransition(f"{type(obj).__name__}: {obj.status} -> {to} is not allowed")
    obj.status = to


class DeploymentStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # `lastgood pause`, Ctrl-C, SIGTERM or an error: traffic left where it was; `resume` goes on
    PROMOTED = "promoted"
    ABORTED = "aborted"
    FAILED = "failed"  # the abort's rollback failed; the rollback is resumed on its own


# RUNNING -> RUNNING is a resume after the owner died (its lease expired).
DEPLOYMENT_TRANSITIONS: dict[str, set[str]] = {
    DeploymentStatus.RUNNING: {
        DeploymentStatus.RUNNING,
        DeploymentStatus.PAUSED,
        DeploymentStatus.PROMOTED,
        DeploymentStatus.ABORTED,
        DeploymentStatus.FAILED,
    },
    DeploymentStatus.PAUSED: {
        DeploymentStatus.RUNNING,
        DeploymentStatus.PROMOTED,
        DeploymentStatus.ABORTED,
        DeploymentStatus.FAILED,
    },
    DeploymentStatus.PROMOTED: set(),
    DeploymentStatus.ABORTED: set(),
    DeploymentStatus.FAILED: set(),
}

UNFINISHED_DEPLOYMENT = {DeploymentStatus.RUNNING, DeploymentStatus.PAUSED}


class StopStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"


STOP_TRANSITIONS: dict[str, set[str]] = {StopStatus.ACTIVE: {StopStatus.RELEASED}, StopStatus.RELEASED: set()}


class DrillStatus(StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


DRILL_TRANSITIONS: dict[str, set[str]] = {
    DrillStatus.RUNNING: {DrillStatus.PASSED, DrillStatus.FAILED},
    DrillStatus.PASSED: set(),
    DrillStatus.FAILED: set(),
}
