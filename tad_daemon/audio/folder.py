"""The sample folder: one root, a subfolder per model, file names that sort by time and say what they are."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import numpy as np

from tad_daemon.audio.wav import write_wav
from tad_daemon.names import check_name


def stamp() -> str:
    """Now, as file names start: sorts by time, to the millisecond."""
    now = datetime.now()
    return now.strftime("%Y%m%d-%H%M%S-") + f"{now.microsecond // 1000:03d}"


def kit_name(seed: int) -> str:
    return f"{stamp()}_kit_s{seed}"


SETS = ("kits", "layers")  # the folders sets of one-shots go into: a kit's, a layer set's


class SampleFolder:
    """Writes one-shots as `<root>/<model>/<YYYYmmdd-HHMMSS-mmm>_<label>.wav`, the label saying what made it
    (`kick_s12`, `kick_var_s12`, `kick_tweak_s12_a0.10_0`, `kick_morph_p0.50`, `kick_repaint_s12`), and a set's
    files (a kit, a layer set) as `<root>/kits/<kit>/<model>.wav`, `<root>/layers/<set>/<model>_v064_rr1.wav`.

    With `per_model=False` (a folder named on the command line) the files go straight into the root, and a set
    into `<root>/<set>`.
    """

    def __init__(self, root: str | Path, bits: int = 24, per_model: bool = True):
        self.root = Path(root).expanduser().resolve()
        self.bits = bits
        self.per_model = per_model
        self._lock = threading.Lock()

    def _new_path(self, model: str, label: str, group: str | None) -> Path:
        check_name(model)
        if group:
            kind, _, name = group.partition("/")
            if kind not in SETS:
                raise ValueError(f"{group!r}: a set of one-shots goes into one of {', '.join(SETS)}")
            folder, base = (self.root / kind if self.per_model else self.root) / check_name(name, "set name"), label
        else:
            folder, base = self.root / model if self.per_model else self.root, f"{stamp()}_{label}"
        path, n = folder / f"{base}.wav", 2
        while path.exists():
            path, n = folder / f"{base}-{n}.wav", n + 1
        return path

    def write(self, model: str, audio: np.ndarray, sample_rate: int, metadata: dict, label: str,
              group: str | None = None) -> Path:
        """Write atomically and return the absolute path of the new file (`group`: a set's folder, e.g.
        "kits/NAME")."""
        # Held through the write (tens of ms) so that two threads never pick the same free name.
        with self._lock:
            path = self._new_path(model, label, group)
            return write_wav(path, audio, sample_rate, metadata, bits=self.bits, tmp_root=self.root)
