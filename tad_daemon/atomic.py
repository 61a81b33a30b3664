"""Files that readers see whole or not at all: written to a hidden temporary file in the same folder (so the
final rename is atomic), flushed to disk, then renamed over the target. A DAW, a models-folder watcher or a
resumed job never reads half a file, even when the writer is killed; what a killed writer leaves is a
dot-named `.part` file. New files get the user's normal mode (0666 less the umask), like any saved file.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path


def temp_file(folder: Path, name: str) -> Path:
    """A new, empty, hidden `.part` file in `folder` for a file called `name`."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(4)}.part"
        try:
            os.close(os.open(tmp, flags, 0o666))  # the umask applies, unlike mkstemp's 0600
            return tmp
        except FileExistsError:
            continue


def atomic_write(path: str | os.PathLike, write: Callable[[str], object], tmp_dir: str | os.PathLike | None = None
                 ) -> Path:
    """Write `path` through `write(temporary_path)`; `tmp_dir` (default: beside `path`) must be on the same
    file system."""
    path = Path(path)
    tmp = temp_file(Path(tmp_dir) if tmp_dir else path.parent, path.name)
    try:
        write(str(tmp))
        with open(tmp, "r+b") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    return atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))
