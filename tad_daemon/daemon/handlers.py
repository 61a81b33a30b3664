"""The request handlers of the core addresses (generate, vary, morph, tweak, repaint, kit, models, status,
ping, notify).

Arguments arrive already typed and range-checked against the protocol table; what is checked here needs
the daemon's state: loaded models, configured limits, files and folders. Quick requests are answered on
the server thread; generation goes to the scheduler.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from tad_daemon import __version__
from tad_daemon.audio.tune import note_hz
from tad_daemon.daemon.pool import Pool
from tad_daemon.daemon.scheduler import Job, Scheduler
from tad_daemon.daemon.server import Refused, Replies, Request
from tad_daemon.engine import Engine
from tad_daemon.models.registry import ModelEntry
from tad_daemon.names import NameError_, check_name, is_within
from tad_daemon.protocol.table import split_names


class SoundRequests:
    """The handlers of the core addresses, given what they read: the loaded models (a function: the daemon
    replaces the dict whole), the engine, scheduler, pool and replies, and the limits."""

    ROUTES = {"/tad/ping": "ping", "/tad/status": "status", "/tad/models": "models", "/tad/notify": "notify",
              "/tad/generate": "generate", "/tad/vary": "vary", "/tad/morph": "morph", "/tad/tweak": "tweak",
              "/tad/repaint": "repaint", "/tad/kit": "kit"}

    def __init__(self, models: Callable[[], dict[str, ModelEntry]], engine: Engine, scheduler: Scheduler,
                 pool: Pool, replies: Replies, training_status: Callable[[], tuple[int, str, float]],
                 max_count: int, read_roots: list[Path] | None):
        self.loaded_models, self.engine, self.scheduler, self.pool = models, engine, scheduler, pool
        self.replies, self.training_status = replies, training_status
        self.max_count, self.read_roots = max_count, read_roots

    def routes(self) -> dict[str, Callable[[Request], None]]:
        return {address: getattr(self, name) for address, name in self.ROUTES.items()}

    # -- checks ----------------------------------------------------------------------------------------------
    def model(self, name: str) -> str:
        try:
            check_name(name)
        except NameError_ as e:
            raise Refused(str(e)) from None
        models = self.loaded_models()
        if name not in models:
            known = ", ".join(sorted(models)) or "none"
            raise Refused(f"unknown model {name!r} (loaded: {known})")
        return name

    def count(self, count: int) -> int:
        if count > self.max_count:
            raise Refused(f"count must be between 1 and {self.max_count} (generate.max_count)")
        return count

    @staticmethod
    def tune(note: str) -> str | None:
        if not note:
            return None
        try:
            note_hz(note)
        except ValueError as e:
            raise Refused(f"tune: {e}") from None
        return note

    def readable_file(self, path: str, what: str = "source_path") -> str:
        """An absolute path to a readable file, inside the configured roots when listening beyond loopback."""
        if not path or not os.path.isabs(path):
            raise Refused(f"{what} must be an absolute path, not {path!r}")
        roots = self.read_roots
        if roots is not None and not any(is_within(path, r) for r in roots):
            raise Refused(f"{what} is outside the folders this daemon may read (samples, models, data)")
        try:
            mode = os.stat(path).st_mode
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise Refused(f"symlink loop: {path}") from None
            raise Refused(f"no such file: {path}") from None
        if stat.S_ISDIR(mode):
            raise Refused(f"{path} is a folder, not a sound file")
        if not stat.S_ISREG(mode):  # a FIFO would block the reader, a device never ends
            raise Refused(f"{path} is not a regular file (a pipe, device or socket), not a sound file")
        if not os.access(path, os.R_OK):
            raise Refused(f"permission denied: {path}")
        return path

    # -- handlers --------------------------------------------------------------------------------------------
    def ping(self, req: Request) -> None:
        req.done()

    def status(self, req: Request) -> None:
        jobs_queued, running_job, progress = self.training_status()
        req.done(__version__, str(self.engine.device), len(self.loaded_models()), self.scheduler.queued(),
                 self.pool.ready(), int(jobs_queued), str(running_job), float(progress))

    def models(self, req: Request) -> None:
        entries = sorted(self.loaded_models().items())
        for i, (name, entry) in enumerate(entries):
            c = entry.config
            loaded = self.engine.models.get(name)
            runs_on = loaded.describe() if loaded else "not loaded"
            req.send("/tad/model", i, len(entries), name, c.kind, c.preset or "custom", c.source, c.license,
                     runs_on)
        req.done(len(entries))

    def notify(self, req: Request) -> None:
        on, port = req.args["on"], req.args["port"] or req.source[1]
        if on:
            self.replies.register(req.source[0], port)
        else:
            self.replies.unregister(req.source[0], port)
        req.done(on, port)

    def _job(self, req: Request, kind: str, **what) -> Job:
        """A job of `kind` with what every kind reads the same way (absent arguments and options: defaults)."""
        a, o = req.args, req.options
        seed = a.get("seed", -1)
        return Job(req, kind, what.pop("model", None) or self.model(a["model"]), self.count(a.get("count", 1)),
                   seed=None if seed < 0 else seed, steps=a.get("steps") or o.get("steps") or None,
                   sampler=o.get("sampler") or None, post=bool(o["post"]), tune=self.tune(o.get("tune", "")),
                   **what)

    def generate(self, req: Request) -> None:
        self.scheduler.submit(self._job(req, "generate"))

    def vary(self, req: Request) -> None:
        a = req.args
        self.scheduler.submit(self._job(req, "vary", sources=(self.readable_file(a["source_path"]),),
                                        strength=a["strength"]))

    def morph(self, req: Request) -> None:
        a = req.args
        self.scheduler.submit(self._job(req, "morph", position=a["position"],
                                        sources=(self.readable_file(a["a_path"], "a_path"),
                                                 self.readable_file(a["b_path"], "b_path"))))

    def tweak(self, req: Request) -> None:
        self.scheduler.submit(self._job(req, "tweak", amount=req.args["amount"]))

    def repaint(self, req: Request) -> None:
        a = req.args
        self.scheduler.submit(self._job(req, "repaint", sources=(self.readable_file(a["source_path"]),),
                                        region=(a["start"], a["end"]), strength=a["strength"]))

    def kit(self, req: Request) -> None:
        models = tuple(self.model(name) for name in split_names(req.args["models"]))
        if not models:
            raise Refused("models: name at least one model (comma separated: kick,snare,hat,perc)")
        self.count(len(models))
        self.scheduler.submit(self._job(req, "kit", model=models[0], models=models))

