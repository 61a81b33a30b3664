"""Encode, morph, tweak, repaint, kit and tune: the math on exact cases, the engine on small models, the
round trip on a bundled model, and each through the command line and the daemon."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from pythonosc.osc_message_builder import OscMessageBuilder

from tad_daemon import sampling
from tad_daemon.audio.post import loudness, match_loudness
from tad_daemon.audio.tune import describe, measure_pitch, note_hz, retune
from tad_daemon.audio.wav import read_metadata
from tad_daemon.engine import Engine, model_level_gain
from tad_daemon.models.registry import read_entry
from tad_daemon.protocol.table import DONE, FAIL, read_reply
from tad_daemon.seeds import parse_turns
from tests.conftest import make_model
from tests.daemon_util import kick_and_snare
from tests.test_sampling import gaussian_net

SR = 44100


def rms_db(x: np.ndarray, reference: np.ndarray) -> float:
    """The error x - reference in dB re the reference's level."""
    return 20 * math.log10(np.sqrt(((x - reference) ** 2).mean() / (reference**2).mean()) + 1e-30)


# -- the math --------------------------------------------------------------------------------------------------
def test_inversion_finds_the_noise_the_sampler_decodes_back():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(1, 2, 256, generator=g).double() * 0.3
    c = torch.rand(1, 2, 256, generator=g).double() * 0.5 + 0.05
    net = gaussian_net(mu, c)
    sound = (mu + c * torch.randn(2, 2, 256, generator=g).double()).float()
    times = sampling.times_for("logsnr", 20)
    error = [rms_db(sampling.sample_vsampler(net, sampling.invert_ddim(net, sound.clone(), times, refine=r),
                                             times).numpy(), sound.numpy()) for r in (0, 2, 5)]
    assert error[2] < error[1] - 10 < error[0] - 20 and error[2] < -45, error  # measured -13, -28, -51 dB


def test_turns_are_read_and_refused_with_the_reason():
    assert parse_turns("") == () and parse_turns(" 5:0.1, 7:1 ") == ((5, 0.1), (7, 1.0))
    for text, reason in (("5", "not SEED:AMOUNT"), ("x:0.1", "not SEED:AMOUNT"), ("5:2", "between 0 and 1"),
                         ("-1:0.1", "not SEED:AMOUNT"), ("5:nan", "between 0 and 1"),
                         (",".join(["1:0.1"] * 33), "at most 32")):
        with pytest.raises(ValueError, match=reason):
            parse_turns(text)


def test_slerp_keeps_the_ends_and_the_length():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(3, 2, 512, generator=g), torch.randn(3, 2, 512, generator=g)
    assert torch.allclose(sampling.slerp(a, b, 0.0), a, atol=1e-5)
    assert torch.allclose(sampling.slerp(a, b, 1.0), b, atol=1e-5)
    mid = sampling.slerp(a, b, 0.5)
    assert torch.allclose(mid.flatten(1).norm(dim=1), a.flatten(1).norm(dim=1), rtol=0.05)
    assert torch.allclose(sampling.slerp(a, a, 0.3), a, atol=1e-5)  # the same direction: no division by zero


# -- the engine on a small model -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = Engine("cpu", "fp32")
    eng.load(read_entry(make_model(tmp_path_factory.mktemp("m"), "tiny", length=4096)))
    return eng


@pytest.mark.parametrize("sampler", ["dpmpp-2m", "dpmpp-2m-sde"])
def test_tweak_zero_is_the_seeds_sound_and_grows_with_the_amount(engine, sampler):
    own = engine.generate("tiny", seed=12, steps=6, sampler=sampler)[0].audio
    same = engine.tweak("tiny", 12, 0.0, count=2, steps=6, sampler=sampler)
    for shot in same:
        np.testing.assert_allclose(shot.audio, own, atol=1e-5)
    distance = [rms_db(engine.tweak("tiny", 12, amount, steps=6, sampler=sampler)[0].audio, own)
                for amount in (0.05, 0.2, 0.6)]
    assert distance == sorted(distance) and distance[0] < -10, distance
    a, b = engine.tweak("tiny", 12, 0.2, count=2, steps=6, sampler=sampler)
    assert (a.variant, b.variant, a.amount) == (0, 1, 0.2) and not np.allclose(a.audio, b.audio)
    again = engine.tweak("tiny", 12, 0.2, count=2, steps=6, sampler=sampler)[1]
    np.testing.assert_array_equal(again.audio, b.audio)
    # A relative of a relative: its turns remake it at amount 0, and its own relatives lie near it, not
    # near the seed's sound (before, "more like this" on a relative made the seed's relatives again).
    rel = engine.tweak("tiny", 12, 0.4, steps=6, sampler=sampler)[0]
    assert rel.turns == "13:0.4"
    turns = parse_turns(rel.turns)
    for shot in engine.tweak("tiny", 12, 0.0, count=2, steps=6, sampler=sampler, turns=turns):
        np.testing.assert_allclose(shot.audio, rel.audio, atol=1e-5)
    near = engine.tweak("tiny", 12, 0.1, count=3, steps=6, sampler=sampler, turns=turns)
    assert all(rms_db(n.audio, rel.audio) < rms_db(n.audio, own) - 3 for n in near), [
        (rms_db(n.audio, rel.audio), rms_db(n.audio, own)) for n in near]
    assert len({n.turns for n in near}) == 3 and all(n.turns.startswith("13:0.4,") for n in near)
    deeper = parse_turns(near[0].turns)
    np.testing.assert_allclose(engine.tweak("tiny", 12, 0.0, steps=6, sampler=sampler, turns=deeper)[0].audio,
                               near[0].audio, atol=1e-5)


