"""The ONNX Runtime backend for CPU inference: the U-Net exported to ONNX once per model file, cached on disk.

Measured on two AVX2 cores, ONNX Runtime runs the same fp32 U-Net 2-3x faster than torch (bench/cpu.py),
with outputs within float rounding (a few 1e-7). The export (torch's TorchScript-based exporter, which needs
the `onnx` package) takes seconds to minutes, so its result is cached under the data folder:

    <data>/cache/onnx/<model>-<key>.onnx    the net, with ONNX Runtime's portable graph optimisations applied
    <data>/cache/onnx/<model>-<key>.json    what it was made from, and its output on a fixed probe input

The key hashes the model file's bytes, the architecture, and the torch, onnx and onnxruntime versions, so a
changed model or an upgrade makes a new entry. Both files are written atomically (temporary file, then
rename), the JSON last; an export is checked against torch on the probe before it is kept, and an entry is
checked against its recorded probe output at every load: one that is incomplete, fails to load or does not
match is rebuilt. Entries unused for 30 days are removed.

The record also says which way of running the model was fastest on this machine: at export, one step of
the real input shape is timed on each candidate (ONNX Runtime fp32, torch fp32, torch with bf16 autocast)
for a second or so. bf16 pays off on some CPUs and costs 10-30x on others, and ONNX Runtime's lead over
torch differs from CPU to CPU, so the choice is measured here rather than read from CPU flags.

All sessions of a process share one memory arena: each session's own arena would keep its peak activations
(measured: 4 seed-architecture models after a batch of 4 held 2.5 GB; shared, 1.1 GB).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tad_daemon.atomic import atomic_write
from tad_daemon.models.registry import ModelEntry

log = logging.getLogger(__name__)

EXPORT_RECIPE = 3  # bump when the export below changes: old cache entries are then never used again
OPSET = 17
PROBE_TOLERANCE = 1e-3  # max abs difference on the probe (to torch, or to the recorded output); measured ~3e-7
PROBE_STRIDE = 64  # the recorded probe output keeps every 64th sample (1,024 values for a stereo one-shot)
UNUSED_DAYS = 30
CANDIDATES = ("onnx-fp32", "torch-fp32", "torch-bf16")  # backend-precision, in the order they are timed
TIMING_BUDGET = 0.5  # seconds of timed calls per candidate (after one warm-up call)
TIMING_CALLS = (2, 8)  # at least, at most

_runtime = None
_runtime_problem: str | None = None


def runtime():
    """The onnxruntime module, or None (with the reason logged once) when it is missing or broken."""
    global _runtime, _runtime_problem
    if _runtime is None and _runtime_problem is None:
        try:
            import onnxruntime as ort

            # One arena for all sessions, grown by what is asked (not to the next power of two).
            memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
            ort.create_and_register_allocator(memory, ort.OrtArenaCfg({"arena_extend_strategy": 1}))
            _runtime = ort
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


def cache_path(entry: ModelEntry, cache_dir: Path) -> Path:
    """Named by the file: every name a model of several kinds stands for shares one export."""
    return Path(cache_dir) / f"{entry.path.stem}-{cache_key(entry)}.onnx"


def probe(entry: ModelEntry) -> dict[str, np.ndarray]:
    """A fixed input for checking an export, by the net's input names: x and t, and for a model of several
    kinds its kinds and velocity (network.KindUNet)."""
    x = torch.randn(1, entry.config.channels, entry.config.length, generator=torch.Generator().manual_seed(0))
    feed = {"x": x.numpy(), "t": np.array([0.6], dtype=np.float32)}
    if kinds := entry.config.arch.get("kinds"):
        feed |= {"kinds": np.eye(len(kinds), dtype=np.float32)[:1], "velocity": np.array([0.8], dtype=np.float32)}
    return feed


def _torch_inputs(feed: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(a) for a in feed.values())


def _difference(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")


class OnnxNet:
    """The U-Net as an ONNX Runtime session, called like the torch net: `net(x_t, t) -> v` on CPU tensors."""

    def __init__(self, path: Path, threads: int):
        ort = runtime()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Idle worker threads would otherwise spin between operators, taking cycles from the DAW's audio
        # and from torch's own threads (bench/cpu.py measured 1.7x faster without spinning on busy cores).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.use_env_allocators", "1")  # the shared arena
        opts.log_severity_level = 3  # errors only: the optimiser's notices are not for users
        self.path = path
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor, t: torch.Tensor, **cond: torch.Tensor) -> torch.Tensor:
        feed = {name: a.detach().float().contiguous().numpy() for name, a in {"x": x, "t": t, **cond}.items()}
        return torch.from_numpy(self.session.run(["v"], feed)[0])

    def probe_output(self, entry: ModelEntry) -> np.ndarray:
        return self.session.run(["v"], probe(entry))[0]

    def check(self, net: torch.nn.Module, entry: ModelEntry) -> float:
        """Max abs difference to the torch `net` on the probe; raises if above PROBE_TOLERANCE."""
        with torch.inference_mode():
            want = net(*_torch_inputs(probe(entry))).float().numpy()
        diff = _difference(self.probe_output(entry), want)
        if not diff <= PROBE_TOLERANCE:
            raise ValueError(f"ONNX output differs from torch by {diff:.3g} (tolerance {PROBE_TOLERANCE})")
        return diff


def time_call(call, best: float | None = None) -> float:
    """The fastest of a few timed calls of `call` after one warm-up; just the warm-up's time when that alone
    is over 3x `best` (an emulated bf16 would otherwise cost many seconds to confirm it is slow)."""
    start = time.perf_counter()
    call()
    warm = time.perf_counter() - start
    if best is not None and warm > 3 * best:
        return warm
    times: list[float] = []
    while len(times) < TIMING_CALLS[0] or (len(times) < TIMING_CALLS[1] and sum(times) < TIMING_BUDGET):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(net: torch.nn.Module, onnx_net: OnnxNet, entry: ModelEntry) -> dict[str, float]:
    """Seconds per U-Net call (batch 1, the model's one-shot length) of each of CANDIDATES."""
    feed = probe(entry)
    args = _torch_inputs(feed)
    named = dict(zip(feed, args))  # by input name: x, t, and a model of several kinds' kinds and velocity

    def on_torch(dtype: torch.dtype | None):
        def call() -> None:
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=dtype is not None):
                net(*args)
        return call

    calls = {"onnx-fp32": lambda: onnx_net(**named),
             "torch-fp32": on_torch(None),
             "torch-bf16": on_torch(torch.bfloat16)}
    timings: dict[str, float] = {}
    for name in CANDIDATES:
        try:
            timings[name] = time_call(calls[name], min(timings.values(), default=None))
        except Exception as e:  # e.g. an operator without a bf16 kernel in this torch: not a candidate
            log.info("%s: %s is not a candidate (%s)", entry.name, name, e)
    return timings


