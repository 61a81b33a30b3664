"""Write a synthetic training corpus: a folder per class of 24-bit 44.1 kHz stereo WAV files."""

from __future__ import annotations

import os
from pathlib import Path

import soundfile as sf

from tad_daemon.atomic import atomic_write


def write_corpus(
    out_dir: str | os.PathLike, per_class: int, seed: int, sample_rate: int = 44100, length: int = 32768
) -> list[Path]:
    """`per_class` one-shots of every class into out_dir/<class>/<class>-<variant>-s<seed>-<i>.wav.

    Deterministic for `seed`; each file is written under a temporary name and renamed into place.
    """
    from tad_daemon.synth import CLASSES, item_rng, pick_variant, render

    paths = []
    for kind in CLASSES:
        folder = Path(out_dir) / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rng = item_rng(seed, i, kind)
            variant = pick_variant(kind, rng)
            audio = render(kind, rng, variant, sample_rate, length)
            path = folder / f"{kind}-{variant}-s{seed}-{i:05d}.wav"
            atomic_write(path, lambda tmp, a=audio: sf.write(tmp, a.T, sample_rate, subtype="PCM_24", format="WAV"))
            paths.append(path)
    return paths
