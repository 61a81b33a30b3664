"""The models a user has: the bundled defaults, then the models folder (a file there overrides a bundled one)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tad_daemon.kinds import MIXTURES, kinds_of
from tad_daemon.models.modelfile import SUFFIX, ModelConfig, read_config, read_weights, tensor_shapes
from tad_daemon.models.network import build_unet
from tad_daemon.names import NameError_, check_name, unknown_model

log = logging.getLogger(__name__)

BUNDLED = Path(__file__).parent / "bundled"


@dataclass(frozen=True)
class ModelEntry:
    """A model name and the file it stands for. A model of several kinds (a KindUNet, config.kind "kit")
    stands for one name per kind it makes, besides its own (see kind_entries)."""

    name: str
    path: Path
    config: ModelConfig
    kind: str = ""  # the drum kind this name makes; "": the file's (config.kind)

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", self.config.kind)

    @property
    def kinds(self) -> tuple[str, ...]:
        """What a model of several kinds is conditioned on for this name: its kind, the kinds a mixture
        (hat, perc) stands for, or (the file's own name) every kind it makes; () for a model of one kind."""
        made = self.config.offered
        if self.kind == "kit":
            return tuple(made)
        return tuple(k for k in kinds_of(self.kind) if k in made)

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def kind_entries(entry: ModelEntry) -> dict[str, ModelEntry]:
    """The names a model file stands for: its own, and for a model of every kind ("kit") one per kind it makes
    and per mixture of them (hat, perc), so generate, vary, the pool and the DAW sides use each as a model."""
    entries = {entry.name: entry}
    if entry.config.kind == "kit":
        made = entry.config.offered
        for kind in [*made, *(m for m, kinds in MIXTURES.items() if set(kinds) <= set(made))]:
            entries.setdefault(kind, ModelEntry(kind, entry.path, entry.config, kind))
    return entries


def model_name(path: Path) -> str | None:
    """The model name a file in a models folder stands for, or None if the file is not a model."""
    if path.name.startswith(".") or path.suffix != SUFFIX:
        return None
    try:
        return check_name(path.stem)
    except NameError_:
        return None


def read_entry(path: str | os.PathLike) -> ModelEntry:
    path = Path(path)
    name = model_name(path)
    if name is None:
        raise ValueError(f"{path.name}: not a model file name (NAME{SUFFIX}, letters, digits, - _ .)")
    return ModelEntry(name=name, path=path, config=read_config(path))


def scan(folders: list[Path]) -> tuple[dict[str, ModelEntry], list[str]]:
    """All models in `folders`, later folders overriding earlier ones, and in a folder a file's own name over
    a kind a model of several kinds makes; also the problems met, as messages."""
    found: dict[str, ModelEntry] = {}
    problems: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        files, kinds = {}, {}
        for path in sorted(folder.iterdir()):
            if model_name(path) is None:
                continue
            try:
                files[path.stem] = read_entry(path)
            except Exception as e:  # a broken file must not hide the others
                problems.append(f"{path}: {e}")
                log.warning("skipping model file %s: %s", path, e)
                continue
            kinds.update(kind_entries(files[path.stem]))
        found.update(kinds)
        found.update(files)
    return found, problems


def why_unknown(name: str, entries: dict[str, ModelEntry], problems: list[str]) -> str:
    """Why `name` is not among `entries`: the problem of its file if scan() skipped one by that name, else
    the models there are."""
    for problem in problems:
        path, _, reason = problem.partition(": ")
        if Path(path).stem == name:
            reason = reason.removeprefix(f"{path}: ")  # some readers name the file themselves
            return f"model {name!r} cannot be used: {path}: {reason}"
    return unknown_model(name, entries)


def model_folders(models_dir: str | os.PathLike | None, bundled: bool = True) -> list[Path]:
    """Where models are found, later folders overriding earlier ones."""
    folders = [BUNDLED] if bundled else []
    if models_dir:
        folders.append(Path(models_dir))
    return folders


MAX_PARAMETERS = 200_000_000  # the seed's architecture has 31.6 M; a header asking for more is refused


def check_architecture(entry: ModelEntry) -> None:
    """Before anything is allocated: the architecture in the file's header is built on torch's meta device
    (shapes only), its size checked against MAX_PARAMETERS and its shapes against the file's tensors. A
    1.5 kB file whose header asked for 2048 channels a level allocated 3.3 GB when built first."""
    with torch.device("meta"):
        net = build_unet(entry.config.arch)
    count = sum(p.numel() for p in net.parameters())
    if count > MAX_PARAMETERS:
        raise ValueError(f"{entry.path.name}: its header asks for {count / 1e6:.0f} M parameters, more than the "
                         f"{MAX_PARAMETERS / 1e6:.0f} M this daemon loads")
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    have = tensor_shapes(entry.path)
    if have != want:
        name = next(iter(sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))))
        raise ValueError(f"{entry.path.name}: its tensors do not match the architecture in its header "
                         f"({name}: file {have.get(name, 'missing')}, header {want.get(name, 'none')})")


def load_net(entry: ModelEntry, device: torch.device) -> nn.Module:
    """The entry's U-Net in fp32 on `device`, in eval mode (weights are read as tensors, never unpickled)."""
    check_architecture(entry)
    net = build_unet(entry.config.arch)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in read_weights(entry.path).items()}
    broken = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:  # it would "succeed" with silence or noise
        raise ValueError(f"{entry.path.name}: non-finite weights (NaN or inf) in {len(broken)} tensor(s), "
                         f"e.g. {broken[0]}")
    net.load_state_dict(weights, strict=True)
    return net.eval().requires_grad_(False).to(device)
