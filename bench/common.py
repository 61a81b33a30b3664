"""What the benchmarks share: the machine's description, a model file for a preset, the audio distance, and
timing helpers that interleave the contenders (so load from other programs hits them all alike)."""

from __future__ import annotations

import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tad_daemon  # noqa: E402, F401  (first: it sets OMP_WAIT_POLICY, read when torch loads)

# isort: split
import torch  # noqa: E402

from tad_daemon.models.modelfile import ModelConfig, save_model  # noqa: E402
from tad_daemon.models.network import build_unet  # noqa: E402
from tad_daemon.models.presets import architecture  # noqa: E402
from tad_daemon.models.registry import ModelEntry, read_entry  # noqa: E402

BENCH_CACHE = Path(tempfile.gettempdir()) / "tad-bench-onnx"  # exports of random-weight models, kept between runs


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags_bf16() -> bool:
    """Whether Linux reports native bf16 (AVX512-BF16 or AMX): a description of the machine, never a decision."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def machine() -> dict:
    info = {"cpu": cpu_name(), "cores": torch.get_num_threads(), "native_bf16": cpu_flags_bf16(),
            "torch": torch.__version__, "python": platform.python_version(), "os": platform.platform(),
            "date": time.strftime("%Y-%m-%d %H:%M")}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def preset_model(preset: str, folder: Path, seed: int = 0) -> ModelEntry:
    """A model file of `preset` with random weights (fixed by `seed`), written once into `folder`."""
    path = folder / f"{preset}-random{seed}.safetensors"
    if not path.is_file():
        torch.manual_seed(seed)
        net = build_unet(architecture(preset))
        save_model(path, net.state_dict(), ModelConfig(arch=architecture(preset), preset=preset, source="bench"))
    return read_entry(path)


def mrstft(x: torch.Tensor, y: torch.Tensor, ffts=(512, 1024, 2048)) -> float:
    """Multi-resolution STFT distance between two (channels, frames) signals: spectral convergence plus
    log-magnitude L1, averaged over FFT sizes; lower is closer."""
    total = 0.0
    for n in ffts:
        win = torch.hann_window(n)
        sx = torch.stft(x, n, n // 4, window=win, return_complex=True).abs().clamp_min(1e-7)
        sy = torch.stft(y, n, n // 4, window=win, return_complex=True).abs().clamp_min(1e-7)
        sc = torch.linalg.norm(sy - sx) / torch.linalg.norm(sy)
        mag = (sy.log() - sx.log()).abs().mean()
        total += float(sc + mag)
    return total / len(ffts)


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                progress: bool = True) -> dict[str, float]:
    """Median seconds of each contender, timed in turns (A B C A B C ...) after `warmup` untimed turns."""
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for r in range(warmup + repeats):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
        if progress:
            print(f"  round {r + 1}/{warmup + repeats}", file=sys.stderr, flush=True)
    return {k: statistics.median(v) for k, v in times.items()}
