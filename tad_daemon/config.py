"""Configuration: built-in defaults, then the TOML file, then TAD_DAEMON_* variables, then command-line options.

Keys are dotted ("server.port"); in the TOML file they are sections (`[server]` `port = 9310`). No torch
import here: the OSC client reads the configuration too.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from tad_daemon.training.settings import CHECKPOINT_MINUTES, TrainConfig, defaults

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

APP = "tad-daemon"


def _home() -> Path | None:
    """TAD_DAEMON_HOME puts every default folder under one directory (portable installs, tests)."""
    home = os.environ.get("TAD_DAEMON_HOME")
    return Path(home).expanduser() if home else None


def default_config_file() -> Path:
    if os.environ.get("TAD_DAEMON_CONFIG"):
        return Path(os.environ["TAD_DAEMON_CONFIG"]).expanduser()
    home = _home()
    return (home if home else Path(platformdirs.user_config_dir(APP, appauthor=False))) / "config.toml"


def _defaults() -> dict:
    home = _home()
    data = home if home else Path(platformdirs.user_data_dir(APP, appauthor=False))
    samples = home / "samples" if home else Path(platformdirs.user_music_dir()) / APP
    return {
        "server.host": "127.0.0.1",
        "server.port": 9310,
        "server.allow": [],  # client IPs allowed when listening beyond loopback
        "server.allow_remote": False,  # listening beyond loopback needs this too (and server.allow)
        "server.queue": 32,  # sound requests waiting at most; more are answered "busy"
        "paths.samples": str(samples),
        "paths.models": str(data / "models"),
        "paths.data": str(data),  # job queue, checkpoints, training runs
        "paths.logs": str(data / "logs"),
        "paths.cache": str(data / "cache"),  # derived files, safe to delete (ONNX exports of the models)
        "models.bundled": True,  # the bundled defaults (kick, snare, hat, perc); a file in paths.models still wins
        "device.device": "auto",  # auto, cpu, cuda, cuda:1, mps
        "device.precision": "auto",  # auto, fp32, fp16, bf16
        "device.threads": 0,  # 0: torch's default
        "device.backend": "auto",  # auto (ONNX Runtime on the CPU where installed), torch, onnx
        "device.cuda_graphs": True,  # replay each model's forward from a CUDA graph per batch size (CUDA only)
        "generate.steps": 0,  # 0: the model's own default
        "generate.sampler": "",  # empty: the model's own default
        "generate.bits": 24,
        "generate.max_count": 64,
        "generate.batch": 0,  # queued requests for one model merged into batches this big; 0: engine.batch_limits
        "post.clicks": True,  # bridge isolated 1-3 sample spikes (clicks) that no recorded drum has
        "post.floor": True,  # gate a stationary noise floor in the tail (never a drum's own decay)
        "post.dc": True,
        "post.tail": "gate",
        "post.normalize": "peak",
        "post.peak_db": -1.0,
        "post.loudness_lufs": -16.0,
        "pool.size": 4,  # ready one-shots kept per model (an audition: docs/benchmarks.md); 0 turns the pool off
        "training.night_start": "01:00",  # queued fine-tunes run between these local times (may wrap midnight)
        "training.night_end": "07:00",
        "training.steps": 2000,  # optimiser steps of a job queued without a step count
        "training.preset": defaults(TrainConfig)["preset"],  # architecture of a job without a base model
        "training.device": "",  # empty: device.device
        "training.threads": 0,  # 0: half the CPU cores
        "training.pause_for_generation": "auto",  # auto: when training runs on the CPU; always; never
        "training.checkpoint_minutes": CHECKPOINT_MINUTES,  # also checkpoint this often, whatever the step count
        "training.inbox": False,  # watch <data>/inbox/<model>/ and queue a fine-tune when sounds arrive there
    }


DEFAULTS = _defaults()


class ConfigError(ValueError):
    pass


@dataclass
class Config:
    values: dict
    sources: dict = field(default_factory=dict)

    def __getitem__(self, key: str):
        return self.values[key]

    def path(self, key: str) -> Path:
        return Path(self.values[key]).expanduser()


def _coerce(key: str, value, default):
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
        elif isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if isinstance(default, list):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return [str(v) for v in value]
        raise ConfigError(f"{key}: expected a list, got {value!r}")
    try:
        return type(default)(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {type(default).__name__}, got {value!r}") from None


def _flatten(table: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in table.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def load_config(file: str | os.PathLike | None = None, overrides: dict | None = None) -> Config:
    """The effective configuration and where each value came from."""
    defaults = _defaults()
    values, sources = dict(defaults), dict.fromkeys(defaults, "default")

    def apply(key: str, value, source: str) -> None:
        if key not in defaults:
            raise ConfigError(f"unknown setting {key!r} in {source}")
        values[key] = _coerce(key, value, defaults[key])
        sources[key] = source

    path = Path(file).expanduser() if file else default_config_file()
    if path.is_file():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from None
        for key, value in _flatten(table).items():
            apply(key, value, str(path))
    elif file:
        raise ConfigError(f"{path}: no such configuration file")
    for key in defaults:
        env = "TAD_DAEMON_" + key.upper().replace(".", "_")
        if env in os.environ:
            apply(key, os.environ[env], f"environment {env}")
    for key, value in (overrides or {}).items():
        if value is not None:
            apply(key, value, "command line")
    return Config(values, sources)
