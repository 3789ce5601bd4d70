"""Reading lastgood.yaml: YAML, then ${VAR}, then the models, then cross-checks; every problem at once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lastgood.config import validation
from lastgood.config.interpolate import substitute_variables
from lastgood.config.messages import did_you_mean, format_path, pydantic_problems
from lastgood.config.models import JUDGING_PLACEHOLDERS, Component, Runbook
from lastgood.config.ordering import Role, data_order_warnings
from lastgood.config.reading import LimitExceeded, load_yaml, read_text
from lastgood.errors import ConfigError
from lastgood.redact import register_secret, register_url_password

DEFAULT_FILE = "lastgood.yaml"

# "{env}" inside a YAML flow collection ([/shop/{env}/api/]) is not valid YAML, yet it is the natural way to
# write a path; the placeholders are swapped for same-length tokens that YAML reads as plain text, and back.
_PLACEHOLDERS = {
    "{env}": "\u27e8env\u27e9",
    "{app}": "\u27e8app\u27e9",
    # the canary block's, replaced when a deployment is judged (see JUDGING_PLACEHOLDERS)
    **{name: f"\u27e8{name[1:-1]}\u27e9" for name in JUDGING_PLACEHOLDERS},
}


def load_runbook(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Runbook:
    file = Path(path or os.environ.get("LASTGOOD_FILE") or DEFAULT_FILE)
    text = read_text(file)
    runbook = parse_runbook(text, source=str(file), environ=environ)
    runbook._base_dir = file.resolve().parent
    return runbook


def parse_runbook(text: str, source: str = "<text>", environ: Mapping[str, str] | None = None) -> Runbook:
    for token, safe in _PLACEHOLDERS.items():
        text = text.replace(token, safe)
    try:
        data = _restore_placeholders(load_yaml(text))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        kind = "" if isinstance(error, LimitExceeded) else "not valid YAML: "
        raise ConfigError([f"{where}{kind}{problem}"], source) from None
    if not isinstance(data, dict):
        raise ConfigError(["the file must be a mapping with app, environments and components"], source)

    problems: list[str] = []
    data = substitute_variables(data, os.environ if environ is None else environ, problems)
    try:
        runbook = Runbook.model_validate(data)
    except ValidationError as error:
        problems += pydantic_problems(error, Runbook)
        components = data.get("components")
        if isinstance(components, list):
            _validate_components(components, problems)
        raise ConfigError(problems, source) from None
    positions: list[int] = []
    specs = _validate_components(runbook.components, problems, positions)
    # A component that failed its own checks still exists: depending on it is not a second problem.
    declared = {str(c["name"]) for c in runbook.components if isinstance(c, dict) and "name" in c}
    problems += _cross_check(specs, runbook, positions, declared)
    if problems:
        raise ConfigError(problems, source)
    _register_secrets(data, runbook)
    loaded = runbook.model_copy(update={"components": specs})
    loaded._warnings = data_order_warnings(specs, positions, _role)
    return loaded


def _role(kind: str) -> Role:
    from lastgood.kinds.registry import KINDS

    found = KINDS[kind]
    return "data" if found.restores_data else "schema" if found.runs_after_code else "code"


def _register_secrets(data: Any, runbook: Runbook) -> None:
    """Passwords inside any URL of the file, and the file's secret fields, are masked wherever text leaves."""
    if isinstance(data, dict):
        for value in data.values():
            _register_secrets(value, runbook) if not isinstance(value, str) else register_url_password(value)
    elif isinstance(data, list):
        for value in data:
            _register_secrets(value, runbook) if not isinstance(value, str) else register_url_password(value)
    register_secret(runbook.policy.approval_key)
    for channel in runbook.notifications.channels:
        for secret in channel.settings.secrets():
            register_secret(secret)


