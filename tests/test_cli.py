"""The offline commands, run as a user runs them (a subprocess), on a small random model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import soundfile as sf

from tad_daemon.audio.wav import read_metadata
from tests.conftest import make_model


def tad(*args: str, env_home=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tad_daemon", *args], capture_output=True, text=True,
                          timeout=300)


def test_help_speaks_to_producers(home):
    out = tad("generate", "--help")
    assert out.returncode == 0
    assert "seed" in out.stdout and "--steps" in out.stdout and "-n, --count" in out.stdout


def test_generate_writes_numbered_seeds_with_metadata(home):
    make_model(home / "models", "snare", kind="snare")
    out = tad("generate", "snare", "-n", "3", "--seed", "10", "--steps", "2")
    assert out.returncode == 0, out.stderr
    paths = out.stdout.split()
    assert len(paths) == 3
    for i, p in enumerate(paths):
        info = sf.info(p)
        assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_24")
        meta = read_metadata(p)
        assert (meta["model"], meta["seed"], meta["steps"], meta["sampler"]) == ("snare", 10 + i, 2, "dpmpp-2m")
        assert str(home / "samples" / "snare") in p
    again = tad("generate", "snare", "--seed", "11", "--steps", "2", "--out", str(home / "again"))
    assert again.returncode == 0, again.stderr
    a, _ = sf.read(paths[1])
    b, _ = sf.read(again.stdout.strip())
    np.testing.assert_allclose(a, b, atol=1e-4)  # a seed makes the same sound again


def test_sampler_and_schedule_can_be_chosen(home):
    make_model(home / "models", "snare", kind="snare")
    out = tad("generate", "snare", "--seed", "3", "--steps", "3", "--sampler", "dpmpp-2m-sde", "--schedule", "logsnr")
    assert out.returncode == 0, out.stderr
    meta = read_metadata(out.stdout.strip())
    assert (meta["sampler"], meta["schedule"], meta["steps"]) == ("dpmpp-2m-sde", "logsnr", 3)
    bad = tad("generate", "snare", "--schedule", "cosine")
    assert bad.returncode == 2 and "cosine" in bad.stderr


def test_vary_and_info(home, tmp_path):
    make_model(home / "models", "kick", kind="kick")
    src = tmp_path / "src.flac"
    sf.write(src, np.sin(np.linspace(0, 300, 30000))[:, None] * 0.5, 48000)
    out = tad("vary", "kick", str(src), "--strength", "0.3", "-n", "2", "--steps", "4")
    assert out.returncode == 0, out.stderr
    paths = out.stdout.split()
    assert len(paths) == 2 and all("_kick_var_" in p for p in paths)
    shown = tad("info", paths[0])
    assert shown.returncode == 0 and "strength: 0.3" in shown.stdout and "source:" in shown.stdout


def test_clear_errors_and_exit_codes(home, tmp_path):
    none = tad("generate", "snare")
    assert none.returncode == 2 and "no models installed" in none.stderr
    make_model(home / "models", "kick")
    unknown = tad("generate", "snare")
    assert unknown.returncode == 2 and "unknown model 'snare'" in unknown.stderr and "kick" in unknown.stderr
    (home / "models" / "snare.safetensors").write_bytes(b"\x08" + bytes(7) + b"not json")  # a file, unreadable
    broken = tad("generate", "snare")
    assert broken.returncode == 2 and "Error: model 'snare' cannot be used:" in broken.stderr, broken.stderr
    assert "deserializing header" in broken.stderr
    (home / "models" / "snare.safetensors").unlink()
    bad_file = tmp_path / "bad.wav"
    bad_file.write_text("hello")
    vary = tad("vary", "kick", str(bad_file))
    assert vary.returncode == 2 and "not a readable sound file" in vary.stderr
    missing = tad("vary", "kick", str(tmp_path / "nope.wav"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    strength = tad("vary", "kick", str(bad_file), "--strength", "2")
    assert strength.returncode == 2 and "strength" in strength.stderr
    steps = tad("generate", "kick", "--steps", "0")
    assert steps.returncode == 2
    assert "Traceback" not in none.stderr + unknown.stderr + vary.stderr + missing.stderr


def test_models_lists_what_is_installed(home):
    assert "no models installed" in tad("models").stdout
    make_model(home / "models", "my-kicks", kind="kick")
    (home / "models" / "broken.safetensors").write_bytes(b"\0" * 10)
    out = tad("models")
    assert out.returncode == 0
    assert "my-kicks" in out.stdout and "kick" in out.stdout and "broken.safetensors" in out.stderr
