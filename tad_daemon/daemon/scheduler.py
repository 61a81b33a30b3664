"""The worker: the one thread that drives the engine (and so the accelerator).

Order of work: control tasks (model loads), then sound requests in arrival order, then pool refills when
there is nothing else and the writer is idle. A sound request is a `SoundJob`: the engine operation that makes
its one-shots and the operation's arguments; the worker calls it, with no knowledge of which operation it
is, and hands the one-shots to the writer, which finishes them. The request queue is bounded: when it is full
a request is answered `/tad/fail ... busy` at once instead of waiting. Queued requests for new one-shots of
the same model and settings run as one batch (see `SoundJob.batch`). A refill in progress is abandoned at the
next sampler step when a request arrives, a pool hit included (its file is being written).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

from tad_daemon.audio.load import AudioError, load_oneshot
from tad_daemon.daemon.pool import Pool
from tad_daemon.daemon.server import Refused, Request
from tad_daemon.daemon.writer import Writer
from tad_daemon.engine import Engine
from tad_daemon.oneshot import OneShot
from tad_daemon.seeds import seeds_from

log = logging.getLogger(__name__)

REFILL_BACKOFF = 30.0  # seconds without refills after one failed


class Stopping(Exception):
    pass


class Preempted(Exception):
    pass


@dataclass(frozen=True)
class SourceFile:
    """A sound file an operation takes as an array: the worker reads it just before the operation runs."""

    path: str


@dataclass
class SoundJob:
    """A request for one-shots: the engine operation that makes them, its arguments, and how they are finished.

    `make` is an Engine method (generate, vary, morph, tweak, repaint, kit) and `args` its arguments but
    `progress`, which the worker gives; a SourceFile among them is read first. `count` is how many one-shots
    the request gets. `pool`: a plain "new one" (no seed, steps, sampler or tune, post-processing on) that
    the ready pool of `args["name"]` may serve; then `args["count"]` says how many are still to make.
    `batch`: queued jobs with equal keys run as one batch of their seeds (generate's `seeds`).
    """

    request: Request
    make: Callable[..., list[OneShot]]
    args: dict
    count: int
    post: bool = True
    tune: str | None = None
    together: bool = False  # finished as a kit: brought to one loudness
    pool: bool = False
    batch: tuple | None = None

    def seeds(self) -> list[int]:
        return seeds_from(self.args.get("seed"), self.args["count"])


class Scheduler:
    def __init__(self, engine: Engine, pool: Pool, writer: Writer, models: Callable[[], dict],
                 max_queue: int = 32, max_batch: int = 16):
        self.engine = engine
        self.pool = pool
        self.writer = writer
        self.models = models  # the names of the loaded models, for refills
        self.max_queue = max_queue
        self.max_batch = max(1, max_batch)  # one-shots of waiting jobs merged into one batch
        self._queue: deque[SoundJob] = deque()
        self._control: deque[Callable[[], None]] = deque()
        self._running = 0
        self._stopping = False
        self._refill_after = 0.0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="worker", daemon=True)
        # Wraps each request's generation (not pool refills); training sets it to suspend a job meanwhile.
        self.hold: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext

    # -- called from other threads ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def submit(self, job: SoundJob) -> None:
        """Serve what the pool has now, queue the rest; raises Refused("busy") when the queue is full."""
        with self._cond:
            if self._stopping:
                raise Refused("daemon is shutting down")
            model = job.args.get("name")
            shots, version = self.pool.take(model, job.args["count"]) if job.pool else ([], 0)
            rest = job.count - len(shots)
            if rest and len(self._queue) >= self.max_queue:
                self.pool.give_back(model, shots, version)
                raise Refused("busy")
            if shots:
                self.writer.serve(job.request, shots)
            if rest:
                if shots:
                    job.args["count"] = rest
                self._queue.append(job)
            self._cond.notify()

    def call(self, task: Callable[[], None]) -> None:
        """Run `task` on the worker thread before any further generation (e.g. loading a model)."""
        with self._cond:
            self._control.append(task)
            self._cond.notify()

    def queued(self) -> int:
        """Sound requests waiting or running."""
        return len(self._queue) + self._running

    def stop(self) -> None:
        """Fail what is waiting, abandon the running generation at its next step, wait for the thread."""
        with self._cond:
            self._stopping = True
            pending = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for job in pending:
            job.request.fail("daemon is shutting down")
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    # -- the worker thread -----------------------------------------------------------------------------------
    def _next(self) -> tuple[str, object] | None:
        with self._cond:
            while True:
                if self._stopping:
                    return None
                if self._control:
                    return "control", self._control.popleft()
                writing = not self.writer.idle()
                if self._queue and not self.writer.full():
                    jobs = self._take_batch()
                    self._running = len(jobs)
                    return "jobs", jobs
                if self.pool.size and not writing and time.monotonic() >= self._refill_after:
                    model = self.pool.wanted(self.models())
                    if model:
                        return "refill", model
                self._cond.wait(timeout=0.02 if writing else 1.0)

    def _run(self) -> None:
        while (task := self._next()) is not None:
            kind, what = task
            try:
                if kind == "control":
                    what()
                elif kind == "jobs":
                    self._generate(what)
                else:
                    self._refill(what)
            except Exception:  # the worker must live on
                log.exception("worker task %s failed", kind)
            finally:
                self._running = 0

    def _take_batch(self) -> list[SoundJob]:
        first = self._queue.popleft()
        jobs, total = [first], first.args.get("count", first.count)
        if first.batch is not None and self.max_batch > 1:
            for job in list(self._queue):
                if job.batch == first.batch and total + job.args["count"] <= self.max_batch:
                    self._queue.remove(job)
                    jobs.append(job)
                    total += job.args["count"]
        return jobs

    def _check_stop(self, done: int, total: int) -> None:
        if self._stopping:
            raise Stopping

    def _check_preempt(self, done: int, total: int) -> None:
        if self._stopping:
            raise Stopping
        # Not for a pool hit being written: during an audition (a press every half second, each a pool hit)
        # a refill given up at every write would never finish, and the pool would run dry after two presses.
        if self._queue or self._control:
            raise Preempted

    def _generate(self, jobs: list[SoundJob]) -> None:
        try:
            with self.hold():
                made = self._make(jobs)
            for job, shots in made:
                self.writer.finish(job, shots)
            return
        except Stopping:
            message = "daemon is shutting down"
        except (AudioError, ValueError) as e:
            message = str(e)
        except KeyError as e:
            message = str(e.args[0])
        except Exception as e:
            log.exception("generation failed")
            message = f"generation failed: {e}"
        for job in jobs:
            job.request.fail(message)

    def _make(self, jobs: list[SoundJob]) -> list[tuple[SoundJob, list[OneShot]]]:
        """Each job's one-shots: its operation called with its arguments, or, for a batch, with all the
        jobs' seeds at once."""
        first = jobs[0]
        args = {k: load_oneshot(v.path) if isinstance(v, SourceFile) else v for k, v in first.args.items()}
        if len(jobs) == 1:
            return [(first, first.make(**args, progress=self._check_stop))]
        seeds = [job.seeds() for job in jobs]
        shots = first.make(**args | {"seeds": [s for group in seeds for s in group]}, progress=self._check_stop)
        starts = list(accumulate([0] + [len(group) for group in seeds]))
        return [(job, shots[a:b]) for job, a, b in zip(jobs, starts, starts[1:])]

    def _refill(self, model: str) -> None:
        version = self.pool.version(model)
        try:
            shot = self.engine.generate(model, progress=self._check_preempt)[0]
        except (Preempted, Stopping):
            return
        except Exception as e:
            log.warning("pool refill for %s failed: %s (retrying in %.0f s)", model, e, REFILL_BACKOFF)
            self._refill_after = time.monotonic() + REFILL_BACKOFF
            return
        self.writer.refill(self.pool, shot, version)
