"""The daemon's parts in-process: the pool, the scheduler (with a stand-in engine), the file checks, start at
login and `tad-daemon config`."""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tad_daemon.daemon.pool import Pool
from tad_daemon.daemon.scheduler import Scheduler, SoundJob
from tad_daemon.daemon.server import Refused
from tad_daemon.oneshot import OneShot


def shot(model: str = "snare", seed: int = 0) -> OneShot:
    return OneShot(np.zeros((2, 8), np.float32), model, seed, "dpmpp-2m", "karras", 4, 44100)


def test_pool_serves_each_sound_once_and_forgets_reloaded_models():
    pool = Pool(2)
    assert pool.wanted(["snare", "kick"]) == "kick"  # emptiest first, then by name
    v = pool.version("snare")
    assert pool.add("snare", shot(seed=1), v) and pool.add("snare", shot(seed=2), v)
    assert not pool.add("snare", shot(seed=3), v)  # full
    assert pool.wanted(["snare"]) is None
    taken, version = pool.take("snare", 1)
    assert [s.seed for s in taken] == [1] and pool.ready("snare") == 1
    pool.give_back("snare", taken, version)
    assert [s.seed for s in pool.take("snare", 5)[0]] == [1, 2] and pool.ready() == 0
    pool.add("snare", shot(seed=4), pool.version("snare"))
    stale = pool.version("snare")
    pool.invalidate("snare")  # the model was reloaded
    assert pool.ready("snare") == 0
    assert not pool.add("snare", shot(seed=5), stale)  # made by the old model: dropped
    assert Pool(0).wanted(["snare"]) is None


class FakeEngine:
    """Stands in for Engine.generate: records calls, runs `steps` (default: its own) steps of `step_time` s."""

    def __init__(self, step_time: float = 0.0, steps: int = 4):
        self.calls, self.step_time, self.steps = [], step_time, steps
        self.started = threading.Event()

    def generate(self, name, count=1, seed=None, steps=None, sampler=None, progress=None, seeds=None):
        seeds = list(seeds) if seeds else [seed if seed is not None else 1000 + i for i in range(count)]
        call = {"model": name, "seeds": seeds, "steps": steps, "ran": 0}
        self.calls.append(call)
        self.started.set()
        n = steps or self.steps
        for i in range(n):
            time.sleep(self.step_time)
            if progress:
                progress(i + 1, n)
            call["ran"] = i + 1
        return [shot(name, s) for s in seeds]


class FakeWriter:
    def __init__(self):
        self.items = []
        self.done = threading.Event()

    busy = False  # a file is being written

    def idle(self):
        return not self.busy

    def full(self):
        return False

    def refill(self, pool, shot, version):
        pool.add(shot.model, shot, version)

    def serve(self, request, shots):
        self.items += [(request, s.seed, True) for s in shots]
        self.done.set()

    def finish(self, job, shots):
        self.items += [(job.request, s.seed, False) for s in shots]
        self.done.set()


class FakeRequest:
    address = "/tad/generate"

    def __init__(self):
        self.failed = None
        self.finished = False

    def fail(self, message):
        self.failed = message

    def done(self, **fields):
        pass


def job(engine, model="snare", count=1, seed=None, steps=None) -> SoundJob:
    """A /tad/generate request's job, as the handler makes it."""
    return SoundJob(FakeRequest(), engine.generate, {"name": model, "count": count, "seed": seed, "steps": steps,
                                                     "sampler": None}, count, pool=seed is None and steps is None,
                    batch=(model, steps, None))


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_scheduler_batches_same_model_requests_and_answers_busy():
    engine, writer = FakeEngine(), FakeWriter()
    s = Scheduler(engine, Pool(0), writer, lambda: ["snare", "kick"], max_queue=4, max_batch=16)
    jobs = [job(engine, seed=10), job(engine, count=2, seed=20), job(engine, steps=8, seed=30),
            job(engine, "kick", seed=40)]
    for j in jobs:
        s.submit(j)
    with pytest.raises(Refused, match="busy"):
        s.submit(job(engine))
    assert s.queued() == 4
    s.start()
    try:
        wait_for(lambda: len(writer.items) == 5)
    finally:
        s.stop()
    # The first two ran as one batch; different steps or model do not join it.
    assert [c["seeds"] for c in engine.calls] == [[10, 20, 21], [30], [40]]
    assert [(r, seed) for r, seed, _ in writer.items] == [
        (jobs[0].request, 10), (jobs[1].request, 20), (jobs[1].request, 21), (jobs[2].request, 30),
        (jobs[3].request, 40)]


