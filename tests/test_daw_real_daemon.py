"""The DAW side against a real running daemon: the REAPER "replace with variation" action (its stand-in
ExecProcess runs the real `tad-daemon send`) and the TAD Drums device's script (its OSC goes over real UDP)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO, make_model, run_lua_specs, run_node


def _free_udp_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """A `tad-daemon serve` on a free port, its own TAD_DAEMON_HOME, four tiny models (noise-like
    outputs: these tests check the plumbing, not the sound)."""
    root = tmp_path_factory.mktemp("daemon")
    home = root / "home"
    (home / "models").mkdir(parents=True)
    for name in ("kick", "snare", "hat", "perc"):
        path = make_model(home / "models", name, kind=name)
        os.utime(path, (time.time() - 60, time.time() - 60))  # installed before the daemon starts (SETTLE_SECONDS)
    port, *reply_ports = _free_udp_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAD_DAEMON_")}
    env.update(TAD_DAEMON_HOME=str(home), TAD_DAEMON_MODELS_BUNDLED="0",
               TAD_DAEMON_SERVER_PORT=str(port), TAD_DAEMON_DEVICE_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    log_path = root / "daemon.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "tad_daemon", "serve", "--pool", "0", "--device", "cpu"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while subprocess.run([sys.executable, "-m", "tad_daemon", "send", "/tad/ping", "--timeout", "1"],
                             env=env, capture_output=True).returncode != 0:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the daemon did not answer /tad/ping:\n" + log_path.read_text()
            time.sleep(0.5)
        # The command the REAPER scripts run: the real client, with this test's environment.
        wrapper = root / "bin" / "tad-daemon"
        wrapper.parent.mkdir()
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tad_daemon "$@"\n')
        wrapper.chmod(0o755)
        yield {"port": port, "reply_ports": reply_ports, "env": env, "command": str(wrapper),
               "samples": home / "samples", "log": log_path}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _snare(path):
    """A drum hit to vary: noise and a 190 Hz tone under a fast decay, mono, 0.5 s."""
    rng = np.random.default_rng(0)
    t = np.arange(22050) / 44100
    x = (0.6 * rng.standard_normal(t.size) + np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 25)
    sf.write(path, (0.5 * x).astype(np.float32), 44100, subtype="PCM_16")
    return path


def _check(result, daemon):
    assert result.returncode == 0, (result.stdout[-6000:] + result.stderr[-2000:] + "\n--- daemon log ---\n"
                                    + daemon["log"].read_text()[-3000:])


def test_reaper_replace_with_variation(daemon, tmp_path):
    source = _snare(tmp_path / "Snare it's \"big\".wav")
    env = dict(daemon["env"], TAD_DAEMON_COMMAND=daemon["command"], TAD_SAMPLES=str(daemon["samples"]),
               TAD_SOURCE=str(source))
    result = run_lua_specs(REPO / "reaper_scripts" / "spec_daemon", env=env)
    _check(result, daemon)


def test_max_device_script(daemon, tmp_path):
    source = _snare(tmp_path / "My Snare.wav")
    env = dict(daemon["env"], TAD_PORT=str(daemon["port"]), TAD_SAMPLES=str(daemon["samples"]),
               TAD_SOURCE=str(source), TAD_REPLY_PORTS=" ".join(map(str, daemon["reply_ports"])))
    result = run_node(["--test", str(REPO / "max_for_live" / "test" / "real_daemon.js")], env=env, timeout=600)
    _check(result, daemon)
