"""The component's keys, and the error a settled-elsewhere stack raises."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lastgood.config.models import Component
from lastgood.errors import StepFailed


class CloudFormationStackSpec(Component):
    kind: Literal["cloudformation-stack"] = "cloudformation-stack"
    stack: str = Field(description="Stack name; {env} is substituted.")
    skip_resources: list[str] = Field(
        default_factory=list,
        description="Logical ids ContinueUpdateRollback may skip when the stack is UPDATE_ROLLBACK_FAILED "
        "(resources CloudFormation cannot roll back; they are left as they are).",
    )


class StackSettledElsewhere(StepFailed):
    """The stack finished a cancel, a continued rollback or an operation already running, on a state other than
    the recorded one. Retryable: the engine applies again, and apply then starts UpdateStack."""

    retryable = True
