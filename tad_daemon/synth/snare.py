"""Snares: head and shell modes (tone ~150-300 Hz), snare wires (broadband noise rattled by the bottom head),
a stick attack and a room.

Ranges follow the LMMS DrumSynth presets (acoustic 380 -> 230 Hz, jazz 180 -> 153 Hz, TR-808 350 -> 174 Hz
with noise ~100 ms, TR-909 454 -> 250 Hz with band noise around 5.5 kHz) and the CC0 references (-24 dB
after 50-250 ms, centroid 0.7-3.5 kHz).
"""

from __future__ import annotations

import numpy as np

from tad_daemon.synth import dsp

VARIANTS = ("acoustic", "tight", "fat", "808", "909", "electronic")


def _head(
    rng: np.random.Generator, t: np.ndarray, sr: int, f0: float, tau: float, glide: float
) -> np.ndarray:
    """Batter-head modes: a strong (0,1) tone and a cluster of faster-dying inharmonic overtones."""
    k = 9
    ratios = dsp.MEMBRANE[:k] * rng.uniform(0.97, 1.03, k)
    ratios[0] = 1.0
    amps = rng.uniform(0.2, 1.0, k) / ratios ** rng.uniform(0.5, 1.5)
    amps[0] = 1.0
    taus = tau / ratios ** rng.uniform(0.8, 1.6)
    head = dsp.modes(t, f0 * ratios, amps, taus, rng, glide, dsp.log_uniform(rng, 0.005, 0.03), sr)
    head /= np.abs(head).max() + 1e-12
    dense = dsp.dense_modes(rng, t, sr, f0 * 4.2, 12000.0, 50, dsp.log_uniform(rng, 0.005, 0.03))
    return head + dense * dsp.db(rng.uniform(-30.0, -12.0))


def _wires(
    rng: np.random.Generator, t: np.ndarray, sr: int, head: np.ndarray, tau: float, dark: float
) -> np.ndarray:
    """Snare wires: noise buzzing with the bottom head. Highs die faster than lows; onset ~1-3 ms late."""
    n = t.size
    w = dsp.noise(rng, n)
    lo_cut = dsp.log_uniform(rng, 150.0, 700.0)
    hi_cut = dsp.log_uniform(rng, 5000.0, 14000.0) * (1.0 - 0.5 * dark)
    band = dsp.filt(w, "bandpass", (lo_cut, hi_cut), sr)
    highs = dsp.filt(band, "highpass", 3500.0, sr)
    lows = band - highs
    # A fast drop, then a long low buzz: wires keep rattling quietly as the heads ring down.
    env_lo = dsp.two_stage(t, tau * 0.4, tau * rng.uniform(1.5, 3.0), rng.uniform(0.1, 0.35))
    env_hi = dsp.two_stage(t, tau * 0.3, tau * rng.uniform(0.6, 1.2), rng.uniform(0.1, 0.3))
    wires = lows * env_lo + rng.uniform(0.4, 1.2) * highs * env_hi
    # The bottom head rattles the wires: their level follows its vibration a little.
    hn = head / (np.abs(head).max() + 1e-12)
    wires *= 1.0 + rng.uniform(0.0, 0.8) * np.abs(hn)
    # Resonances of the drum colour the wire noise (peaks from the shell and heads).
    for _ in range(rng.integers(1, 4)):
        wires = dsp.peak_eq(
            wires, dsp.log_uniform(rng, 300.0, 6000.0), rng.uniform(-4.0, 8.0), rng.uniform(1.0, 4.0), sr
        )
    return wires * dsp.attack(t, rng.uniform(0.0005, 0.003))


def _thump(rng: np.random.Generator, t: np.ndarray, sr: int, f0: float) -> np.ndarray:
    """The low push of the whole drum and the close mic's proximity effect: one low, damped pulse."""
    width = 1.0 / (f0 * rng.uniform(0.6, 1.5))
    pulse = np.where(t < width, np.sin(np.pi * t / width), 0.0)
    x = dsp.filt(pulse, "lowpass", dsp.log_uniform(rng, 120.0, 300.0), sr)
    return x / (np.abs(x).max() + 1e-12) * dsp.db(rng.uniform(-18.0, -3.0))


