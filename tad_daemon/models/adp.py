"""Import audio-diffusion-pytorch without loading torchaudio.

audio-diffusion-pytorch 0.1.3 imports torchaudio at module load, but only its MelSpectrogram uses it, and
our models never build one. torchaudio is frozen at 2.11 and its compiled part does not load beside newer
torch (or may crash loading it), so rather than tie every user to an old torch we import the library with a
stand-in torchaudio that fails loudly if anything actually touches it. A torchaudio that is already imported
in this process is left alone and used.
"""

from __future__ import annotations

import sys
import types


def _stand_in() -> types.ModuleType:
    def unavailable(*_args, **_kwargs):
        raise RuntimeError("torchaudio is not used by tad-daemon and is not loaded")

    module = types.ModuleType("torchaudio")
    module.transforms = types.SimpleNamespace(Spectrogram=unavailable, MelScale=unavailable)
    return module


def _import():
    if "audio_diffusion_pytorch" in sys.modules or "torchaudio" in sys.modules:
        import audio_diffusion_pytorch

        return audio_diffusion_pytorch
    sys.modules["torchaudio"] = _stand_in()
    try:
        import audio_diffusion_pytorch
    finally:
        # Only audio_diffusion_pytorch.components keeps a reference; nobody else should see the stand-in.
        del sys.modules["torchaudio"]
    return audio_diffusion_pytorch


adp = _import()
UNetV0 = adp.UNetV0
VDiffusion = adp.VDiffusion
VSampler = adp.VSampler
DiffusionModel = adp.DiffusionModel