def test_generation_waits_while_the_writer_is_behind():
    """Generating faster than writing must not pile finished audio up in memory: past MAX_BACKLOG one-shots
    waiting to be written the worker waits, requests stay queued, and the queue's limit answers "busy"."""
    from tad_daemon.daemon.writer import MAX_BACKLOG, Writer

    class SlowDisk:
        def finish(self, shots, post=True, together=False):
            return [(shot.audio, {}) for shot in shots]

        def save(self, shot, post=None, processed=None):
            time.sleep(0.02)
            return "/music/x.wav"

    engine, writer = FakeEngine(), Writer(SlowDisk(), lambda *a: None)
    s = Scheduler(engine, Pool(0), writer, lambda: ["snare"], max_queue=4)
    most = []
    watching = threading.Event()

    def watch():
        while not watching.is_set():
            most.append(writer._waiting)  # one-shots waiting to be finished and written
            time.sleep(0.002)

    threading.Thread(target=watch, daemon=True).start()
    writer.start()
    s.start()
    busy = 0
    try:
        for _ in range(40):
            try:
                s.submit(job(engine, count=32))
            except Refused:
                busy += 1
            time.sleep(0.01)
        wait_for(lambda: s.queued() == 0 and writer.idle(), timeout=60)
    finally:
        watching.set()
        s.stop()
        writer.stop()
    assert max(most) <= MAX_BACKLOG + 32  # one job past the line at most
    assert busy > 0  # the queue filled while the writer caught up


def test_scheduler_serves_the_pool_first_and_never_from_it_for_explicit_settings():
    engine, pool, writer = FakeEngine(), Pool(2), FakeWriter()
    s = Scheduler(engine, pool, writer, lambda: ["snare"], max_queue=1)  # not started: jobs stay queued
    for seed in (1, 2):
        pool.add("snare", shot(seed=seed), pool.version("snare"))
    s.submit(job(engine, seed=7))  # explicit seed: queued, the pool untouched; the queue is now full
    assert pool.ready() == 2 and writer.items == []
    with pytest.raises(Refused, match="busy"):  # its third sound would need the queue
        s.submit(job(engine, count=3))
    assert pool.ready() == 2  # nothing taken
    plain = job(engine, count=2)
    s.submit(plain)  # all from the pool: answered at once, queue or not
    assert writer.items == [(plain.request, 1, True), (plain.request, 2, True)]
    assert pool.ready() == 0 and s.queued() == 1
    s.stop()


def test_interactive_requests_preempt_pool_refills():
    engine, writer = FakeEngine(step_time=0.05, steps=200), FakeWriter()
    s = Scheduler(engine, Pool(1), writer, lambda: ["snare"])
    s.start()
    try:
        assert engine.started.wait(10)  # a refill is running (200 steps: 10 s)
        engine.started.clear()
        s.submit(job(engine, seed=5, steps=2))
        assert writer.done.wait(30)
        assert engine.calls[0]["ran"] < 200  # the refill gave way
        assert engine.calls[1]["seeds"] == [5] and writer.items[0][1:] == (5, False)
    finally:
        s.stop()


def test_a_pool_hit_being_written_does_not_stop_a_refill():
    """An audition: presses every half second, each served from the pool; the refills keep up."""
    engine, writer = FakeEngine(step_time=0.02, steps=20), FakeWriter()
    s = Scheduler(engine, Pool(2), writer, lambda: ["snare"])
    s.start()
    try:
        assert engine.started.wait(10)
        writer.busy = True  # a pool hit's file is written while the refill runs
        deadline = time.monotonic() + 10
        while engine.calls[0]["ran"] < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.calls[0]["ran"] == 20  # not given up
        writer.busy = False
    finally:
        s.stop()


def test_stopping_fails_what_waits():
    engine = FakeEngine()
    s = Scheduler(engine, Pool(0), FakeWriter(), lambda: ["snare"])
    waiting = job(engine)
    s.submit(waiting)
    s.stop()
    assert waiting.request.failed == "daemon is shutting down"
    with pytest.raises(Refused, match="shutting down"):
        s.submit(job(engine))