def _stick(rng: np.random.Generator, t: np.ndarray, sr: int) -> np.ndarray:
    """The stick hitting the head (and sometimes the rim): a very short bright burst with a ping."""
    burst = dsp.noise(rng, t.size) * dsp.decay(t, rng.uniform(0.0005, 0.002))
    click = dsp.filt(burst, "highpass", dsp.log_uniform(rng, 1500.0, 5000.0), sr)
    ping = dsp.resonator(burst, dsp.log_uniform(rng, 700.0, 3000.0), rng.uniform(5.0, 25.0), sr)
    return click + rng.uniform(0.0, 0.5) * ping


def _shell(rng: np.random.Generator, t: np.ndarray, sr: int) -> np.ndarray:
    k = rng.integers(2, 5)
    freqs = dsp.log_uniform(rng, 350.0, 1400.0, k)
    return dsp.modes(t, freqs, rng.uniform(0.2, 1.0, k), dsp.log_uniform(rng, 0.01, 0.05, k), rng, sr=sr)


def _acoustic_like(
    rng: np.random.Generator,
    t: np.ndarray,
    sr: int,
    f0_range: tuple[float, float],
    head_tau: tuple[float, float],
    wire_tau: tuple[float, float],
    wire_db: tuple[float, float],
    dark: float,
) -> np.ndarray:
    f0 = dsp.log_uniform(rng, *f0_range)
    head = _head(rng, t, sr, f0, dsp.log_uniform(rng, *head_tau), rng.uniform(0.03, 0.35))
    head /= np.abs(head).max() + 1e-12
    wires = _wires(rng, t, sr, head, dsp.log_uniform(rng, *wire_tau), dark)
    wires *= dsp.db(rng.uniform(*wire_db)) / (np.abs(wires).max() + 1e-12)
    shell = _shell(rng, t, sr) * dsp.db(rng.uniform(-26.0, -10.0))
    stick = _stick(rng, t, sr)
    stick *= dsp.db(rng.uniform(-18.0, -4.0)) / (np.abs(stick).max() + 1e-12)
    # The air inside the shell: a low, long and quiet boom under the ring (what is left at the end).
    air = dsp.modes(t, np.array([dsp.log_uniform(rng, 70.0, 150.0)]), np.ones(1),
                    np.array([dsp.log_uniform(rng, 0.12, 0.35)]), rng, sr=sr)  # fmt: skip
    air *= dsp.attack(t, 0.004) * dsp.db(rng.uniform(-32.0, -18.0))
    return head + wires + shell + stick + air + _thump(rng, t, sr, f0)


