"""The dashboard's web server: Starlette routes over a :class:`~lstm_plugin.dashboard.board.Board`.

Read-only and local by default. Every response carries a Content-Security-Policy that allows scripts,
styles and pictures from this server only and no inline script; the page builds its tables with
``textContent``, so a symbol, a reason or a plugin name read from a file shows as text. On an address
other than loopback every request needs the token (``Authorization: Bearer <token>``, or the cookie the
``/login`` form sets); without it the answer is 401. No request parameter reaches the file system except
a symbol checked against the registry's and the data's own listings, and a report picture chosen by its
position in the command line's list and a fixed name. On loopback without a token, a request addressed
to any other host name (a rebinding attack from a web page) is refused. docs/dashboard.md.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from lstm_plugin.core import jsonio
from lstm_plugin.dashboard.board import Board, guarded

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
PAGES = ("models", "training", "paper", "backtests")
COOKIE = "lstm_dashboard_token"
MAX_FORM_BYTES = 4096
logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only ever reaches this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _asset(name: str) -> bytes:
    return resources.files("lstm_plugin.dashboard").joinpath("static", name).read_bytes()


class JSON(JSONResponse):
    """JSON as the command line writes it (NaN and timestamps handled by :mod:`lstm_plugin.core.jsonio`)."""

    def render(self, content: Any) -> bytes:
        return jsonio.dumps(content).encode()


class _Guard(BaseHTTPMiddleware):
    """The host check (when names are set), the token check (when one is set) and the security headers on
    every answer."""

    def __init__(self, app: Any, token: str | None, hosts: list[str] | None) -> None:
        super().__init__(app)
        self.token = token
        self.hosts = None if hosts is None else {h.strip("[]") for h in hosts}

    def _allowed(self, request: Request) -> bool:
        if self.token is None or request.url.path == "/login":
            return True
        given = request.headers.get("authorization", "")
        offered = given[7:] if given.startswith("Bearer ") else request.cookies.get(COOKIE, "")
        return hmac.compare_digest(offered.encode(), self.token.encode())

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if self.hosts is not None and (request.url.hostname or "").strip("[]") not in self.hosts:
            response: Response = Response("unknown host", status_code=400, media_type="text/plain")
        elif not self._allowed(request):
            if request.url.path.startswith("/api/"):
                response = JSON({"error": "a token is required"}, status_code=401)
            else:  # the page answers with the form that sets the cookie
                response = Response(_asset("login.html"), status_code=401, media_type="text/html")
        else:
            try:
                response = await call_next(request)
            except Exception:  # never a traceback in the browser: the server's log keeps it
                logger.exception("dashboard request %s failed", request.url.path)
                response = JSON({"error": "the dashboard failed on this request (see its log)"}, 500)
        response.headers.update(HEADERS)
        return response


def _page(request: Request) -> Response:
    return Response(_asset("page.html"), media_type="text/html")


def _home(request: Request) -> Response:
    return RedirectResponse("/models", status_code=303)


def _no_icon(request: Request) -> Response:
    return Response(status_code=204)


def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(_asset(name), media_type=ASSETS[name])


def build_app(board: Board, token: str | None = None, hosts: list[str] | None = None) -> Starlette:
    """The app over ``board``; ``token``: required on every request when given; ``hosts``: the only names a
    request may address it by (``None``: any). The handlers are plain functions, which Starlette runs in
    its thread pool: a page being computed never holds up another."""

    def api(request: Request) -> Response:
        name = request.path_params["page"]
        if name not in PAGES:
            return JSON({"error": f"no page {name!r}"}, status_code=404)
        return JSON(getattr(board, name)())

    def api_symbol(request: Request) -> Response:
        symbol = str(request.path_params["symbol"])
        if symbol not in board.symbol_names():
            return JSON({"error": "no such model or symbol"}, status_code=404)
        return JSON(guarded(f"registry {board.sources.registry.root}", lambda: board.symbol(symbol)))

    def picture(request: Request) -> Response:
        found = board.picture(int(request.path_params["index"]), str(request.path_params["name"]))
        if found is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(found, media_type="image/png")

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return Response(_asset("login.html"), media_type="text/html")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return Response("too large", status_code=413, media_type="text/plain")
        offered = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0]
        if token is None or not hmac.compare_digest(offered.encode(), token.encode()):
            return Response(_asset("login.html"), status_code=401, media_type="text/html")
        response = RedirectResponse("/models", status_code=303)
        response.set_cookie(COOKIE, offered, httponly=True, samesite="strict")
        return response

    routes = [
        Route("/", _home),
        *[Route(f"/{name}", _page) for name in PAGES],
        Route("/symbol/{symbol}", _page),
        Route("/static/{name}", _static),
        Route("/favicon.ico", _no_icon),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/api/symbol/{symbol}", api_symbol),
        Route("/api/backtests/{index:int}/{name}", picture),
        Route("/api/{page}", api),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Guard, token=token, hosts=hosts)])


def loopback_names(host: str) -> list[str]:
    """The names a page on loopback may be asked for by: a web page that points its own domain at
    127.0.0.1 (DNS rebinding) sends its domain as the Host and is refused."""
    return sorted({"127.0.0.1", "localhost", "::1", host})


def serve(board: Board, sock: socket.socket, token: str | None = None) -> None:
    """Serve ``board`` on the listening ``sock`` until interrupted (uvicorn, quiet but for warnings). On
    loopback without a token, only requests addressed to a loopback name are answered."""
    host = str(sock.getsockname()[0])
    hosts = loopback_names(host) if token is None and is_loopback(host) else None
    app = build_app(board, token, hosts)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
