"""Audio in (every format, rate and layout), post-processing, the atomic writer and the sample folder."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import soundfile as sf

from tad_daemon.audio.folder import SampleFolder
from tad_daemon.audio.load import AudioError, load_oneshot
from tad_daemon.audio.post import PostProcess, count_clicks, postprocess, remove_clicks
from tad_daemon.audio.wav import TMP_DIR, read_metadata, remove_stale_temp_files, write_wav
from tad_daemon.names import NameError_

SR = 44100
L = 32768


def tone(rate: int, channels: int, seconds: float, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([x * (0.9 ** c) for c in range(channels)], axis=1).astype(np.float32)


def peak_frequency(x: np.ndarray, rate: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


FORMATS = [("wav", "PCM_16"), ("wav", "PCM_24"), ("wav", "FLOAT"), ("aiff", "PCM_24"), ("flac", "PCM_16"),
           ("ogg", "VORBIS")]


# Vorbis itself does not encode above 48 kHz.
CASES = [(ext, sub, rate) for ext, sub in FORMATS for rate in (8000, 22050, 44100, 48000, 96000, 192000)
         if not (ext == "ogg" and rate > 48000)]


@pytest.mark.parametrize("ext,subtype,rate", CASES)
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_every_format_rate_and_layout_loads_to_stereo_44k(tmp_path, ext, subtype, rate, channels):
    path = tmp_path / f"x.{ext}"
    sf.write(path, tone(rate, channels, 0.3), rate, subtype=subtype)
    x = load_oneshot(path)
    assert x.shape == (2, L) and x.dtype == np.float32
    assert np.isfinite(x).all()
    n = int(0.25 * SR)
    assert peak_frequency(x[0, :n]) == pytest.approx(1000, abs=15)  # resampled, not just relabelled
    assert np.abs(x[:, int(0.31 * SR):]).max() < 1e-3  # padded with silence at the end
    if channels == 1:
        np.testing.assert_array_equal(x[0], x[1])


def test_long_files_are_cropped_at_the_end(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(48000, 2, 5.0), 48000)
    x = load_oneshot(path)
    assert x.shape == (2, L)
    assert np.abs(x[:, -1000:]).max() > 0.1


@pytest.mark.parametrize("make,message", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_bytes(b"not audio at all" * 100), "not a readable sound file"),
    (lambda p: p.write_bytes(b""), "not a readable sound file"),
    (lambda p: sf.write(p, np.zeros((0, 2), np.float32), 44100), "no audio"),
    (lambda p: sf.write(p, np.zeros((100, 1), np.float32), 4000), "sample rate"),
    (lambda p: sf.write(p, np.full((100, 1), np.nan, np.float32), 44100, subtype="FLOAT"), "NaN"),
    (lambda p: sf.write(p, np.zeros((100, 65), np.float32), 44100), "65 channels; .* at most 64"),
    (lambda p: sf.write(p, np.full((100, 2), 3e38, np.float32), 44100, subtype="FLOAT"),
     r"reach 3e\+38, over \+60 dBFS"),
])
def test_bad_files_give_clear_errors(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message):
        load_oneshot(path)


def test_loud_float_files_and_many_channels_up_to_the_limit_load(tmp_path):
    path = tmp_path / "hot.wav"
    sf.write(path, np.full((1000, 64), 8.0, np.float32), 44100, subtype="FLOAT")  # +18 dBFS, 64 channels
    x = load_oneshot(path)
    assert x.shape == (2, L) and np.abs(x).max() > 1


def decaying_hit(noise_tail: float = 0.0) -> np.ndarray:
    t = np.arange(L) / SR
    x = np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.03)
    rng = np.random.default_rng(0)
    tail = np.where(t > 0.5, noise_tail * rng.standard_normal(L), 0.0)
    return np.stack([x + tail, x + tail]).astype(np.float32) * 0.3 + 0.1  # with a DC offset


def test_post_processing_steps_do_what_they_say():
    x = decaying_hit(noise_tail=0.01)
    out = postprocess(x, PostProcess())
    assert abs(out.mean()) < 0.01  # DC removed
    assert np.abs(out[:, int(0.5 * SR):]).max() == 0.0  # late noise gated away
    assert np.abs(out).max() == pytest.approx(10 ** (-1 / 20), rel=1e-3)  # peak at -1 dBFS
    assert out[:, -1].max() == 0.0
    loud = postprocess(x, PostProcess(normalize="loudness", loudness_lufs=-20.0))
    import pyloudnorm

    meter = pyloudnorm.Meter(SR)
    assert meter.integrated_loudness(loud.T.astype(np.float64)) == pytest.approx(-20.0, abs=0.5)


def test_each_post_processing_step_can_be_switched_off():
    x = decaying_hit(noise_tail=0.01)
    np.testing.assert_allclose(postprocess(x, PostProcess.none()), x)
    no_dc = postprocess(x, PostProcess(dc=False, tail="off", normalize="off"))
    np.testing.assert_allclose(no_dc, x)
    faded = postprocess(x, PostProcess(dc=False, tail="fade", normalize="off"))
    np.testing.assert_allclose(faded[:, :L // 2], x[:, :L // 2])
    assert faded[:, -1].max() == 0.0
    with pytest.raises(ValueError):
        PostProcess(tail="nope")


def planted_clicks(x: np.ndarray) -> np.ndarray:
    """`x` with three isolated spikes in its quiet part: 1, 2 and 3 samples wide (what waveform models leave)."""
    y = x.copy()
    y[:, 20000] += 0.6
    y[0, 24000:24002] -= [0.4, 0.5]
    y[:, 28000:28003] += [0.3, 0.7, 0.3]
    return y


@pytest.mark.parametrize("kind", ["kick", "snare", "hat", "perc"])
def test_clicks_are_counted_and_removed_and_drums_are_left_alone(kind):
    from tad_daemon.quality.report import defects
    from tad_daemon.synth import render_batch

    drums = render_batch(kind, 12, 5)
    assert [count_clicks(x) for x in drums] == [0] * 12  # no drum has clicks: its attack is not one
    for x in drums:
        np.testing.assert_array_equal(remove_clicks(x), x)  # so nothing is touched
    clicky = planted_clicks(drums[0])
    assert count_clicks(clicky) == 5  # counted per channel: 2 + 1 + 2, as planted
    fixed = remove_clicks(clicky)
    assert count_clicks(fixed) == 0
    away = np.ones(L, bool)
    away[[*range(19990, 20010), *range(23990, 24010), *range(27990, 28010)]] = False
    np.testing.assert_array_equal(fixed[:, away], drums[0][:, away])  # the rest untouched
    assert np.abs(fixed - drums[0]).max() < 0.1 * np.abs(clicky - drums[0]).max()
    bad = defects(np.stack([clicky, drums[1], drums[2], drums[3]]))
    assert bad["clicks"] == 0.25 and bad["clicks_per_oneshot"] == 5 / 4
    assert defects(drums)["clicks"] == 0
    assert count_clicks(postprocess(clicky, PostProcess())) == 0  # on by default
    assert count_clicks(postprocess(clicky, PostProcess(clicks=False, tail="off"))) > 0


def test_the_floor_gate_lowers_a_models_hiss_floor_and_leaves_real_drums_alone():
    from tad_daemon.audio.post import gate_floor, is_floor
    from tad_daemon.quality.measures import tail_level_db
    from tad_daemon.quality.report import RealKits

    rng = np.random.default_rng(1)
    t = np.arange(L) / SR
    hit = (np.sin(2 * np.pi * 180 * t) * np.exp(-t / 0.05) + rng.standard_normal(L) * np.exp(-t / 0.02))
    floor = 10 ** (-45 / 20) * rng.standard_normal((2, L))  # what the models leave: steady, to the end
    hissy = (np.stack([hit, hit]) / np.abs(hit).max() + floor).astype(np.float32)
    assert is_floor(hissy)
    gated = gate_floor(hissy)
    assert tail_level_db(gated) < tail_level_db(hissy) - 10
    attack = slice(0, SR // 20)
    assert abs(10 * np.log10((gated[:, attack] ** 2).sum() / (hissy[:, attack] ** 2).sum())) < 0.5
    # A drum that decays to silence, one still ringing loud at the cut, and real drums: left as they are.
    ringing = (np.stack([hit, hit]) + 0.2 * rng.standard_normal((2, L)) * np.exp(-t / 0.4)).astype(np.float32)
    kits = RealKits.load()
    real = [np.stack([e, e]).astype(np.float32) / 32767 for e in kits.examples]
    for x in [np.stack([hit, hit]).astype(np.float32) * np.exp(-t / 0.05), ringing, *real]:
        assert gate_floor(x) is x
    on, off = postprocess(hissy, PostProcess(tail="off")), postprocess(hissy, PostProcess(tail="off", floor=False))
    assert tail_level_db(on) < tail_level_db(off) - 10  # on by default, and switchable


def test_metadata_round_trips_and_format_is_24_bit(tmp_path):
    meta = {"model": "snare", "seed": 1234, "sampler": "dpmpp-2m", "steps": 12}
    path = write_wav(tmp_path / "a.wav", decaying_hit() * 0.5, SR, meta)
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (SR, 2, "PCM_24", L)
    assert read_metadata(path) == meta
    assert sorted(p.name for p in tmp_path.iterdir()) == [TMP_DIR, "a.wav"]
    assert not list((tmp_path / TMP_DIR).iterdir())


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_new_wavs_get_the_users_normal_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = write_wav(tmp_path / "a.wav", decaying_hit(), SR)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # what any program's saved file gets, not 0600


def test_stale_temporary_files_that_cannot_be_removed_are_not_fatal(tmp_path, monkeypatch, caplog):
    (tmp_path / TMP_DIR).mkdir()
    (tmp_path / TMP_DIR / "old.wav.part").write_bytes(b"RIFF")

    def read_only(self, missing_ok=False):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(type(tmp_path), "unlink", read_only)
    assert remove_stale_temp_files(tmp_path) == 0
    assert "cannot remove the stale temporary file" in caplog.text
    monkeypatch.undo()
    assert remove_stale_temp_files(tmp_path) == 1


def test_writer_leaves_no_partial_file_when_killed(tmp_path):
    out = tmp_path / "samples"
    script = textwrap.dedent(f"""
        import numpy as np
        from tad_daemon.audio.wav import write_wav
        x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 44100 * 20)).astype(np.float32)
        i = 0
        while True:
            write_wav(r"{out}" + f"/{{i:05d}}.wav", x, 44100, {{"seed": i}}, tmp_root=r"{out}")
            print(i, flush=True)
            i += 1
    """)
    for delay in (0.6, 0.95, 1.3):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # at least one file done: the next one is being written when we kill
        time.sleep(delay - 0.5)
        proc.kill()
        proc.wait()
    finished = sorted(out.glob("*.wav"))
    assert finished
    for f in finished:
        assert sf.info(f).frames == 44100 * 20  # complete, never partial
    remove_stale_temp_files(out)
    assert not list((out / TMP_DIR).glob("*"))


def test_sample_folder_layout_and_names(tmp_path):
    folder = SampleFolder(tmp_path)
    a = folder.write("snare", decaying_hit(), SR, {"seed": 7}, "snare_s7")
    b = folder.write("snare", decaying_hit(), SR, {"seed": 7}, "snare_var_s7")
    c = folder.write("snare", decaying_hit(), SR, {"seed": 7}, "snare_s7")
    assert a.parent == tmp_path.resolve() / "snare" and a.is_absolute()
    assert a.name.endswith("_snare_s7.wav") and "_snare_var_s7" in b.name
    assert len({a, b, c}) == 3
    assert sorted([a, c]) == [a, c]  # names sort by time
    with pytest.raises(NameError_):
        folder.write("../escape", decaying_hit(), SR, {"seed": 1}, "x")
    with pytest.raises(NameError_):
        folder.write("kick", decaying_hit(), SR, {"seed": 1}, "kick", group="kits/../../escape")
    with pytest.raises(ValueError):
        folder.write("kick", decaying_hit(), SR, {"seed": 1}, "kick", group="../k_s1")
    kit = [folder.write(m, decaying_hit(), SR, {"seed": 1}, m, group="kits/k_s1") for m in ("kick", "kick", "hat")]
    assert [p.relative_to(tmp_path.resolve()).as_posix() for p in kit] == [
        "kits/k_s1/kick.wav", "kits/k_s1/kick-2.wav", "kits/k_s1/hat.wav"]
    flat = SampleFolder(tmp_path / "flat", per_model=False)
    assert flat.write("kick", decaying_hit(), SR, {"seed": 1}, "kick_s1").parent == (tmp_path / "flat").resolve()
    in_set = flat.write("kick", decaying_hit(), SR, {}, "kick", group="kits/k_s1")
    assert in_set.parent == (tmp_path / "flat/k_s1").resolve()


def test_window_sums_are_np_convolves():
    from tad_daemon.audio.post import window_sums

    rng = np.random.default_rng(1)
    for length, n in ((100, 7), (100, 8), (5, 9), (4096, 441), (10, 1)):
        x = rng.standard_normal(length)
        np.testing.assert_allclose(window_sums(x, n), np.convolve(x, np.ones(n)), atol=1e-9)
        b = (rng.random(length) < 0.5).astype(np.int64)
        np.testing.assert_array_equal(window_sums(b, n), np.convolve(b, np.ones(n, dtype=np.int64)))