def fastest(record: dict, allowed: tuple[str, ...] = CANDIDATES) -> tuple[str, str]:
    """The fastest allowed candidate in an export record, and a line saying why (the figures)."""
    timings = {k: v for k, v in record.get("timings", {}).items() if k in allowed}
    if not timings:
        return "onnx-fp32", "no timings recorded"
    best = min(timings, key=timings.get)
    figures = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sorted(timings.items(), key=lambda kv: kv[1]))
    return best, f"measured fastest here ({figures} per step)"


def read_record(entry: ModelEntry, cache_dir: Path) -> dict | None:
    """The export record of `entry` in the cache, or None when there is none or it cannot be read."""
    try:
        record = json.loads(cache_path(entry, cache_dir).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def export(net: torch.nn.Module, entry: ModelEntry, path: Path, threads: int) -> OnnxNet:
    """Export `net` (fp32, CPU) to `path` with ONNX Runtime's portable graph optimisations applied (a cached
    load takes a third of the time), check it against `net`, time the candidates, then record the probe
    output and the timings beside it."""
    try:
        import onnx  # noqa: F401  (torch's exporter needs it; say so plainly rather than deep in a traceback)
    except ImportError:
        raise RuntimeError("exporting to ONNX needs the onnx package (pip install onnx)") from None
    ort = runtime()
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    fd, raw = tempfile.mkstemp(prefix=f".{path.stem}.raw.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        feed = probe(entry)
        names = list(feed)
        copied = copy.deepcopy(net).float().cpu().eval()  # the live net may be sampling in another thread
        copied.requires_grad_(False)
        with warnings.catch_warnings():
            # The exporter's deprecation notice, and tracer notes about shape checks that are constant for a
            # model (its one-shot length); the batch size stays free, and the probe checks the result.
            warnings.simplefilter("ignore")
            torch.onnx.export(copied, _torch_inputs(feed), raw, dynamo=False, opset_version=OPSET,
                              input_names=names, output_names=["v"],
                              dynamic_axes={name: {0: "batch"} for name in [*names, "v"]})

        def optimise(tmp: str) -> None:
            opts = ort.SessionOptions()
            # EXTENDED, not ALL: ALL adds layout changes specific to this CPU, which do not belong in a file.
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            opts.optimized_model_filepath = tmp
            opts.log_severity_level = 3
            ort.InferenceSession(raw, opts, providers=["CPUExecutionProvider"])

        atomic_write(path, optimise)
    finally:
        Path(raw).unlink(missing_ok=True)
    onnx_net = OnnxNet(path, threads)
    diff = onnx_net.check(copied, entry)
    seconds = round(time.perf_counter() - start, 1)
    timings = measure(copied, onnx_net, entry)
    del copied
    record = {"model": entry.name, "model_file": str(entry.path), "made": time.strftime("%Y-%m-%d %H:%M:%S"),
              "seconds": seconds, "difference_to_torch": diff, **versions(), "threads": threads,
              "timings": timings, "probe_stride": PROBE_STRIDE,
              "probe": onnx_net.probe_output(entry)[..., ::PROBE_STRIDE].ravel().tolist()}
    atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(record)))
    log.info("exported %s to ONNX in %.1f s (max difference to torch %.2g): %s", entry.name, record["seconds"],
             diff, path)
    return onnx_net


