"""Runs the queue's jobs one at a time, each in its own process.

A separate process means a crash, a kill or running out of memory in training never takes the daemon down,
and the daemon's request thread never waits for the GIL behind a training step. The trainer reports its
progress as JSON lines on stdout (`python -m tad_daemon.training.train`); the runner keeps the queue and
the callbacks up to date from them, stops a job at the end of the night window (it checkpoints and exits,
and resumes next night), suspends it while interactive generation runs (see `hold`), and installs the
finished model into the models folder, where the daemon's watcher loads it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue as queue_mod
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tad_daemon.atomic import atomic_copy
from tad_daemon.config import Config
from tad_daemon.models.manage import bundled_names
from tad_daemon.names import check_name, unknown_model
from tad_daemon.training import settings as contract
from tad_daemon.training.checkpoint import lock_holder
from tad_daemon.training.queue import Job, JobQueue, QueueError, in_window, parse_time
from tad_daemon.training.run import EXIT_BUSY

log = logging.getLogger(__name__)

DISTILL = "distill"  # a job's settings["task"] for a distillation; other jobs train
BIG_FILES = ("checkpoint.pt", "data.safetensors")
STRAY_GRACE = 20.0  # seconds a trainer left behind in a run folder has to exit once woken, before SIGKILL


def suspend_process(proc: subprocess.Popen) -> None:
    if os.name == "nt":
        _nt_process_call("NtSuspendProcess", proc.pid)
    else:
        os.kill(proc.pid, signal.SIGSTOP)


def resume_process(proc: subprocess.Popen) -> None:
    if os.name == "nt":
        _nt_process_call("NtResumeProcess", proc.pid)
    else:
        os.kill(proc.pid, signal.SIGCONT)


def end_stray_trainer(pid: int, folder: Path, grace: float = STRAY_GRACE) -> bool:
    """End the process `pid` holding `folder`'s run lock: a trainer whose daemon died, perhaps while it was
    stopped for generation (it then stays stopped forever). Woken, it reads the end of its stdin and exits;
    SIGTERM has it checkpoint first if it can; killed after `grace` s. True once the lock is free."""
    log.warning("%s: ending process %d, a trainer left behind by a daemon that stopped", folder, pid)
    try:
        if os.name == "nt":
            _nt_process_call("NtResumeProcess", pid)
        else:
            os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)  # TerminateProcess on Windows
    except OSError:  # gone meanwhile, or not ours to signal
        pass
    deadline = time.monotonic() + grace
    while lock_holder(folder) is not None:
        if time.monotonic() > deadline:
            if deadline - time.monotonic() < -10:
                return False
            with contextlib.suppress(OSError):
                os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        time.sleep(0.2)
    return True


def _nt_process_call(name: str, pid: int) -> None:
    """Windows has no SIGSTOP; ntdll's NtSuspendProcess/NtResumeProcess do the same to every thread."""
    import ctypes

    kernel32, ntdll = ctypes.windll.kernel32, ctypes.windll.ntdll
    handle = kernel32.OpenProcess(0x0800, False, pid)  # PROCESS_SUSPEND_RESUME
    if not handle:
        return
    try:
        getattr(ntdll, name)(handle)
    finally:
        kernel32.CloseHandle(handle)


