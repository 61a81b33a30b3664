"""Named U-Net architectures. A model file stores its full architecture, so presets only name starting points."""

from __future__ import annotations

from tad_daemon.limits import CHANNELS, LENGTH, SAMPLE_RATE  # noqa: F401  (the presets' one-shot shape)

PRESETS: dict[str, dict] = {
    # The seed's exact architecture (tiny-audio-diffusion, exp/drum_diffusion.yaml): 31.57 M parameters.
    "tiny-audio-diffusion": dict(
        channels=[32, 32, 64, 64, 128, 128, 256, 256],
        factors=[1, 2, 2, 2, 2, 2, 2, 2],
        items=[2, 2, 2, 2, 2, 2, 4, 4],
        attentions=[0, 0, 0, 0, 0, 1, 1, 1],
        attention_heads=8,
        attention_features=64,
    ),
    # For CPU-only users and CPU training: 6.1 M parameters, about the cost per step of a model that
    # downsamples at once, but with a first level at full resolution like the seed's: a U-Net whose first
    # block halves the rate cannot easily pass full-band noise through, and trained to a hissing noise floor
    # (measured: 5 dB worse after the same steps). Attention only on the two coarsest levels (256 and 128
    # positions), and a position channel (see network.PositionalUNet).
    "cpu-small": dict(
        channels=[8, 8, 16, 16, 32, 32, 64, 64, 128],
        factors=[1, 2, 2, 2, 2, 2, 2, 2, 2],
        items=[1, 2, 2, 2, 2, 2, 2, 2, 2],
        attentions=[0, 0, 0, 0, 0, 0, 0, 1, 1],
        attention_heads=8,
        attention_features=32,
        position=True,
    ),
    # Smallest useful size (2.9 M): the bundled defaults (trained on a 2-core CPU, where it takes 1.6x fewer
    # seconds per step than cpu-small), quick experiments, very old laptops.
    "cpu-micro": dict(
        channels=[8, 8, 8, 16, 16, 32, 32, 64],
        factors=[1, 2, 2, 2, 2, 2, 2, 2],
        items=[1, 1, 1, 1, 1, 1, 2, 2],
        attentions=[0, 0, 0, 0, 0, 0, 1, 1],
        attention_heads=4,
        attention_features=16,
        position=True,
    ),
}


def architecture(preset: str) -> dict:
    """A copy of a preset's U-Net arguments; raises KeyError with the known names."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    return {k: list(v) if isinstance(v, list) else v for k, v in PRESETS[preset].items()}


def downsampling(arch: dict) -> int:
    """Total downsampling of an architecture: input lengths must be a multiple of it."""
    total = 1
    for f in arch["factors"]:
        total *= f
    return total
