"""The daemon's log: a rotating file plus the console, and a rate limit for what strangers can provoke."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import time
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(log_dir: Path, level: str = "info", console: bool = True) -> Path:
    """Log to `log_dir/daemon.log` (1 MB x 5 files) and to stderr; returns the log file's path."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "daemon.log"
    root = logging.getLogger("tad_daemon")
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for h in list(root.handlers):
        root.removeHandler(h)
    file = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=5, encoding="utf-8")
    file.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(file)
    if console:
        out = logging.StreamHandler(sys.stderr)
        out.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s", "%H:%M:%S"))
        root.addHandler(out)
    root.propagate = False
    return path


class RateLimited:
    """At most `burst` messages per `window` seconds for each kind of event, then one summary line.

    Bad packets are logged this way: a flood of them must not fill the disk or slow the server.
    """

    def __init__(self, logger: logging.Logger, window: float = 10.0, burst: int = 5):
        self.log, self.window, self.burst = logger, window, burst
        self._counts: dict[str, list] = {}  # kind -> [window start, logged, suppressed]
        self._lock = threading.Lock()

    def warning(self, kind: str, msg: str, *args) -> None:
        now = time.monotonic()
        with self._lock:
            start, logged, suppressed = self._counts.get(kind, (now, 0, 0))
            if now - start > self.window:
                if suppressed:
                    self.log.warning("%d more %s suppressed in the last %.0f s", suppressed, kind, self.window)
                start, logged, suppressed = now, 0, 0
            if logged < self.burst:
                logged += 1
                self.log.warning(msg, *args)
            else:
                suppressed += 1
            if len(self._counts) < 64 or kind in self._counts:
                self._counts[kind] = [start, logged, suppressed]
