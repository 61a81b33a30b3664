"""The ONNX Runtime backend for CPU inference: the U-Net exported to ONNX once per model file, cached on disk.

Measured on two AVX2 cores, ONNX Runtime runs the same fp32 U-Net 2-3x faster than torch (bench/cpu.py),
with outputs within float rounding (a few 1e-7). The export (torch's TorchScript-based exporter, which needs
the `onnx` package) takes seconds to tens of seconds, so its result is cached under the data folder:

    <data>/cache/onnx/<model>-<key>.onnx

The key hashes the model file's bytes, the architecture, and the torch, onnx and onnxruntime versions, so a
changed model or an upgrade makes a new entry. Entries are written atomically (temporary file, then rename)
and checked against torch on a probe input at every load; one that fails to load or to match is rebuilt.
Entries unused for 30 days are removed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from tad_daemon.models.registry import ModelEntry

log = logging.getLogger(__name__)

EXPORT_RECIPE = 1  # bump when the export below changes: old cache entries are then never used again
OPSET = 17
PROBE_TOLERANCE = 1e-3  # max abs difference to torch on the probe; measured: ~3e-7
UNUSED_DAYS = 30

_runtime = None
_runtime_problem: str | None = None


def runtime():
    """The onnxruntime module, or None (with the reason logged once) when it is missing or broken."""
    global _runtime, _runtime_problem
    if _runtime is None and _runtime_problem is None:
        try:
            import onnxruntime

            onnxruntime.SessionOptions()  # a broken native library fails here, not later
            _runtime = onnxruntime
        except Exception as e:  # ImportError, or a native library that does not load
            _runtime_problem = f"{type(e).__name__}: {e}"
            log.warning("onnxruntime is not usable (%s): CPU inference runs on torch", _runtime_problem)
    return _runtime


def versions() -> dict:
    ort = runtime()
    try:
        import onnx

        onnx_version = onnx.__version__
    except ImportError:
        onnx_version = None
    return {"torch": torch.__version__, "onnxruntime": ort.__version__ if ort else None, "onnx": onnx_version}


def cache_key(entry: ModelEntry) -> str:
    h = hashlib.sha256()
    with open(entry.path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update(json.dumps({"recipe": EXPORT_RECIPE, "opset": OPSET, "arch": entry.config.arch,
                         "length": entry.config.length, **versions()}, sort_keys=True).encode())
    return h.hexdigest()[:32]


def probe(entry: ModelEntry) -> tuple[np.ndarray, np.ndarray]:
    """A fixed input (x, t) for checking an export against torch."""
    x = torch.randn(1, entry.config.channels, entry.config.length, generator=torch.Generator().manual_seed(0))
    return x.numpy(), np.array([0.6], dtype=np.float32)


class OnnxNet:
    """The U-Net as an ONNX Runtime session, called like the torch net: `net(x_t, t) -> v` on CPU tensors."""

    def __init__(self, path: Path, threads: int):
        ort = runtime()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Idle worker threads would otherwise spin between operators, taking cycles from the DAW's audio
        # and from torch's own threads; measured 1.7x faster without spinning on busy cores.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3  # errors only: the optimiser's notices are not for users
        self.path = path
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        feed = {"x": x.detach().float().contiguous().numpy(), "t": t.detach().float().contiguous().numpy()}
        return torch.from_numpy(self.session.run(["v"], feed)[0])

    def check(self, net: torch.nn.Module, entry: ModelEntry) -> float:
        """Max abs difference to torch on the probe; raises if above PROBE_TOLERANCE."""
        x, t = probe(entry)
        with torch.inference_mode():
            want = net(torch.from_numpy(x), torch.from_numpy(t)).float().numpy()
        got = self.session.run(["v"], {"x": x, "t": t})[0]
        diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
        if not diff <= PROBE_TOLERANCE:
            raise ValueError(f"ONNX output differs from torch by {diff:.3g} (tolerance {PROBE_TOLERANCE})")
        return diff


def export(net: torch.nn.Module, entry: ModelEntry, path: Path) -> None:
    """Export `net` (fp32, CPU) to `path`, atomically, with ONNX Runtime's portable graph optimisations
    already applied (loading the result takes a third of the time)."""
    try:
        import onnx  # noqa: F401  (torch's exporter needs it; say so plainly rather than deep in a traceback)
    except ImportError:
        raise RuntimeError("exporting to ONNX needs the onnx package (pip install onnx)") from None
    ort = runtime()
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, raw = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part", dir=folder)
    os.close(fd)
    fd, optimised = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part", dir=folder)
    os.close(fd)
    try:
        x, t = probe(entry)
        net = copy.deepcopy(net).float().cpu().eval()  # the live net may be sampling in another thread
        with warnings.catch_warnings():
            # The exporter's deprecation notice, and tracer notes about shape checks that are constant for a
            # model (its one-shot length); the batch size stays free, and the probe checks the result.
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.from_numpy(x), torch.from_numpy(t)), raw, dynamo=False,
                              opset_version=OPSET, input_names=["x", "t"], output_names=["v"],
                              dynamic_axes={"x": {0: "batch"}, "t": {0: "batch"}, "v": {0: "batch"}})
        del net
        opts = ort.SessionOptions()
        # EXTENDED, not ALL: ALL adds layout changes specific to this CPU, which do not belong in a file.
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        opts.optimized_model_filepath = optimised
        opts.log_severity_level = 3
        ort.InferenceSession(raw, opts, providers=["CPUExecutionProvider"])
        with open(optimised, "rb") as f:
            os.fsync(f.fileno())
        os.replace(optimised, path)
    finally:
        Path(raw).unlink(missing_ok=True)
        Path(optimised).unlink(missing_ok=True)


def prepare(entry: ModelEntry, net: torch.nn.Module, cache_dir: Path, threads: int) -> OnnxNet:
    """The ONNX Runtime net for `entry`, from the cache or exported now (and cached); `net` is the model's
    fp32 torch net, the reference it is checked against."""
    if runtime() is None:
        raise RuntimeError(f"onnxruntime is not usable ({_runtime_problem})")
    cache_dir = Path(cache_dir)
    path = cache_dir / f"{entry.name}-{cache_key(entry)}.onnx"
    if path.is_file():
        try:
            onnx_net = OnnxNet(path, threads)
            onnx_net.check(net, entry)
            os.utime(path)  # in use: keeps it from being pruned
            return onnx_net
        except Exception as e:
            log.warning("cached ONNX model %s is unusable (%s): exporting it again", path, e)
            path.unlink(missing_ok=True)
    log.info("exporting %s for ONNX Runtime (once per model file; may take a minute)", entry.name)
    start = time.perf_counter()
    export(net, entry, path)
    onnx_net = OnnxNet(path, threads)
    diff = onnx_net.check(net, entry)
    log.info("exported %s to ONNX in %.1f s (max difference to torch %.2g): %s", entry.name,
             time.perf_counter() - start, diff, path)
    prune(cache_dir)
    return onnx_net


def prune(cache_dir: Path, days: float = UNUSED_DAYS) -> None:
    """Remove entries unused for `days`, and temporary files left by a process that was killed."""
    now = time.time()
    for p in cache_dir.iterdir():
        try:
            stale = (p.suffix == ".onnx" and now - p.stat().st_mtime > days * 86400) or (
                p.name.startswith(".") and p.suffix == ".part" and now - p.stat().st_mtime > 86400)
            if stale:
                p.unlink()
        except OSError:
            pass
