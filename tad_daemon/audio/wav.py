"""WAV out: written to a hidden temporary file on the same file system, then renamed into place.

A DAW watching the sample folder therefore sees a file appear whole or not at all, even if the process is
killed mid-write. What made the sound (model, seed, sampler, steps...) goes into the file's RIFF INFO
comment as JSON, so `tad-daemon info FILE` or any tag reader shows how to make it again.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from tad_daemon import __version__
from tad_daemon.atomic import atomic_write

log = logging.getLogger(__name__)

TMP_DIR = ".tad-tmp"
SUBTYPES = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}


def hide(path: Path) -> None:
    """Dot-names are hidden on macOS and Linux; Windows needs the hidden attribute as well."""
    if sys.platform == "win32":
        import ctypes

        ctypes.windll.kernel32.SetFileAttributesW(str(path), 0x2)  # FILE_ATTRIBUTE_HIDDEN


def temp_folder(root: Path) -> Path:
    folder = root / TMP_DIR
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        hide(folder)
    return folder


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, metadata: dict | None = None,
              bits: int = 24, tmp_root: str | os.PathLike | None = None) -> Path:
    """Write (channels, frames) float audio as WAV, atomically.

    The temporary file lives in `tmp_root/.tad-tmp` (default: beside `path`), which must be on the same
    file system as `path` for the final rename to be atomic.
    """
    path = Path(path)
    if bits not in SUBTYPES:
        raise ValueError(f"bit depth must be one of {sorted(SUBTYPES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    root = Path(tmp_root) if tmp_root else path.parent

    def write(tmp: str) -> None:
        with sf.SoundFile(tmp, "w", samplerate=sample_rate, channels=audio.shape[0], subtype=SUBTYPES[bits],
                          format="WAV") as f:
            f.software = f"tad-daemon {__version__}"
            if metadata:
                f.title = str(metadata.get("title", path.stem))
                f.comment = json.dumps(metadata, sort_keys=True)
            f.write(np.clip(audio, -1.0, 1.0).T)

    try:
        return atomic_write(path, write, tmp_dir=temp_folder(root))
    except FileNotFoundError:
        if (root / TMP_DIR).is_dir():
            raise
        return atomic_write(path, write, tmp_dir=temp_folder(root))  # removed by a process that just stopped


def read_metadata(path: str | os.PathLike) -> dict:
    """The generation metadata written by `write_wav` ({} for files that have none)."""
    with sf.SoundFile(str(path)) as f:
        comment = f.copy_metadata().get("comment", "")
    try:
        data = json.loads(comment)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def remove_stale_temp_files(root: str | os.PathLike) -> int:
    """Delete temporary files a killed process left behind; returns how many. Never fatal: a file that cannot
    be removed (a read-only folder) is hidden anyway, and is logged."""
    folder = Path(root) / TMP_DIR
    count = 0
    try:
        parts = list(folder.glob("*.part")) if folder.is_dir() else []
    except OSError as e:
        log.warning("cannot look in %s for stale temporary files: %s", folder, e)
        return 0
    for f in parts:
        try:
            f.unlink(missing_ok=True)
            count += 1
        except OSError as e:
            log.warning("cannot remove the stale temporary file %s: %s", f, e)
    return count


def remove_temp_folder(root: str | os.PathLike) -> None:
    """Remove the temporary folder when it is empty, so nothing of ours is left in the sample folder."""
    try:
        (Path(root) / TMP_DIR).rmdir()
    except OSError:
        pass  # not there, still in use by another process's write, or a read-only folder
