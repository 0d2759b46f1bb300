"""The labelling app's web server: Starlette routes over a Session (docs/annotate.md).

- /a/TOKEN: an annotator's page; /a/TOKEN/next (GET), /label, /skip, /undo (POST, JSON): their queue only.
- /admin/TOKEN: progress, agreement, gold accuracy, judges against people; /admin/TOKEN/status (JSON) and
  /admin/TOKEN/export.csv (import-human's format).
- /static/NAME: the page's own script and style; nothing else is served.
Every response carries a Content-Security-Policy that runs only those scripts, and no referrer leaves the page
(the token is in the URL). A POST must be JSON, carry the page's CSRF token and come from the page's own origin.
Its body is read only up to MAX_BODY (413 past it) and must be a flat object of the action's own short fields.
"""

from __future__ import annotations

import json
import socket
from importlib import resources
from typing import Any

from lima_eval.annotate.session import Session
from lima_eval.annotate.stats import export_csv, status
from lima_eval.errors import ConfigError

STATIC = ("annotate.js", "admin.js", "annotate.css")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY", "Cache-Control": "no-store", "Cross-Origin-Resource-Policy": "same-origin"}
# The page posts {"item": ..., "choice": ...} and the like: under 200 bytes. 64 KiB is far above any real
# submission and small enough that no request makes the server hold more than that of a body.
MAX_BODY = 64 * 1024
# Characters in one field. The longest real value is a 24-character item id; choices and reasons are shorter.
MAX_FIELD = 64
FIELDS = {"label": ("item", "choice"), "skip": ("item", "reason"), "undo": ()}  # each action's body


class BadBody(ValueError):
    """A POST body the app does not accept (answered 400 with the message)."""


def fields(raw: bytes, allowed: tuple[str, ...]) -> dict[str, str]:
    """A POST body as {field: value}: a JSON object of strings, only `allowed` keys, each at most MAX_FIELD
    characters; BadBody with a one-line message naming the field otherwise."""
    try:
        body = json.loads(raw or b"{}")
    except RecursionError:  # the C parser recurses per level: [[[...]]] deep enough overflows it
        raise BadBody("request body: JSON nested too deeply") from None
    except ValueError as exc:  # also bytes that are not UTF-8
        raise BadBody(f"request body: not valid JSON ({getattr(exc, 'msg', 'not UTF-8')})") from None
    if not isinstance(body, dict):
        raise BadBody("request body: expected a JSON object")
    for key, value in body.items():
        if key not in allowed:
            expected = ", ".join(allowed) or "no field"
            raise BadBody(f"field {json.dumps(key[:MAX_FIELD])}: unknown here (expected {expected})")
        if not isinstance(value, str):
            raise BadBody(f"field '{key}': expected a string")
        if len(value) > MAX_FIELD:
            raise BadBody(f"field '{key}': longer than {MAX_FIELD} characters")
    return body


