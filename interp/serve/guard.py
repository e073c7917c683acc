"""The checks every request to the lab passes before the web framework sees it (a plain ASGI middleware).

Each one is the app's own, so none depends on a framework version's defaults:

- Host: bound to loopback without a token, only a loopback Host is answered (no DNS rebinding).
- Token: with a token, every path but the page's three static files needs it. The path is the ASGI
  scope's ``path`` (what the router dispatches on), never a URL rebuilt from the Host header.
- Origin: a browser request from another site (an ``Origin`` that is not this server's own, or
  ``Sec-Fetch-Site: cross-site`` / ``same-site``) is refused, whatever its method or body; only the
  page's static files may be opened from elsewhere (a link), as they hold no data.
- Content-Type: every state-changing request (any method but GET, HEAD, OPTIONS) to a route of the app
  must say ``application/json`` (``application/octet-stream`` for the two uploads: an edit file, a fact
  file). A page elsewhere
  can send neither without a CORS preflight, which this server never grants; ``fetch(..., {mode:
  "no-cors"})`` with a Blob sends none at all.
- Size: a JSON body is read up to ``max_json_bytes`` and refused past it, before any parser sees it.

Every refusal is the app's error shape, ``{"error": "<one sentence>"}``, with a 4xx status.
"""

from __future__ import annotations

import hmac
import json

from starlette.datastructures import Headers
from starlette.routing import Match

PUBLIC_PATHS = ("/", "/page.js", "/page.css")  # the page holds no data; it reads the token from #token=
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
UPLOAD_PATHS = ("/api/edits/file", "/api/edits/facts")  # raw file bytes: an edit file, a fact file
SECURITY_HEADERS = {
    # the page loads nothing from elsewhere: its script and style come from this server, images are data: URLs
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def error_body(message: str) -> bytes:
    """The one-sentence JSON error; text that cannot be UTF-8 (a lone surrogate) is replaced, never a 500."""
    sentence = " ".join(str(message).split())
    return json.dumps({"error": sentence}, ensure_ascii=True).encode("ascii")


def host_name(header: str) -> str:
    """The host of a Host header without its port ("[::1]:8765" -> "[::1]")."""
    return header.split("]")[0] + "]" if header.startswith("[") else header.rsplit(":", 1)[0]


def token_matches(headers: Headers, token: str) -> bool:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        value = headers.get("x-interp-token", "")
    return hmac.compare_digest(value.strip().encode("utf-8", "replace"), token.encode())


def media_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


class Guard:
    """ASGI middleware over the FastAPI app `routes_of` (whose routes decide which requests change state)."""

    def __init__(self, app, routes_of, token: str | None = None, allowed_hosts: tuple[str, ...] | None = None,
                 max_json_bytes: int = 2**20) -> None:
        self.app, self.routes_of, self.token = app, routes_of, token
        self.allowed_hosts, self.max_json_bytes = allowed_hosts, max_json_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is None and self._changes_state(scope) and media_type(headers) == "application/json":
            body, refusal = await self._read_json(headers, receive)
            if refusal is None:
                receive = _replay(body, receive)
        if refusal is not None:
            await _send_error(send, *refusal)
            return
        await self.app(scope, receive, _with_security_headers(send))

    def _refusal(self, scope, headers: Headers) -> tuple[int, str] | None:
        path, method = scope["path"], scope["method"]
        if self.allowed_hosts is not None and host_name(headers.get("host", "")) not in self.allowed_hosts:
            return 400, "This lab answers only requests addressed to localhost or 127.0.0.1."
        public = path in PUBLIC_PATHS and method in ("GET", "HEAD")
        if self.token is not None and not public and not token_matches(headers, self.token):
            return 401, "This server needs its token: open the address interp serve printed (it ends in #token=...)."
        if not public and _foreign(headers):  # the page itself may be opened from a link anywhere: it holds no data
            return 403, "This lab answers only its own page; requests from other sites are refused."
        if self._changes_state(scope):
            want = "application/octet-stream" if path in UPLOAD_PATHS else "application/json"
            if media_type(headers) != want:
                return 415, f"Send this request with Content-Type: {want}."
        return None

    def _changes_state(self, scope) -> bool:
        """A method other than GET, HEAD or OPTIONS on a path and method one of the app's routes serves."""
        if scope["method"] in SAFE_METHODS:
            return False
        return any(route.matches(scope)[0] == Match.FULL for route in self.routes_of())

    async def _read_json(self, headers: Headers, receive) -> tuple[bytes, tuple[int, str] | None]:
        """The whole JSON body, or a refusal once it passes max_json_bytes (never read past that)."""
        limit = self.max_json_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return b"", (413, f"The request body is {int(declared):,} bytes; this server takes JSON bodies of at "
                              f"most {limit:,} bytes.")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", (413, f"The request body is over {limit:,} bytes, this server's limit for JSON bodies.")
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks), None


def _foreign(headers: Headers) -> bool:
    """A browser said the request comes from another origin (or from an opaque one: Origin: null)."""
    if headers.get("sec-fetch-site", "same-origin").lower() not in ("same-origin", "none"):
        return True
    origin = headers.get("origin")
    if origin is None:
        return False  # not a browser's cross-origin request (curl, the test client, a same-origin GET)
    host = headers.get("host", "")
    return not host or origin.lower() not in (f"http://{host}".lower(), f"https://{host}".lower())


def _replay(body: bytes, receive):
    """A receive() that hands the already-read body to the app, then the server's own (a disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _with_security_headers(send):
    async def wrapped(message):
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", [])}
            extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                     if k.lower().encode() not in present]
            message = message | {"headers": list(message.get("headers", [])) + extra}
        await send(message)

    return wrapped


async def _send_error(send, status: int, message: str) -> None:
    body = error_body(message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
