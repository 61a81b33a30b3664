"""Real drum one-shots for realism checks: Debian's `sonic-pi-samples` (CC0), read where they are installed.

The class lists were picked by looking at each file's spectrogram: single struck sounds only, no loops, rolls,
tuned bells, sound effects or synth notes (see EXCLUDED).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tad_daemon.quality.classifier import DrumClassifier

SONIC_PI_DIR = Path(os.environ.get("TAD_SONIC_PI_SAMPLES", "/usr/share/sonic-pi/samples"))

REAL_CLASSES: dict[str, tuple[str, ...]] = {
    "kick": (
        "bd_808",
        "bd_ada",
        "bd_boom",
        "bd_fat",
        "bd_gas",
        "bd_haus",
        "bd_klub",
        "bd_mehackit",
        "bd_pure",
        "bd_sone",
        "bd_tek",
        "bd_zome",
        "bd_zum",
        "drum_bass_hard",
        "drum_bass_soft",
        "drum_heavy_kick",
        "elec_hollow_kick",
        "elec_soft_kick",
    ),
    "snare": (
        "sn_dolf",
        "sn_dub",
        "sn_generic",
        "sn_zome",
        "drum_snare_hard",
        "drum_snare_soft",
        "elec_filt_snare",
        "elec_hi_snare",
        "elec_lo_snare",
        "elec_mid_snare",
        "elec_snare",
    ),
    "hat": (
        "drum_cymbal_closed",
        "drum_cymbal_pedal",
        "drum_cymbal_open",
        "drum_cymbal_soft",
        "drum_cymbal_hard",
        "drum_splash_hard",
        "drum_splash_soft",
        "elec_cymbal",
    ),
    "perc": (
        "drum_tom_hi_hard",
        "drum_tom_hi_soft",
        "drum_tom_mid_hard",
        "drum_tom_mid_soft",
        "drum_tom_lo_hard",
        "drum_tom_lo_soft",
        "drum_cowbell",
        "elec_blup",
        "elec_bong",
        "elec_flip",
        "elec_fuzz_tom",
        "elec_ping",
        "elec_plip",
        "elec_pop",
        "elec_tick",
        "elec_twip",
        "elec_wood",
        "perc_snap",
        "perc_snap2",
        "tabla_dhec",
        "tabla_ghe1",
        "tabla_ghe2",
        "tabla_ghe3",
        "tabla_ghe4",
        "tabla_ghe5",
        "tabla_ghe6",
        "tabla_ghe7",
        "tabla_ghe8",
        "tabla_ke1",
        "tabla_ke2",
        "tabla_ke3",
        "tabla_na",
        "tabla_na_o",
        "tabla_na_s",
        "tabla_re",
        "tabla_tas1",
        "tabla_tas2",
        "tabla_tas3",
        "tabla_te1",
        "tabla_te2",
        "tabla_te_m",
        "tabla_te_ne",
        "tabla_tun1",
        "tabla_tun2",
        "tabla_tun3",
    ),
}

EXCLUDED: dict[str, str] = {
    "drum_roll": "a 6 s roll, not a one-shot",
    "elec_beep": "gated synth tone",
    "elec_blip": "gated synth tone",
    "elec_blip2": "gated synth tone",
    "elec_bell": "tuned bell",
    "elec_chime": "tuned chime",
    "elec_triangle": "tuned triangle",
    "perc_bell": "tuned bell",
    "perc_bell2": "tuned bell",
    "perc_till": "cash-register bell",
    "elec_twang": "plucked string",
    "glitch_perc1": "glitch texture of many hits",
    "glitch_perc2": "glitch texture of many hits",
    "glitch_perc3": "glitch texture of many hits",
    "glitch_perc4": "cinematic impact",
    "glitch_perc5": "cinematic impact",
    "perc_impact1": "cinematic impact",
    "perc_impact2": "cinematic impact",
    "perc_door": "sound effect",
    "perc_swash": "sound effect",
    "perc_swoosh": "sound effect",
}


BUNDLED_CLASSIFIER = (
    Path(__file__).resolve().parent.parent / "synth" / "reference" / "sonic_pi_classifier.npz"
)


def bundled_classifier() -> DrumClassifier:
    """The drum-class classifier trained on the CC0 references above (with augmentation), shipped with the
    package so that a quality report works where sonic-pi-samples is not installed.
    Made by `bench/synth_realism.py --save-classifier`."""
    return DrumClassifier.load(BUNDLED_CLASSIFIER)


def available(root: str | os.PathLike = SONIC_PI_DIR) -> dict[str, list[Path]]:
    """The class lists' files that exist under `root` (empty lists where the package is not installed)."""
    root = Path(root)
    return {
        c: [root / f"{n}.flac" for n in names if (root / f"{n}.flac").is_file()]
        for c, names in REAL_CLASSES.items()
    }


def load_real(root: str | os.PathLike = SONIC_PI_DIR) -> tuple[np.ndarray, list[str], list[str]]:
    """(n, 2, 32768) audio, class labels and file stems of the real references found under `root`."""
    from tad_daemon.audio.load import load_oneshot

    audio, labels, names = [], [], []
    for cls, paths in available(root).items():
        for p in paths:
            audio.append(load_oneshot(p))
            labels.append(cls)
            names.append(p.stem)
    return (np.stack(audio) if audio else np.zeros((0, 2, 32768), np.float32)), labels, names
