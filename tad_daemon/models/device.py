"""Which device runs the models, and at which precision."""

from __future__ import annotations

import torch


def pick_device(requested: str = "auto") -> torch.device:
    """'auto' takes CUDA, then Apple's MPS, then the CPU; anything else is passed to torch as is."""
    if requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA was asked for but this torch has no CUDA device")
        if device.type == "mps" and not torch.backends.mps.is_available():
            why = ("this torch was built without MPS" if not torch.backends.mps.is_built()
                   else "it needs macOS 12.3 or later on a Mac with an Apple or AMD GPU")
            raise RuntimeError(f"MPS was asked for but is not available: {why}; use device cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for inference on `device` (None: plain fp32).

    'auto': bf16 on CUDA GPUs that have it, else fp16; fp16 on MPS; fp32 on a CPU, where the engine times
    bf16 against fp32 per model instead (it pays off on some CPUs and costs 10-30x on others).
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r} (auto, fp32, fp16, bf16)")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return None
