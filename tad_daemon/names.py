"""Names from users and requests, and the folders they may touch. No torch here: the OSC client imports it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # fullmatch: `$` would let a final newline pass
# Windows device names are files everywhere on Windows, whatever the extension.
_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10)}


class NameError_(ValueError):
    """A model or job name that cannot become a file name."""


def check_name(name: str, what: str = "model name") -> str:
    """Return `name` if it is safe as a file name on every platform, else raise with the reason."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise NameError_(
            f"invalid {what} {name!r}: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    if ".." in name or name.split(".")[0].lower() in _RESERVED or name.endswith("."):
        raise NameError_(f"invalid {what} {name!r}: reserved or ambiguous file name")
    return name


def is_within(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """True if `path`, with links resolved, lies inside `root`."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop (Python 3.11)
        return False


def unknown_model(name: str, known: Iterable[str], where: str = "installed", role: str = "") -> str:
    """Why a request's model cannot be used: it is not among `known` (the models `where` says: loaded,
    installed). `role`: what the model was to be (base, teacher)."""
    listed = ", ".join(sorted(known)) or "none"
    return f"unknown {role + ' ' if role else ''}model {name!r} ({where}: {listed})"
