"""The training queue and its runner: durable jobs, the night window, pause, cancel, restart, bad datasets.

Jobs fine-tune a tiny model (conftest.TINY_ARCH, 2048 samples) in a real training subprocess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tad_daemon.config import load_config
from tad_daemon.training.dataset import DatasetError
from tad_daemon.training.inbox import Inbox, choose_base, inbox_root
from tad_daemon.training.queue import JobQueue, QueueError, in_window
from tad_daemon.training.runner import Runner
from tests.conftest import REPO, TINY_ARCH, make_model

L = 2048
DAY, NIGHT = datetime(2024, 5, 1, 14, 0), datetime(2024, 5, 2, 2, 0)
FAST = {"micro_batch": 2, "accumulation": 1}


def kicks(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(4000) / 44100
    for i in range(n):
        sf.write(folder / f"k{i}.wav", (0.5 * np.sin(2 * np.pi * (50 + 20 * i) * t) * np.exp(-t * 20)), 44100)
    return folder


def wait_for(predicate, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Recorder:
    """The runner's callbacks, recorded."""

    def __init__(self):
        self.states, self.progress, self.models = [], [], []
        self.lock = threading.Lock()

    def on_state(self, job, state, message):
        with self.lock:
            self.states.append((job.id, state, message))

    def on_progress(self, job, step, total, loss, eta):
        with self.lock:
            self.progress.append((job.id, step, total, loss, eta))

    def on_model(self, job, path):
        with self.lock:
            self.models.append((job.id, path))

    def state_of(self, job_id):
        with self.lock:
            return [s for i, s, _ in self.states if i == job_id]

    def finished(self, runner, job_id):
        """The job, once its final state has been both stored and announced."""
        states = self.state_of(job_id)
        return states and states[-1] in ("done", "failed", "cancelled") and runner.queue.get(job_id)


@pytest.fixture
def setup(home):
    """(config, clock holder, recorder, runner factory) with a tiny base model 'tiny' installed."""
    cfg = load_config(overrides={"training.threads": 1, "training.device": "cpu", "training.steps": 3})
    make_model(cfg.path("paths.models"), "tiny", kind="kick", length=L)
    clock = [DAY]
    rec = Recorder()
    runners = []

    def make() -> Runner:
        r = Runner(JobQueue(cfg.path("paths.data") / "jobs.sqlite"), cfg, rec.on_progress, rec.on_state,
                   rec.on_model, clock=lambda: clock[0])
        runners.append(r)
        return r

    yield cfg, clock, rec, make
    for r in runners:
        r.close(grace=5)


def test_night_window_wraps_midnight():
    at = lambda h, m=0: datetime(2024, 1, 1, h, m)  # noqa: E731
    assert in_window(at(23), "22:00", "06:00") and in_window(at(3), "22:00", "06:00")
    assert not in_window(at(6), "22:00", "06:00") and not in_window(at(12), "22:00", "06:00")
    assert in_window(at(1), "01:00", "07:00") and not in_window(at(7), "01:00", "07:00")
    assert in_window(at(15, 30), "09:00", "09:00")  # start == end: always
    with pytest.raises(ValueError, match="time of day"):
        in_window(at(1), "25:00", "06:00")


def test_queue_is_durable_and_checks_moves(tmp_path):
    q = JobQueue(tmp_path / "jobs.sqlite")
    a = q.add("a", "/data/a", steps=10)
    b = q.add("b", "/data/b", base="kick", steps=20, now=True, settings={"license": "CC0-1.0"})
    assert (a.id, b.id, a.state, b.settings) == ("1", "2", "queued", {"license": "CC0-1.0"})
    assert q.next_job(night=False).id == "2" and q.next_job(night=True).id == "1"
    q.move("1", "running", run_dir="/runs/1")
    q.progress("1", 4, 10, 0.25, 60.0)
    with pytest.raises(QueueError, match="cannot become queued"):
        q.move("1", "queued")
    q.move("2", "cancelled", "cancelled")
    with pytest.raises(QueueError, match="cannot become running"):
        q.move("2", "running")
    with pytest.raises(QueueError, match="unknown job"):
        q.get("99")
    q.close()
    q = JobQueue(tmp_path / "jobs.sqlite")  # as after a restart (or a crash: WAL keeps every commit)
    (job,) = q.recover()
    assert (job.id, job.state, job.step, job.loss, job.run_dir) == ("1", "paused", 4, 0.25, "/runs/1")
    assert q.next_job(night=True).id == "1" and q.next_job(night=False) is None
    assert q.counts() == {"queued": 0, "running": 0, "paused": 1, "done": 0, "failed": 0, "cancelled": 1}
    assert q.get("2").finished is not None


