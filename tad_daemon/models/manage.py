"""Changing the models folder: where a new model goes, removing and renaming models, describing one.

Each change is one atomic file operation (a rename or an unlink) inside the models folder, so the running
daemon's folder watcher sees a model appear or disappear whole. Bundled models live inside the package and
are never changed; their names stay reserved, so a model of ours never hides one by accident.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tad_daemon.limits import DRUM_CLASSES
from tad_daemon.models.modelfile import SUFFIX
from tad_daemon.models.registry import BUNDLED, model_folders, model_name, scan
from tad_daemon.names import NameError_, check_name, unknown_model

BUNDLED_NAMES = DRUM_CLASSES  # the defaults' fixed names
CARD = ".md"  # a model card may sit beside a model file: NAME.md


class ModelsError(ValueError):
    """A request the models folder cannot honour (bad or taken name, unknown or bundled model)."""


def bundled_names() -> set[str]:
    found = {model_name(p) for p in BUNDLED.glob(f"*{SUFFIX}")} if BUNDLED.is_dir() else set()
    return (found - {None}) | set(BUNDLED_NAMES)


def _path(models_dir: str | os.PathLike, name: str) -> Path:
    try:
        check_name(name)
    except NameError_ as e:
        raise ModelsError(str(e)) from None
    return Path(models_dir) / f"{name}{SUFFIX}"


def new_model_path(models_dir: str | os.PathLike, name: str, force: bool = False) -> Path:
    """The file for a new model called `name`; refuses bundled names and, unless `force`, taken ones."""
    path = _path(models_dir, name)
    if name in bundled_names():
        raise ModelsError(f"'{name}' is the name of a bundled model; choose another name")
    if path.exists() and not force:
        raise ModelsError(f"a model called '{name}' already exists ({path}); use --force to replace it")
    return path


def _existing(models_dir: str | os.PathLike, name: str, doing: str) -> Path:
    path = _path(models_dir, name)
    if path.is_file():
        return path
    if name in bundled_names():
        raise ModelsError(f"'{name}' is bundled with tad-daemon and cannot be {doing}")
    known = sorted(scan([Path(models_dir)])[0])
    raise ModelsError(f"no model '{name}' in {models_dir}" + (f" (there: {', '.join(known)})" if known else ""))


def remove(models_dir: str | os.PathLike, name: str) -> Path:
    path = _existing(models_dir, name, "removed")
    path.unlink()
    path.with_suffix(CARD).unlink(missing_ok=True)
    return path


def rename(models_dir: str | os.PathLike, old: str, new: str, force: bool = False) -> Path:
    src = _existing(models_dir, old, "renamed")
    dst = new_model_path(models_dir, new, force)
    if src == dst:
        raise ModelsError(f"'{old}' already has that name")
    os.replace(src, dst)  # atomic; new_model_path has refused a taken name unless forced
    if src.with_suffix(CARD).is_file():
        os.replace(src.with_suffix(CARD), dst.with_suffix(CARD))
    return dst


def describe(models_dir: str | os.PathLike | None, name: str) -> dict:
    """Everything known about an installed model: file, size, its full config, and its card if it has one."""
    entries, _ = scan(model_folders(models_dir))
    if name not in entries:
        raise ModelsError(unknown_model(name, entries))
    entry = entries[name]
    info = {"name": name, "file": str(entry.path), "size_bytes": entry.size_bytes,
            "bundled": entry.path.parent == BUNDLED, "config": json.loads(entry.config.to_json())}
    card = entry.path.with_suffix(CARD)
    if card.is_file():
        info["card"] = card.read_text(encoding="utf-8")
    return info
