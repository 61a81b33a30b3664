"""The writer thread: post-processes finished one-shots, writes them atomically into the sample folder and
answers their requests. Kept apart from the worker so that writing overlaps the next generation and a
pool hit never waits behind one."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from tad_daemon.audio.post import PostProcess
from tad_daemon.audio.tune import describe
from tad_daemon.daemon.pool import ProcessedShot
from tad_daemon.daemon.server import Request
from tad_daemon.engine import OneShot
from tad_daemon.workspace import BadOutput, Workspace

log = logging.getLogger(__name__)


# One-shots generated but not yet written: past this the worker waits, so requests queue (and beyond the
# queue get "busy") instead of finished audio piling up in memory when writing is slower than generating
# (a small model on a fast device, post-processing on; measured: +80 MB per 50,000 fuzzed packets before).
MAX_BACKLOG = 64


def reply_args(shot: OneShot, path: str, pool: bool = False) -> tuple:
    """The /tad/done arguments for one written file, as docs/osc.md's table has them for its kind."""
    tuning = describe(shot.tuning)
    if shot.kind == "generate":
        return path, shot.model, shot.seed, shot.steps, shot.sampler, int(pool), tuning
    if shot.kind == "vary":
        return path, shot.model, shot.seed, float(shot.strength), shot.source or "", tuning
    if shot.kind == "morph":
        return path, shot.model, float(shot.position), shot.source or "", shot.source_b or ""
    if shot.kind == "tweak":
        return path, shot.model, shot.seed, float(shot.amount), shot.variant, tuning
    if shot.kind == "repaint":
        return path, shot.model, shot.seed, float(shot.start), float(shot.end), shot.source or ""
    return path, shot.model, shot.seed, tuning  # kit


class Writer:
    def __init__(self, workspace: Workspace, broadcast: Callable[..., None]):
        self.workspace = workspace
        self.broadcast = broadcast
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def prepare(self, shot: OneShot) -> ProcessedShot:
        return ProcessedShot(shot, *self.workspace.process(shot))

    def put(self, request: Request, shots: list[OneShot | ProcessedShot], post: bool, pool: bool = False) -> None:
        for shot in shots:
            self._queue.put((request, shot, post, pool))

    def idle(self) -> bool:
        """Nothing waiting or being written (pool refills wait for this: they would slow the write)."""
        return self._queue.unfinished_tasks == 0

    def full(self) -> bool:
        """MAX_BACKLOG one-shots or more wait to be written (the worker generates no more meanwhile)."""
        return self._queue.unfinished_tasks >= MAX_BACKLOG

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._write(*item)
            except Exception as e:  # the thread must live on
                log.exception("writing a one-shot failed")
                item[0].fail(f"internal error: {e}")
            finally:
                self._queue.task_done()

    def _write(self, request: Request, item: OneShot | ProcessedShot, post: bool, pool: bool) -> None:
        if request.finished:
            return
        shot = item.shot if isinstance(item, ProcessedShot) else item
        try:
            if isinstance(item, ProcessedShot):
                path = str(self.workspace.save(shot, processed=(item.audio, item.meta)))
            else:
                path = str(self.workspace.save(shot, None if post else PostProcess.none()))
        except BadOutput as e:
            log.error("%s: %s", request.address, e)
            request.fail(str(e))
            return
        except OSError as e:
            where = f" ({e.filename})" if e.filename else ""
            log.error("cannot write to the sample folder: %s%s", e.strerror or e, where)
            request.fail(f"cannot write to the sample folder: {e.strerror or e}{where}")
            return
        log.info("%s %s -> %s%s", request.address, shot.model, path, " (from the pool)" if pool else "")
        request.done(*reply_args(shot, path, pool))
        self.broadcast("/tad/sample", path, shot.model)

    def stop(self) -> None:
        """Finish the file being written; fail what is still waiting (the daemon is going away)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].fail("daemon is shutting down")
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=30)
