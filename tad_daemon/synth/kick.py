"""Kick drums: a low membrane with a falling pitch, a beater click, shell and room.

Ranges follow the LMMS DrumSynth presets (tone ~300 -> ~50 Hz in about 10-40 ms, 150-400 ms tone decay;
TR-808 480 -> 48 Hz, TR-909 300 -> 53 Hz with a noise click) and the CC0 references (fundamentals 40-90 Hz,
-48 dB after 100-650 ms).
"""

from __future__ import annotations

import numpy as np

from tad_daemon.synth import dsp

VARIANTS = ("acoustic", "808", "909", "electronic", "punchy")


def _click(rng: np.random.Generator, t: np.ndarray, sr: int, bright: tuple[float, float]) -> np.ndarray:
    """Beater or drum-machine click: a short noise burst plus a struck resonance of the beater/head."""
    dur = rng.uniform(0.002, 0.008)
    burst = dsp.noise(rng, t.size) * dsp.decay(t, dur / 3) * dsp.attack(t, 0.0003)
    centre = dsp.log_uniform(rng, *bright)
    click = dsp.filt(burst, "bandpass", (centre / 2.5, centre * 2.5), sr)
    ring = dsp.resonator(burst, centre * rng.uniform(0.6, 1.2), rng.uniform(2, 8), sr)
    return click + rng.uniform(0.0, 1.0) * ring


def _thump(t: np.ndarray, width: float) -> np.ndarray:
    """The head's first push: one low half-cosine pulse, the 'punch' felt before the tone."""
    return np.where(t < width, np.sin(np.pi * t / width), 0.0)


