"""Writing files atomically, and telling which generated files differ from what is on disk."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def write_atomically(path: Path, data: str | bytes) -> Path:
    """Replace `path` with `data` in one step: readers see the old file or the whole new one.

    Text is written as UTF-8 with `\n` line ends. The data reaches the disk before the rename,
    and the file gets mode 0644 (generated files are committed and mounted into containers).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def differing(root: Path, files: Mapping[str, str]) -> list[str]:
    """Relative paths under `root` whose content is not `files[path]` (missing ones included)."""
    changed = []
    for relative, text in files.items():
        path = root / relative
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            changed.append(relative)
    return sorted(changed)


def strays(root: Path, files: Mapping[str, str], directory: str, pattern: str) -> list[str]:
    """Files under `root/directory` matching `pattern` that the generator no longer produces."""
    folder = root / directory
    if not folder.is_dir():
        return []
    present = {p.relative_to(root).as_posix() for p in folder.glob(pattern)}
    return sorted(present - set(files))


def write_files(root: Path, files: Mapping[str, str], remove: Sequence[str] = ()) -> list[str]:
    """Write the files that changed and delete `remove`; the relative paths touched."""
    changed = differing(root, files)
    for relative in changed:
        write_atomically(root / relative, files[relative])
    for relative in remove:
        (root / relative).unlink(missing_ok=True)
    return changed + list(remove)
