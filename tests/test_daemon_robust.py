"""Robustness against a real daemon process: the pool, a second daemon on the same port, fuzzed
packets, a burst from several clients, SIGTERM and SIGKILL during generation, a non-loopback bind.

TAD_FUZZ_PACKETS sets the fuzz size (default 2,000; e.g. 100000 for a manual run).
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf

from tad_daemon.audio.wav import read_metadata
from tad_daemon.protocol.table import DONE, FAIL
from tests.daemon_util import (
    Client,
    Daemon,
    answered_exactly_once,
    barrier,
    check_sample_folder,
    free_port,
    make_models,
    tad,
    wait_status,
)
from tests.fuzz import fuzz_packets, hostile_models, hostile_requests, hostile_sounds


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    home = tmp_path_factory.mktemp("robust")
    make_models(home / "models", {"kick": "kick", "snare": "snare"})
    d = Daemon(home, pool=2).start()
    yield d
    d.stop()


def test_pool_hits_are_marked_and_never_served_twice(daemon):
    c = daemon.client()
    try:
        wait_status(c, "pool_ready", 4)
        replies = c.request("/tad/generate", "snare", 3)
        assert [r.args[6] for r in replies] == [1, 1, 0]
        assert len({r.args[1] for r in replies}) == 3 and len({r.args[3] for r in replies}) == 3
        assert all(sf.info(r.args[1]).frames == 32768 for r in replies)
        wait_status(c, "pool_ready", 4)
        (seeded,) = c.request("/tad/generate", "snare", 1, 5)
        (stepped,) = c.request("/tad/generate", "snare", 1, -1, 2)
        (sampled,) = c.request("/tad/generate", "snare", "sampler=dpmpp-2m")
        (raw,) = c.request("/tad/generate", "snare", "post=0")
        assert [seeded.args[6], stepped.args[6], sampled.args[6], raw.args[6]] == [0, 0, 0, 0]
        (hit,) = c.request("/tad/generate", "snare")
        assert hit.args[6] == 1 and hit.args[1] not in {r.args[1] for r in replies}
        meta = read_metadata(hit.args[1])  # post-processed when it was made, as configured
        assert meta["post"]["dc"] is True and meta["seed"] == hit.args[3]
    finally:
        c.close()


def test_a_second_daemon_on_the_same_port_is_refused(daemon):
    t0 = time.monotonic()
    out = tad(daemon.home, "serve", "--port", str(daemon.port))
    assert out.returncode == 3, out.stderr
    assert "in use" in out.stderr and "already running" in out.stderr and "Traceback" not in out.stderr
    assert time.monotonic() - t0 < 60


def test_fuzzed_packets_do_not_hurt_the_daemon(daemon):
    n = int(os.environ.get("TAD_FUZZ_PACKETS", "2000"))
    checker = daemon.client()
    senders = [daemon.client() for _ in range(4)]
    models = daemon.home / "models"
    try:
        checker.request("/tad/generate", "snare", 64, 1)  # the largest batch fuzzing can ask for
        rss_before = daemon.rss_kb()
        # Hostile model files dropped into the watched folder while the packets fly, and variations of
        # hostile sound files among the packets: each refused, none loaded, nothing stalls.
        hostile = hostile_models(daemon.home / "hostile-models", models / "snare.safetensors")
        sounds = hostile_sounds(daemon.home / "hostile-sounds")
        dropped, every = list(hostile), max(1, n // len(hostile))
        for i, packet in enumerate(fuzz_packets(n, sounds=sounds)):
            if i % every == 0 and hostile:
                bad = hostile.pop()
                os.replace(bad, models / bad.name)
            senders[i % 4].send_raw(packet)  # each reply is checked: valid OSC, i/f/s only, < 1,400 bytes
            if i % 200 == 199:
                for s in senders:
                    s.quiet(0.001)
        for bad in hostile:  # a count under the number of files
            os.replace(bad, models / bad.name)
        barrier(checker)
        assert daemon.proc.poll() is None
        wait_status(checker, "queue", 0)
        growth_mb = (daemon.rss_kb() - rss_before) / 1024
        assert growth_mb < 48, f"RSS grew by {growth_mb:.0f} MB"
        # Well-formed requests afterwards: each answered exactly once.
        deadline = time.monotonic() + 60  # the folder watcher waits for files to settle, then reports each
        while not all(f"{p.stem}.safetensors" in daemon.output() for p in dropped):
            assert time.monotonic() < deadline, daemon.output()[-3000:]
            time.sleep(0.2)
        assert "Traceback" not in daemon.output()
        names = sorted(m.args[2] for m in checker.request("/tad/models") if m.address == "/tad/model")
        assert names == ["kick", "snare"]  # none of the hostile models was loaded
        checker.request("/tad/notify", 0)  # in case the fuzz registered this port
        answered_exactly_once(checker, [(f"t{i}", req) for i, req in enumerate(
            [("/tad/ping",), ("/tad/status",), ("/tad/models",), ("/tad/generate", "snare", 1)] * 5)])
    finally:
        for s in [checker, *senders]:
            s.close()


HOSTILE_ANSWERS = {  # what each hostile source file and request is answered with
    "1024-channels.wav": "1024 channels; a sound file may have at most 64", "3e38.wav": "over +60 dBFS",
    "cut-short.wav": None, "claims-4gb.wav": "holds no audio", "noise.wav": "not a readable sound file",
    "empty.wav": "not a readable sound file", "folder.wav": "is a folder", "loop.wav": "symlink loop",
    "fifo.wav": "not a regular file",
    "repaint end 1e308 (double)": None, "repaint start NaN": "start", "repaint start inf (double)": "start",
    "tune with spaces and a newline": None, "tune of 4 KB": "tune: not a note"}


def test_hostile_sources_and_arguments_get_one_clear_answer(daemon, tmp_path):
    """Each hostile source file, as vary, repaint and morph read it, and each hostile argument: one
    terminal reply, the reason in a /tad/fail (None: done, e.g. a repaint to the end of the sound)."""
    c = daemon.client()
    try:
        (made,) = c.request("/tad/generate", "kick", 1, 3, 2)  # a good source beside each hostile one
        good = made.args[1]
        for sound in hostile_sounds(tmp_path / "sounds"):
            for request in (("/tad/vary", "kick", str(sound), 0.5, 1, -1, "steps=2"),
                            ("/tad/repaint", "kick", str(sound), 0.1, 0.3, 1.0, 1, -1, "steps=2"),
                            ("/tad/morph", "kick", good, str(sound), 0.5, 1, "steps=2")):
                ends = [m for m in c.request(*request, timeout=120) if m.address in (DONE, FAIL)]
                want = HOSTILE_ANSWERS[sound.name]
                assert len(ends) == 1 and (ends[0].address == DONE if want is None else
                                           ends[0].address == FAIL and want in ends[0].args[1]), (request, ends)
        for what, packet in hostile_requests("kick", good).items():
            c.send_raw(packet)
            (end,) = c.until(lambda got: any(m.address in (DONE, FAIL) for m in got), 120)[-1:]
            want = HOSTILE_ANSWERS[what]
            assert end.address == DONE if want is None else end.address == FAIL and want in end.args[1], (what, end)
        assert "Traceback" not in daemon.output()
    finally:
        c.close()


def test_a_burst_from_several_clients_is_answered_exactly_once(daemon):
    mix = [("/tad/ping",), ("/tad/generate", "snare", 1), ("/tad/status",), ("/tad/generate", "kick", 1, 3),
           ("/tad/models",)]
    clients = [daemon.client() for _ in range(6)]
    errors = []

    def run(i: int, c: Client) -> None:
        try:
            answered_exactly_once(c, [(f"c{i}-{j}", mix[j % len(mix)]) for j in range(50)], timeout=240)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors[0]
    finally:
        for c in clients:
            c.close()


def test_sigterm_during_generation_exits_cleanly(daemon):
    """Last in this module: it stops the module's daemon."""
    c = daemon.client()
    try:
        c.send("/tad/generate", "snare", 64, 1)
        first = c.receive(120)
        assert first.address == DONE
        assert daemon.signal(signal.SIGTERM, timeout=60) == 0
        rest = c.quiet(0.5)
        # Every result is answered: the files written, then one /tad/fail for the rest.
        assert all(r.address == DONE for r in rest[:-1])
        assert len(rest) == 63 or (rest[-1].address == FAIL and "shutting down" in rest[-1].args[1])
    finally:
        c.close()
    check_sample_folder(daemon.home / "samples")
    assert not (daemon.home / "samples" / ".tad-tmp").exists()  # nothing of ours left behind
    assert "stopped" in daemon.output()


