"""The CI examples, the Dockerfile, the compose file and the Kubernetes manifests, checked as far as this machine
can: they parse and match their published schemas (GitHub's workflow schema, GitLab CI's, the Compose
specification, Kubernetes' OpenAPI schemas), every `lastgood` command line in them parses against the real CLI,
the runbook they use validates, and the manifests say what the server needs (probes on its real paths, non-root,
the database URL from a Secret). tests/delivery/test_delivery_server.py runs the commands they give."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from delivery_files import (
    CI,
    DEPLOY,
    ROOT,
    Command,
    ci_commands,
    compose_commands,
    deployments,
    dockerfile,
    exec_form,
    github_scripts,
    gitlab_scripts,
    image_command,
    invocations,
    k8s_commands,
    k8s_documents,
    load_yaml,
    option_value,
    parse_cli,
    shell_commands,
)
from typer.exceptions import TyperException

from lastgood.cli.app import main

KUBERNETES_VERSION = "1.31"


@pytest.mark.slow  # a Python process, server or browser of its own
@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ("vendor.github-workflows", CI / "github-actions.yml"),
        ("vendor.gitlab-ci", CI / "gitlab-ci.yml"),
        ("vendor.compose-spec", DEPLOY / "docker-compose.yml"),
    ],
    ids=["github-actions", "gitlab-ci", "compose"],
)
def test_file_matches_its_published_schema(schema: str, path: Path) -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow  # a Python process, server or browser of its own
def test_the_schema_check_refuses_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: a job without runs-on is not a GitHub workflow."""
    workflow = load_yaml(CI / "github-actions.yml")
    del workflow["jobs"]["prod"]["runs-on"]
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(workflow))
    checked = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 1


def test_the_ci_runbook_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--file", str(CI / "lastgood.yaml")]) == 0
    assert "ok" in capsys.readouterr().out
    for _, script in github_scripts() + gitlab_scripts():
        assert "lastgood.yaml" not in script or "examples/ci/lastgood.yaml" in script
    for variables in (load_yaml(CI / "github-actions.yml")["env"], load_yaml(CI / "gitlab-ci.yml")["variables"]):
        assert variables["LASTGOOD_FILE"] == "examples/ci/lastgood.yaml"


def test_the_manifests_serve_the_ci_runbook() -> None:
    (config_map,) = [d for d in k8s_documents() if d["kind"] == "ConfigMap"]
    assert config_map["data"]["lastgood.yaml"] == (CI / "lastgood.yaml").read_text()
    compose = load_yaml(DEPLOY / "docker-compose.yml")
    mounts = {v for s in compose["services"].values() for v in s.get("volumes", [])}
    assert "../examples/ci/lastgood.yaml:/etc/lastgood/lastgood.yaml:ro" in mounts


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_every_lastgood_command_of_the_ci_examples_parses() -> None:
    commands = ci_commands()
    scripts = github_scripts() + gitlab_scripts()
    assert len(commands) == sum(invocations(script) for _, script in scripts), "a `lastgood` line was not found"
    paths = set()
    for command in commands:
        path, _ = _parses(command)
        paths.add(" ".join(path))
    # record after deploy, progressive deploy judged by the guard, rollback on failure, in both examples
    story = {"validate", "release record", "guard", "deploy", "status", "rollback"}
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        named = {" ".join(_parses(c)[0]) for c in commands if c.where.startswith(name)}
        assert story <= named, f"{name} lacks {story - named}"
    assert "abort" in paths  # GitHub's cancelled run


def test_the_progressive_deploy_steps_are_judged_and_confirmed() -> None:
    deploys = [c for c in ci_commands() if c.args[:1] == ("deploy",)]
    assert len(deploys) == 2
    for command in deploys:
        _, params = _parses(command)
        assert params["env"] == "prod" and params["component"] == "api" and params["yes"] is True
        assert params["steps"] == "10,50,100" and params["release"] == "$RELEASE"


def test_the_command_check_refuses_what_the_cli_refuses() -> None:
    """The parse can fail: an unknown flag, a missing value, a bad type, an unknown command."""
    for args in (
        ("deploy", "prod", "--stepz", "10"),
        ("guard", "prod", "--for"),
        ("server", "--port", "eighty"),
        ("relase", "record", "prod"),
        ("release", "record", "prod"),  # --version is required
    ):
        with pytest.raises(TyperException) as refused:
            parse_cli(args)
        assert getattr(refused.value, "exit_code", None) == 2, args  # a usage error, as main() reports it
    line = 'X=$(lastgood status prod -o json | python3 -c "..."); if [ 1 ]; then lastgood rollback prod --yes; fi'
    assert [c.args[:1] for c in shell_commands("here", line)] == [("status",), ("rollback",)]


