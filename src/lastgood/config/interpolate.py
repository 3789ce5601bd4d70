"""Substitution: ${VAR} (and ${VAR:-default}) at load time, {env} when a component is used in an environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lastgood.config.messages import format_path
from lastgood.redact import register_variable

# A default may itself hold {env} or {app}: ${DB:-shop/{env}/db}.
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-((?:\{[^{}]*\}|[^}])*))?\}")


def substitute_variables(
    data: Any, environ: Mapping[str, str], problems: list[str], loc: tuple[int | str, ...] = ()
) -> Any:
    if isinstance(data, dict):
        return {k: substitute_variables(v, environ, problems, (*loc, str(k))) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute_variables(v, environ, problems, (*loc, i)) for i, v in enumerate(data)]
    if not isinstance(data, str):
        return data

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            register_variable(name, environ[name])
            return environ[name]
        if default is not None:
            return default
        problems.append(f"{format_path(loc)}: environment variable {name!r} is not set")
        return match.group(0)

    return _VAR.sub(replace, data)


def substitute_env(data: Any, env: str, app: str) -> Any:
    if isinstance(data, dict):
        return {k: substitute_env(v, env, app) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute_env(v, env, app) for v in data]
    if isinstance(data, str):
        return data.replace("{env}", env).replace("{app}", app)
    return data
