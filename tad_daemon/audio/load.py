"""Any sound file soundfile reads, at any rate and channel count, to the models' stereo 44.1 kHz format."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from tad_daemon.models.presets import LENGTH, SAMPLE_RATE

MIN_RATE, MAX_RATE = 8000, 192000
MAX_CHANNELS = 64  # what a DAW writes at most (Pro Tools' and Reaper's widest tracks; 7th-order Ambisonics)
MAX_PEAK = 1000.0  # +60 dBFS: float files may go over full scale, no sound a DAW plays goes near this


class AudioError(ValueError):
    """A sound file that cannot be used, with a message a producer understands."""


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """`path` opened for reading, refused unless it is a regular file. Checked on the opened descriptor, and
    opened without waiting (O_NONBLOCK): a pipe named like a sound file, or a file swapped for one after a
    check, would otherwise block the reader, and soundfile's lock with it, until something writes to it."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise AudioError(f"{path}: not a regular file (a pipe, device or socket), not a sound file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def sound_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """soundfile's header information of a regular file (see open_regular)."""
    with open_regular(path) as raw:
        return sf.info(raw)


def read_audio(path: str | os.PathLike, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """(channels x frames float32, sample rate) of a file; only the first `max_seconds` are read."""
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: no such file")
    if p.is_dir():
        raise AudioError(f"{p}: is a folder, not a sound file")
    if not os.access(p, os.R_OK):
        raise AudioError(f"{p}: permission denied")
    try:
        with open_regular(p) as raw, sf.SoundFile(raw) as f:
            rate = f.samplerate
            if not MIN_RATE <= rate <= MAX_RATE:
                raise AudioError(f"{p}: sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
            if f.channels > MAX_CHANNELS:  # read whole, 1,024 channels at 192 kHz take a gigabyte
                raise AudioError(f"{p}: {f.channels} channels; a sound file may have at most {MAX_CHANNELS}")
            frames = -1 if max_seconds is None else math.ceil(max_seconds * rate)
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"{p}: not a readable sound file ({e})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{p}: the file holds no audio")
    if not np.isfinite(data).all():
        raise AudioError(f"{p}: the file holds invalid (NaN or infinite) samples")
    peak = float(np.abs(data).max())
    if peak > MAX_PEAK:  # its loudness would overflow: the file is the problem, not the model
        raise AudioError(f"{p}: its samples reach {peak:.3g}, over {20 * math.log10(MAX_PEAK):+.0f} dBFS: "
                         "not a sound a DAW plays (a broken or mislabelled file)")
    return np.ascontiguousarray(data.T), rate


def to_stereo(x: np.ndarray) -> np.ndarray:
    """Mono is doubled; more than two channels keep the first two as left/right, the rest mixed into both."""
    if x.shape[0] == 1:
        return np.concatenate([x, x])
    if x.shape[0] == 2:
        return x
    rest = x[2:].sum(axis=0) / math.sqrt(2 * (x.shape[0] - 2))
    stereo = x[:2] + rest
    peak_in, peak_out = np.abs(x).max(), np.abs(stereo).max()
    return stereo * (peak_in / peak_out) if peak_out > max(peak_in, 1e-9) else stereo


def resample(x: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    if rate == target:
        return x
    return np.ascontiguousarray(soxr.resample(x.T, rate, target, quality="VHQ").T.astype(np.float32))


def fit_length(x: np.ndarray, length: int = LENGTH) -> np.ndarray:
    """Crop or zero-pad at the end."""
    if x.shape[1] >= length:
        return x[:, :length]
    return np.pad(x, ((0, 0), (0, length - x.shape[1])))


def load_oneshot(path: str | os.PathLike, length: int = LENGTH) -> np.ndarray:
    """A sound file as a 2 x `length` float32 array at 44.1 kHz (what the models take)."""
    seconds = length / SAMPLE_RATE + 0.05  # a little beyond the end keeps the resampler's edge clean
    x, rate = read_audio(path, max_seconds=seconds)
    return fit_length(resample(to_stereo(x), rate), length).astype(np.float32)
