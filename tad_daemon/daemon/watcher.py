"""Watches the models folder (watchdog) and asks for a reload once changes have settled.

A model file being copied in changes for a while: the reload waits until no event has arrived for `quiet`
seconds and every model file's size and modification time held still over that time. Dot-files and
`*.part` files (how `save_model` and downloads write before their final rename) are ignored. The reload
itself (see `App.reload_models`) loads only files that read completely, so a half-copied file is never used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from tad_daemon.models.modelfile import SUFFIX

log = logging.getLogger(__name__)


def is_model_file(path: str) -> bool:
    name = Path(path).name
    return name.endswith(SUFFIX) and not name.startswith(".") and not name.endswith(".part")


class Watcher(FileSystemEventHandler):
    def __init__(self, folder: Path, on_change: Callable[[], None], quiet: float = 0.5):
        self.folder = folder
        self.on_change = on_change
        self.quiet = quiet
        self._changed = threading.Event()
        self._last = 0.0
        self._stop = threading.Event()
        self._observer = Observer()
        self._thread = threading.Thread(target=self._run, name="watcher", daemon=True)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return  # reading a model (as the daemon does when loading it) is not a change
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(is_model_file(str(p)) for p in paths if p):
            self._last = time.monotonic()
            self._changed.set()

    def _snapshot(self) -> dict:
        out = {}
        try:
            for p in self.folder.iterdir():
                if is_model_file(p.name):
                    try:
                        st = p.stat()
                        out[p.name] = (st.st_size, st.st_mtime_ns)
                    except OSError:
                        pass
        except OSError:
            pass
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._changed.wait(timeout=0.5):
                continue
            self._changed.clear()  # events from here on lead to another round
            before = self._snapshot()
            while not self._stop.is_set():
                time.sleep(self.quiet)
                after = self._snapshot()
                if after == before and time.monotonic() - self._last >= self.quiet:
                    break
                before = after
            if not self._stop.is_set():
                log.info("models folder changed: reloading")
                self.on_change()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._observer.schedule(self, str(self.folder), recursive=False)
        self._observer.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread.is_alive():
            self._thread.join(timeout=5)
