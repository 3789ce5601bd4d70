"""Trusted-proxy sign-in: the user header of an authenticating proxy is believed only from configured addresses,
only for users the server knows, and never instead of a wrong token."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lastgood.errors import BadInput
from lastgood.server.app import create_app
from lastgood.server.settings import check_networks
from server_fixture import add_users, make_state

HEADER = "X-Forwarded-User"


def _client(shop_dir: Path, address: str) -> TestClient:
    state = make_state(shop_dir, trusted_proxy_header=HEADER, trusted_proxies=("10.0.0.0/8",), background=False)
    add_users(state)
    return TestClient(create_app(state), client=(address, 41000))


def test_the_header_from_a_trusted_address_signs_in_as_that_user(shop_dir: Path) -> None:
    with _client(shop_dir, "10.1.2.3") as client:
        assert client.get("/api/v1/apps", headers={HEADER: "vera"}).status_code == 200
        # vera is a viewer: the proxy's word gives her her own role, no more
        answer = client.post(
            "/api/v1/apps/shop/environments/staging/releases", json={"version": "v9"}, headers={HEADER: "vera"}
        )
        assert answer.status_code == 403


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_the_header_from_anywhere_else_is_ignored(shop_dir: Path) -> None:
    with _client(shop_dir, "192.168.1.9") as client:
        assert client.get("/api/v1/apps", headers={HEADER: "ada"}).status_code == 401


def test_an_unknown_user_and_a_wrong_token_are_refused_even_from_the_proxy(shop_dir: Path) -> None:
    with _client(shop_dir, "10.1.2.3") as client:
        assert client.get("/api/v1/apps", headers={HEADER: "mallory"}).status_code == 401
        wrong = {HEADER: "ada", "Authorization": "Bearer lg_0000_nope"}
        assert client.get("/api/v1/apps", headers=wrong).status_code == 401


def test_a_bad_network_is_refused_at_start() -> None:
    with pytest.raises(BadInput, match="not an address or network"):
        check_networks(["10.0.0.0/33"])