@pytest.mark.parametrize("sampler", ["dpmpp-2m", "dpmpp-2m-sde", "vsampler"])
def test_repaint_keeps_the_rest_within_float_rounding(engine, sampler):
    rng = np.random.default_rng(3)
    source = (0.3 * rng.standard_normal((2, 4096))).astype(np.float32)
    start, end = 1000 / SR, 3000 / SR
    for strength in (1.0, 0.5):
        for shot in engine.repaint("tiny", source, start, end, strength, count=2, seed=4, steps=6, sampler=sampler):
            np.testing.assert_allclose(shot.audio[:, :1000], source[:, :1000], atol=1e-5)
            np.testing.assert_allclose(shot.audio[:, 3000:], source[:, 3000:], atol=1e-5)
            assert rms_db(shot.audio[:, 1300:2700], source[:, 1300:2700]) > -20  # the region is new
            assert (shot.made, shot.start, shot.end) == ("repaint", start, end)
    (to_end,) = engine.repaint("tiny", source, start, 1e308, steps=2)  # the end of the sound
    assert to_end.end == 4096 / SR and rms_db(to_end.audio[:, 1300:], source[:, 1300:]) > -20
    np.testing.assert_allclose(to_end.audio[:, :1000], source[:, :1000], atol=1e-5)
    with pytest.raises(ValueError, match="region"):
        engine.repaint("tiny", source, 0.05, 0.01)
    with pytest.raises(ValueError, match="region"):
        engine.repaint("tiny", source, 5.0, 6.0)


def test_morph_positions_and_rows(engine):
    rng = np.random.default_rng(5)
    a, b = (0.3 * rng.standard_normal((2, 2, 4096))).astype(np.float32)
    row = engine.morph("tiny", a, b, count=3, steps=4)
    assert [s.position for s in row] == [0.25, 0.5, 0.75]
    assert all(s.made == "morph" and s.audio.shape == (2, 4096) for s in row)
    with pytest.raises(ValueError, match="position"):
        engine.morph("tiny", a, b, 1.5)


# -- the round trip on a trained model -------------------------------------------------------------------------
def test_encode_decode_and_morph_ends_on_a_bundled_model():
    from tad_daemon.models.registry import model_folders, scan

    entries, _ = scan(model_folders(None))
    eng = Engine("cpu", "fp32", backend="torch")
    eng.load(entries["kick"])
    a, b = (shot.audio for shot in eng.generate("kick", 2, seed=20000))
    a, b = (x * model_level_gain(x, SR) for x in (a, b))  # where encode and morph put a sound
    back = eng.decode("kick", eng.encode("kick", np.stack([a, b])))
    assert max(rms_db(back[0], a), rms_db(back[1], b)) < -30  # measured -37 dB (docs/daw.md)
    start, end = eng.morph("kick", a, b, 0.0)[0].audio, eng.morph("kick", a, b, 1.0)[0].audio
    assert rms_db(start, a) < -30 and rms_db(end, b) < -30
    middle = eng.morph("kick", a, b, 0.5)[0].audio
    assert rms_db(middle, a) > -20 and rms_db(middle, b) > -20


# -- tuning and kits -------------------------------------------------------------------------------------------
def pitched_drum(f0: float, seed: int = 0) -> np.ndarray:
    """A kick or tom of known pitch: a sine at f0 after a fast downward sweep, with a noise click on top."""
    t = np.arange(32768) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 3 * np.exp(-t / 0.015))) / SR
    click = 0.3 * np.random.default_rng(seed).standard_normal(len(t)) * np.exp(-t / 0.005)
    x = np.sin(phase) * np.exp(-t / 0.25) + click
    return np.stack([x, x]).astype(np.float32)