def _swell(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """The body takes a few ms to reach full swing (a felt beater's long contact, a drum machine's VCA):
    the click comes first, the boom a moment later."""
    return dsp.attack(t, dsp.log_uniform(rng, 0.001, 0.006))


def _membrane(
    rng: np.random.Generator,
    t: np.ndarray,
    sr: int,
    f0: float,
    tau: float,
    glide: float,
    glide_tau: float,
    overtones: float,
) -> np.ndarray:
    """Batter head modes plus a slightly detuned resonant (front) head beating against it."""
    k = 7
    ratios = dsp.MEMBRANE[:k] * rng.uniform(0.98, 1.02, k)
    ratios[0] = 1.0
    amps = overtones * rng.uniform(0.3, 1.0, k) / ratios**1.5
    amps[0] = 1.0
    taus = tau / ratios ** rng.uniform(1.2, 2.2)
    head = dsp.modes(t, f0 * ratios, amps, taus, rng, glide, glide_tau, sr)
    head /= np.abs(head).max() + 1e-12
    head += dsp.dense_modes(
        rng, t, sr, f0 * 4.2, dsp.log_uniform(rng, 2000.0, 8000.0), 40, dsp.log_uniform(rng, 0.005, 0.03)
    ) * dsp.db(rng.uniform(-40.0, -20.0))
    front = dsp.modes(
        t,
        np.array([f0 * rng.uniform(0.96, 1.04)]),
        np.array([rng.uniform(0.0, 0.4)]),
        np.array([tau * rng.uniform(0.8, 1.4)]),
        rng,
        glide * 0.3,
        glide_tau,
        sr,
    )
    return head + front


def _shell(rng: np.random.Generator, t: np.ndarray, sr: int, level: float, tau: float) -> np.ndarray:
    """Shell and hoop resonances: a few damped modes in the low mids, dying before the head's tone."""
    k = rng.integers(2, 5)
    freqs = dsp.log_uniform(rng, 90.0, 700.0, k)
    taus = np.minimum(dsp.log_uniform(rng, 0.01, 0.06, k), 0.4 * tau)
    return level * dsp.modes(t, freqs, rng.uniform(0.2, 1.0, k), taus, rng, sr=sr)


def _acoustic(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    f0 = dsp.log_uniform(rng, 42.0, 80.0)
    tau = dsp.log_uniform(rng, 0.05, 0.16)
    body = _membrane(
        rng, t, sr, f0, tau, rng.uniform(0.15, 0.8), dsp.log_uniform(rng, 0.008, 0.04), rng.uniform(0.2, 0.8)
    )
    body += rng.uniform(0.3, 1.2) * dsp.filt(
        _thump(t, 1.0 / (f0 * rng.uniform(1.5, 3.0))), "lowpass", 300.0, sr
    )
    body += _shell(rng, t, sr, rng.uniform(0.03, 0.2), tau)
    body *= _swell(rng, t)
    click = _click(rng, t, sr, (1500.0, 6000.0)) * dsp.db(rng.uniform(-26, -8))
    # Shell, hardware and the rest of the kit (snare wires, cymbals) answer the hit with a fading hiss.
    kit = dsp.decaying_noise(
        rng, t, sr, 150.0, 12000.0, dsp.log_uniform(rng, 0.03, 0.2), rng.uniform(0.6, 1.2)
    )
    x = body / np.abs(body).max() + click + kit * dsp.db(rng.uniform(-46.0, -26.0))
    # Typical kick mix: mids scooped, a little click presence.
    x = dsp.peak_eq(x, dsp.log_uniform(rng, 2500, 6000), rng.uniform(0, 6), 1.2, sr)
    return x, dict(room=(0.0, 0.08), rt60=(0.2, 0.7), width=(0.05, 0.35), drive=(1.0, 2.0))


def _808(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    f0 = dsp.log_uniform(rng, 38.0, 62.0)
    start = dsp.log_uniform(rng, 1.5, 6.0)  # TR-808: up to ~480 -> 48 Hz, most of it in a few ms
    tau = dsp.log_uniform(rng, 0.07, 0.3)
    env = dsp.two_stage(t, tau * rng.uniform(0.2, 0.5), tau, rng.uniform(0.5, 0.9))
    tone = (
        env * np.sin(dsp.glide_phase(t, f0, start - 1.0, dsp.log_uniform(rng, 0.003, 0.012))) * _swell(rng, t)
    )
    click = dsp.filt(_thump(t, rng.uniform(0.0005, 0.0015)), "highpass", 200.0, sr) * rng.uniform(0.0, 0.4)
    x = tone + click
    return x, dict(room=(0.0, 0.05), rt60=(0.2, 0.5), width=(0.0, 0.1), drive=(1.0, 3.0))


def _909(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    f0 = dsp.log_uniform(rng, 45.0, 68.0)
    start = dsp.log_uniform(rng, 2.5, 5.5)  # TR-909: ~300 -> 53 Hz
    tau = dsp.log_uniform(rng, 0.06, 0.18)
    phase = dsp.glide_phase(t, f0, start - 1.0, dsp.log_uniform(rng, 0.005, 0.015))
    shape = rng.uniform(0.3, 1.0)  # sine -> rounded triangle, as the 909's waveshaper does
    tone = np.sin(phase) + shape * 0.12 * np.sin(3 * phase + 0.3)
    tone *= dsp.two_stage(t, tau * 0.3, tau, rng.uniform(0.6, 0.9)) * _swell(rng, t)
    noise_click = dsp.filt(dsp.noise(rng, t.size), "highpass", rng.uniform(1500, 4000), sr)
    noise_click *= dsp.decay(t, rng.uniform(0.002, 0.006)) * dsp.db(rng.uniform(-20, -6))
    return tone + noise_click, dict(room=(0.0, 0.08), rt60=(0.2, 0.5), width=(0.0, 0.15), drive=(1.5, 4.0))


def _electronic(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """House and techno kicks: a hard-swept sine, overdriven and compressed, with a clicky top layer."""
    f0 = dsp.log_uniform(rng, 42.0, 70.0)
    tau = dsp.log_uniform(rng, 0.04, 0.14)
    phase = dsp.glide_phase(t, f0, dsp.log_uniform(rng, 1.5, 6.0), dsp.log_uniform(rng, 0.003, 0.012))
    tone = np.sin(phase) * dsp.two_stage(t, tau * 0.4, tau, rng.uniform(0.5, 0.9)) * _swell(rng, t)
    top = _click(rng, t, sr, (2000.0, 9000.0)) * dsp.db(rng.uniform(-24, -8))
    x = dsp.saturate(tone, rng.uniform(1.5, 6.0)) + top
    return x, dict(room=(0.0, 0.08), rt60=(0.2, 0.6), width=(0.0, 0.2), drive=(1.0, 2.5))


def _punchy(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Short, tight kicks with more low-mid knock (hip-hop, lo-fi, drum-machine samples)."""
    f0 = dsp.log_uniform(rng, 50.0, 95.0)
    tau = dsp.log_uniform(rng, 0.02, 0.06)
    body = _membrane(
        rng, t, sr, f0, tau, rng.uniform(0.5, 2.5), dsp.log_uniform(rng, 0.005, 0.025), rng.uniform(0.3, 1.0)
    )
    body += rng.uniform(0.5, 1.5) * dsp.filt(
        _thump(t, 1.0 / (f0 * rng.uniform(1.2, 2.0))), "lowpass", 400.0, sr
    )
    body += _shell(rng, t, sr, rng.uniform(0.1, 0.4), tau)
    body *= _swell(rng, t)
    click = _click(rng, t, sr, (1000.0, 5000.0)) * dsp.db(rng.uniform(-24, -10))
    kit = dsp.decaying_noise(
        rng, t, sr, 200.0, 12000.0, dsp.log_uniform(rng, 0.01, 0.04), rng.uniform(0.6, 1.2)
    )
    x = body / np.abs(body).max() + click + kit * dsp.db(rng.uniform(-40.0, -22.0))
    return x, dict(room=(0.0, 0.06), rt60=(0.15, 0.4), width=(0.0, 0.25), drive=(1.0, 4.0))


_RENDER = {"acoustic": _acoustic, "808": _808, "909": _909, "electronic": _electronic, "punchy": _punchy}


def render(variant: str, rng: np.random.Generator, sr: int, length: int) -> np.ndarray:
    t = dsp.times(length, sr)
    x, post = _RENDER[variant](rng, t, sr)
    # Kicks in a mix (and in sample packs) have their boxy low mids scooped out.
    x = dsp.peak_eq(x, dsp.log_uniform(rng, 200, 600), rng.uniform(-12, -3), rng.uniform(0.7, 1.5), sr)
    return dsp.post(x, rng, sr, length, post)
