"""Percussion: pitched membranes (toms, congas, bongos, tabla), wood and metal (rim, clave, woodblock,
cowbell), hand sounds (clap, snap), shakers and jingles, and electronic blips and ticks.

Ranges follow the LMMS DrumSynth presets (toms 100-250 Hz with small drops, bongos ~400-620 Hz, conga ~210 Hz,
clave ~2.45 kHz, rim ~1.5-1.8 kHz, cowbell squares ~560/850 Hz, claps as 4 bursts ~10 ms apart around 1-3 kHz,
tambourine band ~4.6-9.5 kHz) and the CC0 references (toms, tabla, electronic percussion).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from tad_daemon.synth import dsp

VARIANTS = (
    "tom", "808_tom", "conga", "bongo", "tabla", "rim", "clap", "snap", "cowbell", "clave", "woodblock",
    "shaker", "tambourine", "blip", "tick",
)  # fmt: skip
WEIGHTS = (0.12, 0.06, 0.08, 0.06, 0.15, 0.06, 0.04, 0.03, 0.06, 0.04, 0.06, 0.03, 0.03, 0.12, 0.06)


def _hit(rng: np.random.Generator, t: np.ndarray, sr: int, contact: float, bright: float) -> np.ndarray:
    """Excitation of a stick, mallet or hand: a half-sine contact pulse plus a little contact noise.

    A longer contact (soft hand or mallet) excites fewer high modes."""
    pulse = np.where(t < contact, np.sin(np.pi * t / contact), 0.0)
    nz = dsp.noise(rng, t.size) * dsp.decay(t, contact * 0.7)
    return pulse + bright * dsp.filt(nz, "highpass", 1500.0, sr)


def _drum(
    rng: np.random.Generator,
    t: np.ndarray,
    sr: int,
    f0: float,
    tau: float,
    ratios: np.ndarray,
    *,
    glide: float = 0.0,
    glide_tau: float = 0.05,
    overtones: float = 0.6,
    contact: float = 0.001,
    bright: float = 0.3,
    noise_db: float = 0.0,
) -> np.ndarray:
    """A struck membrane: low modes (`ratios` of f0) plus dense high modes, rung by the contact
    excitation, plus the contact noise itself heard directly and the shell's fading hiss (all three
    moved by `noise_db`: a clean, ringing hand drum has little)."""
    k = ratios.size
    r = ratios * rng.uniform(0.985, 1.015, k)
    r[0] = 1.0
    amps = overtones * rng.uniform(0.2, 1.0, k) / r ** rng.uniform(0.5, 1.5)
    amps[0] = 1.0
    taus = tau / r ** rng.uniform(0.2, 1.2)  # overtones ring almost as long: the tail keeps some colour
    ring = dsp.modes(t, f0 * r, amps, taus, rng, glide, glide_tau, sr)
    ring /= np.abs(ring).max() + 1e-12
    dense = dsp.dense_modes(
        rng,
        t,
        sr,
        f0 * r[-1],
        min(f0 * 60.0, 14000.0),
        40,
        dsp.log_uniform(rng, 0.004, 0.03),
        rng.uniform(-9, -3),
    )
    ring += dense * dsp.db(rng.uniform(-30.0, -10.0) + 10.0 * bright + noise_db)
    exc = _hit(rng, t[: int(0.02 * sr)], sr, contact, bright)
    body = signal.fftconvolve(ring, exc)[: t.size]
    body /= np.abs(body).max() + 1e-12
    direct = dsp.filt(dsp.noise(rng, t.size), "highpass", dsp.log_uniform(rng, 500.0, 3000.0), sr)
    direct *= dsp.decay(t, dsp.log_uniform(rng, 0.001, 0.006)) * dsp.db(
        rng.uniform(-26, -8) + 6 * bright + noise_db
    )
    # A damped head damps the shell's hiss too: it never outlasts the head by much.
    hiss_tau = min(dsp.log_uniform(rng, 0.02, 0.15) * (1.0 + bright), max(3.0 * tau, 0.015))
    shell = dsp.decaying_noise(rng, t, sr, f0 * 2.5, 14000.0, hiss_tau, rng.uniform(0.5, 1.0))
    shell *= dsp.attack(t, 0.0005) * dsp.db(rng.uniform(-30.0, -12.0) + 6.0 * bright + noise_db)
    x = body + direct + shell
    return x / (np.abs(x).max() + 1e-12)


def _stick(rng: np.random.Generator, t: np.ndarray, sr: int, level_db: float) -> np.ndarray:
    burst = dsp.noise(rng, t.size) * dsp.decay(t, rng.uniform(0.0004, 0.002))
    x = dsp.filt(burst, "highpass", dsp.log_uniform(rng, 1000.0, 4000.0), sr)
    return x * dsp.db(level_db) / (np.abs(x).max() + 1e-12)


def _thud(rng: np.random.Generator, t: np.ndarray, sr: int, level_db: float) -> np.ndarray:
    """A hand landing flat on a head: one low, damped push."""
    width = dsp.log_uniform(rng, 0.002, 0.008)
    x = dsp.filt(np.where(t < width, np.sin(np.pi * t / width), 0.0), "lowpass", 400.0, sr)
    return x * dsp.db(level_db) / (np.abs(x).max() + 1e-12)


def _tom(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    f0 = dsp.log_uniform(rng, 90.0, 260.0)  # floor toms ~90-120 Hz, rack toms ~120-260 Hz
    tau = dsp.log_uniform(rng, 0.08, 0.35) * (120.0 / f0) ** 0.3
    x = _drum(
        rng, t, sr, f0, tau, dsp.MEMBRANE[:9], glide=rng.uniform(0.05, 0.4),
        glide_tau=dsp.log_uniform(rng, 0.02, 0.1), overtones=rng.uniform(0.3, 1.0),
        contact=rng.uniform(0.0003, 0.0012), bright=rng.uniform(0.1, 0.6),
    )  # fmt: skip
    x += _stick(rng, t, sr, rng.uniform(-24, -8))
    return x, dict(room=(0.05, 0.3), rt60=(0.3, 1.0), width=(0.1, 0.5), drive=(1.0, 2.0), comp=0.4)


def _conga(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    f0 = dsp.log_uniform(rng, 170.0, 360.0)
    slap = rng.random() < 0.35  # a slap damps the head and adds a bright crack
    tau = dsp.log_uniform(rng, 0.02, 0.06) if slap else dsp.log_uniform(rng, 0.08, 0.25)
    x = _drum(
        rng, t, sr, f0, tau, dsp.AIR_LOADED[:8], glide=rng.uniform(0.0, 0.1), glide_tau=0.03,
        overtones=rng.uniform(0.3, 0.9), contact=rng.uniform(0.0005, 0.002),
        bright=rng.uniform(0.3, 1.0) if slap else rng.uniform(0.0, 0.5),
    )  # fmt: skip
    return x, dict(room=(0.03, 0.25), rt60=(0.3, 0.9), width=(0.1, 0.5), drive=(1.0, 1.5), comp=0.3)


def _bongo(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    f0 = dsp.log_uniform(rng, 330.0, 700.0)
    x = _drum(
        rng, t, sr, f0, dsp.log_uniform(rng, 0.04, 0.15), dsp.AIR_LOADED[:7], glide=rng.uniform(0.0, 0.15),
        glide_tau=0.02, overtones=rng.uniform(0.3, 0.9), contact=rng.uniform(0.0003, 0.0012),
        bright=rng.uniform(0.0, 0.6),
    )  # fmt: skip
    return x, dict(room=(0.03, 0.2), rt60=(0.2, 0.8), width=(0.1, 0.5), drive=(1.0, 1.5), comp=0.3)


def _tabla(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Tabla strokes: the dayan's harmonic ring (its loaded head gives near-integer modes), the bayan's
    low boom that the wrist bends upwards, or a damped slap."""
    stroke = rng.choice(["dayan", "bayan", "slap"], p=[0.35, 0.35, 0.3])
    if stroke == "dayan":  # na, tin, tun: ringing harmonics of 250-600 Hz
        f0 = dsp.log_uniform(rng, 250.0, 600.0)
        ratios = np.arange(1.0, 7.0) * (1.0 + rng.uniform(-0.01, 0.01, 6))
        x = _drum(
            rng, t, sr, f0, dsp.log_uniform(rng, 0.1, 0.8), ratios, glide=rng.uniform(0.0, 0.03),
            overtones=rng.uniform(0.3, 1.0), contact=rng.uniform(0.0002, 0.0006),
            bright=rng.uniform(0.1, 0.8), noise_db=rng.uniform(-20, 0),
        )  # fmt: skip
    elif stroke == "bayan":  # ghe: a low, nearly harmonic boom; pressing the wrist raises its pitch
        f0 = dsp.log_uniform(rng, 100.0, 160.0)
        bend = -rng.uniform(0.1, 0.35) if rng.random() < 0.6 else rng.uniform(-0.05, 0.05)
        ratios = np.arange(1.0, 6.0) * (1.0 + rng.uniform(-0.03, 0.03, 5))
        x = _drum(
            rng, t, sr, f0, dsp.log_uniform(rng, 0.3, 1.2), ratios, glide=bend,
            glide_tau=dsp.log_uniform(rng, 0.05, 0.25), overtones=rng.uniform(0.3, 0.8),
            contact=rng.uniform(0.001, 0.003), bright=rng.uniform(0.0, 0.3), noise_db=rng.uniform(-30, -10),
        )  # fmt: skip
    else:  # ke, te, re: a flat-hand or finger slap, damped at once: a low thud and a short click
        x = _drum(
            rng, t, sr, dsp.log_uniform(rng, 120.0, 400.0), dsp.log_uniform(rng, 0.006, 0.03),
            dsp.MEMBRANE[:8], overtones=rng.uniform(0.3, 0.8), contact=rng.uniform(0.0005, 0.002),
            bright=rng.uniform(0.3, 1.0),
        )  # fmt: skip
        x = x + _thud(rng, t, sr, rng.uniform(-12.0, -2.0))
    return x, dict(room=(0.0, 0.15), rt60=(0.2, 0.8), width=(0.0, 0.4), drive=(1.0, 1.3), comp=0.3)