def test_source_files_are_checked_and_fenced_when_remote(tmp_path):
    from tad_daemon.daemon.handlers import SoundRequests

    inside, outside = tmp_path / "samples", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (inside / "a.wav").write_bytes(b"x")
    (outside / "b.wav").write_bytes(b"x")
    (inside / "link.wav").symlink_to(outside / "b.wav")
    def requests(read_roots):
        return SoundRequests(dict, None, None, None, None, None, 1, read_roots)

    local = requests(None)
    assert local.readable_file(str(outside / "b.wav")) == str(outside / "b.wav")
    remote = requests([inside])
    assert remote.readable_file(str(inside / "a.wav"))
    for path in (outside / "b.wav", inside / "link.wav", inside / ".." / "elsewhere" / "b.wav"):
        with pytest.raises(Refused, match="outside the folders"):
            remote.readable_file(str(path))
    with pytest.raises(Refused, match="absolute"):
        local.readable_file("a.wav")
    # What is not a regular file says so: a pipe would block the reader, and "no such file" would mislead.
    if hasattr(os, "mkfifo"):
        os.mkfifo(inside / "pipe.wav")
        with pytest.raises(Refused, match="not a regular file"):
            local.readable_file(str(inside / "pipe.wav"))
    (inside / "loop.wav").symlink_to(inside / "loop.wav")
    with pytest.raises(Refused, match="symlink loop"):
        local.readable_file(str(inside / "loop.wav"))
    with pytest.raises(Refused, match="no such file"):
        local.readable_file(str(inside / "gone.wav"))


# -- start at login, configuration ---------------------------------------------------------------------------
def test_autostart_entries_for_each_platform(tmp_path):
    from tad_daemon.cli.autostart import command, entry

    env = {"HOME": str(tmp_path), "TAD_DAEMON_HOME": "/data/my tad", "APPDATA": str(tmp_path / "Roaming")}
    cmd = command("/opt/py 3/bin/python")
    linux = entry("linux", env, cmd, tmp_path / "logs")
    assert linux.path == tmp_path / ".config" / "systemd" / "user" / "tad-daemon.service"
    assert 'ExecStart="/opt/py 3/bin/python" "-m" "tad_daemon" "serve"' in linux.text
    assert 'Environment="TAD_DAEMON_HOME=/data/my tad"' in linux.text and "WantedBy=default.target" in linux.text
    mac = entry("darwin", env, cmd, tmp_path / "logs")
    agent = plistlib.loads(mac.text.encode())
    assert mac.path.name == "org.tad-daemon.serve.plist" and agent["RunAtLoad"] is True
    assert agent["ProgramArguments"] == ["/opt/py 3/bin/python", "-m", "tad_daemon", "serve"]
    assert agent["EnvironmentVariables"] == {"TAD_DAEMON_HOME": "/data/my tad"}
    win = entry("win32", env, command("C:\\Py\\python.exe", config="C:\\my cfg.toml"), tmp_path)
    assert win.path.parent.name == "Startup" and win.path.name == "tad-daemon.cmd"
    assert 'start "tad-daemon" /min C:\\Py\\python.exe -m tad_daemon serve --config "C:\\my cfg.toml"' in win.text
    assert 'set "TAD_DAEMON_HOME=/data/my tad"' in win.text


def run_cli(home, *args, env_extra=None):
    from tests.daemon_util import tad_env

    env = tad_env(home)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "tad_daemon", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_autostart_install_show_remove(home, tmp_path):
    fake_home = tmp_path / "user"
    extra = {"HOME": str(fake_home), "XDG_CONFIG_HOME": ""}
    unit = fake_home / ".config" / "systemd" / "user" / "tad-daemon.service"
    assert "(not installed)" in run_cli(home, "autostart", "show", env_extra=extra).stdout
    out = run_cli(home, "autostart", "install", env_extra=extra)
    assert out.returncode == 0 and unit.is_file(), out.stderr
    assert f'"{sys.executable}" "-m" "tad_daemon" "serve"' in unit.read_text()
    assert f'TAD_DAEMON_HOME={home}' in unit.read_text()
    # Linked as `systemctl --user enable` would: a unit file alone never starts.
    link = unit.parent / "default.target.wants" / "tad-daemon.service"
    assert link.is_symlink() and link.resolve() == unit.resolve()
    assert "to start it now: systemctl --user daemon-reload && systemctl --user start" in out.stdout  # told, not run
    assert "(installed)" in run_cli(home, "autostart", "show", env_extra=extra).stdout
    link.unlink()
    assert "not linked" in run_cli(home, "autostart", "show", env_extra=extra).stdout
    assert run_cli(home, "autostart", "install", env_extra=extra).returncode == 0 and link.is_symlink()
    assert run_cli(home, "autostart", "install", env_extra=extra).returncode == 0 and link.is_symlink()  # again
    out = run_cli(home, "autostart", "remove", env_extra=extra)
    assert out.returncode == 0 and not unit.exists() and not link.is_symlink()


