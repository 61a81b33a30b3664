"""WAV out: written to a hidden temporary file on the same file system, then renamed into place.

A DAW watching the sample folder therefore sees a file appear whole or not at all, even if the process is
killed mid-write. What made the sound (model, seed, sampler, steps...) goes into the file's RIFF INFO
comment as JSON, so `tad-daemon info FILE` or any tag reader shows how to make it again.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from tad_daemon import __version__

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
    fd, tmp = _create_part(Path(tmp_root) if tmp_root else path.parent, path.stem)
    try:
        with os.fdopen(fd, "wb") as raw:
            with sf.SoundFile(raw, "w", samplerate=sample_rate, channels=audio.shape[0],
                              subtype=SUBTYPES[bits], format="WAV") as f:
                f.software = f"tad-daemon {__version__}"
                if metadata:
                    f.title = str(metadata.get("title", path.stem))
                    f.comment = json.dumps(metadata, sort_keys=True)
                f.write(np.clip(audio, -1.0, 1.0).T)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _create_part(root: Path, stem: str) -> tuple[int, str]:
    """A new temporary file in `root/.tad-tmp`, mode 0666 less the umask like any file a program saves
    (mkstemp's 0600 would hide the sample from a DAW or sampler running as another user)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for attempt in range(100):
        tmp = temp_folder(root) / f"{stem}.{secrets.token_hex(4)}.wav.part"
        try:
            return os.open(tmp, flags, 0o666), str(tmp)
        except FileExistsError:
            continue
        except FileNotFoundError:  # the folder was just removed by a process that stopped: make it again
            if attempt:
                raise
    raise FileExistsError(f"no free temporary name in {root / TMP_DIR}")


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
