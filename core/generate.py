"""Generated files: write the ones that changed, or (`--check`) tell which are out of date."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from core.files import differing, strays, write_files


def sync_generated(
    out_dir: Path, files: Mapping[str, str], directory: str, pattern: str, *, check: bool
) -> tuple[int, list[str]]:
    """Bring `out_dir` in line with `files` (or only compare when `check`): the exit code and
    one line per file written or out of date. Files under `directory` matching `pattern` that
    are no longer generated count as out of date and are removed."""
    stale = strays(out_dir, files, directory, pattern)
    if check:
        outdated = differing(out_dir, files) + stale
        return (1 if outdated else 0), [f"out of date: {out_dir / path}" for path in outdated]
    return 0, [f"wrote {out_dir / path}" for path in write_files(out_dir, files, stale)]
