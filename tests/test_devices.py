"""Device choices made explicit, tested with torch's CUDA and MPS checks mocked: which device `auto` takes,
why an unavailable MPS is refused, the precision and backend on MPS, the fallback to fp32 when a reduced
precision fails on a GPU, and the MPS CPU fallback set before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tad_daemon.engine import Engine, checked_precision, pick_backend
from tad_daemon.models.device import autocast_dtype, pick_device
from tad_daemon.models.registry import read_entry
from tad_daemon.training.run import amp_dtype
from tests.conftest import REPO, make_model


@pytest.fixture
def gpus(monkeypatch):
    """Set which GPUs torch believes it has: gpus(cuda=..., mps=..., mps_built=...)."""

    def set_(cuda: bool = False, mps: bool = False, mps_built: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        monkeypatch.setattr(torch.backends.mps, "is_built", lambda: mps_built)

    return set_


def test_auto_takes_cuda_then_mps_then_the_cpu(gpus):
    for cuda, mps, want in ((True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        gpus(cuda=cuda, mps=mps)
        assert pick_device("auto").type == want


def test_an_unavailable_mps_is_refused_with_the_reason(gpus):
    gpus(mps=False, mps_built=False)
    with pytest.raises(RuntimeError, match="built without MPS"):
        pick_device("mps")
    gpus(mps=False, mps_built=True)
    with pytest.raises(RuntimeError, match="macOS 12.3"):
        pick_device("mps")
    gpus(cuda=False)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        pick_device("cuda")


def test_on_mps_the_engine_runs_torch_in_fp16_without_graphs_and_trains_in_fp32(gpus, tmp_path):
    gpus(mps=True)
    mps = pick_device("mps")
    assert autocast_dtype(mps, "auto") == torch.float16 and autocast_dtype(mps, "fp32") is None
    assert pick_backend("auto", mps, tmp_path) == ("torch", "ONNX Runtime is used on the CPU only, not on mps")
    engine = Engine("mps", backend="auto", cache_dir=tmp_path)  # nothing runs on the device yet
    assert (engine.backend, engine.cuda_graphs, engine.chunk) == ("torch", False, 16)
    assert amp_dtype(mps, "auto") is None  # training: fp32 (no loss scaling on MPS)


class Flaky(torch.nn.Module):
    """Fine in fp32; under autocast it overflows (`nan`) or fails (`raise`)."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how

    def forward(self, x, t):
        if torch.is_autocast_enabled(x.device.type):
            if self.how == "raise":
                raise TypeError("BFloat16 is not supported on MPS")
            if self.how == "nan":
                return x * float("nan")
        return x


def test_a_reduced_precision_that_fails_on_the_gpu_falls_back_to_fp32(tmp_path, caplog):
    entry = read_entry(make_model(tmp_path, "m", length=2048))
    cpu = torch.device("cpu")  # the check itself is device-agnostic; the engine runs it on GPUs only
    assert checked_precision(Flaky("ok"), entry, cpu, torch.bfloat16, "why") == (torch.bfloat16, "why")
    assert checked_precision(Flaky("nan"), entry, cpu, torch.bfloat16, "") == (
        None, "bf16 gave non-finite outputs on cpu; fp32")
    dtype, why = checked_precision(Flaky("raise"), entry, cpu, torch.float16, "")
    assert dtype is None and why == "fp16 failed (BFloat16 is not supported on MPS) on cpu; fp32"
    assert sum("running in fp32" in r.message for r in caplog.records) == 2


def test_the_mps_cpu_fallback_is_set_before_torch_loads_on_a_mac():
    code = ("import os, sys; os.environ.pop('PYTORCH_ENABLE_MPS_FALLBACK', None); sys.platform = '{}'; "
            "import tad_daemon; print(os.environ.get('PYTORCH_ENABLE_MPS_FALLBACK'), 'torch' in sys.modules)")
    for platform, want in (("darwin", "1 False"), ("linux", "None False")):
        out = subprocess.run([sys.executable, "-c", code.format(platform)], capture_output=True, text=True,
                             cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
        assert out.stdout.split() == want.split(), out.stderr
