"""The upstream project's published models (Tiny Audio Diffusion's PyTorch Lightning checkpoints) as our model
files (in prose "the seed" is that project: its code and models are what tad-daemon grew from).

A checkpoint's `state_dict` holds the training module: `model.*` (the DiffusionModel, its U-Net reachable as
`model.net`, `model.diffusion.net` and `model.sampler.net`), and `model_ema.*`, an EMA wrapper holding
`ema_model` (a copy of the whole DiffusionModel) and `online_model`. We keep the EMA U-Net,
`model_ema.ema_model.net.*`: the weights the seed itself samples with.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from tad_daemon.models.modelfile import ModelConfig, save_model
from tad_daemon.models.network import build_unet
from tad_daemon.models.presets import PRESETS, architecture
from tad_daemon.models.safe_load import CheckpointError, load_checkpoint

EMA_PREFIX = "model_ema.ema_model.net."
LICENSE = "CC-BY-NC-4.0 (training data)"
LICENSE_NOTE = ("Trained on drum samples licensed CC BY-NC 4.0 (attribution, non-commercial): check that licence "
                "before using sounds made with this model commercially.")


@dataclass(frozen=True)
class PublishedModel:
    key: str  # what `tad-daemon models pull` takes
    repo: str
    filename: str
    kind: str
    name: str  # installed under this name; never a bundled model's name

    @property
    def source(self) -> str:
        return f"imported: {self.repo} {self.filename}"


PUBLISHED = {m.key: m for m in (
    PublishedModel("kicks", "crlandsc/tiny-audio-diffusion-kicks", "kicks_v7.ckpt", "kick", "kick-seed"),
    PublishedModel("snares", "crlandsc/tiny-audio-diffusion-snares", "snares_v0.ckpt", "snare", "snare-seed"),
    PublishedModel("hihats", "crlandsc/tiny-audio-diffusion-hihats", "hihats_v2.ckpt", "hat", "hat-seed"),
    PublishedModel("percussion", "crlandsc/tiny-audio-diffusion-percussion", "percussion_v0.ckpt", "perc", "perc-seed"),
)}


def by_filename(filename: str) -> PublishedModel | None:
    return next((m for m in PUBLISHED.values() if m.filename == filename), None)


def ema_unet_weights(checkpoint) -> dict[str, torch.Tensor]:
    """The EMA U-Net's tensors from a loaded Lightning checkpoint, under our U-Net's key names."""
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError("no state_dict in it: not a PyTorch Lightning checkpoint")
    weights = {}
    for key, value in state.items():
        if isinstance(key, str) and key.startswith(EMA_PREFIX):
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{key} is not a tensor")
            weights[key[len(EMA_PREFIX):]] = value
    if not weights:
        found = sorted({".".join(k.split(".")[:2]) for k in state if isinstance(k, str)})
        raise CheckpointError(f"no EMA U-Net weights ({EMA_PREFIX}*) in its state_dict, which holds "
                              f"{', '.join(found[:8]) or 'nothing'}: not a Tiny Audio Diffusion checkpoint")
    return weights


def upstream_architecture(preset: str) -> dict:
    """A preset as the seed's code builds it: a plain UNetV0, without our position channel."""
    arch = architecture(preset)
    arch.pop("position", None)
    return arch


@cache
def _shapes(preset: str) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):  # names and shapes only, no memory
        net = build_unet(upstream_architecture(preset))
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def match_preset(weights: dict[str, torch.Tensor]) -> str:
    """The preset whose plain U-Net has exactly these tensor names and shapes (the seed's: tiny-audio-diffusion).

    Seed checkpoints hold the seed's UNetV0, so presets are matched as upstream_architecture builds them.
    """
    got = {k: tuple(v.shape) for k, v in weights.items()}
    misses = []
    for preset in PRESETS:
        want = _shapes(preset)
        missing = want.keys() - got.keys()
        extra = got.keys() - want.keys()
        shaped = [k for k in want.keys() & got.keys() if want[k] != got[k]]
        if not (missing or extra or shaped):
            return preset
        example = sorted(missing)[:1] or sorted(extra)[:1] or [f"{shaped[0]} {got[shaped[0]]} != {want[shaped[0]]}"]
        misses.append((len(missing) + len(extra) + len(shaped), preset, len(missing), len(extra), len(shaped),
                       example[0]))
    _, preset, missing, extra, shaped, example = min(misses)
    raise CheckpointError(f"its U-Net matches no known architecture (closest: {preset}, with {missing} tensors "
                          f"missing, {extra} unexpected and {shaped} of another shape, e.g. {example})")


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _facts(checkpoint: dict) -> dict:
    """What the checkpoint says about its training, for the model card (plain values only)."""
    facts = {k: checkpoint[k] for k in ("epoch", "global_step", "pytorch-lightning_version")
             if isinstance(checkpoint.get(k), (int, str))}
    step = checkpoint["state_dict"].get("model_ema.step")
    if isinstance(step, torch.Tensor) and step.numel() == 1:
        facts["ema_updates"] = int(step.item())
    return facts


def import_checkpoint(checkpoint_path: str | os.PathLike, dest: str | os.PathLike, *, kind: str, source: str,
                      license: str, description: str = "", sha256: str | None = None) -> Path:
    """Convert a Tiny Audio Diffusion checkpoint's EMA U-Net into the model file `dest` (written atomically).

    Nothing in the checkpoint is executed (see safe_load); its tensors are read through a memory map, so
    the peak memory is about two copies of the U-Net, not the whole 500 MB file. `sha256`: the file's,
    when the caller has already verified it (a download); otherwise the file's zip checksums are checked.
    """
    checkpoint = load_checkpoint(checkpoint_path, check_crc=sha256 is None)  # a known sha256 was checked already
    weights = ema_unet_weights(checkpoint)
    preset = match_preset(weights)
    for key, t in weights.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{EMA_PREFIX}{key} holds NaN or infinite values")
    training = {"checkpoint": Path(checkpoint_path).name, "checkpoint_sha256": sha256 or file_sha256(checkpoint_path),
                "weights": "EMA", **_facts(checkpoint)}
    config = ModelConfig(arch=upstream_architecture(preset), preset=preset, kind=kind, license=license, source=source,
                         description=description, training=training)
    return save_model(dest, weights, config)