class Runner:
    """The queue's worker. `start()` it once; every method is safe to call from any thread.

    Callbacks (called from the runner's thread; keep them quick): `on_progress(job, step, total, loss, eta)`
    at most once a second per job, `on_state(job, state, message)` on every change of state, and
    `on_model(job, model_path)` when a finished model has been installed.
    """

    def __init__(self, queue: JobQueue, cfg: Config, on_progress: Callable | None = None,
                 on_state: Callable | None = None, on_model: Callable | None = None,
                 clock: Callable[[], datetime] = datetime.now, generation_device: str = "cpu"):
        self.queue = queue
        self.cfg = cfg
        self.models_dir = cfg.path("paths.models")
        self.runs_dir = cfg.path("paths.data") / "runs"
        self.night = (cfg["training.night_start"], cfg["training.night_end"])
        for t in self.night:
            parse_time(t)  # a bad setting fails at start-up, not at midnight
        self.on_progress, self.on_state, self.on_model = on_progress, on_state, on_model
        self.clock = clock
        self.pause_for_generation = self._pause_policy(cfg["training.pause_for_generation"], generation_device)
        # The trainer runs at a lower CPU priority, so the DAW's audio and interactive generation come first
        # whenever both want the CPU (POSIX nice; below-normal priority class on Windows).
        self.nice = 10
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._stop_file: Path | None = None
        self._job_id: str | None = None
        self._cancelled: set[str] = set()
        self._holds = 0
        self._suspended = False

    def _pause_policy(self, policy: str, generation_device: str) -> bool:
        if policy not in ("auto", "always", "never"):
            raise ValueError(f"training.pause_for_generation: auto, always or never, not {policy!r}")
        if policy != "auto":
            return policy == "always"
        # auto: pause when training and generation share a device (the CPU of a laptop, or one small GPU).
        return self.training_device().split(":")[0] == str(generation_device).split(":")[0]

    def training_device(self) -> str:
        requested = self.cfg["training.device"] or self.cfg["device.device"]
        if requested != "auto":
            return requested
        from tad_daemon.models.device import pick_device

        return str(pick_device("auto"))

    # -- the public side ------------------------------------------------------------------------------
    def start(self) -> None:
        for job in self.queue.recover():
            log.info("job %s (%s) was interrupted; it will resume from its checkpoint", job.id, job.name)
            self._notify_state(job)
        self._thread = threading.Thread(target=self._loop, name="training-runner", daemon=True)
        self._thread.start()

    def close(self, grace: float = 15.0) -> None:
        """Stop: a running job checkpoints and becomes `paused` (killed after `grace` seconds if it has not
        stopped by then; it then resumes from its previous checkpoint)."""
        self._closing.set()
        self._wake.set()
        with self._lock:
            proc = self._proc
            if proc:
                self._request_stop(proc)
        if proc:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self._thread:
            self._thread.join(timeout=grace + 5)

    def submit(self, name: str, dataset: str, base: str | None = None, steps: int | None = None, now: bool = False,
               settings: dict | None = None) -> Job:
        """Check and queue a job (`base` None: from scratch; `steps` None: training.steps); raises ValueError
        (bad name, dataset, base, steps or settings) with the reason. The dataset is looked at quickly here
        (file headers); silent files are found when it runs."""
        steps = steps or int(self.cfg["training.steps"])
        self._check_job(name, base, "base", steps, settings, contract.job_settings(contract.TrainConfig))
        return self._add(name, _resolved(dataset), base or "", steps, now, dict(settings or {}))

    def submit_distill(self, name: str, teacher: str, student_steps: int | None = None, dataset: str | None = None,
                       steps: int | None = None, now: bool = False, settings: dict | None = None,
                       replace: bool = False) -> Job:
        """Check and queue a distillation of model `teacher` into a student NAME of `student_steps` sampling
        steps (`steps`: optimiser steps per halving); ValueError with the reason. Without a dataset the
        teacher makes its own one-shots to learn from. A student never replaces an installed model of its
        name (its teacher, say) unless `replace`."""
        from tad_daemon.models.modelfile import read_config
        from tad_daemon.models.registry import model_folders, scan

        if not teacher:
            raise ValueError("name the model to distil (the teacher)")
        steps = steps or contract.DISTILL_ROUND_STEPS
        entry = self._check_job(name, teacher, "teacher", steps, settings,
                                contract.job_settings(contract.DistillConfig))
        if not replace and name in scan(model_folders(self.models_dir, False))[0]:
            raise ValueError(f"a model named {name!r} is installed already{' (the teacher)' if name == teacher else ''}"
                             f": choose another name, or replace it (--replace; OSC option replace=1)")
        contract.check_teacher(teacher, (entry.config if entry else read_config(Path(teacher).expanduser())).arch)
        student_steps = student_steps or contract.DISTILL_STEPS
        settings = {"teacher_steps": contract.default_teacher_steps(student_steps), **dict(settings or {}),
                    "task": DISTILL, "student_steps": student_steps}
        rounds = contract.round_count(student_steps, int(settings["teacher_steps"]))
        return self._add(name, _resolved(dataset) if dataset else "", teacher, steps, now, settings, rounds * steps)

    def _check_job(self, name: str, base: str | None, role: str, steps: int, settings: dict | None,
                   known: set):
        """Check a job's name, steps, settings and base; returns the base's installed entry (None for none,
        or for a model file)."""
        from tad_daemon.models.registry import model_folders, scan

        check_name(name)
        if name in bundled_names():  # its result would hide the bundled model (docs/models.md: names reserved)
            raise ValueError(f"{name!r} is a bundled model's name and stays reserved: choose another, e.g. my-{name}")
        if not 1 <= steps <= contract.MAX_STEPS:
            raise ValueError(f"steps must be between 1 and {contract.MAX_STEPS}")
        unknown = set(settings or {}) - known
        if unknown:
            raise ValueError(f"unknown job settings: {', '.join(sorted(unknown))}")
        if base and not (base.endswith(".safetensors") and Path(base).expanduser().is_file()):
            installed, _ = scan(model_folders(self.models_dir, self.cfg["models.bundled"]))
            if base not in installed:
                raise ValueError(unknown_model(base, installed, role=role))
            return installed[base]
        return None

    def _add(self, name: str, dataset: str, base: str, steps: int, now: bool, settings: dict, total: int = 0) -> Job:
        job = self.queue.add(name, dataset, base, steps, now, settings, total)
        self._notify_state(job)
        self._wake.set()
        return job

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued, paused or running job (a running one is killed: nothing of it is kept)."""
        with self._lock:
            job = self.queue.get(job_id)
            if job.state in ("done", "failed", "cancelled"):
                raise QueueError(f"job {job.id} is already {job.state}")
            if job.id == self._job_id:
                self._cancelled.add(job.id)
                if self._proc:
                    self._proc.kill()  # the runner's thread records the state when the process has gone
                return job
            job = self.queue.move(job.id, "cancelled", "cancelled")
        self._cleanup(job)
        self._notify_state(job)
        return job

    def running(self) -> Job | None:
        with self._lock:
            job_id = self._job_id
        job = self.queue.get(job_id) if job_id else None
        return job if job and job.state == "running" else None  # not one the runner is just closing

    @contextlib.contextmanager
    def hold(self):
        """Suspend training while the body runs (interactive generation), if the pause policy says so.

        Nested and concurrent holds are counted; the process continues when the last one ends. Suspending
        (SIGSTOP, or NtSuspendProcess on Windows) frees the CPU at once, mid-step, where a flag checked
        between steps would leave a seed-sized CPU step running for many seconds.
        """
        if not self.pause_for_generation:
            yield
            return
        with self._lock:
            self._holds += 1
            if self._proc and not self._suspended:
                suspend_process(self._proc)
                self._suspended = True
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
                if self._holds == 0 and self._suspended and self._proc:
                    resume_process(self._proc)
                    self._suspended = False

    # -- the runner's thread --------------------------------------------------------------------------
    def in_night_window(self) -> bool:
        return in_window(self.clock(), *self.night)

    def _loop(self) -> None:
        while not self._closing.is_set():
            with self._lock:
                job = self.queue.next_job(self.in_night_window())
                if job:
                    run_dir = Path(job.run_dir) if job.run_dir else self.runs_dir / f"job-{job.id}-{job.name}"
                    job = self.queue.move(job.id, "running", "", run_dir=str(run_dir))
                    self._job_id = job.id
            if job is None:
                self._wake.wait(timeout=30)  # the night window may open meanwhile
                self._wake.clear()
                continue
            self._notify_state(job)
            try:
                self._run(job)
            except Exception as e:  # the runner must outlive any one job
                log.exception("job %s failed", job.id)
                self._finish(job, "failed", f"could not run the job: {e}")
            finally:
                with self._lock:
                    self._job_id, self._proc, self._stop_file, self._suspended = None, None, None, False

    def _job_config(self, job: Job, run_dir: Path) -> tuple[str, dict]:
        """The module that runs the job and its config (a TrainConfig or a DistillConfig, as a dict)."""
        cfg = self.cfg
        # Half the cores by default: a laptop running a DAW keeps the rest (see docs/training.md).
        threads = cfg["training.threads"] or max(1, (os.cpu_count() or 2) // 2)
        config = dict(name=job.name, data=job.dataset, out=str(run_dir), models_dir=str(self.models_dir),
                      bundled=cfg["models.bundled"], steps=job.steps,
                      device=cfg["training.device"] or cfg["device.device"], threads=threads,
                      checkpoint_minutes=cfg["training.checkpoint_minutes"])
        settings = dict(job.settings)
        if settings.pop("task", "") == DISTILL:
            return "tad_daemon.training.distill", config | {"teacher": job.base} | settings
        return "tad_daemon.training.train", config | {"base": job.base, "preset": cfg["training.preset"]} | settings

    def _run(self, job: Job) -> None:
        run_dir = Path(job.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        holder = lock_holder(run_dir)
        if holder is not None and not (holder and end_stray_trainer(holder, run_dir)):
            self._finish(job, "paused", f"another process (id {holder or 'unknown'}) holds the run folder "
                                        f"{run_dir}; the job waits for it to end")
            self._closing.wait(STRAY_GRACE)  # and is tried again then
            return
        config_path = run_dir / "job.json"
        module, config = self._job_config(job, run_dir)
        config_path.write_text(json.dumps(config, indent=1), encoding="utf-8")
        stop_file = run_dir / "stop"
        stop_file.unlink(missing_ok=True)
        # stdin stays an open pipe that nobody writes: if the daemon dies, the trainer reads end-of-file and
        # exits rather than train on, orphaned, holding the run folder. Its own session keeps the terminal's
        # Ctrl-C away from it: the runner decides when it stops.
        command = [sys.executable, "-m", module, str(config_path), "--stop-file", str(stop_file),
                   "--exit-with-parent", str(os.getpid()), "--nice", str(self.nice)]
        with open(run_dir / "stderr.log", "ab") as errors:
            flags = 0
            if os.name == "nt":
                priority = subprocess.BELOW_NORMAL_PRIORITY_CLASS if self.nice else 0
                flags = subprocess.CREATE_NEW_PROCESS_GROUP | priority
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.PIPE,
                                    cwd=run_dir, start_new_session=os.name != "nt", creationflags=flags,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
        with self._lock:
            self._proc, self._stop_file = proc, stop_file
            if job.id in self._cancelled:
                proc.kill()
            elif self._holds and self.pause_for_generation:
                suspend_process(proc)
                self._suspended = True
        lines: queue_mod.Queue = queue_mod.Queue()
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        error, model, stop_reason, last_progress = None, None, None, 0.0
        while True:
            try:
                line = lines.get(timeout=1.0)
            except queue_mod.Empty:
                line = ""
            if line is None:
                break
            event = _parse(line)
            kind = event.get("event") if event else None
            if kind == "step":
                now = time.monotonic()
                if now - last_progress >= 1.0 or event["step"] == event["total"]:
                    last_progress = now
                    self.queue.progress(job.id, event["step"], event["total"], event["loss"], event["eta"])
                    _call(self.on_progress, job, event["step"], event["total"], event["loss"], event["eta"])
            elif kind == "start":
                self.queue.progress(job.id, event["step"], event["total"], None, None)
            elif kind == "data":
                s = event["summary"]
                skipped = f", {len(s['skipped'])} skipped" if s["skipped"] else ""
                self.queue.update(job.id, message=f"training on {s['files']} files{skipped}")
            elif kind == "teacher_oneshots":
                self.queue.update(job.id, message=f"the teacher made {event['done']} of {event['total']} one-shots")
            elif kind == "error":
                error = event["message"]
            elif kind == "model":
                model = event
            if stop_reason is None:
                stop_reason = self._stop_reason(job)
                if stop_reason:
                    with self._lock:
                        self._request_stop(proc)
        rc = proc.wait()
        reader.join(timeout=5)
        proc.stdout.close()
        proc.stdin.close()
        if job.id in self._cancelled:
            self._cancelled.discard(job.id)
            self._finish(job, "cancelled", "cancelled")
        elif rc == 0 and model:
            path = self._install(job, model)
            self._finish(job, "done", f"finished: final loss {model['final_loss']:.4f}", model_path=str(path))
            _call(self.on_model, self.queue.get(job.id), path)
        elif stop_reason or self._closing.is_set():
            self._finish(job, "paused", stop_reason or "the daemon stopped; resumes from its last checkpoint")
        elif rc == EXIT_BUSY:  # a lock held is never a reason to fail the job or drop its data
            self._finish(job, "paused", _short(error or "another process holds the run folder"))
            self._closing.wait(STRAY_GRACE)
        else:
            self._finish(job, "failed", _short(error or _crash_message(rc, run_dir)))

    def _stop_reason(self, job: Job) -> str | None:
        if self._closing.is_set():
            return "the daemon stopped; resumes from its last checkpoint"
        if not job.now and not self.in_night_window():
            return f"the night window ended; resumes at {self.night[0]}"
        return None

    def _request_stop(self, proc: subprocess.Popen) -> None:
        """Checkpoint and stop: a stop file (everywhere) and SIGTERM (POSIX); a suspended process is woken
        first, or it would never see either."""
        self._stop_file.touch()
        if self._suspended:
            resume_process(proc)
            self._suspended = False
        if os.name != "nt" and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    def _install(self, job: Job, model: dict) -> Path:
        """Copy the model, its card and loss curve into the models folder; the model file last and by
        atomic rename, so a watcher sees it whole, with its card already beside it."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        for key in ("card", "picture", "path"):
            src = Path(model[key])
            atomic_copy(src, self.models_dir / src.name)
        return self.models_dir / Path(model["path"]).name

    def _finish(self, job: Job, state: str, message: str, **fields) -> None:
        try:
            job = self.queue.move(job.id, state, message, **fields)
        except QueueError as e:  # e.g. cancelled meanwhile; the queue stays as it is
            log.warning("job %s: %s", job.id, e)
            return
        if state in ("done", "cancelled", "failed"):
            self._cleanup(job)
        self._notify_state(job)

    def _cleanup(self, job: Job) -> None:
        """A finished job's checkpoint and data cache are not needed any more (hundreds of MB for the seed's
        architecture); its log, card, picture and model stay in the run folder."""
        if job.run_dir:
            for name in BIG_FILES:
                (Path(job.run_dir) / name).unlink(missing_ok=True)

    def _notify_state(self, job: Job) -> None:
        log.info("job %s (%s): %s %s", job.id, job.name, job.state, job.message)
        _call(self.on_state, job, job.state, job.message)


