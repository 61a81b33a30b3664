"""Shared building blocks of the drum synthesiser: modes, swept oscillators, shaped noise, room, mic, finish.

Everything works on whole float64 arrays (no per-sample Python loops), so a one-shot takes milliseconds.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

# Ideal circular membrane (Bessel zeros j_mn / j_01): the overtones of a drum head.
MEMBRANE = np.array([1.0, 1.594, 2.136, 2.296, 2.653, 2.918, 3.156, 3.501, 3.600, 3.652, 4.060, 4.154])
# Air-loaded heads (kettle drums, tuned toms, tabla) pull the low modes towards a harmonic series.
AIR_LOADED = np.array([1.0, 1.50, 1.98, 2.44, 2.87, 2.94, 3.42, 3.88, 4.35, 4.80, 4.90, 5.30])


def times(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def db(x: float) -> float:
    return 10.0 ** (x / 20.0)


def log_uniform(
    rng: np.random.Generator, lo: float, hi: float, size: int | None = None
) -> float | np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def nyq(f: float | np.ndarray, sr: int) -> float | np.ndarray:
    """Clip frequencies safely below Nyquist (the synth runs at any sample rate)."""
    return np.minimum(f, 0.45 * sr)


def decay(t: np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    """exp(-t / tau); `tau` in seconds is the time to fall by 8.7 dB."""
    return np.exp(-t / tau)


def two_stage(t: np.ndarray, fast: float, slow: float, mix: float) -> np.ndarray:
    """A fast initial drop into a slower tail: how struck objects (and compressed recordings) decay."""
    return (1.0 - mix) * np.exp(-t / fast) + mix * np.exp(-t / slow)


def attack(t: np.ndarray, seconds: float) -> np.ndarray:
    """Half-cosine fade-in over `seconds` (0: instant)."""
    out = np.ones_like(t)
    k = int(np.searchsorted(t, seconds)) if seconds > 0.0 else 0
    out[:k] = 0.5 - 0.5 * np.cos(np.pi * t[:k] / seconds)
    return out


def glide_phase(
    t: np.ndarray, f0: np.ndarray, depth: np.ndarray | float, tau: np.ndarray | float
) -> np.ndarray:
    """Phase (radians) of f(t) = f0 * (1 + depth * exp(-t / tau)), integrated exactly.

    Shapes (k, 1) x (n,) give k glides at once. depth > 0: the pitch falls (a struck head relaxing);
    depth < 0: it rises.
    """
    return 2.0 * np.pi * f0 * (t + depth * tau * (1.0 - np.exp(-t / tau)))


def modes(
    t: np.ndarray,
    freqs: np.ndarray,
    amps: np.ndarray,
    taus: np.ndarray,
    rng: np.random.Generator,
    glide: float = 0.0,
    glide_tau: float = 0.05,
    sr: int = 44100,
    random_phase: bool = False,
) -> np.ndarray:
    """Exponentially decaying sinusoids with a common pitch glide (modal synthesis).

    By default every mode starts from rest (sine phase 0), as a struck body does: no step at the onset.
    `random_phase` suits crowds of modes (a plate's or shell's), whose in-phase start would add up to one
    unnaturally loud spike."""
    phases = rng.uniform(0, 2 * np.pi, freqs.size) if random_phase else np.zeros(freqs.size)
    keep = freqs < 0.45 * sr
    f, a, tau, ph = freqs[keep], amps[keep], taus[keep], phases[keep]
    if glide == 0.0:
        return _static_modes(t.size, f, a, tau, ph, sr)
    # A glide makes each phase non-linear in time: evaluate directly, in float32 for speed.
    t32 = t.astype(np.float32)
    arg = glide_phase(t32[None, :], f[:, None].astype(np.float32), np.float32(glide), np.float32(glide_tau))
    env = np.exp(-t32[None, :] / tau[:, None].astype(np.float32))
    return (a[:, None] * env * np.sin(arg + ph[:, None].astype(np.float32))).sum(axis=0).astype(np.float64)


def dense_modes(
    rng: np.random.Generator,
    t: np.ndarray,
    sr: int,
    f_lo: float,
    f_hi: float,
    n: int,
    tau: float,
    slope_db: float = -6.0,
) -> np.ndarray:
    """`n` random high modes between f_lo and f_hi, falling `slope_db` per octave, the higher the shorter.

    A real head, shell or bar has ever more modes per octave as frequency rises; together they make the
    bright, noisy part of the attack that a few low modes lack. Peak-normalised."""
    f = log_uniform(rng, f_lo, max(f_hi, f_lo * 1.01), n)
    amp = (f / f_lo) ** (slope_db / 6.02) * rng.rayleigh(1.0, n)
    taus = tau * (f_lo / f) ** 0.5 * log_uniform(rng, 0.5, 2.0, n)
    x = modes(t, f, amp, taus, rng, sr=sr, random_phase=True)
    return x / (np.abs(x).max() + 1e-12)


def decaying_noise(
    rng: np.random.Generator,
    t: np.ndarray,
    sr: int,
    f_lo: float,
    f_hi: float,
    tau_1k: float,
    exponent: float = 0.8,
    slope_db: float = -3.0,
) -> np.ndarray:
    """Noise in octave bands from f_lo to f_hi, each decaying with tau = tau_1k * (1 kHz / f)^exponent.

    The countless high modes of a real drum and its shell, the sympathetic buzz of the kit and the early
    room: on a spectrogram a triangle, the highs gone first. Peak-normalised."""
    f_hi = min(f_hi, 0.45 * sr)
    edges = np.geomspace(f_lo, max(f_hi, 2.0 * f_lo), max(2, int(np.log2(max(f_hi / f_lo, 2.0))) + 1))
    w = noise(rng, t.size)
    out = np.zeros(t.size)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        fc = np.sqrt(lo * hi)
        band = filt(w, "bandpass", (lo, hi), sr)
        out += band * db(slope_db * np.log2(fc / f_lo)) * np.exp(-t / (tau_1k * (1000.0 / fc) ** exponent))
    return out / (np.abs(out).max() + 1e-12)


def _static_modes(
    n: int, f: np.ndarray, a: np.ndarray, tau: np.ndarray, ph: np.ndarray, sr: int, block: int = 256
) -> np.ndarray:
    """Fixed-pitch modes as one matrix product: z^(B*j + i) = z^(B*j) * z^i for a block length B."""
    nb = -(-n // block)
    s = -1.0 / (tau * sr) + 2j * np.pi * f / sr
    inner = (a * np.exp(1j * ph))[:, None] * np.exp(s[:, None] * np.arange(block)[None, :])
    outer = np.exp(s[:, None] * (block * np.arange(nb))[None, :])
    return (outer.T @ inner).reshape(-1)[:n].imag


def noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def pink(rng: np.random.Generator, n: int) -> np.ndarray:
    """1/f noise by spectral shaping (rooms, hiss and crowds of partials are closer to pink than white)."""
    spec = sp_fft.rfft(rng.standard_normal(n))
    f = sp_fft.rfftfreq(n)
    spec[1:] /= np.sqrt(f[1:] * n)
    spec[0] = 0.0
    x = sp_fft.irfft(spec, n)
    return x / (x.std() + 1e-12)


def _sections(kind: str, f: float, sr: int, order: int) -> list[list[float]]:
    """Butterworth low/high-pass of any order as bilinear biquads (closed form: no design overhead)."""
    w = np.tan(np.pi * float(nyq(f, sr)) / sr)  # pre-warped cutoff
    rows = []
    for k in range(order // 2):
        q = 1.0 / (2.0 * np.sin(np.pi * (2 * k + 1) / (2 * order)))
        norm = 1.0 + w / q + w * w
        a = [1.0, 2.0 * (w * w - 1.0) / norm, (1.0 - w / q + w * w) / norm]
        if kind == "lowpass":
            b = [w * w / norm, 2.0 * w * w / norm, w * w / norm]
        else:
            b = [1.0 / norm, -2.0 / norm, 1.0 / norm]
        rows.append(b + a)
    if order % 2:
        a = [1.0, (w - 1.0) / (w + 1.0), 0.0]
        b = (
            [w / (w + 1.0), w / (w + 1.0), 0.0]
            if kind == "lowpass"
            else [1.0 / (w + 1.0), -1.0 / (w + 1.0), 0.0]
        )
        rows.append(b + a)
    return rows


def sos(kind: str, f: float | tuple[float, float], sr: int, order: int = 2) -> np.ndarray:
    """Butterworth second-order sections; a band-pass is a high-pass at the low edge into a low-pass at the
    high edge. Frequencies are clipped below Nyquist."""
    if kind == "bandpass":
        lo, hi = float(nyq(f[0], sr)), float(nyq(f[1], sr))
        rows = _sections("highpass", min(lo, 0.9 * hi), sr, order) + _sections("lowpass", hi, sr, order)
    else:
        rows = _sections(kind, float(f), sr, order)
    return np.array(rows)


def filt(x: np.ndarray, kind: str, f: float | tuple[float, float], sr: int, order: int = 2) -> np.ndarray:
    return signal.sosfilt(sos(kind, f, sr, order), x, axis=-1)


def peak_eq(x: np.ndarray, f0: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """RBJ peaking EQ: a resonance or a notch of the shell, the mic or the room."""
    f0 = float(nyq(f0, sr))
    a = 10.0 ** (gain_db / 40.0)
    w = 2.0 * np.pi * f0 / sr
    alpha = np.sin(w) / (2.0 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w), 1 - alpha / a])
    return signal.lfilter(b / den[0], den / den[0], x, axis=-1)


def resonator(x: np.ndarray, f0: float, q: float, sr: int) -> np.ndarray:
    """Two-pole band-pass with peak gain 1: excites a ringing mode from a burst."""
    f0 = float(nyq(f0, sr))
    b, a = signal.iirpeak(f0, q, fs=sr)
    return signal.lfilter(b, a, x, axis=-1)


def swept_bandpass_noise(
    rng: np.random.Generator, t: np.ndarray, f_start: float, f_end: float, tau: float, q: float, sr: int
) -> np.ndarray:
    """Noise through a band-pass whose centre glides from f_start to f_end (time constant tau).

    Done as a cross-fade of a few fixed band-passes along the glide: smooth, and vectorised.
    """
    n = t.size
    centre = f_end + (f_start - f_end) * np.exp(-t / tau)
    stops = np.geomspace(min(f_start, f_end), max(f_start, f_end), 5)
    w = noise(rng, n)
    out = np.zeros(n)
    logc = np.log(centre)
    logs = np.log(stops)
    width = (logs[1] - logs[0]) if len(logs) > 1 else 1.0
    weights = np.maximum(0.0, 1.0 - np.abs(logc[None, :] - logs[:, None]) / max(width, 1e-6))
    weights /= weights.sum(axis=0, keepdims=True) + 1e-12
    for s, wt in zip(stops, weights, strict=True):
        bw = s / q
        out += wt * filt(w, "bandpass", (max(s - bw / 2, 20.0), s + bw / 2), sr)
    return out


def square(phase: np.ndarray, softness: float = 0.05) -> np.ndarray:
    """Band-limited-ish square from a phase: tanh of a sine (softness 0 would alias like a hard square)."""
    return np.tanh(np.sin(phase) / max(softness, 1e-3))


def saturate(x: np.ndarray, drive: float) -> np.ndarray:
    """tanh drive keeping the peak level: 1 is nearly clean, 5 is heavy."""
    if drive <= 1.0:
        return x
    peak = np.abs(x).max() + 1e-12
    y = np.tanh(drive * x / peak)
    return y / (np.abs(y).max() + 1e-12) * peak


def compress(
    x: np.ndarray, sr: int, threshold_db: float, ratio: float, attack_ms: float, release_ms: float
) -> np.ndarray:
    """Feed-forward peak compressor (one-pole detector), as on a mix bus or a sampled drum machine."""
    if ratio <= 1.0:
        return x
    level = np.abs(x if x.ndim == 1 else x.max(axis=0))
    # Attack and release followers run as linear filters; taking their minimum mimics a two-speed detector.
    a_att = np.exp(-1.0 / (sr * attack_ms / 1000.0))
    a_rel = np.exp(-1.0 / (sr * release_ms / 1000.0))
    fast = signal.lfilter([1 - a_att], [1, -a_att], level)
    slow = signal.lfilter([1 - a_rel], [1, -a_rel], level)
    env = np.maximum(np.minimum(fast * 1.5, slow * 3.0), 1e-9)
    peak = env.max()
    over = np.maximum(20 * np.log10(env / peak) - threshold_db, 0.0)
    gain = 10.0 ** (-over * (1.0 - 1.0 / ratio) / 20.0)
    return x * gain


def _log_octaves(n: int, sr: int, pivot: float = 1000.0) -> np.ndarray:
    """Octaves from `pivot` of an rfft's bins, flat outside 30 Hz..16 kHz (where a tilt stops)."""
    return np.log2(np.clip(sp_fft.rfftfreq(n, 1.0 / sr), 30.0, 16000.0) / pivot)


