"""What a deployment tells whoever watches it (the console, a test)."""

from __future__ import annotations

from typing import Any, Protocol

from lastgood.engine.deploy.models import Deployment
from lastgood.judge.base import TriggerVerdict


class DeployListener(Protocol):
    def shifted(self, deployment: Deployment, step: int, percent: float) -> None: ...
    def evaluated(self, verdicts: list[TriggerVerdict]) -> None: ...
    def judged(self, decision: dict[str, Any]) -> None: ...
    def canary(self, state: dict[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...


class QuietDeployListener:
    def shifted(self, deployment: Deployment, step: int, percent: float) -> None:
        pass

    def evaluated(self, verdicts: list[TriggerVerdict]) -> None:
        pass

    def judged(self, decision: dict[str, Any]) -> None:
        pass

    def canary(self, state: dict[str, Any]) -> None:
        pass

    def message(self, text: str) -> None:
        pass
