"""How a server is started: its runbook files, its state, who it trusts."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from lastgood.errors import BadInput


@dataclass(frozen=True)
class ServerSettings:
    runbooks: list[Path]  # files, or folders whose *.yaml / *.yml files are runbooks
    state: str | None = None  # the server's ledger URL (else LASTGOOD_STATE, else the first runbook's `state:`)
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None  # how browsers and Slack reach it, for links in notifications
    secure_cookies: bool = True  # Secure cookies: off only for plain http on localhost (the demo, tests)
    trusted_proxy_header: str | None = None  # e.g. X-Forwarded-User, set by oauth2-proxy
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks the header is believed from
    slack_signing_secret: str | None = None
    background: bool = True  # run the background work (the guard after releases, rollbacks, canary judges)
    workers: int = 8  # background threads
    guard_tick: float = 2.0  # seconds between the scheduler's looks at the ledger (new releases, due periods)
    recover_every: float = 5.0  # seconds between looks for rollbacks and deployments whose process died
    escalate_every: float = 10.0  # seconds between looks for escalation steps and updates due (service/escalation.py)
    role: str = "all"  # all | api (API and dashboard) | worker (background work): see server/roles
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def serves_api(self) -> bool:
        return self.role in ("all", "api")

    @property
    def works(self) -> bool:
        """Runs the background work: the guard's scans, the queue's jobs."""
        return self.background and self.role in ("all", "worker")

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def proxy_trusted(self, address: str | None) -> bool:
        if not self.trusted_proxy_header or not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(network, strict=False) for network in self.trusted_proxies)


def check_networks(values: list[str]) -> tuple[str, ...]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise BadInput(f"--trusted-proxy: {value!r} is not an address or network (e.g. 10.0.0.0/8)") from None
    return tuple(values)


ROLES = ("all", "api", "worker")


def check_role(value: str) -> str:
    if value not in ROLES:
        raise BadInput(f"--role: {value!r} is not one of {', '.join(ROLES)}")
    return value
