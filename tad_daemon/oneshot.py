"""A generated one-shot before post-processing, with everything needed to make it again (its metadata)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from tad_daemon import __version__


@dataclass
class OneShot:
    """A generated sound before post-processing, with everything needed to make it again."""

    audio: np.ndarray  # (channels, frames) float32
    model: str
    seed: int
    sampler: str
    schedule: str
    steps: int
    sample_rate: int
    made: str = "generate"  # generate, vary, morph, tweak, repaint, kit or encode: the operation that made it
    strength: float | None = None  # vary, repaint: how far from the source
    source: str | None = None  # vary, repaint: the source file; morph: the first one
    backend: str | None = None  # torch or onnx (their outputs differ by float rounding only)
    precision: str | None = None  # fp32, or the autocast dtype (bf16, fp16)
    source_b: str | None = None  # morph: the second source file
    position: float | None = None  # morph: 0 is the first source, 1 the second
    amount: float | None = None  # tweak: how far from the seed's own sound
    variant: int | None = None  # tweak: which of the seed's relatives
    turns: str | None = None  # tweak: the turns of the seed's noise that make this sound (format_turns)
    start: float | None = None  # repaint: the region remade, in seconds
    end: float | None = None
    folder: str | None = None  # kit, layers: the set's folder, under the sample folder (kits/..., layers/...)
    tuning: dict | None = None  # --tune: what was measured and what was done
    drum: str | None = None  # a model of several kinds: the kind it made
    velocity: float | None = None  # how hard the hit (0..1); None: a full hit, as the model makes it
    blend: dict | None = None  # kinds mixed in, by weight
    take: int | None = None  # layers: the round-robin take (0: the seed's own sound)

    def metadata(self) -> dict:
        meta = {k: v for k, v in asdict(self).items() if k not in ("audio", "made") and v is not None}
        meta["kind"] = self.made  # the key files have always carried (REAPER reads it)
        meta["software"] = f"tad-daemon {__version__}"
        return meta

    def file_label(self) -> str:
        """What the file name says after the time stamp (the kit's folder says the rest)."""
        labels = {"generate": f"{self.model}_s{self.seed}", "vary": f"{self.model}_var_s{self.seed}",
                  "repaint": f"{self.model}_repaint_s{self.seed}", "kit": self.model, "encode": f"{self.model}_encoded",
                  "layers": f"{self.model}_v{round(127 * (self.velocity or 1)):03d}_rr{(self.take or 0) + 1}",
                  "tweak": f"{self.model}_tweak_s{self.seed}_a{self.amount or 0:.2f}_{self.variant}",
                  "morph": f"{self.model}_morph_p{self.position or 0:.2f}"}
        return labels[self.made]


def velocity_db(velocity: float | None) -> float:
    """The level of a hit of `velocity` (0..1) relative to a full one: 40 log10(velocity), the curve the
    General MIDI soundfonts' velocity layers follow (-18 dB at MIDI velocity 45, -9 at 75, -3 at 105; the
    corpus's layers, bench/real_drums.py)."""
    return 0.0 if velocity is None else 40 * math.log10(max(velocity, 1e-3))
