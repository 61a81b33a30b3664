"""Random, label-preserving changes of a one-shot: more training examples from few real recordings."""

from __future__ import annotations

import numpy as np
import soxr

from tad_daemon.limits import SAMPLE_RATE


def _tilt(x: np.ndarray, db_per_octave: float, sample_rate: int) -> np.ndarray:
    """Spectral tilt around 1 kHz, flat outside 30 Hz..16 kHz (a brighter or duller mic or room)."""
    spec = np.fft.rfft(x, axis=-1)
    f = np.clip(np.fft.rfftfreq(x.shape[-1], 1.0 / sample_rate), 30.0, 16000.0)
    gain = 10.0 ** (db_per_octave * np.log2(f / 1000.0) / 20.0)
    return np.fft.irfft(spec * gain, n=x.shape[-1], axis=-1)


def augment(x: np.ndarray, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A variation of `x` (2, n): rate shift +-8%, EQ tilt +-1.5 dB/oct, gain, noise, 0-8 ms offset."""
    n = x.shape[-1]
    x = np.asarray(x, dtype=np.float64)
    rate = rng.uniform(0.92, 1.08)  # > 1: longer and lower, like a slower tape or a bigger drum
    y = soxr.resample(x.T, sample_rate, int(round(sample_rate * rate))).T
    y = y[:, :n] if y.shape[1] >= n else np.pad(y, ((0, 0), (0, n - y.shape[1])))
    y = _tilt(y, rng.uniform(-1.5, 1.5), sample_rate)
    delay = int(rng.uniform(0.0, 0.008) * sample_rate)
    y = np.pad(y, ((0, 0), (delay, 0)))[:, :n]
    peak = np.abs(y).max() + 1e-12
    y = y / peak * 10.0 ** (rng.uniform(-12.0, 0.0) / 20.0)
    noise_db = rng.uniform(-75.0, -50.0)
    y = y + rng.standard_normal(y.shape) * np.abs(y).max() * 10.0 ** (noise_db / 20.0)
    return y.astype(np.float32)