def test_the_image_compose_and_kubernetes_commands_parse() -> None:
    image = image_command()
    assert image[0] == "lastgood"
    commands = {"Dockerfile": image, **compose_commands(), **k8s_commands()}
    assert set(commands) == {"Dockerfile", "api", "worker", "lastgood-api", "lastgood-worker"}
    for where, argv in commands.items():
        path, params = _parses(Command(where, tuple(argv[1:])))
        assert path == ["server"], where
        assert params["host"] == "0.0.0.0" and params["port"] == 8080, where
    roles = {where: option_value(argv, "--role") for where, argv in commands.items() if "--role" in argv}
    assert roles == {"api": "api", "worker": "worker", "lastgood-api": "api", "lastgood-worker": "worker"}
    assert compose_commands()["api"] == k8s_commands()["lastgood-api"]
    assert compose_commands()["worker"] == k8s_commands()["lastgood-worker"]


def test_the_dockerfile_is_slim_non_root_and_checks_its_health() -> None:
    parser = dockerfile()
    stages = [i["value"].split()[0] for i in parser.structure if i["instruction"] == "FROM"]
    assert stages and all(image == "python:3.11-slim" for image in stages)
    users = [i["value"] for i in parser.structure if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = exec_form(parser, "HEALTHCHECK")
    assert "http://127.0.0.1:8080/healthz" in " ".join(health)
    exposed = [i["value"] for i in parser.structure if i["instruction"] == "EXPOSE"]
    assert exposed == [option_value(image_command(), "--port")]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ignored[ignored.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!src/"]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_the_manifests_match_kubernetes_schemas() -> None:
    documents = k8s_documents()
    assert {d["kind"] for d in documents} >= {"Deployment", "Service", "PodDisruptionBudget", "Secret", "ConfigMap"}
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_the_kubernetes_schema_check_refuses_a_broken_manifest() -> None:
    deployment = dict(deployments()["lastgood-api"])
    deployment["spec"] = {**deployment["spec"], "replicas": "two"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_probes_are_on_the_health_paths() -> None:
    """On /healthz and /readyz of the container's port; test_delivery_server.py polls these paths, as read from
    the manifests, on the server the manifests' command starts."""
    for name, deployment in deployments().items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        port = int(option_value(container["args"], "--port"))
        assert container["ports"] == [{"name": "http", "containerPort": port}], name
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, name
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz", name


def test_the_pods_run_as_non_root_with_the_database_url_from_a_secret() -> None:
    (secret,) = [d for d in k8s_documents() if d["kind"] == "Secret"]
    assert "LASTGOOD_STATE" in secret["stringData"]
    for name, deployment in deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        (container,) = pod["containers"]
        assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}], name
        assert "LASTGOOD_STATE" not in {e["name"] for e in container.get("env", [])}, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name


def test_the_service_and_budgets_select_the_deployments_pods() -> None:
    labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments().items()}
    for name, deployment in deployments().items():
        assert deployment["spec"]["selector"]["matchLabels"] == labels[name]
        assert deployment["spec"]["replicas"] >= 2, name
    (service,) = [d for d in k8s_documents() if d["kind"] == "Service"]
    assert _selects(service["spec"]["selector"], labels) == ["lastgood-api"]
    budgets = [d for d in k8s_documents() if d["kind"] == "PodDisruptionBudget"]
    assert sorted(n for b in budgets for n in _selects(b["spec"]["selector"]["matchLabels"], labels)) == [
        "lastgood-api",
        "lastgood-worker",
    ]


def test_compose_runs_postgresql_an_api_and_two_workers() -> None:
    services = load_yaml(DEPLOY / "docker-compose.yml")["services"]
    assert services["db"]["image"].startswith("postgres:")
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["api"].get("deploy", {}).get("replicas", 1) == 1
    for name in ("api", "worker"):
        state = services[name]["environment"]["LASTGOOD_STATE"]
        assert state.startswith("postgresql+psycopg://") and "@db:5432/" in state, name
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"


def _selects(selector: dict[str, str], labels: dict[str, dict[str, str]]) -> list[str]:
    return [name for name, have in labels.items() if selector.items() <= have.items()]


def _parses(command: Command) -> tuple[list[str], dict[str, Any]]:
    try:
        return parse_cli(command.args)
    except TyperException as error:
        pytest.fail(f"{command.where}: `lastgood {' '.join(command.args)}`: {error}")
