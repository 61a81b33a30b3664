"""The drum kinds a producer reaches for, as the kit model names them. Torch-free: the CLI and the OSC
client import it.

Each kind is the sounds of some General MIDI drum-map notes (bench/real_drums.py files every rendered note
under one). `hat` and `perc`, the names of the first bundled models, keep their meaning: `hat` is the closed
hi-hat, `perc` any of the drum and wood percussion that is neither kick, snare nor cymbal.
"""

from __future__ import annotations

KINDS = ("kick", "snare", "rim", "clap", "closed-hat", "open-hat", "tom", "crash", "ride", "tambourine",
         "cowbell", "shaker", "hand-drum", "wood")

# General MIDI drum-map notes of each kind (35-81; 27-34 and 82-87 are the GS extensions most kits carry).
GM_NOTES = {"kick": (35, 36), "snare": (38, 40), "rim": (31, 37), "clap": (28, 39), "closed-hat": (42, 44),
            "open-hat": (46,), "tom": (41, 43, 45, 47, 48, 50), "crash": (49, 52, 55, 57), "ride": (51, 53, 59),
            "tambourine": (54,), "cowbell": (56, 67, 68), "shaker": (69, 70, 82),
            "hand-drum": (60, 61, 62, 63, 64, 65, 66, 86, 87), "wood": (75, 76, 77, 85)}

# A name that stands for several kinds: each one-shot is one of them, the seed choosing which.
MIXTURES = {"hat": ("closed-hat",), "perc": ("tom", "hand-drum", "cowbell", "wood")}
# The kinds a user may give a model (--kind of train-local and models import): a kind, a mixture, or none.
MODEL_KINDS = (*KINDS, *MIXTURES, "custom")

# /tad/kit without a list: a fixed one, as a client counts the replies to come by the names it sent.
KIT_DEFAULT = ("kick", "snare", "hat", "perc")
# `tad-daemon kit` without a list: what a beat needs, each piece the first of its names there is a model of
# (the device and REAPER choose the same way); with the bundled models alone: kick, snare, hat, perc.
KIT_PIECES = (("kick",), ("snare",), ("closed-hat", "hat"), ("open-hat",), ("clap",), ("tom", "perc"))


def kit_default(available) -> tuple[str, ...]:
    """The models of "new kit" among the model names `available`: one per piece of KIT_PIECES that has one."""
    return tuple(next(n for n in piece if n in available) for piece in KIT_PIECES if any(n in available for n in piece))


def parse_blend(text: str) -> dict[str, float]:
    """A blend as it is written, "tom:0.3" or "tom:0.3,clap:0.2": each kind mixed in by its weight (the rest is
    the model's own kind); ValueError with the reason."""
    blend: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        kind, sep, weight = part.partition(":")
        try:
            value = float(weight)
        except ValueError:
            value = float("nan")
        if not sep or not kind.strip() or not 0 < value <= 1:
            raise ValueError(f"blend: expected KIND:WEIGHT with a weight above 0 and at most 1, e.g. tom:0.3, "
                             f"not {part[:40]!r}")
        if kind.strip() in blend:
            raise ValueError(f"blend: {kind.strip()!r} given twice")
        blend[kind.strip()] = value
    if sum(blend.values()) > 1 + 1e-9:
        raise ValueError("blend: the weights add up to more than 1")
    return blend


def kinds_of(name: str) -> tuple[str, ...]:
    """The kinds a name stands for: itself, or a mixture's; empty when it is neither."""
    return MIXTURES.get(name, (name,) if name in KINDS else ())