def _rim(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Side-stick or rimshot: a hard click and the short, woody ring of rim and shell."""
    k = rng.integers(2, 5)
    freqs = dsp.log_uniform(rng, 400.0, 2200.0, k)
    ring = dsp.modes(t, freqs, rng.uniform(0.3, 1.0, k), dsp.log_uniform(rng, 0.008, 0.05, k), rng, sr=sr)
    x = ring / (np.abs(ring).max() + 1e-12) + _stick(rng, t, sr, rng.uniform(-8, 0))
    if rng.random() < 0.3:  # rimshot: the head sounds too
        head = dsp.log_uniform(rng, 170, 300)
        x += 0.5 * _drum(
            rng, t, sr, head, 0.05, dsp.MEMBRANE[:6], glide=0.1, glide_tau=0.01, contact=0.0005, bright=0.5
        )
    return x, dict(room=(0.03, 0.25), rt60=(0.3, 1.0), width=(0.1, 0.5), drive=(1.0, 2.0), comp=0.3)


def _clap(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Hand clap: a few noise bursts a few ms apart (several hands), a longer last one, band-passed and
    reverberant."""
    n_bursts = rng.integers(2, 6)
    gaps = rng.uniform(0.004, 0.014, n_bursts - 1)
    starts = np.concatenate([[0.0], np.cumsum(gaps)])
    env = np.zeros_like(t)
    for i, s in enumerate(starts):
        tail = dsp.log_uniform(rng, 0.05, 0.2) if i == n_bursts - 1 else rng.uniform(0.002, 0.006)
        env += np.where(t >= s, dsp.decay(np.maximum(t - s, 0.0), tail), 0.0) * rng.uniform(0.6, 1.0)
    centre = dsp.log_uniform(rng, 1000.0, 2500.0)
    band = (max(centre / rng.uniform(1.5, 2.5), 600.0), centre * rng.uniform(1.5, 3))
    nz = dsp.filt(dsp.noise(rng, t.size), "bandpass", band, sr) * env
    # The cupped hands ring briefly at their air resonance: a soft peak over the noise.
    ring = dsp.resonator(nz, centre * rng.uniform(0.8, 1.25), rng.uniform(3.0, 10.0), sr)
    x = nz / (np.abs(nz).max() + 1e-12) + ring / (np.abs(ring).max() + 1e-12) * dsp.db(rng.uniform(-8, 2))
    return x, dict(room=(0.1, 0.4), rt60=(0.4, 1.2), width=(0.2, 0.6), drive=(1.0, 2.0), comp=0.4)


def _snap(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Finger snap: a brief rub rising into a sharp crack, rung at the hand's resonance (~1.5-3 kHz), over a
    broadband hiss and a faint low knock of the palm."""
    crack = dsp.noise(rng, t.size) * dsp.attack(t, rng.uniform(0.002, 0.01))
    crack *= dsp.two_stage(
        t, rng.uniform(0.004, 0.012), dsp.log_uniform(rng, 0.02, 0.06), rng.uniform(0.1, 0.3)
    )
    hiss = dsp.filt(crack, "highpass", dsp.log_uniform(rng, 800.0, 3000.0), sr)
    ring = dsp.resonator(crack, dsp.log_uniform(rng, 1500.0, 3000.0), rng.uniform(5.0, 20.0), sr)
    knock = _thud(rng, t, sr, rng.uniform(-14.0, -2.0))
    x = hiss / (np.abs(hiss).max() + 1e-12) + ring / (np.abs(ring).max() + 1e-12) * dsp.db(rng.uniform(-6, 4))
    return x + knock, dict(room=(0.0, 0.15), rt60=(0.2, 0.7), width=(0.0, 0.4), drive=(1.0, 1.5), comp=0.3)


def _cowbell(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    if rng.random() < 0.5:  # TR-808: two squares (~540 and ~800 Hz) through a band-pass
        f1 = dsp.log_uniform(rng, 480.0, 620.0)
        f = np.array([f1, f1 * rng.uniform(1.42, 1.54)])
        sq = dsp.square(2 * np.pi * f[:, None] * t[None, :] + rng.uniform(0, 6.3, (2, 1)), 0.05).sum(axis=0)
        x = dsp.filt(sq, "bandpass", (dsp.log_uniform(rng, 500, 800), dsp.log_uniform(rng, 2500, 5000)), sr)
        tau = dsp.log_uniform(rng, 0.04, 0.2)
        x *= dsp.two_stage(t, rng.uniform(0.005, 0.02), tau, rng.uniform(0.3, 0.7))
    else:  # a real bell: inharmonic modes of a bent metal box
        f0 = dsp.log_uniform(rng, 500.0, 900.0)
        ratios = np.array([1.0, 1.48, 2.2, 2.9, 3.7, 4.6, 5.3]) * rng.uniform(0.97, 1.03, 7)
        tau = dsp.log_uniform(rng, 0.05, 0.25)
        x = dsp.modes(t, f0 * ratios, rng.uniform(0.2, 1.0, 7), tau / ratios**0.6, rng, sr=sr)
        x = x / np.abs(x).max() + _stick(rng, t, sr, rng.uniform(-16, -4))
    return x, dict(room=(0.03, 0.2), rt60=(0.3, 0.9), width=(0.1, 0.4), drive=(1.0, 2.0), comp=0.3)


def _clave(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    f0 = dsp.log_uniform(rng, 1800.0, 2800.0)
    x = dsp.modes(
        t,
        np.array([f0, f0 * rng.uniform(2.5, 2.9)]),
        np.array([1.0, rng.uniform(0.05, 0.3)]),
        np.array([dsp.log_uniform(rng, 0.015, 0.06), 0.01]),
        rng,
        sr=sr,
    )
    x += _stick(rng, t, sr, rng.uniform(-24, -10))
    return x, dict(room=(0.05, 0.3), rt60=(0.3, 1.0), width=(0.1, 0.4), drive=(1.0, 1.3), comp=0.2)


def _woodblock(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    f0 = dsp.log_uniform(rng, 350.0, 1500.0)
    ratios = np.array([1.0, rng.uniform(2.3, 2.9), rng.uniform(3.8, 4.6), rng.uniform(5.5, 6.5)])
    tau = dsp.log_uniform(rng, 0.01, 0.08)
    x = dsp.modes(
        t,
        f0 * ratios,
        np.array([1.0, 0.5, 0.25, 0.1]) * rng.uniform(0.5, 1.0, 4),
        tau / ratios**0.8,
        rng,
        sr=sr,
    )
    x = x / np.abs(x).max() + _stick(rng, t, sr, rng.uniform(-20, -6))
    return x, dict(room=(0.03, 0.25), rt60=(0.3, 0.9), width=(0.1, 0.4), drive=(1.0, 1.5), comp=0.3)


def _grains(
    rng: np.random.Generator, t: np.ndarray, spread: float, count: int, grain_tau: float
) -> np.ndarray:
    """Envelope of many bead or jingle impacts scattered over `spread` seconds (denser at first)."""
    hits = np.sort(rng.exponential(spread / 3, count))
    env = np.zeros_like(t)
    sr = 1.0 / (t[1] - t[0])
    idx = (hits * sr).astype(int)
    np.add.at(env, idx[idx < t.size], rng.uniform(0.2, 1.0, int((idx < t.size).sum())))
    kernel = dsp.decay(t[: int(grain_tau * 8 * sr)], grain_tau)
    return np.convolve(env, kernel)[: t.size]


def _shaker(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    env = _grains(rng, t, dsp.log_uniform(rng, 0.03, 0.15), rng.integers(30, 200), rng.uniform(0.001, 0.004))
    lo = dsp.log_uniform(rng, 2500.0, 6000.0)
    nz = dsp.filt(dsp.noise(rng, t.size), "bandpass", (lo, min(lo * 3.5, 18000.0)), sr)
    return nz * env, dict(room=(0.03, 0.25), rt60=(0.3, 0.9), width=(0.1, 0.5), drive=(1.0, 1.3), comp=0.3)


def _tambourine(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Jingles: pairs of small cymbals, ringing partials at 4-12 kHz triggered by a burst of impacts."""
    env = _grains(rng, t, dsp.log_uniform(rng, 0.02, 0.08), rng.integers(10, 60), rng.uniform(0.002, 0.006))
    k = 30
    jingle = dsp.modes(
        t,
        dsp.log_uniform(rng, 3500.0, 13000.0, k),
        rng.rayleigh(1.0, k),
        dsp.log_uniform(rng, 0.05, 0.3, k),
        rng,
        sr=sr,
        random_phase=True,
    )
    jingle *= dsp.decay(t, dsp.log_uniform(rng, 0.08, 0.3))
    nz = dsp.filt(dsp.noise(rng, t.size), "highpass", 5000.0, sr) * env
    jingle /= np.abs(jingle).max() + 1e-12
    x = jingle * (0.3 + env / (env.max() + 1e-12)) + nz / (np.abs(nz).max() + 1e-12)
    if rng.random() < 0.4:  # a tambourine with a head: a low thump under the jingles
        head = dsp.log_uniform(rng, 150, 350)
        x += 0.5 * _drum(
            rng, t, sr, head, 0.03, dsp.MEMBRANE[:5], glide=0.05, glide_tau=0.01, overtones=0.5, bright=0.2
        )
    return x, dict(room=(0.03, 0.25), rt60=(0.3, 0.9), width=(0.1, 0.5), drive=(1.0, 1.3), comp=0.3)


def _808_tom(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Drum-machine tom (TR-808/606: 200 -> 181 Hz, 120 -> 98 Hz): a clean sine with a small pitch drop,
    a long decay and a touch of pink noise at the hit."""
    f0 = dsp.log_uniform(rng, 100.0, 300.0)
    tau = dsp.log_uniform(rng, 0.08, 0.4)
    phase = dsp.glide_phase(t, f0, rng.uniform(0.05, 0.4), dsp.log_uniform(rng, 0.01, 0.08))
    x = np.sin(phase) * dsp.two_stage(t, tau * 0.3, tau, rng.uniform(0.6, 0.9))
    nz = dsp.filt(dsp.pink(rng, t.size), "bandpass", (f0, min(f0 * 20.0, 8000.0)), sr)
    nz *= dsp.decay(t, dsp.log_uniform(rng, 0.005, 0.03)) * dsp.db(rng.uniform(-30.0, -10.0))
    return x + nz, dict(room=(0.0, 0.15), rt60=(0.2, 0.8), width=(0.0, 0.3), drive=(1.0, 2.0), comp=0.3)


def _blip(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Electronic percussion: a sine, triangle or square with a fast pitch envelope (zaps, pops, bongs)."""
    f0 = dsp.log_uniform(rng, 100.0, 1500.0)
    depth = rng.choice([dsp.log_uniform(rng, 0.5, 6.0), -rng.uniform(0.2, 0.6), 0.0], p=[0.6, 0.15, 0.25])
    phase = dsp.glide_phase(t, f0, depth, dsp.log_uniform(rng, 0.003, 0.05)) + rng.uniform(0, 6.3)
    wave = rng.choice(["sine", "triangle", "square"], p=[0.5, 0.25, 0.25])
    if wave == "sine":
        x = np.sin(phase)
    elif wave == "triangle":
        x = 2.0 / np.pi * np.arcsin(np.sin(phase))
    else:
        x = dsp.filt(dsp.square(phase, 0.1), "lowpass", dsp.log_uniform(rng, 1500, 8000), sr)
    tau = dsp.log_uniform(rng, 0.008, 0.2)
    x *= dsp.two_stage(t, tau * 0.3, tau, rng.uniform(0.4, 0.9))
    return x, dict(room=(0.0, 0.2), rt60=(0.2, 0.9), width=(0.0, 0.4), drive=(1.0, 3.0), comp=0.3)


def _tick(rng: np.random.Generator, t: np.ndarray, sr: int) -> tuple[np.ndarray, dict]:
    """Very short clicks and knocks: a damped resonance a few ms long."""
    f0 = dsp.log_uniform(rng, 300.0, 3000.0)
    ring = dsp.modes(
        t,
        np.array([f0, f0 * rng.uniform(1.5, 3.0)]),
        np.array([1.0, rng.uniform(0.1, 0.6)]),
        np.array([dsp.log_uniform(rng, 0.002, 0.012), 0.003]),
        rng,
        sr=sr,
    )
    x = ring / (np.abs(ring).max() + 1e-12) + _stick(rng, t, sr, rng.uniform(-20, -3))
    return x, dict(room=(0.0, 0.2), rt60=(0.2, 0.8), width=(0.0, 0.4), drive=(1.0, 2.0), comp=0.2)


_RENDER = {
    "tom": _tom,
    "808_tom": _808_tom,
    "conga": _conga,
    "bongo": _bongo,
    "tabla": _tabla,
    "rim": _rim,
    "clap": _clap,
    "snap": _snap,
    "cowbell": _cowbell,
    "clave": _clave,
    "woodblock": _woodblock,
    "shaker": _shaker,
    "tambourine": _tambourine,
    "blip": _blip,
    "tick": _tick,
}


def render(variant: str, rng: np.random.Generator, sr: int, length: int) -> np.ndarray:
    t = dsp.times(length, sr)
    x, post = _RENDER[variant](rng, t, sr)
    return dsp.post(x, rng, sr, length, post)