def _resolved(dataset: str) -> str:
    """A dataset folder, resolved and looked at quickly (file headers); silent files are found when it runs."""
    from tad_daemon.training.dataset import check_folder

    try:
        dataset = str(Path(dataset).expanduser().resolve())
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python 3.11)
        raise ValueError(f"dataset_dir cannot be resolved: {e}") from None
    check_folder(dataset)
    return dataset


def _call(callback: Callable | None, *args) -> None:
    """A failing callback is logged; it must not stop the runner or lose the job's state."""
    if callback:
        try:
            callback(*args)
        except Exception:
            log.exception("training callback %s failed", getattr(callback, "__name__", callback))


def _read_lines(stream, lines: queue_mod.Queue) -> None:
    for raw in stream:
        lines.put(raw.decode("utf-8", "replace").strip())
    lines.put(None)


def _parse(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def _crash_message(rc: int, run_dir: Path) -> str:
    how = f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}"
    tail = ""
    with contextlib.suppress(OSError):
        text = (run_dir / "stderr.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
        tail = f": {text[-1]}" if text else ""
    return f"the training process ended unexpectedly ({how}){tail}"


def _short(message: str, limit: int = 300) -> str:
    """Messages travel in OSC packets (< 1,400 bytes with the other arguments)."""
    return message if len(message) <= limit else message[: limit - 3] + "..."
