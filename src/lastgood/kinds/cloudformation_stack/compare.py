"""Comparing two states of a stack (pure): the differences, a one-line description, a fingerprint."""

from __future__ import annotations

import json

from lastgood.kinds.base import State, value_hash
from lastgood.kinds.cloudformation_stack.read import SETTLED
from lastgood.kinds.cloudformation_stack.template import resource_summary, resources, short


def differences(current: State, target: State) -> list[str]:
    out = []
    if current["template_hash"] != target["template_hash"]:
        out.append(f"template {short(current)} -> {short(target)}{resource_summary(current, target)}")
    for key, value in sorted(target["parameters"].items()):
        now = current["parameters"].get(key)
        if now != value:
            out.append(f"parameter {key}: {'(not set)' if now is None else repr(now)} -> {value!r}")
    out += [f"NoEcho parameter {key} is no longer on the stack" for key in lost_no_echo(current, target)]
    if current["status"] not in SETTLED:
        out.append(f"stack is {current['status']}")
    return out


def describe(state: State) -> str:
    found = resources(state["template_body"])
    count = "?" if found is None else str(len(found))
    parameters = len(state["parameters"]) + len(state["no_echo_parameters"])
    status = "" if state["status"] in SETTLED else f", {state['status']}"
    plural = "" if parameters == 1 else "s"
    return f"template {short(state)} ({count} resources, {parameters} parameter{plural}{status})"


def lost_no_echo(current: State, target: State) -> list[str]:
    present = set(current["no_echo_parameters"]) | set(current["parameters"])
    return sorted(set(target["no_echo_parameters"]) - present)


def fingerprint(state: State) -> str:
    return value_hash(json.dumps([state["template_hash"], state["parameters"]], sort_keys=True))