async def body_of(request: Any) -> bytes | None:
    """The request's body, or None as soon as it is known to pass MAX_BODY: a declared Content-Length over it
    is refused unread, and a streamed (chunked) body is read chunk by chunk only up to the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _static(name: str) -> str:
    return resources.files("lima_eval.annotate").joinpath("static", name).read_text(encoding="utf-8")


def make_app(session: Session) -> Any:
    """The Starlette application serving `session`."""
    import anyio
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    pages = {name: _static(name) for name in STATIC}
    session.batch()
    flushing = anyio.Lock()

    async def commit() -> None:
        """Return once everything queued so far is on disk; one flush serves every request waiting."""
        target = session.queued
        async with flushing:
            if session.durable < target:
                await anyio.to_thread.run_sync(session.flush)
    shell = _static("annotate.html")
    admin_shell = _static("admin.html")

    def secure(resp: Response) -> Response:
        resp.headers.update(HEADERS)
        return resp

    def denied(why: str = "forbidden") -> Response:
        return secure(JSONResponse({"error": why}, status_code=403))

    def person(request: Request, admin: bool = False) -> str | None:
        name = session.who(request.path_params["token"])
        if name is None or (name == "") != admin:
            return None
        return name

    def same_origin(request: Request) -> bool:
        """A state change only from the page itself: JSON, its CSRF token, and no cross-site origin."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return False
        if request.headers.get("x-csrf-token", "") != session.csrf(request.path_params["token"]):
            return False
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        return origin is None or origin in (f"http://{host}", f"https://{host}")

    async def page(request: Request) -> Response:
        name = person(request)
        if name is None:
            return denied()
        token = request.path_params["token"]
        html = shell.replace("{{csrf}}", session.csrf(token)).replace("{{task}}", session.task)
        return secure(HTMLResponse(html))

    async def next_item(request: Request) -> Response:
        name = person(request)
        if name is None:
            return denied()
        return secure(JSONResponse(session.view(name)))

    async def act(request: Request) -> Response:
        name = person(request)
        if name is None:
            return denied()
        if not same_origin(request):
            return denied("cross-site or unauthenticated request refused")
        what = request.path_params["action"]
        if what not in FIELDS:
            return secure(JSONResponse({"error": "not found"}, status_code=404))
        raw = await body_of(request)
        if raw is None:  # the rest is left unread; closing the connection stops the sender
            too_big = {"error": f"request body over {MAX_BODY // 1024} KiB"}
            return secure(JSONResponse(too_big, status_code=413, headers={"Connection": "close"}))
        try:
            body = fields(raw, FIELDS[what])
            if what == "label":
                session.label(name, body.get("item", ""), body.get("choice", ""))
            elif what == "skip":
                session.skip(name, body.get("item", ""), body.get("reason", "skip"))
            elif not session.undo(name):
                return secure(JSONResponse({"error": "nothing to undo"}, status_code=409))
        except LookupError as exc:
            return secure(JSONResponse({"error": str(exc).strip("'")}, status_code=409))
        except ValueError as exc:
            return secure(JSONResponse({"error": str(exc)}, status_code=400))
        view = session.view(name)
        try:
            await commit()  # acknowledged only once on disk
        except OSError as exc:
            return secure(JSONResponse({"error": f"not saved: {exc.strerror or exc}"}, status_code=503))
        return secure(JSONResponse({"ok": True} | view))

    async def admin_page(request: Request) -> Response:
        if person(request, admin=True) is None:
            return denied()
        return secure(HTMLResponse(admin_shell))

    async def admin_status(request: Request) -> Response:
        if person(request, admin=True) is None:
            return denied()
        return secure(JSONResponse(status(session)))

    async def export(request: Request) -> Response:
        if person(request, admin=True) is None:
            return denied()
        resp = Response(export_csv(session), media_type="text/csv; charset=utf-8")
        resp.headers["Content-Disposition"] = 'attachment; filename="human_labels.csv"'
        return secure(resp)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in pages:
            return secure(Response("not found", status_code=404))
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        return secure(Response(pages[name], media_type=f"{kind}; charset=utf-8"))

    async def not_found(request: Request, exc: Exception) -> Response:
        return secure(JSONResponse({"error": "not found"}, status_code=404))

    routes = [
        Route("/a/{token}", page), Route("/a/{token}/next", next_item),
        Route("/a/{token}/{action}", act, methods=["POST"]),
        Route("/admin/{token}", admin_page), Route("/admin/{token}/status", admin_status),
        Route("/admin/{token}/export.csv", export), Route("/static/{name}", static),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})


def listen(host: str, port: int) -> Any:
    """A listening socket on host:port (port 0: a free one); a ConfigError naming them when that fails."""

    sock = None
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})") from None
    return sock


def serve(session: Session, sock: Any) -> None:
    """Serve on a listening socket until interrupted (Ctrl-C, SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(make_app(session), log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