def test_sigkill_leaves_no_partial_file_and_remote_binds_need_the_option(tmp_path):
    home = tmp_path / "home"
    make_models(home / "models", {"snare": "snare"})
    d = Daemon(home).start()
    try:
        c = d.client()
        c.send("/tad/generate", "snare", 64, 1)
        assert c.receive(120).address == DONE
        d.signal(signal.SIGKILL)
        c.close()
    finally:
        d.stop()
    written = check_sample_folder(home / "samples")
    assert written >= 1  # killed while writing or just after: either way, no partial file in sight
    # Listening beyond loopback: refused without the option and an allow-list.
    port = str(free_port())
    out = tad(home, "serve", "--host", "0.0.0.0", "--port", port)
    assert out.returncode == 2 and "--allow-remote" in out.stderr
    out = tad(home, "serve", "--host", "0.0.0.0", "--port", port, "--allow-remote")
    assert out.returncode == 2 and "server.allow" in out.stderr
    # Remote: allowed with both; and a daemon without models starts, then loads one dropped in.
    empty = tmp_path / "no-models"
    remote = Daemon(home, "--host", "0.0.0.0", "--allow-remote", "--set", "server.allow=10.0.0.0/8",
                    "--models", str(empty)).start()
    try:
        # The restarted daemon removed what the killed one left in the temporary folder.
        assert not list((home / "samples" / ".tad-tmp").glob("*.part"))
        c = remote.client()
        (r,) = c.request("/tad/generate", "snare")
        assert r.address == FAIL and r.args[1] == "unknown model 'snare' (loaded: none)"
        c.request("/tad/notify", 1)
        os.replace(home / "models" / "snare.safetensors", empty / "snare.safetensors")
        c.until(lambda g: any(m.address == "/tad/model/added" for m in g), 60)
        (r,) = c.request("/tad/vary", "snare", str(Path(__file__)), 0.5)
        assert r.address == FAIL and "outside the folders" in r.args[1]
        elsewhere = tmp_path / "elsewhere"  # a model file outside the folders: no base, no teacher either
        elsewhere.mkdir()
        shutil.copy(empty / "snare.safetensors", elsewhere / "snare.safetensors")
        for request in (("/tad/train", "mine", str(home / "data"), str(elsewhere / "snare.safetensors")),
                        ("/tad/distill", "mine", str(elsewhere / "snare.safetensors")),
                        ("/tad/distill", "mine", "~/snare.safetensors")):
            (r,) = c.request(*request)
            assert r.address == FAIL and "is outside the folders this daemon may read" in r.args[1], (request, r.args)
        replies = c.request("/tad/generate", "snare", 1, 1)
        assert [m.address for m in replies if m.args[0] == "/tad/generate"] == [DONE]
        c.close()
    finally:
        remote.stop()


def test_sigterm_during_first_start_onnx_export_exits_cleanly(tmp_path):
    """A daemon's first start exports each model for ONNX Runtime in a background thread; stopped in the
    middle, it must finish that export (or skip the rest) and exit 0, not abort inside torch's exporter."""
    daemon = Daemon(tmp_path / "home", "--set", "models.bundled=true", "--set", "device.backend=onnx").start()
    try:
        deadline = time.monotonic() + 120
        while "exporting" not in daemon.output():
            assert time.monotonic() < deadline, daemon.output()
            time.sleep(0.1)
        assert daemon.signal(signal.SIGTERM, timeout=120) == 0, daemon.output()
        assert "terminate called" not in daemon.output()
    finally:
        daemon.stop()
