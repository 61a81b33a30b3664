"""The diffusion engine: models loaded on one device, turning (model, seed, steps) into raw one-shots."""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from tad_daemon import __version__, sampling
from tad_daemon.limits import MAX_SEED
from tad_daemon.models import onnxrt
from tad_daemon.models.device import autocast_dtype, pick_device
from tad_daemon.models.registry import ModelEntry, load_net

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
MAX_STEPS = 1000


@dataclass
class OneShot:
    """A generated sound before post-processing, with everything needed to make it again."""

    audio: np.ndarray  # (channels, frames) float32
    model: str
    seed: int
    sampler: str
    schedule: str
    steps: int
    sample_rate: int
    strength: float | None = None  # variations only
    source: str | None = None  # variations only: the source file
    backend: str | None = None  # torch or onnx (their outputs differ by float rounding only)
    precision: str | None = None  # fp32, or the autocast dtype (bf16, fp16)

    def metadata(self) -> dict:
        meta = {k: v for k, v in asdict(self).items() if k != "audio" and v is not None}
        meta["software"] = f"tad-daemon {__version__}"
        return meta


@dataclass
class LoadedModel:
    entry: ModelEntry
    net: torch.nn.Module | onnxrt.OnnxNet  # called as net(x_t, t) -> v either way
    dtype: torch.dtype | None  # autocast dtype, None for fp32
    backend: str = "torch"  # "onnx" once the ONNX Runtime net has replaced the torch one
    why: str = ""  # why this backend and precision (for the log and `tad-daemon status`)

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, str(self.dtype))

    def describe(self) -> str:
        return f"{self.backend} {self.precision}" + (f": {self.why}" if self.why else "")


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


def check_seed(seed: int) -> int:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}")
    return seed


def pick_backend(requested: str, device: torch.device, cache_dir: Path | None) -> tuple[str, str]:
    """What `requested` (auto, torch or onnx) comes to here, and why: 'auto' stays 'auto' (measured per model,
    see Engine.load) on a CPU where ONNX Runtime is installed and exports have a cache folder; else 'torch'.
    A request for onnx that cannot be met falls back to torch with a log line.
    """
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r} ({', '.join(BACKENDS)})")
    if requested == "torch":
        return "torch", "backend torch in the configuration"
    why = None
    if device.type != "cpu":
        why = f"ONNX Runtime is used on the CPU only, not on {device.type}"
    elif cache_dir is None:
        why = "no cache folder for the exported models"
    elif onnxrt.runtime() is None:
        return "torch", "ONNX Runtime cannot be loaded"  # runtime() has logged why, once
    if why:
        if requested == "onnx":
            log.warning("backend onnx: %s; using torch", why)
        return "torch", why
    return requested, ""


