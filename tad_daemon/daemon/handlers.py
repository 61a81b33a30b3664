"""The request handlers of the core addresses (generate, vary, morph, tweak, repaint, kit, models, status,
ping, notify).

Arguments arrive already typed and range-checked against the protocol table, None where not given; what is
checked here needs the daemon's state: loaded models, configured limits, files and folders. Quick requests
are answered on the server thread; a sound request becomes a SoundJob naming the engine operation that makes
it, for the worker.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from tad_daemon import __version__
from tad_daemon.audio.tune import check_note
from tad_daemon.daemon.pool import Pool
from tad_daemon.daemon.scheduler import Scheduler, SoundJob, SourceFile
from tad_daemon.daemon.server import Refused, Replies, Request
from tad_daemon.engine import Engine
from tad_daemon.kinds import parse_blend
from tad_daemon.models.registry import ModelEntry
from tad_daemon.names import NameError_, check_name, is_within, unknown_model
from tad_daemon.protocol.table import split_names
from tad_daemon.seeds import parse_turns


class SoundRequests:
    """The handlers of the core addresses, given what they read: the loaded models (a function: the daemon
    replaces the dict whole), the engine, scheduler, pool and replies, and the limits."""

    def __init__(self, models: Callable[[], dict[str, ModelEntry]], engine: Engine, scheduler: Scheduler,
                 pool: Pool, replies: Replies, training_status: Callable[[], tuple[int, str, float]],
                 max_count: int, read_roots: list[Path] | None):
        self.loaded_models, self.engine, self.scheduler, self.pool = models, engine, scheduler, pool
        self.replies, self.training_status = replies, training_status
        self.max_count, self.read_roots = max_count, read_roots

    # -- checks ----------------------------------------------------------------------------------------------
    def model(self, name: str) -> str:
        try:
            check_name(name)
        except NameError_ as e:
            raise Refused(str(e)) from None
        models = self.loaded_models()
        if name not in models:
            raise Refused(unknown_model(name, models, "loaded"))
        return name

    def count(self, count: int) -> int:
        if count > self.max_count:
            raise Refused(f"count must be between 1 and {self.max_count} (generate.max_count)")
        return count

    @staticmethod
    def blend(text: str | None) -> dict[str, float] | None:
        try:
            return parse_blend(text) if text is not None else None
        except ValueError as e:
            raise Refused(str(e)) from None

    @staticmethod
    def tune(note: str | None) -> str | None:
        if note is None:
            return None
        try:
            return check_note(note)
        except ValueError as e:
            raise Refused(f"tune: {e}") from None

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
        req.done(version=__version__, device=str(self.engine.device), models=len(self.loaded_models()),
                 queue=self.scheduler.queued(), pool_ready=self.pool.ready(), jobs_queued=jobs_queued,
                 running_job=running_job, job_progress=progress)

    def models(self, req: Request) -> None:
        entries = sorted(self.loaded_models().items())
        for i, (name, entry) in enumerate(entries):
            c = entry.config
            loaded = self.engine.models.get(name)
            req.send("/tad/model", index=i, total=len(entries), name=name, kind=entry.kind, preset=c.preset or "custom",
                     source=c.source, license=c.license, runs_on=loaded.describe() if loaded else "not loaded",
                     kinds=",".join(c.offered))
        req.done(total=len(entries))

    def notify(self, req: Request) -> None:
        on, port = req.args["on"], req.args["port"] or req.source[1]
        if on:
            self.replies.register(req.source[0], port)
        else:
            self.replies.unregister(req.source[0], port)
        req.done(on=on, port=port)

    def _submit(self, req: Request, make, results: int, pool: bool = False, batch: tuple | None = None,
                together: bool = False, **args) -> None:
        """Queue `make` (an engine operation) with `args`, for the request's `results` one-shots."""
        o = req.options
        self.scheduler.submit(SoundJob(req, make, args, self.count(results), post=bool(o["post"]),
                                       tune=self.tune(o.get("tune")), together=together, pool=pool, batch=batch))

    def generate(self, req: Request) -> None:
        a, o = req.args, req.options
        name = self.model(a["model"])
        given = (a["seed"], a["steps"], o["sampler"], o["tune"], o["vel"], o["blend"])
        plain = all(v is None for v in given) and o["post"]
        self._submit(req, self.engine.generate, a["count"], pool=plain,
                     batch=(name, a["steps"], o["sampler"], o["vel"], o["blend"]), name=name, count=a["count"],
                     seed=a["seed"], steps=a["steps"], sampler=o["sampler"], velocity=o["vel"],
                     blend=self.blend(o["blend"]))

    def vary(self, req: Request) -> None:
        a, o = req.args, req.options
        self._submit(req, self.engine.vary, a["count"], name=self.model(a["model"]),
                     source=SourceFile(self.readable_file(a["source_path"])), strength=a["strength"],
                     count=a["count"], seed=a["seed"], steps=o["steps"], sampler=o["sampler"],
                     source_name=a["source_path"], velocity=o["vel"], blend=self.blend(o["blend"]))

    def morph(self, req: Request) -> None:
        a, o = req.args, req.options
        sources = self.readable_file(a["a_path"], "a_path"), self.readable_file(a["b_path"], "b_path")
        self._submit(req, self.engine.morph, a["count"], name=self.model(a["model"]), a=SourceFile(sources[0]),
                     b=SourceFile(sources[1]), position=a["position"], count=a["count"], steps=o["steps"],
                     sources=sources)

    def tweak(self, req: Request) -> None:
        a, o = req.args, req.options
        try:
            turns = parse_turns(o["turns"])
        except ValueError as e:
            raise Refused(str(e)) from None
        self._submit(req, self.engine.tweak, a["count"], name=self.model(a["model"]), seed=a["seed"],
                     amount=a["amount"], count=a["count"], steps=o["steps"], sampler=o["sampler"], velocity=o["vel"],
                     blend=self.blend(o["blend"]), turns=turns)

    def repaint(self, req: Request) -> None:
        a, o = req.args, req.options
        self._submit(req, self.engine.repaint, a["count"], name=self.model(a["model"]),
                     source=SourceFile(self.readable_file(a["source_path"])), start=a["start"], end=a["end"],
                     strength=a["strength"], count=a["count"], seed=a["seed"], steps=o["steps"],
                     sampler=o["sampler"], source_name=a["source_path"])

    def kit(self, req: Request) -> None:
        a, o = req.args, req.options
        names = tuple(self.model(name) for name in split_names(a["models"]))
        if not names:
            raise Refused("models: name at least one model (comma separated: kick,snare,hat,perc)")
        self._submit(req, self.engine.kit, len(names), together=True, names=names, seed=a["seed"], steps=o["steps"],
                     sampler=o["sampler"], velocity=o["vel"])

    def layers(self, req: Request) -> None:
        a, o = req.args, req.options
        self._submit(req, self.engine.layers, a["velocities"] * a["round_robins"], together=True,
                     name=self.model(a["model"]), velocities=a["velocities"], takes=a["round_robins"],
                     seed=a["seed"], steps=o["steps"], sampler=o["sampler"], blend=self.blend(o["blend"]))
