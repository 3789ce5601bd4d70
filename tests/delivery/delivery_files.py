"""The delivery files (examples/ci/, Dockerfile, deploy/) read as data: their `lastgood` command lines, parsed
against the real CLI without running them."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml
from dockerfile_parse import DockerfileParser
from typer.core import TyperGroup

from lastgood.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
GITLAB_RESERVED = {"stages", "default", "variables", "include", "workflow", "image", "services", "cache"}
GITLAB_SCRIPTS = ("before_script", "script", "after_script")
SHELL_KEYWORDS = {"if", "then", "else", "elif", "do", "!", "time", "exec"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
INVOCATION = re.compile(r"(?<![\w\[-])lastgood\s+[a-z-]")  # `lastgood deploy`, not `"lastgood[postgres]"`


@dataclass(frozen=True)
class Command:
    """One `lastgood ...` command line of a delivery file: where it is, and its arguments after `lastgood`."""

    where: str
    args: tuple[str, ...]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_documents() -> list[dict[str, Any]]:
    """Every manifest kustomization.yaml applies, and the example Secret."""
    kustomization = load_yaml(K8S / "kustomization.yaml")
    files = [*kustomization["resources"], "secret.example.yaml"]
    return [doc for name in files for doc in load_all(K8S / name)]


def github_scripts() -> list[tuple[str, str]]:
    workflow = load_yaml(CI / "github-actions.yml")
    return [
        (f"github-actions.yml jobs.{job}.steps[{index}]", step["run"])
        for job, body in workflow["jobs"].items()
        for index, step in enumerate(body["steps"])
        if "run" in step
    ]


def gitlab_scripts() -> list[tuple[str, str]]:
    pipeline = load_yaml(CI / "gitlab-ci.yml")
    found = []
    for job, body in pipeline.items():
        if job in GITLAB_RESERVED or not isinstance(body, dict):
            continue
        for key in GITLAB_SCRIPTS:
            found += [(f"gitlab-ci.yml {job}.{key}[{i}]", line) for i, line in enumerate(body.get(key, []))]
    found += [(f"gitlab-ci.yml default.{k}", "\n".join(pipeline["default"].get(k, []))) for k in GITLAB_SCRIPTS]
    return found


def shell_commands(where: str, script: str) -> list[Command]:
    """The simple commands of a shell script that run `lastgood`: after `;`, `&&`, `|`, in `$(...)`, `if`/`then`."""
    script = re.sub(r"\$\{\{[^}]*\}\}", "EXPRESSION", script)  # GitHub's ${{ ... }}
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        segment: list[str] = []
        for token in [*lexer, ";"]:
            if token and all(c in lexer.punctuation_chars for c in token):
                commands += _lastgood(where, segment)
                segment = []
            else:
                segment.append(token)
    return commands


def _lastgood(where: str, words: list[str]) -> list[Command]:
    while words and (words[0] in SHELL_KEYWORDS or ASSIGNMENT.match(words[0])):
        words = words[1:]
    return [Command(where, tuple(words[1:]))] if words and words[0] == "lastgood" else []


def invocations(script: str) -> int:
    """How many times a script names `lastgood SOMETHING`: what shell_commands must all have found."""
    return len(INVOCATION.findall(re.sub(r"#[^\n]*", "", script)))


def ci_commands() -> list[Command]:
    return [c for where, script in github_scripts() + gitlab_scripts() for c in shell_commands(where, script)]


def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    return parser


def exec_form(parser: DockerfileParser, instruction: str) -> list[str]:
    """The last ENTRYPOINT / CMD / HEALTHCHECK CMD, which must be in exec (JSON) form."""
    values = [i["value"] for i in parser.structure if i["instruction"] == instruction]
    assert values, f"the Dockerfile has no {instruction}"
    value = values[-1]
    if instruction == "HEALTHCHECK":
        value = value[value.index("CMD") + len("CMD") :]
    parsed = yaml.safe_load(value.strip())
    assert isinstance(parsed, list), f"{instruction} is not in exec form: {value}"
    return [str(v) for v in parsed]


def image_command() -> list[str]:
    """What `docker run IMAGE` runs: ENTRYPOINT + CMD."""
    parser = dockerfile()
    return exec_form(parser, "ENTRYPOINT") + exec_form(parser, "CMD")


def compose_commands() -> dict[str, list[str]]:
    """Each lastgood service's full command: the image's ENTRYPOINT + the service's command."""
    compose = load_yaml(DEPLOY / "docker-compose.yml")
    entrypoint = exec_form(dockerfile(), "ENTRYPOINT")
    return {
        name: entrypoint + service["command"]
        for name, service in compose["services"].items()
        if service.get("image", "").startswith("lastgood")
    }


def deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == "Deployment"}


def k8s_commands() -> dict[str, list[str]]:
    """Each Deployment's container command: the image's ENTRYPOINT (no `command:` override) + its args."""
    entrypoint = exec_form(dockerfile(), "ENTRYPOINT")
    found = {}
    for name, deployment in deployments().items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "command" not in container, f"{name} overrides the image's entrypoint"
        found[name] = entrypoint + container["args"]
    return found


def parse_cli(args: tuple[str, ...] | list[str]) -> tuple[list[str], dict[str, Any]]:
    """Parse `lastgood ARGS` as the real CLI would (every group and subcommand, option types, required options,
    choices) without running anything; returns the subcommand path and the last command's parameters. Raises
    typer's usage errors (a TyperException with exit code 2) on what the CLI would refuse."""
    command = typer.main.get_command(app)
    context = command.make_context("lastgood", list(args))
    path: list[str] = []
    while isinstance(command, TyperGroup):
        rest = [*context._protected_args, *context.args]  # where a group keeps its subcommand's words
        if not rest:
            break  # a group that runs without a subcommand (`lastgood server`)
        name, sub, rest = command.resolve_command(context, rest)
        assert name is not None and sub is not None
        command = sub
        context = command.make_context(name, rest, parent=context)
        path.append(name)
    return path, context.params


def option_value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def with_option(argv: list[str], flag: str, value: str) -> list[str]:
    """argv with FLAG's value replaced (the port: a free one on this shared machine)."""
    out = list(argv)
    out[out.index(flag) + 1] = value
    return out
