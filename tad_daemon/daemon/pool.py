"""The ready pool: a few one-shots per model made while the daemon is idle, so "new snare" can be
answered at once. The sounds stay in memory (already post-processed); one reaches the sample folder only
when it is served, and `take` removes it, so none is ever served twice. Reloading a model empties its pool
(`invalidate`)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tad_daemon.oneshot import OneShot


@dataclass
class ProcessedShot:
    """A one-shot already post-processed with the configured settings, as the pool keeps them: serving one
    is then only the file write."""

    shot: OneShot
    audio: np.ndarray
    meta: dict


class Pool:
    def __init__(self, size: int):
        self.size = max(0, size)  # per model; 0 turns the pool off
        self._shots: dict[str, deque[ProcessedShot]] = {}
        self._version: dict[str, int] = {}
        self._lock = threading.Lock()

    def ready(self, model: str | None = None) -> int:
        with self._lock:
            if model is not None:
                return len(self._shots.get(model, ()))
            return sum(len(q) for q in self._shots.values())

    def version(self, model: str) -> int:
        with self._lock:
            return self._version.get(model, 0)

    def take(self, model: str, n: int) -> tuple[list[ProcessedShot], int]:
        """Up to `n` ready one-shots of `model` (gone from the pool), and the pool's version for `give_back`."""
        with self._lock:
            q = self._shots.get(model, deque())
            return [q.popleft() for _ in range(min(n, len(q)))], self._version.get(model, 0)

    def give_back(self, model: str, shots: list[ProcessedShot], version: int) -> None:
        """Return shots that were taken but not served (unless the model was reloaded meanwhile)."""
        with self._lock:
            if self._version.get(model, 0) == version:
                self._shots.setdefault(model, deque()).extendleft(reversed(shots))

    def wanted(self, models: Iterable[str]) -> str | None:
        """The model whose pool is emptiest, if any is below `size`."""
        with self._lock:
            short = [(len(self._shots.get(m, ())), m) for m in sorted(models)]
        short = [x for x in short if x[0] < self.size]
        return min(short)[1] if short else None

    def add(self, model: str, shot: ProcessedShot, version: int) -> bool:
        """Keep `shot` unless the model was reloaded since `version` was read, or its pool is full."""
        with self._lock:
            q = self._shots.setdefault(model, deque())
            if self._version.get(model, 0) != version or len(q) >= self.size:
                return False
            q.append(shot)
            return True

    def invalidate(self, model: str) -> None:
        with self._lock:
            self._shots.pop(model, None)
            self._version[model] = self._version.get(model, 0) + 1
