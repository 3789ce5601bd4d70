"""Kind name -> implementation. Adding a kind is one module and one line here."""

from __future__ import annotations

from typing import Any

from lastgood.config.messages import did_you_mean
from lastgood.errors import BadInput
from lastgood.kinds.amplify_branch import AmplifyBranch
from lastgood.kinds.base import Kind
from lastgood.kinds.lambda_alias import LambdaAlias
from lastgood.kinds.secret import Secret
from lastgood.kinds.ssm_parameter import SsmParameter

KINDS: dict[str, Kind[Any]] = {}


def register(kind: Kind[Any]) -> None:
    KINDS[kind.name] = kind


def get_kind(name: str) -> Kind[Any]:
    if name not in KINDS:
        raise BadInput(f"unknown kind {name!r}{did_you_mean(name, KINDS)}")
    return KINDS[name]


for _kind in (LambdaAlias(), SsmParameter(), Secret(), AmplifyBranch()):
    register(_kind)
