"""`tad-daemon serve`: the server, the engine and its worker, the writer, the pool, the models watcher and
training, wired together; clean shutdown on SIGINT/SIGTERM.

The request handlers (handlers.py: sounds; training.py: jobs) are given what they use, not the App; every
address is mapped to its handler here, in one list.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from tad_daemon import __version__
from tad_daemon.config import Config
from tad_daemon.daemon.handlers import SoundRequests
from tad_daemon.daemon.log import setup
from tad_daemon.daemon.pool import Pool
from tad_daemon.daemon.scheduler import Scheduler
from tad_daemon.daemon.server import Handler, Server
from tad_daemon.daemon.training import TrainingRequests
from tad_daemon.daemon.watcher import Watcher
from tad_daemon.daemon.writer import Writer
from tad_daemon.engine import batch_limits
from tad_daemon.models.registry import ModelEntry
from tad_daemon.workspace import Workspace

log = logging.getLogger("tad_daemon.daemon")

# A model file modified less than this long ago is not loaded yet: a copy that preallocates the file (rsync
# --preallocate, some file managers) keeps its size and header whole while the weights are still zeros.
SETTLE_SECONDS = 2.0
PREPARE_TIMEOUT = 600.0  # seconds the first start waits for its models' ONNX exports before it answers


def routes(sounds: SoundRequests, training: TrainingRequests) -> list[tuple[str, Handler]]:
    """Every address and its handler (docs/osc.md has them as a table)."""
    return [
        ("/tad/ping", sounds.ping), ("/tad/status", sounds.status), ("/tad/models", sounds.models),
        ("/tad/notify", sounds.notify), ("/tad/generate", sounds.generate), ("/tad/vary", sounds.vary),
        ("/tad/morph", sounds.morph), ("/tad/tweak", sounds.tweak), ("/tad/repaint", sounds.repaint),
        ("/tad/kit", sounds.kit), ("/tad/layers", sounds.layers), ("/tad/train", training.train),
        ("/tad/distill", training.distill), ("/tad/jobs", training.jobs), ("/tad/cancel", training.cancel),
    ]


class App:
    def __init__(self, cfg: Config, server: Server):
        self.cfg = cfg
        self.server = server
        self.workspace = Workspace(cfg)  # also removes temporary files a killed daemon left behind
        self.engine = self.workspace.make_engine()
        self.models: dict[str, ModelEntry] = {}  # loaded; replaced whole, so other threads read it freely
        self._loaded: dict[str, tuple] = {}  # name -> (path, mtime, size) of the file it was loaded from
        self.pool = Pool(cfg["pool.size"])
        self.writer = Writer(self.workspace, server.broadcast)
        self.scheduler = Scheduler(self.engine, self.pool, self.writer, lambda: list(self.models),
                                   max_queue=cfg["server.queue"], max_batch=self.batch_size())
        # Beyond loopback, requests may only read inside the configured folders (docs/osc.md, Security).
        self.read_roots = None if server.loopback else [
            cfg.path(k) for k in ("paths.samples", "paths.models", "paths.data")]
        self.watcher = Watcher(cfg.path("paths.models"), self.reload_soon)
        self.training = TrainingRequests(cfg, server.broadcast, self.reload_soon,
                                         lambda: set(self.workspace.scan()[0]), self.read_roots,
                                         str(self.engine.device))
        self.scheduler.hold = self.training.runner.hold  # a job on the generating device waits for requests
        sounds = SoundRequests(lambda: self.models, self.engine, self.scheduler, self.pool, server.replies,
                               self.training.status, cfg["generate.max_count"], self.read_roots)
        for address, handler in routes(sounds, self.training):
            server.map(address, handler)

    def batch_size(self) -> int:
        """How many one-shots of waiting requests may run as one batch: generate.batch, or (0) the engine's
        choice for its device (engine.batch_limits)."""
        return self.cfg["generate.batch"] or batch_limits(self.engine.device)[1]

    def reload_soon(self) -> None:
        self.scheduler.call(self.reload_models)  # on the worker thread, between requests

    def reload_models(self, announce: bool = True) -> None:
        """Bring the loaded models in line with the models folders (runs on the worker thread)."""
        entries, _ = self.workspace.scan()  # scan() logs the files it skips
        models = dict(self.models)
        news = []
        unsettled = False
        for name, entry in sorted(entries.items()):
            try:
                st = entry.path.stat()
            except OSError:
                continue
            key = (str(entry.path), st.st_mtime_ns, st.st_size)
            if self._loaded.get(name) == key:
                continue
            if time.time() - st.st_mtime < SETTLE_SECONDS:
                unsettled = True  # still being written, perhaps: the old version (if any) stays in service
                continue
            try:
                self.engine.load(entry)
            except Exception as e:  # incomplete or broken: the old version (if any) stays in service
                log.warning("cannot load model %s from %s: %s", name, entry.path, e)
                continue
            self._loaded[name] = key
            models[name] = entry
            self.pool.invalidate(name)
            log.info("loaded model %s (%s, %s) from %s", name, entry.kind, entry.config.preset or "custom",
                     entry.path)
            news.append(("/tad/model/added", name, entry.kind))
        for name in sorted(set(models) - set(entries)):
            if models[name].path.exists():
                continue  # still there but unreadable (being rewritten?): keep serving the loaded one
            self.engine.unload(name)
            del models[name]
            self._loaded.pop(name, None)
            self.pool.invalidate(name)
            log.info("unloaded model %s (file removed)", name)
            news.append(("/tad/model/removed", name))
        if unsettled and not self.server.stopping.is_set():
            retry = threading.Timer(SETTLE_SECONDS, self.reload_soon)
            retry.daemon = True
            retry.start()
        self.models = models  # before telling anyone: a client told "added" may ask for the model at once
        for message in news if announce else ():
            self.server.broadcast(*message)

    def start(self) -> None:
        self.reload_models(announce=False)
        preparing = self.engine.preparing()
        if preparing:  # a fresh install, or new model files: first presses as fast as later ones
            log.info("preparing %d model(s) for this CPU (ONNX export and timing, once per model file)", preparing)
            started = time.monotonic()
            self.engine.wait_prepared(self.server.stopping, PREPARE_TIMEOUT)
            log.info("prepared in %.1f s", time.monotonic() - started)
        self.writer.start()
        self.scheduler.start()
        self.watcher.start()
        self.training.start()

    def stop(self) -> None:
        try:
            self.training.stop()
        except Exception:  # the rest must still stop
            log.exception("stopping training failed")
        self.watcher.stop()
        self.scheduler.stop()
        self.writer.stop()
        self.engine.close()
        self.workspace.close()


def serve(cfg: Config, server: Server, log_level: str = "info") -> int:
    """Run the daemon on `server` (its socket already bound) until SIGINT or SIGTERM; returns the exit code."""

    def stop(signum, frame) -> None:
        if not server.stopping.is_set():
            log.info("%s: stopping", signal.Signals(signum).name)
        server.stopping.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)
    logfile = setup(cfg.path("paths.logs"), log_level)
    log.info("tad-daemon %s starting (log file: %s)", __version__, logfile)
    app = None
    try:
        app = App(cfg, server)
        app.start()
        names = ", ".join(sorted(app.models)) or "none"
        log.info("ready on %s:%d, device %s, models: %s, samples: %s", cfg["server.host"], server.port,
                 app.engine.device, names, app.workspace.samples.root)
        if not app.models:
            log.warning("no models: put model files in %s", cfg.path("paths.models"))
        server.serve_forever()
    finally:
        server.stopping.set()
        if app is not None:
            app.stop()
        server.close()
        log.info("stopped")
    return 0
