"""Hi-hats and cymbals: dense inharmonic metal.

Acoustic plates are a crowd of detuned partials (modal synthesis, dozens of modes weighted towards 3-12 kHz,
the highs dying first) plus the wash they blur into (band noise) and a stick tick. Drum-machine hats follow
the TR-808: six square oscillators (205.3, 304.4, 369.6, 522.7, 540, 800 Hz) mixed, ring-modulated and
band-passed around 6-10 kHz. Decays follow the LMMS presets: ~40-150 ms closed, up to ~700 ms open.
"""

from __future__ import annotations

import numpy as np

from tad_daemon.synth import dsp

VARIANTS = ("closed", "open", "pedal", "808_closed", "808_open", "crash", "ride")
WEIGHTS = (0.24, 0.18, 0.1, 0.12, 0.08, 0.16, 0.12)

TR808_METAL = np.array([205.3, 304.4, 369.6, 522.7, 540.0, 800.0])

# Recording chains (see dsp.post): plates keep more of the top octave than drums do.
_POST_SHORT = dict(
    air=(13000.0, 20000.0), room=(0.02, 0.15), rt60=(0.2, 0.7), width=(0.1, 0.5), drive=(1.0, 1.5), comp=0.3
)
_POST_LONG = dict(
    air=(13000.0, 20000.0), room=(0.03, 0.25), rt60=(0.3, 1.2), width=(0.1, 0.7), drive=(1.0, 1.5), comp=0.3
)
_POST_808 = dict(
    air=(13000.0, 20000.0), room=(0.0, 0.12), rt60=(0.2, 0.8), width=(0.0, 0.3), drive=(1.0, 2.0), comp=0.2
)


def _metal(
    rng: np.random.Generator,
    t: np.ndarray,
    sr: int,
    n: int,
    centre: float,
    width: float,
    tau: float,
    low: float = 300.0,
) -> np.ndarray:
    """`n` random plate modes with a log-Gaussian spectral envelope around `centre` (octaves `width`).

    Higher modes decay a little faster (tau scales with f^-0.25 around the centre): plates stay bright."""
    f = dsp.log_uniform(rng, low, min(19000.0, 0.45 * sr), n)
    octaves = np.log2(f / centre)
    amp = np.exp(-0.5 * (octaves / width) ** 2) * rng.rayleigh(1.0, n)
    taus = tau * (f / centre) ** -0.25 * dsp.log_uniform(rng, 0.6, 1.6, n)
    return dsp.modes(t, f, amp, taus, rng, sr=sr, random_phase=True)


def _wash(rng: np.random.Generator, t: np.ndarray, sr: int, centre: float, tau: float) -> np.ndarray:
    """The noisy wash of a plate: band noise whose top darkens as it decays."""
    w = dsp.noise(rng, t.size)
    band = dsp.filt(w, "bandpass", (centre / 2.5, min(centre * 2.5, 0.45 * sr)), sr)
    top = dsp.filt(band, "highpass", centre * 1.4, sr)
    return (band - top) * dsp.decay(t, tau) + top * dsp.decay(t, tau * 0.6)


def _tick(rng: np.random.Generator, t: np.ndarray, sr: int) -> np.ndarray:
    burst = dsp.noise(rng, t.size) * dsp.decay(t, rng.uniform(0.0003, 0.0015))
    return dsp.filt(burst, "highpass", dsp.log_uniform(rng, 4000.0, 9000.0), sr)


def _plate(
    rng: np.random.Generator,
    t: np.ndarray,
    sr: int,
    tau: float,
    centre: float,
    modes: int,
    wash_db: float,
    tick_db: float,
) -> np.ndarray:
    """A struck plate: many bright modes, its wash, a few low 'body' modes (300-1200 Hz) and the stick."""
    metal = _metal(rng, t, sr, modes, centre, rng.uniform(1.0, 2.0), tau)
    metal /= np.abs(metal).max() + 1e-12
    # The stick's 'clank': low plate modes, loud at the hit but quickly gone.
    body_tau = min(tau * 0.5, dsp.log_uniform(rng, 0.015, 0.06))
    body = _metal(rng, t, sr, 20, dsp.log_uniform(rng, 350.0, 900.0), 0.8, body_tau, low=250.0)
    body *= dsp.db(rng.uniform(-18.0, -4.0)) / (np.abs(body).max() + 1e-12)
    wash = _wash(rng, t, sr, centre * rng.uniform(0.8, 1.3), tau * rng.uniform(0.5, 1.0))
    wash *= dsp.db(wash_db) / (np.abs(wash).max() + 1e-12)
    tick = _tick(rng, t, sr)
    tick *= dsp.db(tick_db) / (np.abs(tick).max() + 1e-12)
    return (metal + body + wash) * dsp.attack(t, rng.uniform(0.0, 0.0008)) + tick


