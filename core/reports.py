"""Where a monitor key's reports live: one relative path for the files and for their URLs.

The scheduler writes `<reports dir>/<report_path(...)>/<window file>` and `latest.html` beside
it; the monitors' HTTP server maps `/reports/<path>` back onto those files; alerts link to
`<alerting.reports_base_url>/<report_path(...)>/latest.html`. Each part is percent-encoded
(`urllib.parse.quote` with nothing kept safe), so the all-tenants `*` (contracts.ALL) becomes
`%2A`, a `/` in a name cannot add a folder, and `.` or `..` cannot climb out. A Prometheus
template makes the same part with Go's `urlquery` (it differs only for a space, `+` there, which
the server reads as a space too).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import quote, unquote_plus

from core.timeutil import to_utc

LATEST = "latest.html"


class UnsafeReportPathError(ValueError):
    """A path part that cannot name a report folder or file."""


def path_part(name: str) -> str:
    """One percent-encoded path part (`*` -> `%2A`); refuses what could not be a name."""
    if name in ("", ".", "..") or "\x00" in name:
        raise UnsafeReportPathError(f"{name!r} cannot be part of a report path")
    return quote(name, safe="")


def report_path(monitor: str, model_name: str, model_version: str, tenant: str) -> str:
    """The folder of one key's reports, relative to the reports root (and to its base URL)."""
    return "/".join(path_part(part) for part in (monitor, model_name, model_version, tenant))


def report_url(
    base_url: str, monitor: str, model_name: str, model_version: str, tenant: str
) -> str:
    """The URL of a key's latest report under `base_url` (`alerting.reports_base_url`)."""
    return (
        f"{base_url.rstrip('/')}/{report_path(monitor, model_name, model_version, tenant)}/{LATEST}"
    )


def window_file(window_end: datetime) -> str:
    """The report file of the window ending at `window_end` (ISO 8601 basic format, UTC)."""
    return to_utc(window_end).strftime("%Y%m%dT%H%M%SZ") + ".html"


def local_path(root: Path, url_path: str) -> Path | None:
    """The file under `root` that a URL path below the reports root names (None: no such name).

    Each part is decoded (percent- or plus-encoded) and encoded again as `report_path` does, so
    `*`, `%2A` and `%2a` reach the same folder and no part can be empty, `.` or `..`.
    """
    try:
        parts = [path_part(unquote_plus(part)) for part in url_path.strip("/").split("/")]
    except UnsafeReportPathError:
        return None
    return root.joinpath(*parts)