def test_bad_datasets_are_refused_and_the_queue_stays_consistent(setup, tmp_path, monkeypatch):
    cfg, clock, rec, make = setup
    runner = make()
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "a.wav").write_bytes(b"not a sound")
    (tmp_path / "folder" / "kick.wav").mkdir(parents=True)
    kicks(tmp_path / "locked")
    real_access = os.access  # chmod does not stop root, so the refusal is simulated for the test
    monkeypatch.setattr(os, "access", lambda p, m: "locked" not in str(p) and real_access(p, m))
    cases = {"empty": "no usable sound files", "corrupt": r"a.wav: not a readable sound file",
             "folder": "kick.wav: is a folder", "locked": "permission denied", "missing": "no such folder"}
    for folder, reason in cases.items():
        with pytest.raises(DatasetError, match=reason):
            runner.submit("x", str(tmp_path / folder), now=True)
    with pytest.raises(ValueError, match="unknown base model 'nope'"):
        runner.submit("x", str(kicks(tmp_path / "ok")), base="nope")
    with pytest.raises(ValueError, match="invalid model name"):
        runner.submit("../x", str(tmp_path / "ok"))
    for reserved in ("snare", "kick"):  # the bundled models' names stay theirs
        with pytest.raises(ValueError, match="bundled model's name and stays reserved"):
            runner.submit(reserved, str(tmp_path / "ok"))
    with pytest.raises(ValueError, match="unknown job settings: evil"):
        runner.submit("x", str(tmp_path / "ok"), settings={"evil": 1})
    kit = make_model(cfg.path("paths.models"), "drums", kind="kit", length=L,
                     arch={**TINY_ARCH, "kinds": ["kick", "clap"]})
    for teacher in ("drums", "clap", str(kit)):  # the kit, one of its kinds, its file: a clear refusal, not a crash
        with pytest.raises(ValueError, match="model of several kinds .kick, clap.: distilling one is not supported"):
            runner.submit_distill("x", teacher)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")  # a clear refusal, not an internal error
    with pytest.raises(ValueError, match="dataset_dir cannot be resolved|no such folder|symlink"):
        runner.submit("x", str(tmp_path / "loop"))
    assert runner.queue.jobs() == []
    # Only silent files: the headers are fine, so the job is queued, then fails with the reason when it runs.
    silent = tmp_path / "silent"
    silent.mkdir()
    sf.write(silent / "a.wav", np.zeros(5000), 44100)
    runner.start()
    bad = runner.submit("quiet", str(silent), base="tiny", now=True, settings=FAST)
    bad = wait_for(lambda: rec.finished(runner, bad.id))
    assert bad.state == "failed" and "no usable sound files" in bad.message and "a.wav: silent" in bad.message
    assert rec.state_of(bad.id) == ["queued", "running", "failed"]
    assert runner.queue.counts() == {"queued": 0, "running": 0, "paused": 0, "done": 0, "failed": 1, "cancelled": 0}
    assert runner.running() is None and not (cfg.path("paths.models") / "quiet.safetensors").exists()


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_night_window_pause_for_generation_and_cancel(setup):
    cfg, clock, rec, make = setup
    runner = make()
    runner.pause_for_generation = True
    runner.start()
    data = str(kicks(cfg.path("paths.data") / "mine"))
    job = runner.submit("night", data, base="tiny", steps=100000, settings={**FAST, "micro_batch": 1})
    time.sleep(0.5)
    assert runner.queue.get(job.id).state == "queued"  # daytime: it waits for the window
    clock[0] = NIGHT
    runner._wake.set()
    wait_for(lambda: [p for p in rec.progress if p[0] == job.id], what="progress")
    # Interactive generation suspends the trainer, mid-step, and lets it go on afterwards.
    with runner.hold():
        pid = runner._proc.pid
        wait_for(lambda: proc_state(pid) == "T", timeout=10, what="the trainer to stop")  # signals are async
        with runner.hold():  # nested holds
            pass
        time.sleep(0.2)
        assert proc_state(pid) == "T"
    wait_for(lambda: proc_state(pid) != "T", timeout=10, what="the trainer to continue")
    # The window closes: the job checkpoints, stops and waits for the next night.
    clock[0] = DAY
    paused = wait_for(lambda: runner.queue.get(job.id).state == "paused" and runner.queue.get(job.id))
    assert "night window ended" in paused.message and (Path(paused.run_dir) / "checkpoint.pt").is_file()
    stopped_at = paused.step
    clock[0] = NIGHT
    runner._wake.set()
    wait_for(lambda: [p for p in rec.progress if p[0] == job.id and p[1] > stopped_at + 1], what="resumed progress")
    assert rec.state_of(job.id) == ["queued", "running", "paused", "running"]
    # Cancelling the running job kills it; a queued one is cancelled at once; finished jobs cannot be.
    other = runner.submit("later", data, base="tiny", settings=FAST)
    assert runner.cancel(other.id).state == "cancelled"
    runner.cancel(job.id)
    cancelled = wait_for(lambda: rec.finished(runner, job.id))
    assert cancelled.state == "cancelled"
    assert not (Path(cancelled.run_dir) / "checkpoint.pt").exists()
    with pytest.raises(QueueError, match="already cancelled"):
        runner.cancel(job.id)
    assert runner.running() is None and runner.queue.counts()["running"] == 0