def room_ir(rng: np.random.Generator, sr: int, rt60: float, brightness: float) -> np.ndarray:
    """Stereo impulse response (2, m) of a small room: sparse early reflections, then a dense tail whose
    highs die faster than its lows. Partly correlated channels give width without a hole in the middle."""
    m = int(min(rt60, 0.8) * sr)  # the rest of a longer tail falls past the one-shot's end anyway
    t = times(m, sr)
    shared = noise(rng, m)
    mix = rng.uniform(0.5, 0.9)
    w = mix * shared + np.sqrt(1.0 - mix**2) * rng.standard_normal((2, m))
    low = filt(w, "lowpass", 600.0, sr, 1)
    high = w - low
    tail = low * np.exp(-6.9 * t / rt60) + brightness * high * np.exp(-6.9 * t / (0.7 * rt60))
    tail *= attack(t, 0.008)  # the tail builds up after the first reflections
    ir = 0.35 * tail
    for ch in range(2):
        taps = (rng.uniform(0.002, 0.025, 8) * sr).astype(int)
        np.add.at(ir[ch], taps[taps < m], rng.uniform(-0.6, 0.6, taps.size)[taps < m])
    return ir / (np.sqrt((ir**2).sum(axis=1, keepdims=True)) + 1e-12)


def record(
    x: np.ndarray, rng: np.random.Generator, sr: int, width: float, tilt_db: float, wet: float, rt60: float
) -> np.ndarray:
    """A mono source heard by a near-coincident pair of slightly different mics in a small room.

    The pair: a tiny delay (up to 50 us: more would comb-filter the mono sum of bright sounds), a level and
    colour difference between channels (width 0: identical), a common EQ tilt. The room: `wet` is its share
    of the energy, its stereo response `room_ir`. All of it is one filter per channel, applied at once in
    the frequency domain. Returns (2, n)."""
    n = x.size
    ir = room_ir(rng, sr, rt60, rng.uniform(0.3, 1.0)) if wet > 0.005 else np.zeros((2, 1))
    m = sp_fft.next_fast_len(n + max(ir.shape[1], 64))
    spec = sp_fft.rfft(x, m)
    octaves = _log_octaves(m, sr)
    db_to_ln = np.log(10.0) / 20.0
    room = sp_fft.rfft(ir, m, axis=-1) * (np.sqrt(wet) * np.exp(octaves * (tilt_db * db_to_ln)))
    delay = rng.uniform(-1.0, 1.0) * width * 0.00005 * sr
    out = np.empty((2, n))
    for ch, d in enumerate((max(-delay, 0.0), max(delay, 0.0))):
        tilt_ch = tilt_db + rng.uniform(-1.0, 1.0) * width
        mic = np.exp(octaves * (tilt_ch * db_to_ln)) * db(rng.uniform(-2.0, 2.0) * width)
        if d > 0.0:
            mic = mic * np.exp(-2j * np.pi * sp_fft.rfftfreq(m) * d)
        out[ch] = sp_fft.irfft(spec * (np.sqrt(1.0 - wet) * mic + room[ch]), m)[:n]
    return out