def load_cached(entry: ModelEntry, cache_dir: Path, threads: int) -> OnnxNet | None:
    """The cached ONNX net of `entry` if there is a sound one (it matches its recorded probe output), else None;
    an entry that is not sound is removed."""
    if runtime() is None:
        return None
    path = cache_path(entry, cache_dir)
    record = path.with_suffix(".json")
    if not path.is_file() and not record.is_file():
        return None
    try:
        want = np.array(json.loads(record.read_text())["probe"], dtype=np.float32)
        onnx_net = OnnxNet(path, threads)
        diff = _difference(onnx_net.probe_output(entry)[..., ::PROBE_STRIDE].ravel(), want)
        if not diff <= PROBE_TOLERANCE:
            raise ValueError(f"probe output differs from the recorded one by {diff:.3g}")
    except Exception as e:
        log.warning("cached ONNX model %s is unusable (%s): it will be exported again", path, e)
        path.unlink(missing_ok=True)
        record.unlink(missing_ok=True)
        return None
    for p in (path, record):
        os.utime(p)  # in use: keeps it from being pruned
    return onnx_net


def prepare(entry: ModelEntry, net: torch.nn.Module, cache_dir: Path, threads: int) -> OnnxNet:
    """The ONNX Runtime net for `entry`, from the cache or exported now (and cached); `net` is the model's
    fp32 torch net, the reference an export is checked against."""
    if runtime() is None:
        raise RuntimeError(f"onnxruntime is not usable ({_runtime_problem})")
    onnx_net = load_cached(entry, cache_dir, threads)
    if onnx_net is None:
        log.info("exporting %s for ONNX Runtime (once per model file; may take a minute)", entry.name)
        onnx_net = export(net, entry, cache_path(entry, cache_dir), threads)
        prune(Path(cache_dir))
    return onnx_net


