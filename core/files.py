"""Writing files atomically, and telling which generated files differ from what is on disk."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` to write; it replaces `path` in one step when the block
    ends (readers see the old file or the whole new one), and is removed if the block fails.

    The data reaches the disk before the rename, and the file gets mode 0644 (generated files
    are committed and mounted into containers).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: str | bytes) -> Path:
    """Replace `path` with `data` in one step (`replacing`); text is written as UTF-8 with `\n`
    line ends."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(path) as tmp:
        tmp.write_bytes(payload)
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
