"""What a producer hears in one one-shot, as numbers: the level of its tail (a hiss floor that never decays),
its energy above 8 kHz (hiss), how long it takes to decay, and its clicks. Each is a plain function of a
(channels, frames) array at 44.1 kHz, applied alike to a model's outputs and to real drums.
"""

from __future__ import annotations

import numpy as np

from tad_daemon.audio.post import count_clicks, envelope
from tad_daemon.limits import SAMPLE_RATE

TAIL_SHARE = 0.4  # the tail is the last 40 % of the one-shot (0.30 s of 0.74 s)
HIGH_BAND_HZ = 8000.0
DECAY_DB = 30.0  # decay time: from the peak of the envelope until it is this far below it
FLOOR_DB = -120.0  # digital silence reads as this


def _db(ratio: float) -> float:
    return float(max(FLOOR_DB, 10 * np.log10(max(ratio, 1e-30))))


def tail_level_db(x: np.ndarray) -> float:
    """RMS of the last TAIL_SHARE of the one-shot, in dB relative to its peak sample."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    peak = float(np.abs(x).max())
    if peak == 0:
        return FLOOR_DB
    tail = x[:, int(x.shape[-1] * (1 - TAIL_SHARE)):]
    return _db(float((tail**2).mean()) / peak**2)


def high_band_db(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Energy above HIGH_BAND_HZ as a share of all the energy, in dB."""
    spectrum = np.abs(np.fft.rfft(np.atleast_2d(np.asarray(x, dtype=np.float64)), axis=-1)) ** 2
    freqs = np.fft.rfftfreq(np.shape(x)[-1], 1 / sample_rate)
    total = float(spectrum.sum())
    return _db(float(spectrum[:, freqs >= HIGH_BAND_HZ].sum()) / total) if total > 0 else FLOOR_DB


def decay_ms(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Milliseconds from the envelope's peak until it first falls DECAY_DB below it (the whole rest of the
    one-shot when it never does: a sound that rings, or a floor that never decays)."""
    env = envelope(np.atleast_2d(np.asarray(x, dtype=np.float32)), sample_rate)
    peak_at = int(env.argmax())
    if env[peak_at] <= 0:
        return 0.0
    below = np.flatnonzero(env[peak_at:] < env[peak_at] * 10 ** (-DECAY_DB / 20))
    n = int(below[0]) if below.size else env.size - peak_at
    return 1000.0 * n / sample_rate


def measure(batch: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    """Each measure of each one-shot of a (n, channels, frames) batch."""
    return {
        "tail_db": np.array([tail_level_db(x) for x in batch]),
        "high_band_db": np.array([high_band_db(x, sample_rate) for x in batch]),
        "decay_ms": np.array([decay_ms(x, sample_rate) for x in batch]),
        "clicks": np.array([count_clicks(x, sample_rate) for x in batch], dtype=float),
    }
