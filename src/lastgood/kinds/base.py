"""The component-kind interface: read the live state, compare it to a recorded one, apply, verify, IAM."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from lastgood.aws.clients import AwsClients
from lastgood.config.models import Component

State = dict[str, Any]
"""A component's recorded state: JSON-able, never a secret value (values are stored as hashes)."""

SpecT = TypeVar("SpecT", bound=Component)


@dataclass(frozen=True)
class KindContext:
    app: str
    env: str
    aws: AwsClients


@dataclass(frozen=True)
class Change:
    """What rolling one component back to a recorded state does."""

    action: str
    before: str
    after: str
    estimate_seconds: float
    destructive: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class IamStatement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    purpose: str = ""


@dataclass(frozen=True)
class IamScope:
    region: str
    account: str = "*"
    partition: str = "aws"


@dataclass
class ApplyResult:
    detail: str
    changed: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def value_hash(value: str) -> str:
    """A stable fingerprint of a value that may be secret; the value itself is never stored."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:32]


def state_hash(state: State) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


class Kind(ABC, Generic[SpecT]):
    """One kind of component. Subclasses are registered in lastgood.kinds.registry."""

    name: ClassVar[str]
    spec_model: ClassVar[type[Component]]
    estimate_seconds: ClassVar[float] = 2.0
    verify_timeout_seconds: ClassVar[float] = 30.0

    @abstractmethod
    def read(self, spec: SpecT, ctx: KindContext) -> State:
        """The live state, in the shape stored in the ledger."""

    @abstractmethod
    def differences(self, spec: SpecT, current: State, target: State) -> list[str]:
        """Human-readable differences between two states; empty when current is already the target."""

    @abstractmethod
    def apply(self, spec: SpecT, ctx: KindContext, target: State) -> ApplyResult:
        """Bring the component to target. Safe to repeat: reads first and does nothing if already there."""

    @abstractmethod
    def describe(self, state: State) -> str:
        """One short line for plans and tables."""

    @abstractmethod
    def iam_statements(self, spec: SpecT, scope: IamScope) -> list[IamStatement]:
        """The least-privilege IAM statements record, plan, apply and verify need."""

    def plan(self, spec: SpecT, current: State, target: State) -> Change | None:
        if not self.differences(spec, current, target):
            return None
        return Change(
            action=self.action_name(current, target),
            before=self.describe(current),
            after=self.describe(target),
            estimate_seconds=self.estimate_seconds,
        )

    def action_name(self, current: State, target: State) -> str:
        return "restore"

    def verify(self, spec: SpecT, ctx: KindContext, target: State) -> list[str]:
        return self.differences(spec, self.read(spec, ctx), target)