class Engine:
    """Owns the device. Not thread-safe by design beyond the lock: one worker thread should drive it.

    With the ONNX Runtime backend, `load` takes the model's ONNX net from the cache (a second or two); when
    there is none yet, the model serves at once on torch while the ONNX net is exported in a background
    thread (seconds to minutes, once per model file) and swapped in when ready; `load(entry, wait=True)`
    waits for it.
    """

    def __init__(self, device: str = "auto", precision: str = "auto", threads: int | None = None,
                 max_batch: int | None = None, backend: str = "auto", cache_dir: str | Path | None = None,
                 steps: int | None = None, sampler: str | None = None):
        """`steps` and `sampler`: what a request that names none gets (generate.steps and generate.sampler);
        None: each model's own default. Resolved here alone."""
        if threads:
            torch.set_num_threads(threads)
        self.device = pick_device(device)
        self.precision = precision
        self.steps, self.sampler = steps, sampler
        # The most one-shots run as one batch. On a CPU a batch of 2-4 beat singles by up to 1.4x on torch and
        # by nothing on ONNX Runtime, and 8 was slower per one-shot than 4 on both (bench/cpu.py, batch).
        self.max_batch = max_batch or (4 if self.device.type == "cpu" else 16)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.backend, self._torch_why = pick_backend(backend, self.device, self.cache_dir)
        self.models: dict[str, LoadedModel] = {}
        self.lock = threading.RLock()
        self._export_lock = threading.Lock()  # one export at a time: each wants every core
        self._exports: list[threading.Thread] = []
        self._closing = threading.Event()

    # -- models --------------------------------------------------------------------------------------
    def load(self, entry: ModelEntry, wait: bool = False) -> LoadedModel:
        if self.backend != "torch":
            record = onnxrt.read_record(entry, self.cache_dir)
            choice, why = self._choose(record) if record else (None, "")
            if choice == "onnx-fp32":  # from the cache, the torch net is not even read: less memory
                onnx_net = onnxrt.load_cached(entry, self.cache_dir, torch.get_num_threads())
                if onnx_net is not None:
                    return self._keep(LoadedModel(entry, onnx_net, None, "onnx", why))
            elif choice is not None:  # torch was measured faster: no ONNX session at all
                net = load_net(entry, self.device)
                return self._keep(LoadedModel(entry, net, self._dtype(choice), "torch", why))
        why = self._torch_why if self.backend == "torch" else "until its ONNX export is made and timed"
        loaded = self._keep(LoadedModel(entry, load_net(entry, self.device), self._dtype(), "torch", why))
        if self.backend != "torch":
            job = threading.Thread(target=self._to_onnx, args=(loaded,), name=f"onnx-{entry.name}", daemon=True)
            job.start()
            with self.lock:
                self._exports = [j for j in self._exports if j.is_alive()] + [job]
            if wait:
                job.join()
        return loaded

    def _dtype(self, choice: str | None = None) -> torch.dtype | None:
        """The autocast dtype of a torch candidate ('torch-bf16'...), or of the configured precision."""
        return autocast_dtype(self.device, choice.split("-")[1] if choice else self.precision)

    def _choose(self, record: dict) -> tuple[str, str]:
        """The candidate to run a model on, from its export record: the fastest measured (backend auto and
        precision auto), ONNX Runtime for backend onnx; a set precision leaves only what gives it."""
        if self.backend == "onnx":
            return "onnx-fp32", "backend onnx in the configuration"
        allowed = {"auto": onnxrt.CANDIDATES, "fp32": ("onnx-fp32", "torch-fp32")}.get(self.precision)
        if allowed is None:
            return f"torch-{self.precision}", f"precision {self.precision} in the configuration"
        return onnxrt.fastest(record, allowed)

    def _keep(self, loaded: LoadedModel) -> LoadedModel:
        with self.lock:
            self.models[loaded.entry.name] = loaded
        log.info("model %s runs on %s", loaded.entry.name, loaded.describe())
        return loaded

    def _to_onnx(self, m: LoadedModel) -> None:
        """Export the model (once per model file) and switch to the fastest way measured, if the model is still
        the loaded one by then."""
        with self._export_lock:
            with self.lock:
                if self._closing.is_set() or self.models.get(m.entry.name) is not m:
                    return  # shutting down, or unloaded or replaced meanwhile
            try:
                onnx_net = onnxrt.prepare(m.entry, m.net, self.cache_dir, torch.get_num_threads())
                choice, why = self._choose(onnxrt.read_record(m.entry, self.cache_dir) or {})
            except Exception as e:
                log.warning("model %s stays on torch: ONNX Runtime backend failed (%s)", m.entry.name, e)
                return
            with self.lock:
                if choice == "onnx-fp32":
                    m.net, m.backend = onnx_net, "onnx"  # the torch net is freed here
                else:
                    m.dtype = self._dtype(choice)
                m.why = why
            log.info("model %s runs on %s", m.entry.name, m.describe())

    def close(self, timeout: float = 120.0) -> None:
        """Start no more ONNX exports and wait for the one running: a thread still inside torch's exporter
        when the interpreter exits aborts the process ("terminate called without an active exception")."""
        self._closing.set()
        deadline = time.monotonic() + timeout
        with self.lock:
            jobs = list(self._exports)
        for job in jobs:
            job.join(max(0.0, deadline - time.monotonic()))

    def unload(self, name: str) -> bool:
        with self.lock:
            return self.models.pop(name, None) is not None

    def get(self, name: str) -> LoadedModel:
        with self.lock:
            if name not in self.models:
                known = ", ".join(sorted(self.models)) or "none"
                raise KeyError(f"unknown model {name!r} (loaded: {known})")
            return self.models[name]

    # -- sampling ------------------------------------------------------------------------------------
    def _net_fn(self, m: LoadedModel):
        device_type = self.device.type

        def net(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if m.backend == "onnx":
                try:
                    return m.net(x, t)
                except Exception as e:  # e.g. out of memory for a huge batch: torch may still manage
                    log.error("model %s: ONNX Runtime failed (%s); going back to torch", m.entry.name, e)
                    m.net, m.backend, m.why = load_net(m.entry, self.device), "torch", f"ONNX Runtime failed ({e})"
            with torch.autocast(device_type, dtype=m.dtype or torch.float32, enabled=m.dtype is not None):
                return m.net(x, t)

        return net

    def _settings(self, m: LoadedModel, steps: int | None, sampler: str | None,
                  schedule: str | None) -> tuple[int, str, str]:
        steps = int(steps or self.steps or m.entry.config.default_steps)
        if not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must be between 1 and {MAX_STEPS}")
        sampler = sampler or self.sampler or m.entry.config.default_sampler
        if sampler not in sampling.SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r} (known: {', '.join(sampling.SAMPLERS)})")
        # A model's own schedule goes with its own sampler only (another sampler may need its own for parity)
        if not schedule and sampler == m.entry.config.default_sampler:
            schedule = m.entry.config.default_schedule
        schedule = schedule or sampling.OWN_SCHEDULE[sampler]
        if schedule not in sampling.SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r} (known: {', '.join(sampling.SCHEDULES)})")
        return steps, sampler, schedule

    def _run(self, m: LoadedModel, x: torch.Tensor, sampler: str, times: list[float], progress,
             seeds: list[int]) -> np.ndarray:
        outs = []
        done = 0
        for chunk in x.split(self.max_batch):
            noise = sampling.step_noise(seeds[done:done + len(chunk)], *chunk.shape[1:])

            def step(i: int, n: int, done: int = done, size: int = len(chunk)) -> None:
                if progress:
                    progress(done * n + i * size, len(x) * n)

            with torch.inference_mode():
                y = sampling.run(sampler, self._net_fn(m), chunk.to(self.device), times, step, noise)
            outs.append(y.float().cpu().numpy())
            done += len(chunk)
        return np.concatenate(outs).astype(np.float32)

    def generate(self, name: str, count: int = 1, seed: int | None = None, steps: int | None = None,
                 sampler: str | None = None, schedule: str | None = None, progress=None,
                 seeds: list[int] | None = None) -> list[OneShot]:
        """`count` one-shots in one batch; item i uses seed + i, so each file can be remade on its own.

        `seeds` (one per one-shot) replaces `count` and `seed`: the daemon batches requests that way.
        """
        with self.lock:
            m = self.get(name)
            steps, sampler, schedule = self._settings(m, steps, sampler, schedule)
            seeds = [check_seed(s) for s in seeds] if seeds else self._seeds(seed, count)
            cfg = m.entry.config
            x = sampling.noise(seeds, cfg.channels, cfg.length)
            audio = self._run(m, x, sampler, sampling.times_for(schedule, steps), progress, seeds)
            backend, precision = m.backend, m.precision
        return [OneShot(a, name, s, sampler, schedule, steps, cfg.sample_rate, backend=backend, precision=precision)
                for a, s in zip(audio, seeds)]

    def vary(self, name: str, source: np.ndarray, strength: float, count: int = 1, seed: int | None = None,
             steps: int | None = None, sampler: str | None = None, schedule: str | None = None,
             source_name: str | None = None, progress=None) -> list[OneShot]:
        """SDEdit: noise `source` (channels x frames) to t = strength and sample back from there to 0.

        Runs ceil(steps * strength) steps: a light touch needs few.
        """
        if not (0.0 <= strength <= 1.0) or math.isnan(strength):
            raise ValueError("strength must be between 0 and 1")
        with self.lock:
            m = self.get(name)
            steps, sampler, schedule = self._settings(m, steps, sampler, schedule)
            seeds = self._seeds(seed, count)
            cfg = m.entry.config
            if source.shape != (cfg.channels, cfg.length):
                raise ValueError(f"source must be {cfg.channels} x {cfg.length} samples")
            x0 = torch.from_numpy(np.ascontiguousarray(source, dtype=np.float32))
            eps = sampling.noise(seeds, cfg.channels, cfg.length)
            x = sampling.noised(x0.expand_as(eps), eps, strength)
            used = math.ceil(steps * strength)
            if used == 0:
                audio = x.numpy()
            else:
                audio = self._run(m, x, sampler, sampling.times_for(schedule, used, strength), progress,
                                   seeds)
            backend, precision = m.backend, m.precision
        src = str(Path(source_name)) if source_name else None
        return [OneShot(a, name, s, sampler, schedule, used, cfg.sample_rate, strength, src, backend, precision)
                for a, s in zip(audio, seeds)]

    @staticmethod
    def _seeds(seed: int | None, count: int) -> list[int]:
        if count < 1:
            raise ValueError("count must be at least 1")
        base = random_seed() if seed is None or seed < 0 else check_seed(seed)
        return [(base + i) % (MAX_SEED + 1) for i in range(count)]