def trim(x: np.ndarray, sr: int, threshold_db: float, fade_s: float) -> np.ndarray:
    """Cut the tail where the sound (5 ms RMS) last falls below `threshold_db` of its peak, with a short
    half-cosine fade: digital silence after, as in edited sample libraries."""
    win = max(1, int(0.005 * sr))
    power = np.concatenate([[0.0], np.cumsum((x * x).max(axis=0))])
    rms = np.sqrt(np.maximum(power[win:] - power[:-win], 0.0) / win)
    above = np.nonzero(rms > rms.max() * db(threshold_db))[0]
    end = int(above[-1]) + win if above.size else 0
    fade = int(fade_s * sr)
    if end + fade >= x.shape[1]:
        return x
    out = x.copy()
    out[:, end : end + fade] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    out[:, end + fade :] = 0.0
    return out


def finish(
    x: np.ndarray,
    rng: np.random.Generator,
    sr: int,
    length: int,
    *,
    floor_db: float = -90.0,
    fade_ms: float = 30.0,
) -> np.ndarray:
    """The common output stage: DC removal, a faint noise floor, a short pre-onset gap, often a trim
    (as sample libraries cut their one-shots), a fade to silence at the end and peak normalisation to
    -1..-6 dBFS. Returns float32 (2, length)."""
    x = np.atleast_2d(x)
    if x.shape[0] == 1:
        x = np.concatenate([x, x])
    x = x[:, :length]
    x = filt(x, "highpass", 18.0, sr, 2)  # no DC or sub-sonic drift
    pre = int(rng.uniform(0.0, 0.002) * sr)  # the onset lands within the first 2 ms
    x = np.pad(x, ((0, 0), (pre, 0)))[:, :length]
    if x.shape[1] < length:
        x = np.pad(x, ((0, 0), (0, length - x.shape[1])))
    peak = np.abs(x).max() + 1e-12
    x = x / peak
    x = x + rng.standard_normal(x.shape) * db(floor_db) * np.linspace(1.0, 0.3, length)
    if rng.random() < 0.5:
        x = trim(x, sr, rng.uniform(-60.0, -30.0), rng.uniform(0.005, 0.04))
    # A sound still ringing near the end gets a longer fade, as a sample editor would trim it.
    tail_db = 20 * np.log10(np.abs(x[:, -int(0.1 * sr) :]).max() + 1e-12)
    fade_ms = float(np.clip(np.interp(tail_db, [-60.0, -20.0], [fade_ms, 250.0]), fade_ms, 250.0))
    fade = min(int(fade_ms * sr / 1000), length // 4)
    t = np.linspace(0.0, 1.0, fade)
    x[:, length - fade :] *= 0.5 + 0.5 * np.cos(np.pi * t)
    peak = np.abs(x).max() + 1e-12
    return (x * (db(rng.uniform(-6.0, -1.0)) / peak)).astype(np.float32)


def post(x: np.ndarray, rng: np.random.Generator, sr: int, length: int, p: dict) -> np.ndarray:
    """Recording chain of a dry mono hit: drive, sometimes a compressor, a mic pair, a room, then finish.

    `p` gives per-variant ranges: drive, room (wet energy share), rt60 (s), width (0..1), comp (probability),
    air (Hz: the top of the recording chain; mics, air and converters roll off the highest octave).
    """
    x = x / (np.abs(x).max() + 1e-12)
    x = filt(x, "lowpass", log_uniform(rng, *p.get("air", (8000.0, 18000.0))), sr, 2)
    x = saturate(x, rng.uniform(*p.get("drive", (1.0, 1.0))))
    if rng.random() < p.get("comp", 0.4):
        threshold, ratio = rng.uniform(-20.0, -6.0), rng.uniform(2.0, 6.0)
        x = compress(x, sr, threshold, ratio, rng.uniform(1.0, 20.0), rng.uniform(40.0, 250.0))
    width, tilt_db = rng.uniform(*p.get("width", (0.0, 0.2))), rng.uniform(-1.0, 1.0)
    wet, rt60 = rng.uniform(*p.get("room", (0.0, 0.1))), rng.uniform(*p.get("rt60", (0.2, 0.6)))
    st = record(x, rng, sr, width, tilt_db, wet, rt60)
    return finish(st, rng, sr, length, floor_db=rng.uniform(-100.0, -80.0))