DAEMON = textwrap.dedent("""
    import sys, time
    from tad_daemon.config import load_config
    from tad_daemon.training.queue import JobQueue
    from tad_daemon.training.runner import Runner
    cfg = load_config(overrides={"training.threads": 1, "training.device": "cpu"})
    held = []
    def progress(job, step, total, loss, eta):
        if sys.argv[3] == "held" and step >= 4 and not held:  # a request generates: the trainer is stopped
            held.append(runner.hold())
            held[0].__enter__()
            print("held", runner._proc.pid, flush=True)
        print(step, flush=True)
    runner = Runner(JobQueue(cfg.path("paths.data") / "jobs.sqlite"), cfg, on_progress=progress)
    runner.pause_for_generation = True
    runner.start()
    settings = {"micro_batch": 2, "accumulation": 1, "checkpoint_every": 3, "license": "CC0-1.0"}
    if sys.argv[2] == "train":
        runner.submit("crash", sys.argv[1], base="tiny", steps=40, now=True, settings=settings)
    else:  # two halvings of 20 steps: 40 in all
        runner.submit_distill("crash", "tiny", 1, sys.argv[1], steps=20, now=True,
                              settings={**settings, "teacher_steps": 4})
    time.sleep(600)
""")

STRAY = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tad_daemon.training.checkpoint import RunLock
    with RunLock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(600)
