"""The apps a server serves: their runbook files loaded once, one set of AWS clients per environment, and
the contexts a request or a job acts in, with its identity."""

from __future__ import annotations

import threading
from pathlib import Path

from lastgood.aws.clients import AwsClients
from lastgood.config.loader import load_runbook
from lastgood.config.messages import did_you_mean
from lastgood.config.models import Runbook
from lastgood.domain.actor import Actor, Via
from lastgood.errors import BadInput, ConfigError, UnknownRollback
from lastgood.runtime.context import EnvContext
from lastgood.service.access import User
from lastgood.service.session import AppContext, Ledger, open_environment, resolve_url, shared_ledger
from lastgood.service.views import rollback_where

RUNBOOK_SUFFIXES = (".yaml", ".yml")


class UnknownApp(BadInput):
    """404 on the API: no runbook of that app is loaded."""


class UnknownEnvironment(BadInput):
    """404 on the API."""


def runbook_files(paths: list[Path]) -> list[Path]:
    """FILE as given; DIR: its *.yaml and *.yml files, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in RUNBOOK_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise BadInput(f"--runbook: {path}: no such file or folder")
    if not files:
        raise BadInput("--runbook: no runbook files found (give a lastgood.yaml, or a folder of them)")
    return files


class Apps:
    """Every app the server serves, keyed by the `app:` of its file."""

    def __init__(self, runbooks: list[Runbook], state: str | None = None) -> None:
        if not runbooks:
            raise BadInput("the server needs at least one runbook file (--runbook FILE|DIR)")
        self.runbooks: dict[str, Runbook] = {}
        for runbook in runbooks:
            if runbook.app in self.runbooks:
                raise BadInput(f"two runbook files define app {runbook.app!r}: each app needs one file")
            self.runbooks[runbook.app] = runbook.model_copy(update={"state": state}) if state else runbook
        first = runbooks[0]
        self.state_url = resolve_url(state or first.state, first.base_dir)
        self._aws: dict[tuple[str | None, str | None, str | None], AwsClients] = {}
        self._aws_lock = threading.Lock()

    @classmethod
    def load(cls, paths: list[Path], state: str | None = None) -> Apps:
        problems: list[str] = []
        runbooks = []
        for file in runbook_files(paths):
            try:
                runbooks.append(load_runbook(file))
            except ConfigError as error:
                problems.extend(f"{file}: {p}" for p in error.problems)
        if problems:
            raise ConfigError(problems)
        return cls(runbooks, state)

    @property
    def ledger(self) -> Ledger:
        """The server's own ledger: users, tokens, sessions (and every app's history when they share it)."""
        return shared_ledger(self.state_url)

    def runbook(self, app: str) -> Runbook:
        runbook = self.runbooks.get(app)
        if runbook is None:
            raise UnknownApp(f"no app {app!r}{did_you_mean(app, list(self.runbooks))}")
        return runbook

    def environments(self, app: str) -> list[str]:
        return list(self.runbook(app).environments)

    def pairs(self) -> list[tuple[str, str]]:
        """Every (app, environment) served."""
        return [(app, env) for app, runbook in self.runbooks.items() for env in runbook.environments]

    def actor(self, app: str, user: User | str, via: Via = "api") -> Actor:
        """The identity a use case of `app` runs as: the user's name, with the roles the file gives that person."""
        name = user if isinstance(user, str) else user.name
        return Actor(name=name, roles=frozenset(self.runbook(app).policy.roles_of(name)), via=via)

    def env_context(self, app: str, env: str, user: User | str, via: Via = "api") -> EnvContext:
        runbook = self.runbook(app)
        if env not in runbook.environments:
            raise UnknownEnvironment(
                f"app {app!r} has no environment {env!r}{did_you_mean(env, list(runbook.environments))}"
            )
        return open_environment(runbook, env, self.actor(app, user, via), aws=self._clients(runbook, env))

    def app_context(self, app: str, user: User | str, via: Via = "api") -> AppContext:
        runbook = self.runbook(app)
        return AppContext(runbook=runbook, ledger=self.ledger_of(app), actor=self.actor(app, user, via))

    def by_ledger(self) -> list[tuple[Ledger, list[str]]]:
        """The apps grouped by the ledger holding their history (one group when they share `--state`)."""
        grouped: dict[int, tuple[Ledger, list[str]]] = {}
        for app in self.runbooks:
            ledger = self.ledger_of(app)
            grouped.setdefault(id(ledger), (ledger, []))[1].append(app)
        return list(grouped.values())

    def ledger_of(self, app: str) -> Ledger:
        runbook = self.runbook(app)
        return shared_ledger(resolve_url(runbook.state, runbook.base_dir))

    def _clients(self, runbook: Runbook, env: str) -> AwsClients:
        """Environments with the same profile, region and endpoint share one set of clients (boto3 clients are
        thread-safe, and each set costs megabytes: 200 environments must not cost 200 sets)."""
        settings = runbook.environment(env).aws
        key = (settings.profile, settings.region, settings.endpoint_url)
        with self._aws_lock:
            clients = self._aws.get(key)
            if clients is None:
                clients = self._aws[key] = AwsClients(settings, max_pool_connections=20)
            return clients

    def find_rollback(self, rollback_id: str) -> tuple[str, str]:
        """(app, environment) of a rollback of a served app; UnknownRollback (404) otherwise."""
        for app, runbook in self.runbooks.items():
            try:
                found_app, env = rollback_where(runbook, rollback_id)
            except UnknownRollback:
                continue
            if found_app == app:
                return app, env
        raise UnknownRollback(f"no rollback {rollback_id!r} in the apps this server serves")
