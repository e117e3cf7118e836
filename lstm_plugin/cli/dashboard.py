"""``lstm-plugin dashboard``: check the folders, the token and the port, then serve the pages until stopped.

Everything that can be wrong is said at start in one line (exit 2): the ``dashboard`` extra missing, a
folder that is not what it is given as, a damaged journal, an address other than loopback without a
token, a port in use. The socket is bound here and handed to uvicorn, so the port checked is the port
served. docs/dashboard.md.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any

from lstm_plugin.cli.args import UsageError

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

TOKEN_VARIABLE = "LSTM_PLUGIN_DASHBOARD_TOKEN"
INSTALL = "pip install 'lstm-plugin[dashboard]' (from a checkout: pip install -e \".[dashboard]\")"


def _token(args: argparse.Namespace) -> str | None:
    """The token from ``--token-file`` or the environment (never from the command line itself)."""
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise UsageError(f"--token-file › {args.token_file}: {why}") from None
        if not token:
            raise UsageError(f"--token-file › {args.token_file} is empty")
        return token
    return os.environ.get(TOKEN_VARIABLE, "").strip() or None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a :class:`UsageError` in one line when it cannot be had."""
    if not 0 <= port < 65536:
        raise UsageError(f"--port › {port} is not a port number (0: any free one, up to 65535)")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host › {host}: {exc.strerror}") from None
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(info[4])
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"--port › {port} on {host} is in use; give another --port") from None
        raise UsageError(f"--host › cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def cmd_dashboard(args: argparse.Namespace) -> dict[str, Any]:
    try:
        from lstm_plugin.dashboard.server import is_loopback, serve
    except ImportError:
        raise UsageError(f"dashboard › the web server is an optional extra: {INSTALL}") from None
    from lstm_plugin.dashboard import Board, open_sources

    token = _token(args)
    if not is_loopback(args.host) and token is None:
        raise UsageError(
            f"--host › {args.host} is reachable from other machines: give a token in --token-file or "
            f"${TOKEN_VARIABLE}"
        )
    board = Board(open_sources(args.models, args.state, args.reports, config=args.config, data=args.data))
    sock = bind(args.host, args.port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{sock.getsockname()[1]}/"
    print(f"lstm-plugin: dashboard on {url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    # the Models page's first reading verifies every version and reads every symbol's bars (9.5 s for
    # 400 symbols x 20 versions): done now, so the first visit finds it warm
    threading.Thread(target=board.models, name="dashboard-warm-up", daemon=True).start()
    if args.open:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    serve(board, sock, token)
    return {"url": url}
