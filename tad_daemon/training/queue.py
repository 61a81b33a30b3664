"""The training queue: jobs in SQLite (WAL mode), so queued and half-done fine-tunes survive restarts.

A job moves queued -> running -> done | failed | cancelled. `paused` is a started job that is not running
now and will go on from its checkpoint: stopped at the end of the night window, or found `running` at
start-up after the daemon stopped or crashed. Job ids are short strings ("1", "2", ...), as OSC carries them.
No torch here: the daemon's request thread reads the queue.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

STATES = ("queued", "running", "paused", "done", "failed", "cancelled")
FINAL = ("done", "failed", "cancelled")
MOVES = {
    "queued": {"running", "failed", "cancelled"},
    "running": {"paused", "done", "failed", "cancelled"},
    "paused": {"running", "failed", "cancelled"},
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    dataset TEXT NOT NULL,
    base TEXT NOT NULL DEFAULT '',
    steps INTEGER NOT NULL,
    now INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'paused', 'done', 'failed', 'cancelled')),
    step INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL,
    loss REAL,
    eta REAL,
    message TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    run_dir TEXT NOT NULL DEFAULT '',
    model_path TEXT NOT NULL DEFAULT '',
    settings TEXT NOT NULL DEFAULT '{}'
)
"""


class QueueError(ValueError):
    """An unknown job, or a change of state that is not allowed (e.g. cancelling a finished job)."""


@dataclass
class Job:
    id: str
    name: str
    dataset: str
    base: str
    steps: int
    now: bool
    state: str
    step: int
    total: int
    loss: float | None
    eta: float | None
    message: str
    created: float
    started: float | None
    finished: float | None
    run_dir: str
    model_path: str
    settings: dict = field(default_factory=dict)  # further TrainConfig fields (license, preset, ...)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        d = dict(row)
        d["id"], d["now"], d["settings"] = str(d["id"]), bool(d["now"]), json.loads(d["settings"])
        return cls(**d)


class JobQueue:
    """Thread-safe (one connection behind a lock); other processes may read the same file meanwhile."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a state change survives a power cut, not only a crash
        self._db.execute(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, name: str, dataset: str, base: str = "", steps: int = 1000, now: bool = False,
            settings: dict | None = None, total: int = 0) -> Job:
        """`total`: the job's optimiser steps in all, when not `steps` (a distillation: steps per round)."""
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO jobs (name, dataset, base, steps, now, state, total, created, settings) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                (name, dataset, base, steps, int(now), total or steps, time.time(), json.dumps(settings or {})))
            return self._get(str(cur.lastrowid))

    def get(self, job_id: str) -> Job:
        with self._lock:
            return self._get(job_id)

    def _get(self, job_id: str) -> Job:
        row = None
        if str(job_id).isdigit():
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        if row is None:
            raise QueueError(f"unknown job {job_id!r}")
        return Job.from_row(row)

    def jobs(self, states: tuple[str, ...] = STATES) -> list[Job]:
        marks = ",".join("?" * len(states))
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id", states).fetchall()
        return [Job.from_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {state: 0 for state in STATES} | {r[0]: r[1] for r in rows}

    def move(self, job_id: str, state: str, message: str | None = None, **fields) -> Job:
        """Change a job's state (checked against the allowed moves) and any other columns, atomically."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                job = self._get(job_id)
                if state != job.state and state not in MOVES.get(job.state, ()):
                    raise QueueError(f"job {job_id} is {job.state}; it cannot become {state}")
                if state == "running" and job.started is None:
                    fields["started"] = time.time()
                if state in FINAL:
                    fields["finished"] = time.time()
                if message is not None:
                    fields["message"] = message
                self._set(job.id, state=state, **fields)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._get(job_id)

    def progress(self, job_id: str, step: int, total: int, loss: float | None, eta: float | None) -> None:
        with self._lock:
            self._set(job_id, step=step, total=total, loss=loss, eta=eta)

    def update(self, job_id: str, **fields) -> Job:
        with self._lock:
            self._set(job_id, **fields)
            return self._get(job_id)

    def _set(self, job_id: str, **fields) -> None:
        if not fields:
            return
        if "settings" in fields:
            fields["settings"] = json.dumps(fields["settings"])
        for key in fields:
            if key not in Job.__dataclass_fields__ or key == "id":
                raise KeyError(key)
        sql = ", ".join(f"{k} = ?" for k in fields)
        self._db.execute(f"UPDATE jobs SET {sql} WHERE id = ?", (*fields.values(), int(job_id)))

    def recover(self) -> list[Job]:
        """At start-up: jobs left `running` by a stopped or crashed daemon become `paused` (they resume from
        their checkpoint when their turn comes)."""
        recovered = []
        for job in self.jobs(("running",)):
            recovered.append(self.move(job.id, "paused", "interrupted; resumes from its last checkpoint"))
        return recovered

    def next_job(self, night: bool) -> Job | None:
        """The job to run now: started (paused) jobs first, then queued ones, oldest first; jobs queued
        without `now` only inside the night window."""
        for state in ("paused", "queued"):
            for job in self.jobs((state,)):
                if job.now or night:
                    return job
        return None


def parse_time(text: str) -> tuple[int, int]:
    """"HH:MM" (24-hour clock) -> (hour, minute)."""
    try:
        hours, minutes = (int(v) for v in str(text).strip().split(":"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day like 01:30") from None
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ValueError(f"{text!r} is not a time of day like 01:30")
    return hours, minutes


def in_window(now: datetime, start: str, end: str) -> bool:
    """Is local time `now` within [start, end)? The window may wrap midnight (22:00-06:00); start == end
    means always."""
    s, e = parse_time(start), parse_time(end)
    t = (now.hour, now.minute)
    if s == e:
        return True
    if s < e:
        return s <= t < e
    return t >= s or t < e
