"""The request handlers of the core addresses (generate, vary, models, status, ping, notify).

Arguments arrive already typed and range-checked against the protocol table; what is checked here needs
the daemon's state: loaded models, configured limits, files and folders. Quick requests are answered on
the server thread; generation goes to the scheduler.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tad_daemon import __version__
from tad_daemon.daemon.scheduler import Job
from tad_daemon.daemon.server import Refused, Request, Server
from tad_daemon.names import NameError_, check_name, is_within
from tad_daemon.sampling import SAMPLERS

if TYPE_CHECKING:
    from tad_daemon.daemon.app import App

TRAINING = ("/tad/train", "/tad/jobs", "/tad/cancel")


class Core:
    def __init__(self, app: App):
        self.app = app

    # -- checks ----------------------------------------------------------------------------------------------
    def model(self, name: str) -> str:
        try:
            check_name(name)
        except NameError_ as e:
            raise Refused(str(e)) from None
        if name not in self.app.models:
            known = ", ".join(sorted(self.app.models)) or "none"
            raise Refused(f"unknown model {name!r} (loaded: {known})")
        return name

    def count(self, count: int) -> int:
        most = self.app.cfg["generate.max_count"]
        if count > most:
            raise Refused(f"count must be between 1 and {most} (generate.max_count)")
        return count

    @staticmethod
    def sampler(name: str) -> str | None:
        if name and name not in SAMPLERS:
            raise Refused(f"unknown sampler {name!r} (known: {', '.join(SAMPLERS)})")
        return name or None

    def readable_file(self, path: str) -> str:
        """An absolute path to a readable file, inside the configured roots when listening beyond loopback."""
        if not path or not os.path.isabs(path):
            raise Refused(f"source_path must be an absolute path, not {path!r}")
        roots = self.app.read_roots
        if roots is not None and not any(is_within(path, r) for r in roots):
            raise Refused("source_path is outside the folders this daemon may read (samples, models, data)")
        if os.path.isdir(path):
            raise Refused(f"{path} is a folder, not a sound file")
        if not os.path.isfile(path):
            raise Refused(f"no such file: {path}")
        if not os.access(path, os.R_OK):
            raise Refused(f"permission denied: {path}")
        return path

    # -- handlers --------------------------------------------------------------------------------------------
    def ping(self, req: Request) -> None:
        req.done()

    def status(self, req: Request) -> None:
        app = self.app
        jobs_queued, running_job, progress = app.training_status()
        req.done(__version__, str(app.engine.device), len(app.models), app.scheduler.queued(), app.pool.ready(),
                 int(jobs_queued), str(running_job), float(progress))

    def models(self, req: Request) -> None:
        entries = sorted(self.app.models.items())
        for i, (name, entry) in enumerate(entries):
            c = entry.config
            loaded = self.app.engine.models.get(name)
            runs_on = loaded.describe() if loaded else "not loaded"
            req.send("/tad/model", i, len(entries), name, c.kind, c.preset or "custom", c.source, c.license,
                     runs_on)
        req.done(len(entries))

    def notify(self, req: Request) -> None:
        on, port = req.args["on"], req.args["port"] or req.source[1]
        if on:
            self.app.server.replies.register(req.source[0], port)
        else:
            self.app.server.replies.unregister(req.source[0], port)
        req.done(on, port)

    def generate(self, req: Request) -> None:
        a, o = req.args, req.options
        self.app.scheduler.submit(Job(
            req, "generate", self.model(a["model"]), self.count(a["count"]),
            seed=None if a["seed"] < 0 else a["seed"], steps=a["steps"] or None,
            sampler=self.sampler(o["sampler"]), post=bool(o["post"])))

    def vary(self, req: Request) -> None:
        a, o = req.args, req.options
        self.app.scheduler.submit(Job(
            req, "vary", self.model(a["model"]), self.count(a["count"]),
            seed=None if a["seed"] < 0 else a["seed"], steps=o["steps"] or None,
            sampler=self.sampler(o["sampler"]), post=bool(o["post"]),
            source=self.readable_file(a["source_path"]), strength=a["strength"]))


def not_available(req: Request) -> None:
    req.fail("not available")


def register(server: Server, app: App) -> None:
    core = Core(app)
    for address, handler in (("/tad/ping", core.ping), ("/tad/status", core.status), ("/tad/models", core.models),
                             ("/tad/notify", core.notify), ("/tad/generate", core.generate),
                             ("/tad/vary", core.vary)):
        server.register(address, handler)
    # Training arrives with its own module, whose register() replaces these.
    for address in TRAINING:
        server.register(address, not_available)
