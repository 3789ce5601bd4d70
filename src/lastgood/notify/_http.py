"""POST a body and insist on a 2xx answer. Redirects are refused: a message or its signature never goes elsewhere."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from lastgood import __version__
from lastgood.notify.base import NotifyError

USER_AGENT = f"lastgood/{__version__}"


if TYPE_CHECKING:
    import urllib.request


@cache
def _opener() -> urllib.request.OpenerDirector:
    """Made at the first message: urllib.request costs every command that reads the file 70 ms."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


def post(what: str, url: str, body: bytes, headers: dict[str, str], timeout: float) -> str:
    """The answer's text. Errors name `what`, never the URL (it often carries a token)."""
    import urllib.error
    import urllib.request

    try:
        request = urllib.request.Request(url, data=body, method="POST")
        for name, value in {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}.items():
            request.add_header(name, value)
        with _opener().open(request, timeout=timeout) as response:
            return str(response.read(4096).decode("utf-8", "replace"))
    except urllib.error.HTTPError as error:
        answer = error.read(300).decode("utf-8", "replace").strip()
        raise NotifyError(f"{what}: HTTP {error.code} {error.reason}: {answer}".rstrip(": ")) from None
    except urllib.error.URLError as error:
        raise NotifyError(f"{what}: {error.reason}") from None
    except (OSError, ValueError) as error:  # timeouts, resets, a malformed URL
        raise NotifyError(f"{what}: {error}") from None