def _restore_placeholders(data: Any) -> Any:
    if isinstance(data, dict):
        return {_restore_placeholders(k): _restore_placeholders(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_restore_placeholders(v) for v in data]
    if isinstance(data, str):
        for token, safe in _PLACEHOLDERS.items():
            data = data.replace(safe, token)
    return data


def _validate_components(raw: list[Any], problems: list[str], positions: list[int] | None = None) -> list[Component]:
    """The valid components; `positions` receives each one's index in the file."""
    from lastgood.kinds.registry import KINDS

    specs = []
    for index, item in enumerate(raw):
        where = f"components[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a mapping with name and kind")
            continue
        kind = item.get("kind")
        if kind is None:
            problems.append(f"{where}.kind: required key is missing (one of: {', '.join(sorted(KINDS))})")
            continue
        if not isinstance(kind, str) or kind not in KINDS:
            problems.append(f"{where}.kind: unknown kind {kind!r}{did_you_mean(str(kind), KINDS)}")
            continue
        model = KINDS[kind].spec_model
        try:
            specs.append(model.model_validate(item))
            if positions is not None:
                positions.append(index)
        except ValidationError as error:
            problems += pydantic_problems(error, model, prefix=("components", index))
    return specs


def _cross_check(
    specs: list[Component], runbook: Runbook, positions: list[int] | None = None, declared: set[str] | None = None
) -> list[str]:
    problems = []
    names = [s.name for s in specs]
    positions = list(range(len(specs))) if positions is None else positions
    known = set(names) | (declared or set())
    seen: set[str] = set()
    for index, name in zip(positions, names, strict=True):
        if name in seen:
            problems.append(f"components[{index}].name: {name!r} is used by another component")
        seen.add(name)
    for index, spec in zip(positions, specs, strict=True):
        for dep_index, dep in enumerate(spec.depends_on):
            if dep not in known:
                where = format_path(["components", index, "depends_on", dep_index])
                problems.append(f"{where}: no component named {dep!r}{did_you_mean(dep, sorted(known))}")
    problems += _redeploy_problems(specs, positions, known)
    cycle = _find_cycle({s.name: [d for d in s.depends_on if d in seen] for s in specs})
    if cycle:
        problems.append(f"components: depends_on forms a cycle: {' -> '.join(cycle)}")
    trigger_names = [t.name for t in runbook.triggers]
    for index, name in enumerate(trigger_names):
        if trigger_names.index(name) != index:
            problems.append(f"triggers[{index}].name: {name!r} is used by another trigger")
    for index, trigger in enumerate(runbook.triggers):
        for env_index, env_name in enumerate(trigger.environments or []):
            if env_name not in runbook.environments:
                hint = did_you_mean(env_name, runbook.environments)
                problems.append(f"triggers[{index}].environments[{env_index}]: no environment {env_name!r}{hint}")
    for env_name in runbook.drills:
        if env_name not in runbook.environments:
            problems.append(
                f"drills.{env_name}: no environment {env_name!r}{did_you_mean(env_name, runbook.environments)}"
            )
    for name, env in runbook.environments.items():
        if env.confirm_phrase is not None and not env.protected:
            problems.append(f"environments.{name}.confirm_phrase: only protected environments ask for a phrase")
    return problems + validation.cross_check(runbook)


def _redeploy_problems(specs: list[Component], positions: list[int], known: set[str]) -> list[str]:
    from lastgood.kinds.registry import redeploys

    problems = []
    for index, spec in zip(positions, specs, strict=True):
        for dep_index, dep in enumerate(spec.redeploy_after):
            where = format_path(["components", index, "redeploy_after", dep_index])
            if dep == spec.name:
                problems.append(f"{where}: a component cannot redeploy after itself")
            elif dep not in known:
                problems.append(f"{where}: no component named {dep!r}{did_you_mean(dep, sorted(known))}")
        if spec.redeploy_after and spec.redeploy_command is None and not redeploys(spec.kind):
            where = format_path(["components", index, "redeploy_after"])
            problems.append(f"{where}: a {spec.kind} has no redeploy action of its own; add redeploy_command")
    return problems


def _find_cycle(graph: dict[str, list[str]]) -> list[str]:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str]:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return []
        visiting.append(node)
        for dep in graph.get(node, []):
            found = visit(dep)
            if found:
                return found
        visiting.pop()
        done.add(node)
        return []

    for node in graph:
        cycle = visit(node)
        if cycle:
            return cycle
    return []
