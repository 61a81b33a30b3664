"""The worker: the one thread that drives the engine (and so the accelerator).

Order of work: control tasks (model loads), then interactive requests (generate, vary, morph, tweak, repaint,
kit) in arrival order,
then pool refills when there is nothing else and the writer is idle. The request queue is bounded: when it
is full a request is answered `/tad/fail ... busy` at once instead of waiting. Queued generate requests for
the same model and settings run as one batch, up to `max_batch` one-shots (see `App.batch_size`). A refill
in progress is abandoned at the next sampler step when an interactive request arrives, a pool hit included
(its file is being written).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import accumulate

from tad_daemon.audio.folder import kit_name
from tad_daemon.audio.load import AudioError, load_oneshot
from tad_daemon.audio.tune import tune_shot
from tad_daemon.daemon.pool import Pool, ProcessedShot
from tad_daemon.daemon.server import Refused, Request
from tad_daemon.daemon.writer import Writer
from tad_daemon.engine import MAX_SEED, Engine, OneShot, random_seed

log = logging.getLogger(__name__)

REFILL_BACKOFF = 30.0  # seconds without refills after one failed


class Stopping(Exception):
    pass


class Preempted(Exception):
    pass


@dataclass
class Job:
    request: Request
    kind: str  # generate, vary, morph, tweak, repaint or kit (docs/osc.md)
    model: str  # kit: the first of `models`
    count: int
    seed: int | None = None
    steps: int | None = None
    sampler: str | None = None
    post: bool = True
    sources: tuple[str, ...] = ()  # vary, repaint: the source file; morph: the two
    strength: float = 0.0  # vary, repaint
    position: float = 0.5  # morph
    amount: float = 0.0  # tweak
    region: tuple[float, float] = (0.0, 0.0)  # repaint: start and end, seconds
    models: tuple[str, ...] = ()  # kit
    tune: str | None = None  # a note to tune each one-shot to

    @property
    def poolable(self) -> bool:
        """Only a plain "new one" may come from the pool: explicit seed, steps, sampler, tune or post=0 never
        do."""
        return (self.kind == "generate" and self.seed is None and self.steps is None and self.sampler is None
                and self.post and not self.tune)

    @property
    def batch_key(self) -> tuple | None:
        return (self.model, self.steps, self.sampler) if self.kind == "generate" else None


class Scheduler:
    def __init__(self, engine: Engine, pool: Pool, writer: Writer, models: Callable[[], dict],
                 max_queue: int = 32, max_batch: int = 16):
        self.engine = engine
        self.pool = pool
        self.writer = writer
        self.models = models  # the names of the loaded models, for refills
        self.max_queue = max_queue
        self.max_batch = max(1, max_batch)
        self._queue: deque[Job] = deque()
        self._control: deque[Callable[[], None]] = deque()
        self._running = 0
        self._stopping = False
        self._refill_after = 0.0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="worker", daemon=True)
        # Wraps each interactive generation (not pool refills); training sets it to suspend a job meanwhile.
        self.hold: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext

    # -- called from other threads ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Serve what the pool has now, queue the rest; raises Refused("busy") when the queue is full."""
        with self._cond:
            if self._stopping:
                raise Refused("daemon is shutting down")
            shots, version = self.pool.take(job.model, job.count) if job.poolable else ([], 0)
            rest = job.count - len(shots)
            if rest and len(self._queue) >= self.max_queue:
                self.pool.give_back(job.model, shots, version)
                raise Refused("busy")
            if shots:
                self.writer.put(job.request, shots, job.post, pool=True)
            if rest:
                job.count = rest
                self._queue.append(job)
            self._cond.notify()

    def call(self, task: Callable[[], None]) -> None:
        """Run `task` on the worker thread before any further generation (e.g. loading a model)."""
        with self._cond:
            self._control.append(task)
            self._cond.notify()

    def queued(self) -> int:
        """Interactive requests waiting or running."""
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

    def _take_batch(self) -> list[Job]:
        first = self._queue.popleft()
        jobs, total = [first], first.count
        if first.batch_key is not None and self.max_batch > 1:
            for job in list(self._queue):
                if job.batch_key == first.batch_key and total + job.count <= self.max_batch:
                    self._queue.remove(job)
                    jobs.append(job)
                    total += job.count
        return jobs

    def _check_stop(self, done: int, total: int) -> None:
        if self._stopping:
            raise Stopping

    def _check_preempt(self, done: int, total: int) -> None:
        if self._stopping:
            raise Stopping
        if self._queue or self._control or not self.writer.idle():  # a pool hit is being written
            raise Preempted

    def _generate(self, jobs: list[Job]) -> None:
        try:
            with self.hold():
                made = self._make(jobs)
            for job, shots in made:
                shots = [tune_shot(shot, job.tune) for shot in shots]
                if job.kind == "kit":
                    shots = [ProcessedShot(shot, *done)
                             for shot, done in zip(shots, self.writer.workspace.process_kit(shots, job.post))]
                self.writer.put(job.request, shots, job.post)
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

    def _make(self, jobs: list[Job]) -> list[tuple[Job, list[OneShot]]]:
        """Each job's one-shots; only generate jobs come more than one at a time (one batch)."""
        job, engine, stop = jobs[0], self.engine, self._check_stop
        if job.kind == "generate":
            seeds = []
            for j in jobs:
                base = random_seed() if j.seed is None else j.seed
                seeds += [(base + i) % (MAX_SEED + 1) for i in range(j.count)]
            shots = engine.generate(job.model, steps=job.steps, sampler=job.sampler, seeds=seeds, progress=stop)
            starts = list(accumulate([0] + [j.count for j in jobs]))
            return [(j, shots[a:b]) for j, a, b in zip(jobs, starts, starts[1:])]
        sources = [load_oneshot(path) for path in job.sources]
        if job.kind == "vary":
            shots = engine.vary(job.model, sources[0], job.strength, job.count, job.seed, job.steps, job.sampler,
                                source_name=job.sources[0], progress=stop)
        elif job.kind == "morph":
            shots = engine.morph(job.model, *sources, job.position, job.count, job.steps, job.sources, progress=stop)
        elif job.kind == "tweak":
            shots = engine.tweak(job.model, job.seed, job.amount, job.count, job.steps, job.sampler, progress=stop)
        elif job.kind == "repaint":
            shots = engine.repaint(job.model, sources[0], *job.region, job.strength, job.count, job.seed, job.steps,
                                   job.sampler, source_name=job.sources[0], progress=stop)
        else:
            seed = random_seed() if job.seed is None else job.seed
            kit = kit_name(seed)
            shots = [replace(engine.generate(m, 1, seed, job.steps, job.sampler, progress=stop)[0], kind="kit",
                             kit=kit) for m in job.models]
        return [(job, shots)]

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
        self.pool.add(model, self.writer.prepare(shot), version)
