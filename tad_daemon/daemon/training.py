"""Training in the daemon: /tad/train, /tad/distill, /tad/jobs, /tad/cancel, and the queue's broadcasts.

The queue and its runner live in tad_daemon/training (docs/training.md); here they are wired to OSC. Jobs run
in their own process; while an interactive request generates, a job on the same device is suspended (the
scheduler's `hold`). A finished model is loaded by the worker, which announces it with /tad/model/added.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from tad_daemon.config import Config
from tad_daemon.daemon.server import Refused, Request
from tad_daemon.models.modelfile import SUFFIX
from tad_daemon.names import is_within
from tad_daemon.training.inbox import Inbox, inbox_root
from tad_daemon.training.queue import FINAL, Job, JobQueue, QueueError
from tad_daemon.training.runner import Runner

log = logging.getLogger(__name__)

LISTED_FINISHED = 20  # /tad/jobs lists every unfinished job and this many of the latest finished ones
SUBMITTING = 4  # /tad/train requests being checked at once (each looks through a folder); more: "busy"


class TrainingRequests:
    """The training addresses and the job queue's runner, given how to broadcast, how to have the models
    reloaded (a finished job's model), the installed model names and where requests may read."""

    def __init__(self, cfg: Config, broadcast: Callable[..., None], reload_models: Callable[[], None],
                 model_names: Callable[[], set[str]], read_roots: list[Path] | None, generation_device: str):
        self.broadcast, self.reload_models, self.read_roots = broadcast, reload_models, read_roots
        self.queue = JobQueue(cfg.path("paths.data") / "jobs.sqlite")
        self.runner = Runner(self.queue, cfg, self.on_progress, self.on_state, self.on_model,
                             generation_device=generation_device)
        self.inbox = None
        if cfg["training.inbox"]:
            self.inbox = Inbox(inbox_root(cfg.path("paths.data")), self.queue, self.runner.submit, model_names)
        self._submitting = threading.BoundedSemaphore(SUBMITTING)

    def start(self) -> None:
        self.runner.start()
        if self.inbox:
            self.inbox.start()

    def stop(self) -> None:
        if self.inbox:
            self.inbox.close()
        self.runner.close()  # a running job checkpoints and is paused; it resumes at the next start
        self.queue.close()

    def status(self) -> tuple[int, str, float]:
        """(jobs waiting, the running job's id or "", its progress 0..1) for /tad/status."""
        counts = self.queue.counts()
        job = self.runner.running()
        progress = job.step / job.total if job and job.total else 0.0
        return counts["queued"] + counts["paused"], job.id if job else "", float(progress)

    # -- the runner's callbacks (its thread) -----------------------------------------------------------
    def on_progress(self, job: Job, step: int, total: int, loss: float, eta: float) -> None:
        self.broadcast("/tad/progress", job.id, job.name, int(step), int(total), float(loss), float(eta))

    def on_state(self, job: Job, state: str, message: str) -> None:
        self.broadcast("/tad/job/state", job.id, job.name, state, message)

    def on_model(self, job: Job, path) -> None:
        self.reload_models()  # loads it and broadcasts /tad/model/added

    # -- requests --------------------------------------------------------------------------------------
    def train(self, req: Request) -> None:
        a = req.args
        self._check_dataset(a["dataset_dir"])
        self._check_model_file(a["base"], "base")
        self._submit_in_background(req, lambda: self.runner.submit(a["name"], a["dataset_dir"], a["base"], a["steps"],
                                                                   bool(a["now"])))

    def distill(self, req: Request) -> None:
        a, o = req.args, req.options
        if a["dataset_dir"] is not None:
            self._check_dataset(a["dataset_dir"])
        self._check_model_file(a["model"], "model")
        settings = {"teacher_steps": o["teacher_steps"]} if o["teacher_steps"] else {}
        self._submit_in_background(req, lambda: self.runner.submit_distill(
            a["name"], a["model"], a["steps"], a["dataset_dir"], o["train_steps"], bool(a["now"]), settings,
            replace=bool(o["replace"])))

    def _check_dataset(self, dataset: str) -> None:
        if not dataset or not os.path.isabs(dataset):
            raise Refused(f"dataset_dir must be an absolute path, not {dataset!r}")
        roots = self.read_roots
        if roots is not None and not any(is_within(dataset, r) for r in roots):
            raise Refused("dataset_dir is outside the folders this daemon may read (samples, models, data)")

    def _check_model_file(self, model: str | None, what: str) -> None:
        """A base or teacher given as a model file, not a name, is read like any file a request names."""
        roots = self.read_roots
        if model and model.endswith(SUFFIX) and roots is not None and not (
                os.path.isabs(model) and any(is_within(model, r) for r in roots)):
            raise Refused(f"{what} is outside the folders this daemon may read (samples, models, data)")

    def _submit_in_background(self, req: Request, submit: Callable[[], Job]) -> None:
        """Looking through a dataset folder may take a while: not on the server's thread."""
        if not self._submitting.acquire(blocking=False):
            raise Refused("busy")
        threading.Thread(target=self._submit, args=(req, submit), name="train-request", daemon=True).start()

    def _submit(self, req: Request, submit: Callable[[], Job]) -> None:
        try:
            job = submit()
        except ValueError as e:  # bad name, base, steps or dataset, with the reason
            req.fail(str(e))
        except Exception as e:
            log.exception("%s failed", req.address)
            req.fail(f"internal error: {e}")
        else:
            req.done(job_id=job.id, name=job.name, state=job.state)
        finally:
            self._submitting.release()

    def jobs(self, req: Request) -> None:
        jobs = self.queue.jobs()
        finished = [j for j in jobs if j.state in FINAL][-LISTED_FINISHED:]
        listed = [j for j in jobs if j.state not in FINAL or j in finished]
        for job in listed:
            req.send("/tad/job", job_id=job.id, name=job.name, state=job.state, step=job.step, total=job.total,
                     loss=job.loss or 0.0)
        req.done(total=len(listed))

    def cancel(self, req: Request) -> None:
        try:
            job = self.runner.cancel(req.args["job_id"])
        except QueueError as e:
            raise Refused(str(e)) from None
        req.done(job_id=job.id, state="cancelled")

