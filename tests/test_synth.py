"""The drum synthesiser: interface, output format, determinism and a spectral sanity check per class."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from tad_daemon.synth import CLASSES, VARIANTS, render, render_batch, write_corpus

SR = 44100
LENGTH = 32768


def _power(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = x.mean(axis=0)
    return np.fft.rfftfreq(m.size, 1 / SR), np.abs(np.fft.rfft(m)) ** 2


def band_share(x: np.ndarray, lo: float, hi: float) -> float:
    f, p = _power(x)
    return float(p[(f >= lo) & (f < hi)].sum() / p.sum())


def peak_hz(x: np.ndarray, t0: float, t1: float, lo: float, hi: float) -> float:
    """Strongest spectral peak between lo and hi Hz in the window t0..t1 seconds."""
    m = x.mean(axis=0)[int(t0 * SR) : int(t1 * SR)]
    spec = np.abs(np.fft.rfft(m * np.hanning(m.size), 1 << 15))
    f = np.fft.rfftfreq(1 << 15, 1 / SR)
    band = (f >= lo) & (f <= hi)
    return float(f[band][np.argmax(spec[band])])


def pitch_drop(x: np.ndarray) -> float:
    """How much lower the tone is at 100-200 ms than in its first cycles: ratio of half-periods, from the
    zero crossings of the signal low-passed at 400 Hz."""
    low = signal.sosfilt(signal.butter(4, 400, fs=SR, output="sos"), x.mean(axis=0))
    start = int(np.argmax(np.abs(low) > 0.1 * np.abs(low).max()))
    crossings = np.nonzero(np.diff(np.signbit(low[start:])))[0] + start
    early = np.diff(crossings[:3]).mean()
    late = np.diff(crossings[(crossings > 0.1 * SR) & (crossings < 0.2 * SR)])
    return float(np.median(late) / early) if late.size else float("inf")


@pytest.fixture(scope="module")
def every_variant() -> dict[tuple[str, str], np.ndarray]:
    return {(k, v): render(k, np.random.default_rng(5), v) for k in CLASSES for v in VARIANTS[k]}


def test_interface() -> None:
    assert CLASSES == ("kick", "snare", "hat", "perc")
    assert set(VARIANTS) == set(CLASSES)
    assert all(len(v) >= 3 and len(set(v)) == len(v) for v in VARIANTS.values())
    assert {"closed", "open", "pedal"} <= set(VARIANTS["hat"])
    assert {"tom", "rim", "clap", "cowbell", "conga", "shaker", "clave", "woodblock", "tambourine"} <= set(
        VARIANTS["perc"]
    )


def test_format_of_every_variant(every_variant: dict) -> None:
    for (kind, variant), x in every_variant.items():
        name = f"{kind}/{variant}"
        assert x.shape == (2, LENGTH) and x.dtype == np.float32, name
        assert np.isfinite(x).all(), name
        peak = np.abs(x).max()
        assert -6.5 <= 20 * np.log10(peak) <= -0.5, name
        onset = int(np.argmax(np.abs(x).max(axis=0) >= 0.1 * peak))
        assert onset < 0.005 * SR, f"{name}: onset at {onset / SR * 1000:.1f} ms"
        tail = np.abs(x[:, -SR // 1000 :]).max()
        assert tail < 1e-3 * peak, f"{name}: last ms at {20 * np.log10(tail / peak):.0f} dB"
        ends = np.abs(x[:, -SR // 10 :]).max()  # no hard cut: the last 100 ms are already quiet
        assert ends < 0.2 * peak, f"{name}: last 100 ms at {20 * np.log10(ends / peak):.0f} dB"


def test_onset_peak_and_tail_over_random_variants() -> None:
    for kind in CLASSES:
        for x in render_batch(kind, 10, seed=21):
            peak = np.abs(x).max()
            assert -6.5 <= 20 * np.log10(peak) <= -0.5, kind
            assert np.argmax(np.abs(x).max(axis=0) >= 0.1 * peak) < 0.005 * SR, kind
            assert np.abs(x[:, -SR // 1000 :]).max() < 1e-3 * peak, kind


def test_stereo_is_slightly_decorrelated() -> None:
    xs = render_batch("snare", 8, seed=3, variant="acoustic")
    corr = [np.corrcoef(x[0], x[1])[0, 1] for x in xs]
    assert np.median(corr) > 0.6 and min(corr) > 0.2  # one source in a small room...
    assert any(c < 0.99 for c in corr)  # ...heard by two slightly different mics


def test_kick_is_low_with_a_falling_pitch() -> None:
    xs = render_batch("kick", 16, seed=1)
    assert np.median([band_share(x, 0, 150) for x in xs]) > 0.8
    assert min(band_share(x, 0, 150) for x in xs) > 0.4
    assert np.median([pitch_drop(x) for x in xs]) > 1.2
    for variant in ("909", "electronic"):  # these drum-machine kicks sweep hard
        drops = [pitch_drop(x) for x in render_batch("kick", 4, seed=2, variant=variant)]
        assert min(drops) > 1.3, (variant, drops)


def test_hat_is_mostly_above_5khz() -> None:
    xs = render_batch("hat", 16, seed=1)
    assert np.median([band_share(x, 5000, SR / 2) for x in xs]) > 0.5
    assert min(band_share(x, 2000, SR / 2) for x in xs) > 0.5
    assert max(band_share(x, 0, 150) for x in xs) < 0.01


def test_snare_is_broadband_with_a_tone() -> None:
    xs = render_batch("snare", 16, seed=1)
    assert np.median([band_share(x, 2000, SR / 2) for x in xs]) > 0.08  # wires
    assert max(band_share(x, 5000, SR / 2) for x in xs) < 0.6  # ...but not a hat
    tones = [peak_hz(x, 0.0, 0.06, 100, 1000) for x in xs]
    assert np.mean([120 <= f <= 360 for f in tones]) >= 0.8


def test_perc_families() -> None:
    tom = render_batch("perc", 6, seed=1, variant="tom")
    assert all(80 <= peak_hz(x, 0.0, 0.2, 50, 1000) <= 300 for x in tom)
    cowbell = render_batch("perc", 6, seed=1, variant="cowbell")
    assert all(400 <= peak_hz(x, 0.0, 0.1, 100, 3000) <= 2000 for x in cowbell)
    clap = render_batch("perc", 6, seed=1, variant="clap")
    assert all(band_share(x, 400, 6000) > 0.6 for x in clap)
    shaker = render_batch("perc", 6, seed=1, variant="shaker")
    assert all(band_share(x, 2000, SR / 2) > 0.8 for x in shaker)


def test_deterministic_per_seed() -> None:
    a = render_batch("perc", 4, seed=11)
    b = render_batch("perc", 4, seed=11)
    assert np.array_equal(a, b)
    assert np.array_equal(render_batch("perc", 2, seed=11), a[:2])  # item i does not depend on n
    c = render_batch("perc", 4, seed=12)
    assert not np.allclose(a, c)
    assert not np.allclose(a[0], a[1])
    x = render("hat", np.random.default_rng(3))
    assert np.array_equal(x, render("hat", np.random.default_rng(3)))


def test_other_rates_and_lengths() -> None:
    for sr in (22050, 48000, 96000):
        x = render("snare", np.random.default_rng(0), "acoustic", sample_rate=sr, length=16384)
        assert x.shape == (2, 16384) and np.isfinite(x).all()
    for kind in CLASSES:
        for sr, n in ((8000, 4096), (44100, 256)):
            for variant in VARIANTS[kind]:
                x = render(kind, np.random.default_rng(0), variant, sample_rate=sr, length=n)
                assert x.shape == (2, n) and np.isfinite(x).all() and np.abs(x).max() < 1.0, (kind, variant)


def test_unknown_kind_or_variant_raises() -> None:
    with pytest.raises(ValueError, match="unknown drum kind"):
        render("cymbal", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown kick variant"):
        render("kick", np.random.default_rng(0), "tuba")
    with pytest.raises(ValueError, match="unknown drum kind"):
        render_batch("bongo", 1, seed=0)


def test_write_corpus(tmp_path) -> None:
    paths = write_corpus(tmp_path, per_class=2, seed=4)
    assert len(paths) == 8
    for kind in CLASSES:
        files = sorted((tmp_path / kind).glob("*.wav"))
        assert len(files) == 2 and all(f.name.startswith(f"{kind}-") for f in files)
    info = sf.info(paths[0])
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (SR, 2, "PCM_24", LENGTH)
    assert not list(tmp_path.rglob(".*"))  # no temporary files left behind
    again = write_corpus(tmp_path / "again", per_class=2, seed=4)
    assert all(np.array_equal(sf.read(a)[0], sf.read(b)[0]) for a, b in zip(paths, again, strict=True))
