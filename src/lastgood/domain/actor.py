"""Who is acting: every use case takes one, so the ledger records a person or a process, never a guess."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Via = Literal["cli", "guard", "api", "worker", "deploy", "drill", "demo", "test"]


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    roles: frozenset[str] = frozenset()
    via: Via = "cli"

    def __str__(self) -> str:
        return f"{self.name} ({self.via})"


GUARD = Actor(name="lastgood-guard", via="guard")
