"""Tuning a pitched one-shot (kick, tom, 808) to a note: its fundamental measured, then resampled onto it.

Producers tune kicks and toms to the track's key. Resampling changes length with pitch, as a sampler does;
the one-shot keeps its length (cut with a short fade when tuned down, silence after it when tuned up).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import soxr

from tad_daemon.limits import SAMPLE_RATE

_NOTE = re.compile(r"^([A-Ga-g])([#b]?)(-1|[0-8])$")
_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
PITCH_RANGE_HZ = (25.0, 1000.0)  # where a drum's fundamental is looked for
PITCHED_DB = 12.0  # the peak must stand this far above the band's median level, else "no clear pitch"
MAX_SHIFT = 7  # semitones: a note further away is taken in the octave nearest the sound (and that is said)
BODY_S = (0.02, 0.3)  # the part measured, after the loudest moment: past the attack's pitch sweep


def note_hz(note: str) -> float:
    """`A1` -> 55.0 Hz (A4 = 440 Hz, MIDI octaves: C-1 to B8); ValueError for anything else."""
    letter, accidental, octave = _note_parts(note)
    midi = 12 * (int(octave) + 1) + _SEMITONES[letter.upper()] + {"#": 1, "b": -1, "": 0}[accidental]
    return 440.0 * 2 ** ((midi - 69) / 12)


def check_note(note: str) -> str:
    """`note` as replies and metadata write it (" a1\\n" -> "A1"); ValueError for anything but a note."""
    letter, accidental, octave = _note_parts(note)
    return f"{letter.upper()}{accidental}{octave}"


def _note_parts(note: str) -> tuple[str, str, str]:
    match = _NOTE.fullmatch(note.strip()) if isinstance(note, str) else None
    if not match:
        raise ValueError(f"not a note: {note!r} (a letter A-G, then # or b if any, then an octave -1 to 8: A1, C#2)")
    return match.groups()


def note_name(hz: float) -> str:
    """The nearest note and the cents off it: 61.7 -> 'B1 -1 c'."""
    midi = 69 + 12 * math.log2(hz / 440.0)
    near = round(midi)
    return f"{_NAMES[near % 12]}{near // 12 - 1} {round(100 * (midi - near)):+d} c"


def measure_pitch(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float | None:
    """The fundamental of a (channels, frames) one-shot's body in Hz, or None when it has no clear pitch
    (a hat, a snare's noise): the strongest spectral peak between PITCH_RANGE_HZ, from a zero-padded FFT
    with parabolic interpolation on the log magnitude (within a cent on a decaying sine)."""
    mono = np.asarray(x, dtype=np.float64).mean(axis=0)
    if not np.isfinite(mono).all() or not np.abs(mono).max() > 0:
        return None
    loudest = int(np.argmax(np.convolve(mono**2, np.ones(441), mode="same")))
    body = mono[loudest + int(BODY_S[0] * sample_rate): loudest + int(BODY_S[1] * sample_rate)]
    if len(body) < sample_rate // 50:
        return None
    size = 1 << 18  # 0.17 Hz bins at 44.1 kHz
    mag = np.abs(np.fft.rfft(body * np.hanning(len(body)), size)) + 1e-20
    freqs = np.fft.rfftfreq(size, 1 / sample_rate)
    lo, hi = np.searchsorted(freqs, PITCH_RANGE_HZ)
    band = 20 * np.log10(mag[lo:hi])
    k = int(np.argmax(band))
    if band[k] - np.median(band) < PITCHED_DB or k in (0, len(band) - 1):
        return None
    left, mid, right = band[k - 1], band[k], band[k + 1]
    offset = 0.5 * (left - right) / (left - 2 * mid + right)
    return float((lo + k + offset) * sample_rate / size)


def retune(x: np.ndarray, note: str, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, dict]:
    """`x` resampled so that its fundamental lands on `note`, and what was measured and done (the file's
    metadata keeps it; `describe` says it in a line)."""
    target = note_hz(note)
    measured = measure_pitch(x, sample_rate)
    info: dict = {"note": note, "target_hz": round(target, 2)}
    if measured is None:
        return x, {**info, "measured_hz": None, "shift_cents": 0, "done": "no clear pitch: left as it was"}
    octaves = round(math.log2(measured / target)) if abs(12 * math.log2(measured / target)) > MAX_SHIFT else 0
    target *= 2.0**octaves
    cents = 1200 * math.log2(target / measured)
    info.update(measured_hz=round(measured, 2), measured_note=note_name(measured), target_hz=round(target, 2),
                shift_cents=round(cents, 1))
    if octaves:
        info["done"] = f"{note} is more than {MAX_SHIFT} semitones away: tuned to {note_name(target).split()[0]}"
    out = soxr.resample(np.ascontiguousarray(x.T, dtype=np.float32), sample_rate, sample_rate * measured / target,
                        quality="VHQ").T
    length = x.shape[-1]
    if out.shape[-1] >= length:
        out = out[:, :length].copy()
        fade = min(length, sample_rate // 100)
        out[:, -fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    else:
        out = np.pad(out, ((0, 0), (0, length - out.shape[-1])))
    return np.ascontiguousarray(out, dtype=np.float32), info


def describe(info: dict | None) -> str:
    """One line for a reply: '61.7 Hz (B1 -1 c) -> A1 55.0 Hz, -199 c', or why nothing was done."""
    if not info:
        return ""
    if info.get("measured_hz") is None:
        return f"{info['note']}: {info['done']}"
    line = (f"{info['measured_hz']:.1f} Hz ({info['measured_note']}) -> {note_name(info['target_hz']).split()[0]} "
            f"{info['target_hz']:.1f} Hz, {info['shift_cents']:+.0f} c")
    return line + (f" ({info['done']})" if "done" in info else "")


def tune_shot(shot, note: str | None):
    """The one-shot (oneshot.OneShot) tuned to `note`, with what was done in its metadata; as it was for None."""
    if not note:
        return shot
    audio, info = retune(shot.audio, note, shot.sample_rate)
    return replace(shot, audio=audio, tuning=info)