def test_notes():
    assert note_hz("A4") == pytest.approx(440.0) and note_hz("A1") == pytest.approx(55.0)
    assert note_hz("C#2") == pytest.approx(note_hz("Db2")) == pytest.approx(69.296, abs=1e-3)
    for bad in ("H1", "A", "A9", "A#b1", "", "440"):
        with pytest.raises(ValueError, match="not a note"):
            note_hz(bad)


@pytest.mark.parametrize("f0", [41.0, 55.0, 63.5, 82.0, 110.0, 180.0])
@pytest.mark.parametrize("note", ["A1", "C2", "F#1"])
def test_tuning_lands_within_ten_cents(f0, note):
    drum = pitched_drum(f0, seed=int(f0))
    assert abs(1200 * math.log2(measure_pitch(drum) / f0)) < 10
    tuned, info = retune(drum, note)
    truth = f0 * info["target_hz"] / info["measured_hz"]  # what resampling did to the true pitch
    assert abs(1200 * math.log2(truth / info["target_hz"])) < 10
    octaves = math.log2(info["target_hz"] / note_hz(note))
    assert abs(octaves - round(octaves)) < 1e-3  # the note, in some octave
    assert abs(info["shift_cents"]) <= 700 + 1 or "done" in info
    assert tuned.shape == drum.shape and np.isfinite(tuned).all()
    assert describe(info).startswith(f"{info['measured_hz']:.1f} Hz")


def test_noise_has_no_pitch_and_is_left_alone():
    t = np.arange(32768) / SR
    hat = (np.random.default_rng(0).standard_normal((2, 32768)) * np.exp(-t / 0.04)).astype(np.float32)
    out, info = retune(hat, "A1")
    assert out is hat and info["measured_hz"] is None and "no clear pitch" in describe(info)


def test_kit_loudness_is_matched_under_the_ceiling():
    t = np.arange(32768) / SR
    sounds = [pitched_drum(50.0), 0.1 * pitched_drum(200.0),
              (0.5 * np.random.default_rng(1).standard_normal((2, 32768)) * np.exp(-t / 0.03)).astype(np.float32)]
    out, levels = match_loudness(sounds, SR, -1.0)
    measured = [loudness(x, SR) for x in out]
    assert max(measured) - min(measured) < 0.1 and levels == pytest.approx(measured, abs=0.1)
    assert max(float(np.abs(x).max()) for x in out) <= 10 ** (-1 / 20) + 1e-6


