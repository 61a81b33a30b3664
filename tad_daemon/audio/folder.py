"""The sample folder: one root, a subfolder per model, file names that sort by time and say what they are."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import numpy as np

from tad_daemon.audio.wav import write_wav
from tad_daemon.names import check_name


class SampleFolder:
    """Writes one-shots as `<root>/<model>/<YYYYmmdd-HHMMSS-mmm>_<model>[_var]_s<seed>.wav`.

    With `per_model=False` (a folder named on the command line) the files go straight into the root.
    """

    def __init__(self, root: str | Path, bits: int = 24, per_model: bool = True):
        self.root = Path(root).expanduser().resolve()
        self.bits = bits
        self.per_model = per_model
        self._lock = threading.Lock()

    def _new_path(self, model: str, seed: int, variation: bool) -> Path:
        check_name(model)
        now = datetime.now()
        stamp = now.strftime("%Y%m%d-%H%M%S-") + f"{now.microsecond // 1000:03d}"
        base = f"{stamp}_{model}{'_var' if variation else ''}_s{seed}"
        folder = self.root / model if self.per_model else self.root
        path, n = folder / f"{base}.wav", 2
        while path.exists():
            path, n = folder / f"{base}-{n}.wav", n + 1
        return path

    def write(self, model: str, audio: np.ndarray, sample_rate: int, metadata: dict,
              variation: bool = False) -> Path:
        """Write atomically and return the absolute path of the new file."""
        # Held through the write (tens of ms) so that two threads never pick the same free name.
        with self._lock:
            path = self._new_path(model, int(metadata.get("seed", 0)), variation)
            return write_wav(path, audio, sample_rate, metadata, bits=self.bits, tmp_root=self.root)