""")


@pytest.mark.parametrize("task,moment", [("train", "running"), ("distill", "running"), ("train", "held")])
def test_a_job_survives_a_daemon_crash_and_installs_its_model(setup, task, moment):
    """Killed while the trainer runs, or while it is stopped for a request (it cannot read its stdin then):
    the trainer goes with the daemon; one left behind holding the run folder (stopped, where the platform
    has no parent-death signal) is ended by the next daemon, and the job resumes and finishes."""
    cfg, clock, rec, make = setup
    data = str(kicks(cfg.path("paths.data") / "mine"))
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON, data, task, moment], stdout=subprocess.PIPE, text=True,
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    for line in daemon.stdout:
        if line.startswith("held"):
            trainer = int(line.split()[1])
            wait_for(lambda t=trainer: proc_state(t) == "T", timeout=10, what="the trainer to stop")
        elif int(line) >= 4:  # a checkpoint (every 3 steps) is on disk
            break
    daemon.send_signal(signal.SIGKILL)  # the daemon dies; its trainer goes too, stopped or not
    daemon.wait()
    run = cfg.path("paths.data") / "runs" / "job-1-crash"
    wait_for(lambda: _unlocked(run), timeout=30, what="the orphaned trainer to exit")
    if moment == "held":  # a stopped trainer left behind, as on a platform without a parent-death signal
        stray = subprocess.Popen([sys.executable, "-c", STRAY, str(run)], stdout=subprocess.PIPE, text=True,
                                 cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert stray.stdout.readline().strip() == "locked"
        stray.send_signal(signal.SIGSTOP)
    runner = make()
    runner.start()
    done = wait_for(lambda: rec.finished(runner, "1"))
    assert done.state == "done", done.message
    assert rec.state_of("1") == ["paused", "running", "done"]
    if moment == "held":
        assert stray.wait(timeout=5) != 0  # ended by the runner
    models = cfg.path("paths.models")
    assert rec.models == [("1", models / "crash.safetensors")] and done.model_path == str(models / "crash.safetensors")
    assert (models / "crash.md").is_file() and (models / "crash-loss.png").is_file()
    assert done.step == done.total == 40 and done.loss > 0 and "final loss" in done.message
    assert rec.progress[-1][1:3] == (40, 40)
    assert not (run / "checkpoint.pt").exists() and not (run / "data.safetensors").exists()  # cleaned up
    resumed = [line for line in (run / "train.log").read_text().splitlines() if "resuming at step" in line]
    assert resumed and int(resumed[0].split("resuming at step ")[1].split()[0]) >= 3


def test_a_run_folder_held_by_an_unknown_process_pauses_the_job_and_keeps_its_data(setup):
    cfg, clock, rec, make = setup
    run = cfg.path("paths.data") / "runs" / "job-1-held"
    run.mkdir(parents=True)
    (run / "data.safetensors").write_bytes(b"cache")
    stray = subprocess.Popen([sys.executable, "-c", STRAY, str(run)], stdout=subprocess.PIPE, text=True,
                             cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert stray.stdout.readline().strip() == "locked"
        (run / ".lock-owner").unlink()  # whose it is cannot be known: it is not ended
        runner = make()
        runner.start()
        job = runner.submit("held", str(kicks(cfg.path("paths.data") / "mine")), base="tiny", now=True,
                            settings=FAST)
        wait_for(lambda: "paused" in rec.state_of(job.id), timeout=30, what="the job to pause")
        assert "holds the run folder" in runner.queue.get(job.id).message
        assert (run / "data.safetensors").read_bytes() == b"cache" and stray.poll() is None
    finally:
        stray.kill()
        stray.wait()
    done = wait_for(lambda: rec.finished(runner, job.id), timeout=120)  # tried again once the holder has gone
    assert done.state == "done", done.message


def _unlocked(run: Path) -> bool:
    import fcntl

    with open(run / ".lock", "a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


def test_inbox_queues_one_fine_tune_per_model_folder(setup):
    cfg, clock, rec, make = setup
    make_model(cfg.path("paths.models"), "kick", kind="kick", length=L)
    runner = make()  # not started: jobs only queue
    root = inbox_root(cfg.path("paths.data"))

    def installed() -> set[str]:
        return {p.stem for p in cfg.path("paths.models").glob("*.safetensors")}

    inbox = Inbox(root, runner.queue, runner.submit, installed, settle=0.3)
    inbox.start()
    try:
        kicks(root / "my-kicks", 2)
        (root / "not a name!").mkdir()
        sf.write(root / "not a name!" / "a.wav", np.zeros(100), 44100)
        (job,) = wait_for(lambda: runner.queue.jobs(), timeout=30, what="a queued job")
        assert (job.name, job.base, job.now, job.state) == ("my-kicks", "kick", False, "queued")
        assert job.dataset == str(root.resolve() / "my-kicks")
        sf.write(root / "my-kicks" / "more.wav", np.full(3000, 0.1), 44100)  # the waiting job will read it too
        time.sleep(1.0)
        assert len(runner.queue.jobs()) == 1
    finally:
        inbox.close()
    again = Inbox(root, runner.queue, runner.submit, installed, settle=0.3)  # a restart: nothing new
    again.start()
    time.sleep(1.0)
    again.close()
    assert len(runner.queue.jobs()) == 1
    assert choose_base("my-kicks", {"my-kicks", "kick"}) == "my-kicks"  # its own model first
    assert choose_base("Lofi-HiHats", {"hat"}) == "hat" and choose_base("pads", {"kick"}) == ""