def test_config_prints_every_key_its_value_and_source(home):
    (home / "config.toml").write_text('[server]\nport = 9400\n[pool]\nsize = 5\n')
    out = run_cli(home, "config", "--set", "pool.size=1", env_extra={"TAD_DAEMON_GENERATE_STEPS": "9"})
    assert out.returncode == 0, out.stderr
    lines = {li.split(" = ")[0]: li for li in out.stdout.splitlines() if " = " in li}
    from tad_daemon.config import DEFAULTS

    assert set(lines) == set(DEFAULTS)
    assert lines["server.port"].split("#")[1].strip() == str(home / "config.toml")
    assert "pool.size = 1" in lines["pool.size"] and lines["pool.size"].endswith("# command line")
    assert lines["generate.steps"].endswith("# environment TAD_DAEMON_GENERATE_STEPS")
    assert lines["server.host"].endswith("# default")
    bad = run_cli(home, "config", "--set", "nope=1")
    assert bad.returncode == 2 and "expected KEY=VALUE" in bad.stderr


def test_a_silent_or_non_finite_output_fails_with_the_reason_and_writes_nothing(tmp_path):
    from tad_daemon.config import load_config
    from tad_daemon.daemon.writer import Writer
    from tad_daemon.workspace import Workspace

    class Request:
        address, finished = "/tad/generate", False

        def __init__(self):
            self.failed, self.dones = [], []

        def fail(self, message):
            self.failed.append(message)
            self.finished = True

        def done(self, **fields):
            self.dones.append(fields)

    samples = tmp_path / "samples"
    writer = Writer(Workspace(load_config(None, {"paths.samples": str(samples)})), lambda *a: None)
    writer.start()
    nan, silent = shot(), shot(seed=1)
    nan.audio = np.full_like(nan.audio, np.nan)
    silent.audio = np.zeros_like(silent.audio)
    requests = [Request(), Request()]
    writer.finish(SoundJob(requests[0], None, {}, 1), [nan])
    writer.finish(SoundJob(requests[1], None, {}, 1), [silent])
    wait_for(writer.idle)
    writer.stop()
    assert "non-finite output (NaN or inf)" in requests[0].failed[0]
    assert "silent output (peak -240 dBFS)" in requests[1].failed[0]
    assert not [p for p in samples.rglob("*.wav")] and not any(r.dones for r in requests)


def test_a_model_with_non_finite_weights_is_refused_at_load(tmp_path):
    import torch

    from tad_daemon.models.modelfile import read_weights, save_model
    from tad_daemon.models.registry import load_net, read_entry
    from tests.conftest import make_model

    path = make_model(tmp_path, "broken")
    weights = read_weights(path)
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = weights[name].clone().fill_(float("nan"))
    save_model(path, weights, read_entry(path).config)
    with pytest.raises(ValueError, match="non-finite weights"):
        load_net(read_entry(path), torch.device("cpu"))


def test_a_full_disk_fails_the_request_with_a_clear_message():
    from tad_daemon.daemon.writer import Writer

    class FullDisk:
        def finish(self, shots, post=True, together=False):
            return [(shot.audio, {}) for shot in shots]

        def save(self, shot, post=None, processed=None):
            raise OSError(28, "No space left on device", "/music/snare")

    class Request:
        address, finished, failed, dones = "/tad/generate", False, [], []

        def fail(self, message):
            self.failed.append(message)
            self.finished = True

    writer, request = Writer(FullDisk(), lambda *a: None), Request()
    writer.start()
    writer.finish(SoundJob(request, None, {}, 2), [shot(), shot(seed=1)])
    wait_for(writer.idle)
    writer.stop()
    assert request.failed == ["cannot write to the sample folder: No space left on device (/music/snare)"]
