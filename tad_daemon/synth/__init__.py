"""Procedural drum synthesiser: the training corpus of the bundled default models.

    from tad_daemon.synth import CLASSES, VARIANTS, render, render_batch, write_corpus

`render(kind, rng)` gives one float32 (2, length) one-shot: onset within the first ~2 ms, peak -1..-6 dBFS,
faded to silence at the end. What each class and variant models: docs/synth.md.
"""

from __future__ import annotations

import numpy as np

from tad_daemon.limits import DRUM_CLASSES
from tad_daemon.synth import hats, kick, perc, snare
from tad_daemon.synth.corpus import write_corpus

CLASSES = DRUM_CLASSES
_MODULES = {"kick": kick, "snare": snare, "hat": hats, "perc": perc}
VARIANTS: dict[str, tuple[str, ...]] = {k: m.VARIANTS for k, m in _MODULES.items()}


def _check(kind: str, variant: str | None) -> None:
    if kind not in _MODULES:
        raise ValueError(f"unknown drum kind {kind!r}; choose one of {', '.join(CLASSES)}")
    if variant is not None and variant not in VARIANTS[kind]:
        raise ValueError(f"unknown {kind} variant {variant!r}; choose one of {', '.join(VARIANTS[kind])}")


def pick_variant(kind: str, rng: np.random.Generator) -> str:
    """A random variant of `kind`, drawn with the class's mixing weights (uniform where it has none)."""
    _check(kind, None)
    module = _MODULES[kind]
    weights = getattr(module, "WEIGHTS", None)
    p = None if weights is None else np.asarray(weights) / np.sum(weights)
    return str(rng.choice(module.VARIANTS, p=p))


def render(
    kind: str,
    rng: np.random.Generator,
    variant: str | None = None,
    sample_rate: int = 44100,
    length: int = 32768,
) -> np.ndarray:
    """One one-shot of `kind` (a random variant unless given): float32 array of shape (2, length)."""
    _check(kind, variant)
    if sample_rate < 8000 or length < 256:
        raise ValueError("sample_rate must be >= 8000 and length >= 256")
    if variant is None:
        variant = pick_variant(kind, rng)
    return _MODULES[kind].render(variant, rng, sample_rate, length)


def item_rng(seed: int, index: int, kind: str = "") -> np.random.Generator:
    """The generator of item `index` of a batch: each item depends only on (seed, kind, index)."""
    salt = CLASSES.index(kind) if kind in CLASSES else 0
    return np.random.default_rng([seed, salt, index])


def render_batch(
    kind: str, n: int, seed: int, variant: str | None = None, sample_rate: int = 44100, length: int = 32768
) -> np.ndarray:
    """(n, 2, length) float32 one-shots, deterministic for `seed` (item i is the same for any n > i)."""
    _check(kind, variant)
    out = np.zeros((n, 2, length), dtype=np.float32)
    for i in range(n):
        out[i] = render(kind, item_rng(seed, i, kind), variant, sample_rate, length)
    return out


__all__ = ["CLASSES", "VARIANTS", "pick_variant", "render", "render_batch", "write_corpus"]