# -- from the command line and over OSC ------------------------------------------------------------------------
def tad(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tad_daemon", *args], capture_output=True, text=True, timeout=300)


def test_command_line(home, tmp_path):
    make_model(home / "models", "kick", kind="kick")
    make_model(home / "models", "snare", kind="snare", seed=1)
    (made,) = tad("generate", "kick", "--seed", "9", "--steps", "2").stdout.split()
    out = tad("tweak", "kick", "--seed", "9", "--amount", "0.1", "-n", "2", "--steps", "2", "--tune", "A1")
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.split()
    assert "_kick_tweak_s9_a0.10_0" in first and read_metadata(second)["variant"] == 1
    assert read_metadata(first)["tuning"]["note"] == "A1" and "tuned:" in out.stderr
    assert tad("tweak", "kick", "--amount", "0.1").returncode == 2  # no seed
    bad = tad("generate", "kick", "--tune", "H2")
    assert bad.returncode == 2 and "not a note" in bad.stderr
    out = tad("repaint", "kick", made, "0.01", "0.05", "--no-post", "--steps", "2", "--seed", "3")
    assert out.returncode == 0, out.stderr
    src, new = sf.read(made)[0], sf.read(out.stdout.strip())[0]
    np.testing.assert_allclose(new[:441], src[:441], atol=1e-4)  # 24-bit files: rounding
    np.testing.assert_allclose(new[2205:], src[2205:], atol=1e-4)
    assert tad("repaint", "kick", made, "0.5", "0.1").returncode == 2
    out = tad("morph", "kick", made, out.stdout.strip(), "-n", "2", "--steps", "3")
    assert out.returncode == 0, out.stderr
    assert [read_metadata(p)["position"] for p in out.stdout.split()] == pytest.approx([1 / 3, 2 / 3])
    out = tad("kit", "--seed", "4", "--out", str(tmp_path / "kits"))  # what a beat needs: here kick and snare
    assert out.returncode == 0, out.stderr
    files = [Path(p) for p in out.stdout.split()]
    assert [p.name for p in files] == ["kick.wav", "snare.wav"] and files[0].parent == files[1].parent
    levels = [loudness(sf.read(p)[0].T, SR) for p in files]
    assert abs(levels[0] - levels[1]) < 1.0
    assert tad("kit", "kick", "nope").returncode == 2
    out = tad("encode", "kick", made, "--steps", "3")
    assert out.returncode == 0, out.stderr
    decoded, noise = out.stdout.split()
    assert noise.endswith(".noise.safetensors") and sf.info(decoded).frames == 32768
    assert "round trip:" in out.stderr


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from kick_and_snare(tmp_path_factory)


def test_over_osc(daemon, tmp_path):
    c = daemon.client()
    try:
        (made,) = c.request("/tad/generate", "kick", 1, 5)
        source = made.args[1]
        replies = c.request("/tad/tweak", "kick", 5, 0.1, 2, "tune=A1", "tag=t")
        assert [r.args[0] for r in replies] == ["/tad/tweak"] * 2 and all(r.address == DONE for r in replies)
        _, path, model, seed, amount, variant, tuning, turns, tag = replies[1].args
        assert (model, seed, variant, turns, tag) == ("kick", 5, 1, "7:0.1", "t") and amount == pytest.approx(0.1)
        assert tuning and os.path.exists(path) and read_metadata(path)["turns"] == "7:0.1"
        (r,) = c.request("/tad/tweak", "kick", 5, 0.2, 1, f"turns={turns}")  # a relative of that relative
        assert r.address == DONE and read_reply(r.address, r.args)["turns"].startswith("7:0.1,"), r.args
        (r,) = c.request("/tad/repaint", "kick", source, 0.01, 0.05, 1.0, 1, 3, "post=0")
        assert r.address == DONE and r.args[3:6] == [3, pytest.approx(0.01), pytest.approx(0.05)], r.args
        np.testing.assert_allclose(sf.read(r.args[1])[0][:441], sf.read(source)[0][:441], atol=1e-4)
        huge_end = OscMessageBuilder("/tad/repaint")  # the end as a double of 1e308: the end of the sound
        for value, kind in (("kick", "s"), (source, "s"), (0.5, "f"), (1e308, "d"), (1.0, "f"), (1, "i"), (3, "i"),
                            ("steps=2", "s")):
            huge_end.add_arg(value, kind)
        c.send_raw(huge_end.build().dgram)
        (whole,) = c.until(lambda got: any(m.address in (DONE, FAIL) for m in got), 120)
        assert whole.address == DONE and whole.args[4:6] == [0.5, pytest.approx(32768 / SR)], whole.args
        replies = c.request("/tad/morph", "kick", source, r.args[1], 0.5, 2, "steps=2")
        assert [m.args[3] for m in replies] == pytest.approx([1 / 3, 2 / 3]), replies
        assert replies[0].args[4:6] == [source, r.args[1]]
        replies = c.request("/tad/kit", "snare,kick", 7)
        assert [m.args[2] for m in replies] == ["snare", "kick"] and {m.args[3] for m in replies} == {7}
        folder = {Path(m.args[1]).parent for m in replies}
        assert len(folder) == 1 and folder.pop().parent == daemon.home / "samples" / "kits"
        levels = [loudness(sf.read(m.args[1])[0].T, SR) for m in replies]
        assert abs(levels[0] - levels[1]) < 1.0
        (r,) = c.request("/tad/generate", "kick", 1, 5, 0, "tune= a1\n")  # written as a note is written
        tuning = read_reply(r.address, r.args)["tuning"]
        assert "A1" in tuning and "\n" not in tuning and " a1" not in tuning, tuning
        assert read_metadata(r.args[1])["tuning"]["note"] == "A1"
        assert len(c.request("/tad/kit")) == 1  # kick,snare,hat,perc: no hat here, one /tad/fail
        for request, reason in [
            (("/tad/kit", "kick,nope"), "unknown model 'nope'"),
            (("/tad/kit", " , "), "name at least one model"),
            (("/tad/generate", "kick", "tune=H9"), "tune: not a note"),
            (("/tad/repaint", "kick", source, 0.5, 0.1), "region"),
            (("/tad/morph", "kick", source, "relative.wav"), "b_path must be an absolute path"),
            (("/tad/tweak", "kick", -1, 0.1), "seed must be between"),
            (("/tad/tweak", "kick", 5, 0.1, 1, "turns=7"), "turns: '7' is not SEED:AMOUNT"),
        ]:
            (r,) = c.request(*request)
            assert r.address == FAIL and reason in r.args[1], (request, r.args)
    finally:
        c.close()