def _acoustic(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    x = _acoustic_like(rng, t, sr, (165.0, 260.0), (0.03, 0.1), (0.07, 0.2), (-4.0, 5.0), rng.uniform(0, 0.5))
    return x, dict(room=(0.08, 0.35), rt60=(0.4, 1.2), width=(0.1, 0.5), drive=(1.0, 2.0), comp=0.5)


def _tight(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Piccolo or high-tuned snare: higher head, short crisp wires."""
    x = _acoustic_like(
        rng, t, sr, (220.0, 340.0), (0.02, 0.07), (0.03, 0.09), (-4.0, 4.0), rng.uniform(0, 0.3)
    )
    return x, dict(room=(0.05, 0.3), rt60=(0.3, 1.0), width=(0.05, 0.4), drive=(1.0, 2.0), comp=0.5)


def _fat(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Deep, loosely tuned snare with long wires and more room (rock, hip-hop)."""
    x = _acoustic_like(
        rng, t, sr, (130.0, 200.0), (0.05, 0.18), (0.1, 0.25), (-6.0, 2.0), rng.uniform(0.2, 1.0)
    )
    return x, dict(room=(0.1, 0.4), rt60=(0.4, 1.2), width=(0.1, 0.5), drive=(1.0, 2.5), comp=0.6)


def _808(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """TR-808: two damped tones (bridged-T resonators) and high-passed noise through a decay envelope."""
    f1 = dsp.log_uniform(rng, 160.0, 260.0)
    f2 = f1 * rng.uniform(1.5, 2.1)
    tau = dsp.log_uniform(rng, 0.02, 0.07)
    tone = dsp.modes(
        t,
        np.array([f1, f2]),
        np.array([1.0, rng.uniform(0.3, 0.9)]),
        np.array([tau, tau * rng.uniform(0.5, 0.9)]),
        rng,
        rng.uniform(0.0, 0.4),
        0.01,
        sr,
    )
    nz = dsp.filt(
        dsp.noise(rng, t.size),
        "bandpass",
        (dsp.log_uniform(rng, 400.0, 1500.0), dsp.log_uniform(rng, 5000.0, 10000.0)),
        sr,
    )
    nz *= dsp.decay(t, dsp.log_uniform(rng, 0.04, 0.12))
    nz *= dsp.db(rng.uniform(-3.0, 5.0)) / (np.abs(nz).max() + 1e-12)
    return tone / np.abs(tone).max() + nz + _thump(rng, t, sr, f1), dict(
        room=(0.0, 0.1), rt60=(0.2, 0.6), width=(0.0, 0.2), drive=(1.0, 2.0), comp=0.3
    )


def _909(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """TR-909: a swept tone with an overtone and a loud band of noise (with its own snappy envelope)."""
    f0 = dsp.log_uniform(rng, 170.0, 260.0)
    tau = dsp.log_uniform(rng, 0.025, 0.08)
    glide = dsp.log_uniform(rng, 0.2, 1.0)
    tone = dsp.modes(
        t,
        np.array([f0, f0 * rng.uniform(1.6, 2.0)]),
        np.array([1.0, rng.uniform(0.2, 0.6)]),
        np.array([tau, tau * 0.7]),
        rng,
        glide,
        dsp.log_uniform(rng, 0.005, 0.02),
        sr,
    )
    w = dsp.noise(rng, t.size)
    nz = dsp.filt(w, "lowpass", dsp.log_uniform(rng, 6000.0, 12000.0), sr)
    nz = dsp.filt(nz, "highpass", dsp.log_uniform(rng, 300.0, 1500.0), sr)
    nz *= dsp.two_stage(t, dsp.log_uniform(rng, 0.01, 0.03), dsp.log_uniform(rng, 0.06, 0.18), 0.4)
    nz *= dsp.db(rng.uniform(-3.0, 4.0)) / (np.abs(nz).max() + 1e-12)
    return tone / np.abs(tone).max() + nz + _thump(rng, t, sr, f0), dict(
        room=(0.0, 0.15), rt60=(0.2, 0.7), width=(0.0, 0.25), drive=(1.0, 3.0), comp=0.4
    )


def _electronic(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Synth snares: noise through a band-pass sweeping down, a body tone, often a layered clap or crush."""
    f0 = dsp.log_uniform(rng, 150.0, 330.0)
    tau = dsp.log_uniform(rng, 0.02, 0.12)
    tone = dsp.modes(
        t,
        np.array([f0, f0 * rng.uniform(1.4, 2.3)]),
        np.array([1.0, rng.uniform(0.1, 0.6)]),
        np.array([tau, tau * 0.6]),
        rng,
        dsp.log_uniform(rng, 0.1, 1.5),
        0.01,
        sr,
    )
    f_hi = dsp.log_uniform(rng, 3000.0, 9000.0)
    nz = dsp.swept_bandpass_noise(
        rng, t, f_hi, f_hi * rng.uniform(0.3, 0.8), dsp.log_uniform(rng, 0.03, 0.3), rng.uniform(0.7, 2.0), sr
    )
    nz += 0.5 * dsp.filt(dsp.noise(rng, t.size), "highpass", 1000.0, sr) * dsp.decay(t, 0.01)
    nz *= dsp.two_stage(
        t, dsp.log_uniform(rng, 0.01, 0.04), dsp.log_uniform(rng, 0.06, 0.3), rng.uniform(0.3, 0.7)
    )
    nz *= dsp.db(rng.uniform(-4.0, 3.0)) / (np.abs(nz).max() + 1e-12)
    x = tone / np.abs(tone).max() + nz + _thump(rng, t, sr, f0)
    if rng.random() < 0.3:  # bit-crush: lo-fi drum machines and samplers
        steps = 2 ** rng.integers(4, 8)
        x = np.round(x / np.abs(x).max() * steps) / steps
    return x, dict(room=(0.0, 0.25), rt60=(0.2, 1.0), width=(0.0, 0.3), drive=(1.0, 4.0), comp=0.5)


_RENDER = {
    "acoustic": _acoustic,
    "tight": _tight,
    "fat": _fat,
    "808": _808,
    "909": _909,
    "electronic": _electronic,
}


def render(variant: str, rng: np.random.Generator, sr: int, length: int) -> np.ndarray:
    t = dsp.times(length, sr)
    x, post = _RENDER[variant](rng, t, sr)
    return dsp.post(x, rng, sr, length, post)
