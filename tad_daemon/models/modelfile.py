"""Our model file: one `.safetensors` holding the EMA weights, with the model's JSON config in its header.

One file per model means a model appears, changes and disappears atomically (a rename), and weights and
config can never drift apart. Loading reads tensors only: nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tad_daemon.atomic import atomic_write
from tad_daemon.models.presets import CHANNELS, LENGTH, SAMPLE_RATE, downsampling
from tad_daemon.sampling import SCHEDULES

FORMAT = "tad-daemon-model/1"
SUFFIX = ".safetensors"


@dataclass
class ModelConfig:
    arch: dict
    preset: str | None = None
    kind: str = "custom"  # a kind or mixture of kinds.py, "kit" (a model of several kinds) or custom
    sample_rate: int = SAMPLE_RATE
    length: int = LENGTH
    channels: int = CHANNELS
    license: str = "unspecified"
    source: str = "trained"  # bundled, trained, imported: <where from>
    description: str = ""
    default_steps: int = 12
    default_sampler: str = "dpmpp-2m"
    default_schedule: str = ""  # for default_sampler; empty: the sampler's own (sampling.OWN_SCHEDULE)
    guidance: float = 1.0  # a model of several kinds: classifier-free guidance scale (1: none, as trained)
    training: dict = field(default_factory=dict)  # data summary, steps, base model, final loss, ...
    offers: list = field(default_factory=list)  # a model of several kinds: the kinds it offers (empty: all)

    def check(self) -> None:
        if self.length % downsampling(self.arch):
            raise ValueError(f"length {self.length} is not a multiple of the net's downsampling")
        if self.channels != CHANNELS:
            raise ValueError("only stereo models are supported")
        if stray := sorted(set(self.offers) - set(self.arch.get("kinds") or [])):
            raise ValueError(f"offers kinds the model does not make: {', '.join(stray)}")
        if self.default_schedule not in ("", *SCHEDULES):
            raise ValueError(f"unknown default_schedule {self.default_schedule!r} (known: {', '.join(SCHEDULES)})")

    @property
    def offered(self) -> list[str]:
        """The kinds a model of several kinds offers as model names: `offers` (those the judge passed), else
        every kind it makes; [] for a model of one kind."""
        return list(self.offers or self.arch.get("kinds") or [])

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        data = json.loads(text)
        if data.pop("format", None) != FORMAT:
            raise ValueError("not a tad-daemon model file (missing or unknown format tag)")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The config of a model file, from its header alone (cheap: no tensors are read)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "tad" not in meta:
        raise ValueError(f"{path}: no tad-daemon config in the file header")
    config = ModelConfig.from_json(meta["tad"])
    config.check()
    return config


def tensor_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Each weight's shape from the file's header alone (nothing is read or allocated), shared ones under
    each of their names."""
    with safe_open(str(path), framework="pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        aliases = json.loads((f.metadata() or {}).get("tad_shared", "{}"))
    for alias, name in aliases.items():
        if name in shapes:
            shapes.setdefault(alias, shapes[name])
    return shapes


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The weights by name, shared ones under each of their names again (see save_model)."""
    with safe_open(str(path), framework="pt") as f:
        aliases = json.loads((f.metadata() or {}).get("tad_shared", "{}"))
    weights = load_file(str(path), device="cpu")
    for alias, name in aliases.items():
        if name in weights and alias not in weights:
            weights[alias] = weights[name]
    return weights


def save_model(path: str | os.PathLike, weights: dict[str, torch.Tensor], config: ModelConfig,
               dtype: torch.dtype | None = None) -> Path:
    """Write a model file atomically (temporary file in the same folder, then rename).

    `dtype` (e.g. torch.float16 for shipped models) converts floating-point weights on the way out.
    """
    config.check()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors, aliases, first = {}, {}, {}
    for key, t in weights.items():
        # The U-Net uses one layer under two names: stored once, under its first name (read_weights restores
        # the other), so a file holds each parameter once.
        same = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        if same in first:
            aliases[key] = first[same]
            continue
        first[same] = key
        t = t.detach().cpu()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        tensors[key] = t.clone().contiguous()
    meta = {"tad": config.to_json(), **({"tad_shared": json.dumps(aliases)} if aliases else {})}
    # Dot-prefixed and without the model suffix: the models-folder watcher ignores it while it grows.
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
