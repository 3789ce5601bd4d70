"""The image's, compose's and Kubernetes' commands run on this machine as written: `lastgood server ...` from the
Dockerfile's ENTRYPOINT + CMD, compose's api and two workers, started at once on an empty PostgreSQL database named
by LASTGOOD_STATE (they migrate it one at a time), the runbook of the manifests' ConfigMap where they mount it
(LASTGOOD_FILE); the probes' paths, read from the manifests, answer 200; the Dockerfile's HEALTHCHECK command
passes; a token made as the docs say signs in to the API replica; SIGTERM stops every replica cleanly. Only the
port is changed (a free one on this shared machine), and /etc/lastgood is a folder of the test's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from delivery_files import (
    DEPLOY,
    compose_commands,
    deployments,
    dockerfile,
    exec_form,
    image_command,
    k8s_commands,
    k8s_documents,
    load_yaml,
    option_value,
    with_option,
)
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from lastgood.testing.endpoint import FAKE_CREDENTIALS, LocalEndpoint, free_port

pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset

START_WITHIN = 120.0  # four servers importing and migrating at once on a loaded 2-core machine
MOUNT = "/etc/lastgood"


@dataclass
class Replica:
    name: str
    argv: list[str]
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self) -> str:
        return f"--- {self.name}: {' '.join(self.argv)}\n" + self.log.read_text()[-3000:]


@pytest.fixture
def image_env(pg_database_url: str, endpoint: LocalEndpoint, tmp_path: Path) -> dict[str, str]:
    """The containers' environment: the image's ENV, the Secret's LASTGOOD_STATE (a real PostgreSQL), the
    runbook folder the manifests mount, AWS on moto; `python` and `lastgood` on PATH as in the image."""
    runbooks = tmp_path / "etc-lastgood"
    runbooks.mkdir()
    (config_map,) = [d for d in k8s_documents() if d["kind"] == "ConfigMap"]
    for name, body in config_map["data"].items():
        (runbooks / name).write_text(body)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LASTGOOD_", "AWS_"))}
    env |= dockerfile().envs
    assert env["LASTGOOD_FILE"] == MOUNT
    env |= FAKE_CREDENTIALS | {"AWS_ENDPOINT_URL": endpoint.url, "AWS_REGION": "us-east-1"}
    env |= {"LASTGOOD_FILE": str(runbooks), "LASTGOOD_STATE": pg_database_url}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Replicas:
    """Starts `lastgood` commands as the containers would; kills what is left at the end."""

    env: dict[str, str]
    logs: Path
    started: list[Replica]

    def start(self, name: str, argv: list[str]) -> Replica:
        port = free_port()
        run = with_option(argv, "--port", str(port))
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(run, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.started.append(Replica(name, run, port, process, log))
        return self.started[-1]


@pytest.fixture
def replicas(image_env: dict[str, str], tmp_path: Path) -> Iterator[Replicas]:
    running = Replicas(image_env, tmp_path, [])
    yield running
    for replica in running.started:
        if replica.process.poll() is None:
            replica.process.kill()
            replica.process.wait(10)


def _probe_paths() -> set[str]:
    paths = set()
    for deployment in deployments().values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            paths.add(container[probe]["httpGet"]["path"])
    return paths


def _wait_ready(replicas: list[Replica], paths: set[str]) -> None:
    pending = {(r.name, p) for r in replicas for p in paths}
    by_name = {r.name: r for r in replicas}
    deadline = time.monotonic() + START_WITHIN
    while pending and time.monotonic() < deadline:
        for name, path in sorted(pending):
            replica = by_name[name]
            if replica.process.poll() is not None:
                pytest.fail(f"{name} exited {replica.process.returncode}\n{replica.tail()}")
            try:
                if httpx.get(replica.url + path, timeout=2).status_code == 200:
                    pending.discard((name, path))
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    if pending:
        pytest.fail(f"not 200 within {START_WITHIN:.0f} s: {sorted(pending)}\n" + "\n".join(r.tail() for r in replicas))


def test_the_files_commands_serve_on_postgresql(
    replicas: Replicas, image_env: dict[str, str], pg_database_url: str
) -> None:
    paths = _probe_paths()
    assert paths == {"/healthz", "/readyz"}
    compose, k8s = compose_commands(), k8s_commands()
    assert compose["api"] == k8s["lastgood-api"] and compose["worker"] == k8s["lastgood-worker"]
    services = load_yaml(DEPLOY / "docker-compose.yml")["services"]
    # All at once on an empty database, as Kubernetes starts them and compose once the database is up.
    assert set(services["worker"]["depends_on"]) == set(services["api"]["depends_on"]) == {"db"}
    api = replicas.start("api", compose["api"])
    workers = [replicas.start(f"worker-{n}", compose["worker"]) for n in (1, 2)]
    assert services["worker"]["deploy"]["replicas"] == len(workers)
    image = replicas.start("image", image_command())
    _wait_ready([api, *workers, image], paths)
    for replica, role in [(api, "api"), (image, "all"), *((w, "worker") for w in workers)]:
        assert httpx.get(replica.url + "/readyz", timeout=10).json()["role"] == role

    # The Dockerfile's HEALTHCHECK, as written but for the port.
    health = [
        part.replace("127.0.0.1:8080", f"127.0.0.1:{image.port}") for part in exec_form(dockerfile(), "HEALTHCHECK")
    ]
    assert health != exec_form(dockerfile(), "HEALTHCHECK")
    checked = subprocess.run(health, env=image_env, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr

    # A token made as the docs say (`docker compose run --rm api server token create ...`) signs in to the API.
    made = subprocess.run(
        ["lastgood", "server", "token", "create", "--user", "alice", "--role", "admin"],
        env=image_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    answer = httpx.get(f"{api.url}/api/v1/apps", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["apps"] == [{"app": "checkout", "environments": ["staging", "prod"]}]
    assert httpx.get(f"{api.url}/api/v1/apps", timeout=10).status_code == 401
    for worker in workers:  # a worker serves its probes and /metrics, not the API
        assert httpx.get(f"{worker.url}/api/v1/apps", headers={"Authorization": f"Bearer {token}"}).status_code == 404

    # Every replica migrated and uses the one PostgreSQL database of LASTGOOD_STATE.
    engine = create_engine(pg_database_url, poolclass=NullPool)
    with engine.connect() as connection:
        assert connection.execute(text("select count(*) from alembic_version")).scalar_one() == 1
    engine.dispose()

    # SIGTERM (what docker stop and Kubernetes send): each replica exits 0 within the grace period the files give.
    grace = min(d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] for d in deployments().values())
    for replica in replicas.started:
        replica.process.send_signal(signal.SIGTERM)
    for replica in replicas.started:
        try:
            code = replica.process.wait(grace)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{replica.name} still running {grace} s after SIGTERM\n{replica.tail()}")
        assert code == 0, replica.tail()
    assert option_value(image.argv, "--host") == "0.0.0.0"
