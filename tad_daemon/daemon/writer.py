"""The writer thread: the one place a made one-shot is finished. It tunes it, post-processes it, brings a kit
to one loudness, and then either keeps it in the ready pool or writes it atomically into the sample folder and
answers its request. Kept apart from the worker so that finishing overlaps the next generation and a pool hit
never waits behind one."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import replace

from tad_daemon.audio.tune import describe, tune_shot
from tad_daemon.daemon.pool import Pool, ProcessedShot
from tad_daemon.daemon.server import Request
from tad_daemon.oneshot import OneShot
from tad_daemon.workspace import BadOutput, Workspace

log = logging.getLogger(__name__)


# One-shots made but not yet written: past this the worker waits, so requests queue (and beyond the queue get
# "busy") instead of finished audio piling up in memory when writing is slower than generating (a small
# model on a fast device, post-processing on); bench/robustness.py's fuzz measures the memory.
MAX_BACKLOG = 64


def reply_fields(shot: OneShot, path: str, pool: bool = False) -> dict:
    """Everything a /tad/done of a written one-shot may say, by the protocol table's names: each reply
    takes the fields its row names."""
    return {"path": path, "model": shot.model, "seed": shot.seed, "steps": shot.steps, "sampler": shot.sampler,
            "pool": int(pool), "tuning": describe(shot.tuning), "strength": shot.strength,
            "source_path": shot.source or "", "a_path": shot.source or "", "b_path": shot.source_b or "",
            "position": shot.position, "amount": shot.amount, "variant": shot.variant, "start": shot.start,
            "end": shot.end, "velocity": 1.0 if shot.velocity is None else shot.velocity, "take": shot.take,
            "turns": shot.turns or ""}


class Writer:
    def __init__(self, workspace: Workspace, broadcast: Callable[..., None]):
        self.workspace = workspace
        self.broadcast = broadcast
        self._queue: queue.Queue = queue.Queue()
        self._waiting = 0  # one-shots in the queue or being finished
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- called from other threads: each task goes into the queue with the request it answers ---------------
    def finish(self, job, shots: list[OneShot]) -> None:
        """Finish a SoundJob's one-shots and answer its request with them."""
        self._put(job.request, len(shots), self._finish, job, shots)

    def serve(self, request: Request, shots: list[ProcessedShot]) -> None:
        """Answer `request` with one-shots finished earlier (the pool's)."""
        for shot in shots:
            self._put(request, 1, self._write, request, shot, True)

    def refill(self, pool: Pool, shot: OneShot, version: int) -> None:
        """Finish a one-shot made for the ready pool, and keep it there."""
        self._put(None, 1, self._keep, pool, shot, version)

    def _put(self, request: Request | None, shots: int, task, *args) -> None:
        with self._lock:
            self._waiting += shots
        self._queue.put((request, shots, task, *args))

    def idle(self) -> bool:
        """Nothing waiting or being finished (pool refills wait for this: they would slow the write)."""
        return self._queue.unfinished_tasks == 0

    def full(self) -> bool:
        """MAX_BACKLOG one-shots or more wait (the worker makes no more meanwhile)."""
        return self._waiting >= MAX_BACKLOG

    # -- the writer thread -----------------------------------------------------------------------------------
    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            request, shots, task, *args = item
            try:
                task(*args)
            except Exception as e:  # the thread must live on
                log.exception("finishing a one-shot failed")
                if request is not None:
                    request.fail(f"internal error: {e}")
            finally:
                with self._lock:
                    self._waiting -= shots
                self._queue.task_done()

    def _finish(self, job, shots: list[OneShot]) -> None:
        if job.request.finished:
            return
        shots = [tune_shot(shot, job.tune) for shot in shots]
        try:
            done = self.workspace.finish(shots, job.post, job.together)
        except BadOutput as e:
            log.error("%s: %s", job.request.address, e)
            job.request.fail(str(e))
            return
        for shot, (audio, meta) in zip(shots, done):
            self._write(job.request, ProcessedShot(shot, audio, meta), False)

    def _keep(self, pool: Pool, shot: OneShot, version: int) -> None:
        try:
            ((audio, meta),) = self.workspace.finish([shot])
        except BadOutput as e:
            log.warning("pool refill for %s: %s", shot.model, e)
            return
        # The raw audio is not needed any more: the pool keeps half the memory (many kinds, several each).
        pool.add(shot.model, ProcessedShot(replace(shot, audio=audio[:, :0]), audio, meta), version)

    def _write(self, request: Request, item: ProcessedShot, pool: bool) -> None:
        if request.finished:
            return
        shot = item.shot
        try:
            path = str(self.workspace.save(shot, processed=(item.audio, item.meta)))
        except OSError as e:
            where = f" ({e.filename})" if e.filename else ""
            log.error("cannot write to the sample folder: %s%s", e.strerror or e, where)
            request.fail(f"cannot write to the sample folder: {e.strerror or e}{where}")
            return
        log.info("%s %s -> %s%s", request.address, shot.model, path, " (from the pool)" if pool else "")
        request.done(**reply_fields(shot, path, pool))
        self.broadcast("/tad/sample", path, shot.model)

    def stop(self) -> None:
        """Finish the file being written; fail what is still waiting (the daemon is going away)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and item[0] is not None:
                item[0].fail("daemon is shutting down")
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=30)
