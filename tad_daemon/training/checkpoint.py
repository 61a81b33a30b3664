"""A run's training state on disk: one checkpoint file, replaced atomically, and a lock on the run folder.

The checkpoint is a `torch.save` of plain containers (dicts, lists, numbers, strings, tensors) and is read
back with `weights_only=True`, so loading one never runs pickled code. Written to a temporary file in the
same folder, flushed to disk, then renamed over the old one: a kill at any moment leaves either the old or
the new checkpoint, whole.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from tad_daemon.atomic import atomic_write

FORMAT = "tad-daemon-checkpoint/1"


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    path = atomic_write(path, lambda tmp: torch.save({"format": FORMAT, **state}, tmp))
    _sync_folder(path.parent)


def load_checkpoint(path: str | os.PathLike) -> dict:
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tad-daemon training checkpoint")
    return state


def remove_partial_files(folder: Path) -> None:
    """Temporary files left by a process killed while writing."""
    for p in folder.glob(".*.part"):
        p.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows has no directory handles to sync)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def global_rng_state() -> dict:
    """Python's, NumPy's and torch's global generators (the loop draws from its own; these are kept so that
    anything else drawing random numbers also resumes where it was)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder's lock: not the job's fault, and never a reason to drop its data."""


OWNER = ".lock-owner"  # the process id of the lock's holder (beside the lock: Windows locks the lock file's bytes)


class RunLock:
    """An exclusive lock on a run folder, so two trainers never write the same run. The OS drops it when
    the process dies, even by SIGKILL, so a killed run can be resumed at once. The holder writes its process
    id to OWNER, so a trainer left behind (stopped, say, by a daemon that died while it was paused) can be
    found and ended (`lock_holder`)."""

    def __init__(self, folder: Path, wait: float = 10.0, record: bool = True):
        self.path = folder / ".lock"
        self.wait = wait  # a trainer that was just told to go may need a moment to exit
        self.record = record
        self.file = None

    def __enter__(self) -> RunLock:
        self.file = open(self.path, "a+b")  # noqa: SIM115 (held for the run's lifetime)
        deadline = time.monotonic() + self.wait
        while not self._try_lock():
            if time.monotonic() >= deadline:
                self.file.close()
                raise RunFolderBusy(f"{self.path.parent}: another training process is using this run folder")
            time.sleep(0.2)
        if self.record:
            (self.path.parent / OWNER).write_text(str(os.getpid()), encoding="ascii")
        return self

    def _try_lock(self) -> bool:
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(self.file.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def __exit__(self, *exc) -> None:
        self.file.close()  # closing releases the lock


def lock_holder(folder: Path) -> int | None:
    """The process id holding `folder`'s run lock: None when nobody holds it, 0 when its holder is unknown."""
    if not (folder / ".lock").exists():
        return None
    try:
        with RunLock(folder, wait=0, record=False):
            return None
    except RunFolderBusy:
        try:
            return int((folder / OWNER).read_text(encoding="ascii"))
        except (OSError, ValueError):
            return 0
