"""The watched inbox: `<data>/inbox/<model>/` folders where the user drops sounds; new sounds queue a
fine-tune of `<model>` for the next night window (off by default: `training.inbox`).

Which model it starts from: `<model>` itself if it is installed (new sounds refine it), else the bundled
class its name contains ("my-kicks" -> kick, "snares-lofi" -> snare), else none (the default preset, from
scratch). A job already waiting for the same folder is not queued twice: it reads the folder when it runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from tad_daemon.names import NameError_, check_name
from tad_daemon.training.dataset import SOUND_SUFFIXES
from tad_daemon.training.queue import Job, JobQueue

log = logging.getLogger(__name__)

CLASSES = {"kick": "kick", "snare": "snare", "hat": "hat", "hihat": "hat", "perc": "perc"}


def inbox_root(data_dir: Path) -> Path:
    return data_dir / "inbox"


def choose_base(name: str, installed: set[str]) -> str:
    if name in installed:
        return name
    lowered = name.lower()
    for word, model in CLASSES.items():
        if word in lowered and model in installed:
            return model
    return ""


class _Changes(FileSystemEventHandler):
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in ("created", "modified", "moved", "closed"):
            return
        path = Path(getattr(event, "dest_path", "") or event.src_path)
        self.inbox.touched(path)


class Inbox:
    """Watches the inbox with watchdog; `submit(name, folder, base)` queues a job (the runner's `submit`)."""

    def __init__(self, root: Path, queue: JobQueue, submit: Callable[..., Job],
                 installed: Callable[[], set[str]], settle: float = 30.0):
        self.root = root.expanduser().resolve()
        self.queue = queue
        self.submit = submit
        self.installed = installed  # names of the installed models, asked when a job is queued
        self.settle = settle  # seconds without changes before queuing: a copy of many files is one job
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._observer = None
        self._thread = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._catch_up()
        self._observer = Observer()
        self._observer.schedule(_Changes(self), str(self.root), recursive=True)
        self._observer.start()
        self._thread = threading.Thread(target=self._loop, name="training-inbox", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        if self._observer:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread:
            self._thread.join(timeout=5)

    def touched(self, path: Path) -> None:
        """A file changed under the inbox: note its model folder, if it is a sound in one."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return
        if len(rel.parts) < 2 or path.suffix.lower() not in SOUND_SUFFIXES or path.name.startswith("."):
            return
        try:
            name = check_name(rel.parts[0])
        except NameError_:
            log.warning("inbox: %s is not a usable model name; its sounds are ignored", rel.parts[0])
            return
        with self._lock:
            self._pending[name] = time.monotonic()

    def _catch_up(self) -> None:
        """Sounds dropped while the daemon was not running: newer than the model, or no model yet."""
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            sounds = [p for p in folder.rglob("*") if p.suffix.lower() in SOUND_SUFFIXES and p.is_file()]
            if not sounds:
                continue
            newest = max(p.stat().st_mtime for p in sounds)
            jobs = [j.created for j in self.queue.jobs() if j.name == folder.name and j.dataset == str(folder)]
            if not jobs or newest > max(jobs):
                self.touched(sounds[0])
                with self._lock:
                    if folder.name in self._pending:
                        self._pending[folder.name] -= self.settle  # nothing is being copied: no need to wait

    def _loop(self) -> None:
        while not self._closing.wait(min(1.0, self.settle / 2 or 0.1)):
            now = time.monotonic()
            with self._lock:
                ready = [n for n, t in self._pending.items() if now - t >= self.settle]
                for name in ready:
                    del self._pending[name]
            for name in ready:
                self._queue(name)

    def _queue(self, name: str) -> Job | None:
        folder = self.root / name
        waiting = [j for j in self.queue.jobs(("queued",)) if j.name == name and j.dataset == str(folder)]
        if waiting:
            return None
        base = choose_base(name, self.installed())
        try:
            job = self.submit(name, str(folder), base=base, now=False)
        except ValueError as e:
            log.warning("inbox: cannot queue a fine-tune of %s: %s", name, e)
            return None
        log.info("inbox: queued job %s, fine-tuning %s on %s for the night window", job.id, base or name, folder)
        return job
