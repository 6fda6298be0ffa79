"""The monitors process's HTTP server: /metrics, the reports under /reports, the runbooks.

Read-only: GET only; a path under /reports maps onto a file of the reports folder through
core.reports.local_path (each part decoded and encoded again, so no part climbs out), and
anything else is 404.
"""

from __future__ import annotations

import mimetypes
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler

from core.reports import local_path
from monitors.runbooks import render_runbooks

REPORTS_PREFIX = "/reports/"


class MonitorsHandler(MetricsHandler):
    """/metrics from the registry, files under /reports, the runbooks at /runbooks."""

    reports_dir: Path
    runbooks_file: Path

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            super().do_GET()
        elif path in ("/runbooks", "/runbooks/"):
            self._runbooks()
        elif path.startswith(REPORTS_PREFIX):
            self._report(path[len(REPORTS_PREFIX) :])
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _runbooks(self) -> None:
        try:
            markdown = self.runbooks_file.read_text(encoding="utf-8")
        except OSError:
            self._send(404, b"no runbooks here\n", "text/plain; charset=utf-8")
            return
        self._send(200, render_runbooks(markdown).encode(), "text/html; charset=utf-8")

    def _report(self, below: str) -> None:
        root = self.reports_dir.resolve()
        found = local_path(root, below)
        if found is None or not found.is_file() or not found.resolve().is_relative_to(root):
            self._send(404, b"no such report\n", "text/plain; charset=utf-8")
            return
        kind = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        if kind.startswith("text/"):
            kind += "; charset=utf-8"
        self._send(200, found.read_bytes(), kind)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)


def start_server(
    host: str,
    port: int,
    registry: CollectorRegistry,
    reports_dir: Path,
    runbooks_file: Path,
) -> ThreadingHTTPServer:
    """Serve on host:port (0: a free port) from a daemon thread; `shutdown()` stops it."""
    handler = type(
        "BoundMonitorsHandler",
        (MonitorsHandler,),
        {"registry": registry, "reports_dir": reports_dir, "runbooks_file": runbooks_file},
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="monitors-http", daemon=True).start()
    return server
