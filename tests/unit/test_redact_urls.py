"""URL passwords are found without importing SQLAlchemy, as SQLAlchemy's own parser finds them."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from lastgood import redact

URLS = [
    "postgresql+psycopg://app:s3cret%40pw@db.internal:5432/ledger",
    "postgresql://app:plain-secret@db/ledger?sslmode=require",
    "mysql+pymysql://root:hunter22@127.0.0.1/x",
    "postgresql://:only-password@db/x",
    "postgresql://app@db/x",
    "sqlite:///.lastgood/state.db",
    "https://user:token-value@hooks.example.com/path",
]


@pytest.fixture(autouse=True)
def _clean() -> None:
    redact.clear()


@pytest.mark.parametrize("url", URLS)
def test_the_password_sqlalchemy_sees_is_masked_as_written_and_decoded(url: str) -> None:
    redact.register_url_password(url)
    password = make_url(url).password
    if password is None:
        assert redact.redact(url) == url
        return
    written = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password not in redact.redact(f"decoded {password}")
    assert written not in redact.redact(url) and "****" in redact.redact(url)


def test_text_that_is_no_url_registers_nothing() -> None:
    redact.register_url_password("just:some@text")
    assert redact.redact("just:some@text") == "just:some@text"