def _closed(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Stick on closed plates: pressed together they rattle chaotically, so the wash outweighs the modes."""
    tau = dsp.log_uniform(rng, 0.03, 0.09)
    centre = dsp.log_uniform(rng, 5000.0, 10000.0)
    x = _plate(rng, t, sr, tau, centre, 100, rng.uniform(0, 10), rng.uniform(-12, 0))
    # The clamped plates damp every mode alike: a two-speed decay over the whole sound, short and dry.
    x *= dsp.two_stage(t, tau * 0.4, tau * 1.5, rng.uniform(0.3, 0.7))
    return x, _POST_SHORT


def _open(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    tau = dsp.log_uniform(rng, 0.1, 0.35)
    x = _plate(
        rng, t, sr, tau, dsp.log_uniform(rng, 5000.0, 10000.0), 100, rng.uniform(-3, 6), rng.uniform(-14, -2)
    )
    return x, _POST_LONG


def _pedal(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Foot-closed hat: the plates clap together ('chick'), lower and softer than a stick hit."""
    tau = dsp.log_uniform(rng, 0.03, 0.08)
    x = _plate(rng, t, sr, tau, dsp.log_uniform(rng, 3500.0, 8000.0), 80, rng.uniform(0, 10), -40.0)
    x *= dsp.decay(t, tau * 2.0)
    chick = dsp.filt(dsp.noise(rng, t.size), "bandpass", (dsp.log_uniform(rng, 300, 900), 3000.0), sr)
    chick *= dsp.decay(t, rng.uniform(0.004, 0.015)) * dsp.attack(t, rng.uniform(0.001, 0.004))
    x = x + chick * dsp.db(rng.uniform(-16, -4)) / (np.abs(chick).max() + 1e-12)
    if rng.random() < 0.6:  # the rims touch a few ms before the plates clamp: a soft first contact
        lead = min(int(rng.uniform(0.004, 0.015) * sr), t.size // 2)
        touch = dsp.filt(dsp.noise(rng, t.size), "highpass", 3000.0, sr) * dsp.decay(
            t, rng.uniform(0.002, 0.008)
        )
        touch *= np.abs(x).max() * dsp.db(rng.uniform(-16.0, -8.0)) / (np.abs(touch).max() + 1e-12)
        x = np.concatenate([np.zeros(lead), x[: t.size - lead]]) + touch  # (the onset stays at the touch)
    return x, _POST_SHORT


def _tr808(rng: np.random.Generator, t: np.ndarray, sr: int, tau: float) -> np.ndarray:
    """Six detuned squares (optionally ring-modulated in pairs) into two band-passes and a high-pass."""
    f = TR808_METAL * dsp.log_uniform(rng, 0.75, 1.4) * rng.uniform(0.985, 1.015, 6)
    phases = 2 * np.pi * f[:, None] * t[None, :] + rng.uniform(0, 2 * np.pi, (6, 1))
    sq = dsp.square(phases, 0.02)
    metal = sq.sum(axis=0)
    if rng.random() < 0.5:
        metal = metal + rng.uniform(0.3, 1.0) * (sq[0] * sq[3] + sq[1] * sq[4] + sq[2] * sq[5])
    b1 = dsp.filt(
        metal, "bandpass", (dsp.log_uniform(rng, 5500, 7500), dsp.log_uniform(rng, 8000, 11000)), sr
    )
    b2 = dsp.filt(
        metal, "bandpass", (dsp.log_uniform(rng, 7500, 9500), dsp.log_uniform(rng, 11000, 16000)), sr
    )
    x = b1 + rng.uniform(0.3, 1.0) * b2
    x = dsp.filt(x, "highpass", dsp.log_uniform(rng, 3000, 7000), sr, 2)
    x /= np.abs(x).max() + 1e-12
    # The filters leave the squares' lower partials faintly audible, as on the real circuit.
    x += metal / (np.abs(metal).max() + 1e-12) * dsp.db(rng.uniform(-30, -14))
    nz = dsp.filt(dsp.noise(rng, t.size), "highpass", 7000.0, sr) * dsp.db(rng.uniform(-24, -8))
    x = x + nz
    return x * dsp.two_stage(t, tau * 0.3, tau, rng.uniform(0.4, 0.8))


def _808_closed(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    return _tr808(rng, t, sr, dsp.log_uniform(rng, 0.025, 0.08)), _POST_808


def _808_open(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    return _tr808(rng, t, sr, dsp.log_uniform(rng, 0.08, 0.3)), _POST_808


def _crash(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Crash or splash: a big plate excited hard; long, with low partials and a bright wash."""
    tau = dsp.log_uniform(rng, 0.2, 0.6)
    x = _plate(
        rng, t, sr, tau, dsp.log_uniform(rng, 4500.0, 9000.0), 120, rng.uniform(-4, 4), rng.uniform(-10, 0)
    )
    low = _metal(rng, t, sr, 24, dsp.log_uniform(rng, 400.0, 1200.0), 0.8, tau * 1.3, low=250.0)
    x = x + low / (np.abs(low).max() + 1e-12) * dsp.db(rng.uniform(-26, -12))
    # The wash swells for a few ms after the hit as energy spreads to high modes.
    x *= 1.0 + rng.uniform(0.0, 1.0) * (1.0 - dsp.decay(t, 0.02)) * dsp.decay(t, 0.1)
    return x, _POST_LONG


def _ride(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Ride: a clear 'ping' of a few strong bell partials over a quieter sustained wash."""
    tau = dsp.log_uniform(rng, 0.25, 0.6)
    x = _plate(
        rng, t, sr, tau, dsp.log_uniform(rng, 5000.0, 9000.0), 80, rng.uniform(-10, -2), rng.uniform(-8, 0)
    )
    k = rng.integers(3, 7)
    bell = dsp.modes(
        t,
        dsp.log_uniform(rng, 1500.0, 6000.0, k),
        rng.uniform(0.3, 1.0, k),
        dsp.log_uniform(rng, 0.1, 0.5, k),
        rng,
        sr=sr,
    )
    x = x + bell / (np.abs(bell).max() + 1e-12) * dsp.db(rng.uniform(-18, -4))
    return x, _POST_LONG


_RENDER = {
    "closed": _closed,
    "open": _open,
    "pedal": _pedal,
    "808_closed": _808_closed,
    "808_open": _808_open,
    "crash": _crash,
    "ride": _ride,
}


def render(variant: str, rng: np.random.Generator, sr: int, length: int) -> np.ndarray:
    t = dsp.times(length, sr)
    x, post = _RENDER[variant](rng, t, sr)
    return dsp.post(x, rng, sr, length, post)
