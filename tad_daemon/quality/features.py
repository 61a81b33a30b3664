"""Hand-made features of a drum one-shot: what separates a kick from a hat, and a real drum from a toy one.

A one-shot is a (2, n) or (n,) float array at 44.1 kHz (the models' format). The features are gain-invariant
(the sound is peak-normalised), start at the detected onset (a few ms of leading silence do not matter) and
see the sound over a fixed analysis floor, so digital silence and a quiet noise floor look alike.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tad_daemon.limits import SAMPLE_RATE

N_FFT = 2048
HOP = 256
N_MELS = 32
FLOOR_DB = -80.0  # analysis floor relative to the peak: quieter detail is not a feature
SEGMENTS_MS = (0, 20, 60, 150, 350, 740)  # time segments after the onset, for spectral shape over time
ENV_MS = (0, 3, 6, 10, 15, 25, 40, 60, 90, 130, 180, 250, 350, 500, 700)
DECAY_DB = (6, 12, 24, 36, 48)
PITCH_MS = (5, 15, 30, 60, 120, 250)
PITCH_BAND = (30.0, 1500.0)


def _mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_inv(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@lru_cache(maxsize=4)
def mel_filterbank(
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = 25.0,
    fmax: float = 20000.0,
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters; a filter narrower than a bin takes its nearest bin."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    fmax = min(fmax, 0.5 * sample_rate)
    edges = _mel_inv(np.linspace(_mel(np.float64(fmin)), _mel(np.float64(fmax)), n_mels + 2))
    fb = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[i] = np.clip(np.minimum(up, down), 0.0, None)
        if fb[i].sum() == 0.0:
            fb[i, np.argmin(np.abs(freqs - mid))] = 1.0
        fb[i] /= fb[i].sum()
    return fb


def _prepare(x: np.ndarray) -> np.ndarray:
    """Mono, DC-free, peak 1, onset moved to 1 ms, fixed analysis floor added."""
    x = np.asarray(x, dtype=np.float64)
    mono = x.mean(axis=0) if x.ndim == 2 else x
    mono = mono - mono.mean()
    peak = np.abs(mono).max()
    if not np.isfinite(peak) or peak <= 1e-9:
        mono = np.zeros_like(mono)
    else:
        mono = mono / peak
        onset = int(np.argmax(np.abs(mono) >= 0.1))
        start = max(0, onset - SAMPLE_RATE // 1000)
        mono = np.concatenate([mono[start:], np.zeros(start)])
    # Deterministic floor: the same for every sound, so features never depend on random analysis noise.
    floor = np.random.default_rng(1234).standard_normal(mono.size) * 10.0 ** (FLOOR_DB / 20.0)
    return mono + floor


def _stft_power(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(frames, bins) power spectrum, frames centred at multiples of `hop` (zero padding at both ends)."""
    pad = np.concatenate([np.zeros(n_fft // 2), x, np.zeros(n_fft // 2)])
    n_frames = 1 + (pad.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = pad[idx] * np.hanning(n_fft)[None, :]
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2


def _db(p: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(p, 1e-20))


def _spectral_stats(power: np.ndarray, freqs: np.ndarray) -> tuple[float, float, float, float]:
    """log2 centroid, log2 85% rolloff, log10 flatness and log2 bandwidth of one power spectrum."""
    p = power + 1e-20
    total = p.sum()
    centroid = (freqs * p).sum() / total
    rolloff = freqs[min(int(np.searchsorted(np.cumsum(p), 0.85 * total)), freqs.size - 1)]
    flatness = np.exp(np.mean(np.log(p))) / np.mean(p)
    bandwidth = np.sqrt(((freqs - centroid) ** 2 * p).sum() / total)
    return (
        float(np.log2(centroid + 1.0)),
        float(np.log2(rolloff + 1.0)),
        float(np.log10(flatness)),
        float(np.log2(bandwidth + 1.0)),
    )


def _envelope_db(x: np.ndarray, win: int) -> np.ndarray:
    """RMS over a sliding window of `win` samples, in dB relative to its maximum."""
    c = np.concatenate([[0.0], np.cumsum(x * x)])
    rms = np.sqrt(np.maximum(c[win:] - c[:-win], 0.0) / win)
    return _db(rms**2) - _db(np.array(rms.max() ** 2))


def _pitch_track(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Strongest spectral peak between 30 and 1500 Hz (log2 Hz) and its salience (dB over the band median)."""
    n, n_pad = 2048, 8192  # a short window follows a kick's fast pitch drop; zero padding refines the peak
    freqs = np.fft.rfftfreq(n_pad, 1.0 / SAMPLE_RATE)
    band = (freqs >= PITCH_BAND[0]) & (freqs <= PITCH_BAND[1])
    win = np.hanning(n)
    padded = np.concatenate([np.zeros(n // 2), x, np.zeros(n)])
    pitches, saliences = [], []
    for ms in PITCH_MS:
        c = int(ms * SAMPLE_RATE / 1000)
        seg = padded[c : c + n]  # a window centred at `ms`
        p = _db(np.abs(np.fft.rfft(seg * win, n_pad)) ** 2)[band]
        k = int(np.argmax(p))
        pitches.append(float(np.log2(freqs[band][k])))
        saliences.append(float(p[k] - np.median(p)))
    return pitches, saliences


def feature_names() -> list[str]:
    names = []
    n_seg = len(SEGMENTS_MS) - 1
    names += [f"shape_s{s}_b{b}" for s in range(n_seg) for b in range(N_MELS)]
    names += [f"level_s{s}" for s in range(n_seg)]
    names += [f"env_{ms}ms" for ms in ENV_MS]
    names += ["attack", "peak_time"] + [f"decay_{d}db" for d in DECAY_DB]
    names += [f"{k}_s{s}" for s in range(n_seg) for k in ("centroid", "rolloff", "flatness", "bandwidth")]
    names += [f"pitch_{ms}ms" for ms in PITCH_MS] + ["pitch_drop"] + [f"salience_{ms}ms" for ms in PITCH_MS]
    names += ["zcr_early", "zcr_late"]
    return names


def extract(x: np.ndarray) -> np.ndarray:
    """Feature vector (float64, len(feature_names())) of one one-shot at 44.1 kHz."""
    m = _prepare(x)
    power = _stft_power(m, N_FFT, HOP)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    mel = power @ mel_filterbank().T  # (frames, mels)
    frame_ms = np.arange(power.shape[0]) * HOP * 1000.0 / SAMPLE_RATE

    shape, level, spectral = [], [], []
    for lo, hi in zip(SEGMENTS_MS[:-1], SEGMENTS_MS[1:], strict=True):
        sel = (frame_ms >= lo) & (frame_ms < hi)
        band = mel[sel].sum(axis=0)
        shape.append(np.maximum(_db(band / band.sum()), -80.0))
        level.append(_db(np.array(band.sum() / sel.sum())))
        spectral.extend(_spectral_stats(power[sel].mean(axis=0), freqs))
    level = np.array(level) - max(level)

    env = _envelope_db(m, SAMPLE_RATE * 5 // 1000)
    env_ms = np.arange(env.size) * 1000.0 / SAMPLE_RATE
    env_at = np.maximum(np.interp(ENV_MS, env_ms, env), FLOOR_DB)
    fine = _envelope_db(m, SAMPLE_RATE // 1000)
    peak_i = int(np.argmax(fine))
    above10 = int(np.argmax(fine >= -20.0))
    attack_ms = max(peak_i - above10, 0) * 1000.0 / SAMPLE_RATE
    decays = []
    for d in DECAY_DB:
        below = np.nonzero(env[peak_i:] < -d)[0]
        t = (below[0] if below.size else env.size - peak_i) * 1000.0 / SAMPLE_RATE
        decays.append(np.log10(1.0 + t))
    timing = [np.log10(1.0 + attack_ms), np.log10(1.0 + peak_i * 1000.0 / SAMPLE_RATE)] + decays

    pitches, saliences = _pitch_track(m)
    signs = np.signbit(m).astype(np.int8)
    crossings = np.abs(np.diff(signs))
    early, late = int(0.05 * SAMPLE_RATE), int(0.3 * SAMPLE_RATE)
    zcr = [np.log10(1e-4 + crossings[:early].mean()), np.log10(1e-4 + crossings[early:late].mean())]

    return np.concatenate(
        [
            np.concatenate(shape),
            level,
            env_at,
            timing,
            spectral,
            pitches,
            [pitches[0] - pitches[-1]],
            saliences,
            zcr,
        ]
    ).astype(np.float64)


def extract_batch(xs: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """(n, n_features) for a batch of one-shots ((n, 2, length) array or a list of arrays)."""
    return np.stack([extract(x) for x in xs]) if len(xs) else np.zeros((0, len(feature_names())))