def prune(cache_dir: Path, days: float = UNUSED_DAYS) -> None:
    """Remove entries unused for `days`, and temporary files left by a process that was killed."""
    now = time.time()
    for p in cache_dir.iterdir():
        try:
            age = now - p.stat().st_mtime
            if (p.suffix in (".onnx", ".json") and age > days * 86400) or (p.suffix == ".part" and age > 86400):
                p.unlink()
        except OSError:
            pass


class Exports:
    """Which way each model runs fastest here (ONNX Runtime, or torch in fp32 or bf16), from its export record,
    and the exports themselves: made in background threads, one at a time (each wants every core), cached.

    `backend` and `precision` are the configuration's: backend onnx always takes ONNX Runtime; a set precision
    leaves only the candidates that give it.
    """

    def __init__(self, cache_dir: Path, backend: str, precision: str):
        self.cache_dir, self.backend, self.precision = Path(cache_dir), backend, precision
        self._one_at_a_time = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()

    def choose(self, record: dict) -> tuple[str, str]:
        """The candidate to run a model on, from its export record, and why."""
        if self.backend == "onnx":
            return "onnx-fp32", "backend onnx in the configuration"
        allowed = {"auto": CANDIDATES, "fp32": ("onnx-fp32", "torch-fp32")}.get(self.precision)
        if allowed is None:
            return f"torch-{self.precision}", f"precision {self.precision} in the configuration"
        return fastest(record, allowed)

    def cached(self, entry: ModelEntry, threads: int) -> tuple[str | None, str, OnnxNet | None]:
        """What the cache already says of `entry`: (choice, why, the ONNX net when that is the choice and its
        export is sound); (None, "", None) when it must be exported (and timed) first."""
        record = read_record(entry, self.cache_dir)
        if not record:
            return None, "", None
        choice, why = self.choose(record)
        if choice != "onnx-fp32":
            return choice, why, None
        onnx_net = load_cached(entry, self.cache_dir, threads)
        return (choice, why, onnx_net) if onnx_net is not None else (None, "", None)

    def start(self, entry: ModelEntry, net: torch.nn.Module, threads: int, still_wanted: Callable[[], bool],
              done: Callable[[str, str, OnnxNet], None], wait: bool = False) -> None:
        """Export `entry` (its torch `net`) in the background, then `done(choice, why, onnx_net)`; nothing
        when, by its turn, the model is no longer `still_wanted` (unloaded, replaced) or we are closing."""
        job = threading.Thread(target=self._export, args=(entry, net, threads, still_wanted, done),
                               name=f"onnx-{entry.name}", daemon=True)
        job.start()
        self._threads = [j for j in self._threads if j.is_alive()] + [job]
        if wait:
            job.join()

    def _export(self, entry: ModelEntry, net: torch.nn.Module, threads: int, still_wanted: Callable[[], bool],
                done: Callable[[str, str, OnnxNet], None]) -> None:
        with self._one_at_a_time:
            if self._closing.is_set() or not still_wanted():
                return
            try:
                onnx_net = prepare(entry, net, self.cache_dir, threads)
                choice, why = self.choose(read_record(entry, self.cache_dir) or {})
            except Exception as e:
                log.warning("model %s stays on torch: ONNX Runtime backend failed (%s)", entry.name, e)
                return
            done(choice, why, onnx_net)

    def pending(self) -> int:
        """Exports started and not finished."""
        self._threads = [j for j in self._threads if j.is_alive()]
        return len(self._threads)

    def wait(self, stop: threading.Event, timeout: float) -> None:
        """Wait until every export started has finished, `stop` is set or `timeout` s have passed."""
        deadline = time.monotonic() + timeout
        while self.pending() and not stop.is_set() and time.monotonic() < deadline:
            stop.wait(0.1)

    def close(self, timeout: float = 120.0) -> None:
        """Start no more exports and wait for the one running: a thread still inside torch's exporter when
        the interpreter exits aborts the process ("terminate called without an active exception")."""
        self._closing.set()
        deadline = time.monotonic() + timeout
        for job in list(self._threads):
            job.join(max(0.0, deadline - time.monotonic()))
