"""The diffusion engine: models loaded on one device, turning (model, seed, steps) into raw one-shots."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from tad_daemon import __version__, sampling
from tad_daemon.audio.post import loudness
from tad_daemon.limits import MAX_SEED, TRAINING_LUFS
from tad_daemon.models import onnxrt
from tad_daemon.models.device import autocast_dtype, pick_device
from tad_daemon.models.graphs import GraphedNet
from tad_daemon.models.registry import ModelEntry, load_net

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
MAX_STEPS = 1000
ENCODE_STEPS = 30  # encode and morph: the round trip's error falls with steps (docs/daw.md)
ENCODED_KEPT = 16  # encoded sounds remembered (256 kB each)
REPAINT_RAMP_S = 0.005  # the remade region fades in and out over this, inside it: no seam, the kept part exact


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
    kind: str = "generate"  # generate, vary, morph, tweak, repaint, kit or encode: what made it
    strength: float | None = None  # vary, repaint: how far from the source
    source: str | None = None  # vary, repaint: the source file; morph: the first one
    backend: str | None = None  # torch or onnx (their outputs differ by float rounding only)
    precision: str | None = None  # fp32, or the autocast dtype (bf16, fp16)
    source_b: str | None = None  # morph: the second source file
    position: float | None = None  # morph: 0 is the first source, 1 the second
    amount: float | None = None  # tweak: how far from the seed's own sound
    variant: int | None = None  # tweak: which of the seed's relatives
    start: float | None = None  # repaint: the region remade, in seconds
    end: float | None = None
    kit: str | None = None  # kit: the kit's folder name
    tuning: dict | None = None  # --tune: what was measured and what was done

    def metadata(self) -> dict:
        meta = {k: v for k, v in asdict(self).items() if k != "audio" and v is not None}
        meta["software"] = f"tad-daemon {__version__}"
        return meta

    def file_label(self) -> str:
        """What the file name says after the time stamp (the kit's folder says the rest)."""
        if self.kind == "kit":
            return self.model
        if self.kind == "encode":
            return f"{self.model}_encoded"
        what = {"generate": "", "vary": "_var", "repaint": "_repaint"}.get(self.kind)
        if what is not None:
            return f"{self.model}{what}_s{self.seed}"
        if self.kind == "tweak":
            return f"{self.model}_tweak_s{self.seed}_a{self.amount:.2f}_{self.variant}"
        return f"{self.model}_morph_p{self.position:.2f}"


@dataclass
class LoadedModel:
    entry: ModelEntry
    net: torch.nn.Module | onnxrt.OnnxNet  # called as net(x_t, t) -> v either way
    dtype: torch.dtype | None  # autocast dtype, None for fp32
    backend: str = "torch"  # "onnx" once the ONNX Runtime net has replaced the torch one
    why: str = ""  # why this backend and precision (for the log and `tad-daemon status`)

    @property
    def graphs(self) -> bool:
        """`net` is a GraphedNet: CUDA graphs per batch size, autocast inside."""
        return isinstance(self.net, GraphedNet)

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, str(self.dtype))

    def describe(self) -> str:
        graphs = " with CUDA graphs" if self.graphs else ""
        return f"{self.backend} {self.precision}{graphs}" + (f": {self.why}" if self.why else "")


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
                 steps: int | None = None, sampler: str | None = None, cuda_graphs: bool = True):
        """`steps` and `sampler`: what a request that names none gets (generate.steps and generate.sampler);
        None: each model's own default. Resolved here alone. `cuda_graphs`: torch nets on a CUDA device
        replay their forward from graphs (models/graphs.py)."""
        if threads:
            torch.set_num_threads(threads)
        self.device = pick_device(device)
        self.precision = precision
        self.steps, self.sampler = steps, sampler
        # The most one-shots run as one batch. On a CPU a batch of 2-4 beat singles by up to 1.4x on torch and
        # by nothing on ONNX Runtime, and 8 was slower per one-shot than 4 on both (bench/cpu.py, batch).
        self.max_batch = max_batch or (4 if self.device.type == "cpu" else 16)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.backend, self._torch_why = pick_backend(backend, self.device, self.cache_dir)
        self.models: dict[str, LoadedModel] = {}
        self.lock = threading.RLock()
        self._export_lock = threading.Lock()  # one export at a time: each wants every core
        self._exports: list[threading.Thread] = []
        self._closing = threading.Event()
        self._encoded: OrderedDict[tuple, np.ndarray] = OrderedDict()  # (model, sha1 of the sound, steps)

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
                return self._keep(self._torch(entry, self._dtype(choice), why))
        why = self._torch_why if self.backend == "torch" else "until its ONNX export is made and timed"
        loaded = self._keep(self._torch(entry, self._dtype(), why))
        if self.backend != "torch":
            job = threading.Thread(target=self._to_onnx, args=(loaded,), name=f"onnx-{entry.name}", daemon=True)
            job.start()
            with self.lock:
                self._exports = [j for j in self._exports if j.is_alive()] + [job]
            if wait:
                job.join()
        return loaded

    def _torch(self, entry: ModelEntry, dtype: torch.dtype | None, why: str) -> LoadedModel:
        net = load_net(entry, self.device)
        if self.device.type != "cpu" and dtype is not None:
            dtype, why = checked_precision(net, entry, self.device, dtype, why)
        if self.cuda_graphs:
            return LoadedModel(entry, GraphedNet(net, dtype), dtype, "torch", why)
        return LoadedModel(entry, net, dtype, "torch", why)

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

    def _forget(self, name: str) -> None:
        for key in [k for k in self._encoded if k[0] == name]:
            del self._encoded[key]

    def _keep(self, loaded: LoadedModel) -> LoadedModel:
        with self.lock:
            self._forget(loaded.entry.name)
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
            self._forget(name)
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
            if m.graphs:
                return m.net(x, t)
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
             seeds: list[int], wrap=None, towards: tuple[list[int], float] | None = None) -> np.ndarray:
        """Sample `x` (a batch started at times[0]) in chunks of max_batch; `wrap(net)` alters the network
        (repaint), sampler "invert" runs the deterministic sampler backwards (encode). `towards` (seeds,
        amount): a stochastic sampler's fresh noise is nudged towards those seeds' (tweak)."""
        outs = []
        done = 0
        net = wrap(self._net_fn(m)) if wrap else self._net_fn(m)
        for chunk in x.split(self.max_batch):
            noise = sampling.step_noise(seeds[done:done + len(chunk)], *chunk.shape[1:])
            if towards:
                other = sampling.step_noise(towards[0][done:done + len(chunk)], *chunk.shape[1:])
                noise = partial(_nudged_draw, noise, other, towards[1])

            def step(i: int, n: int, done: int = done, size: int = len(chunk)) -> None:
                if progress:
                    progress(done * n + i * size, len(x) * n)

            with torch.inference_mode():
                if sampler == "invert":
                    y = sampling.invert_ddim(net, chunk.to(self.device), times, progress=step)
                else:
                    y = sampling.run(sampler, net, chunk.to(self.device), times, step, noise)
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
            x0, gain = self._source(m, source)
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
        return [OneShot(a / gain, name, s, sampler, schedule, used, cfg.sample_rate, "vary", strength, src, backend,
                        precision) for a, s in zip(audio, seeds)]

    # -- encode, morph, tweak, repaint (docs/daw.md) --------------------------------------------------------------
    @staticmethod
    def _source(m: LoadedModel, source: np.ndarray) -> tuple[torch.Tensor, float]:
        """A source sound at the level the model learned (and the gain that took it there): a quiet real drum
        is as strange to a model as a distorted one (bench/transform.py, the perc's round trip on 4 held-out
        real drums: median -1.2 dB, worst +15 dB, as they came; -23.1 and -9.0 dB at that level)."""
        cfg = m.entry.config
        if source.shape != (cfg.channels, cfg.length):
            raise ValueError(f"source must be {cfg.channels} x {cfg.length} samples")
        gain = model_level_gain(source, cfg.sample_rate)
        return torch.from_numpy(np.ascontiguousarray(source * gain, dtype=np.float32)), gain

    @staticmethod
    def _ode_times(steps: int | None) -> list[float]:
        """Encoding and decoding share these times: DDIM backwards, then forwards, on the same points."""
        steps = int(steps or ENCODE_STEPS)
        if not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must be between 1 and {MAX_STEPS}")
        return sampling.times_for("logsnr", steps)

    def encode(self, name: str, sources: np.ndarray, steps: int | None = None, progress=None) -> np.ndarray:
        """The noise each of `sources` (batch x channels x frames) comes from, at the level the model learned
        (model_level_gain): `decode` gives them back at that level, within the round-trip error (docs/daw.md).
        The last ENCODED_KEPT are remembered: turning a morph's position dial decodes only."""
        with self.lock:
            m = self.get(name)
            keys = [(name, hashlib.sha1(np.ascontiguousarray(s, np.float32).tobytes()).hexdigest(),
                     steps or ENCODE_STEPS) for s in sources]
            todo = [i for i, k in enumerate(keys) if k not in self._encoded]
            if todo:
                x = torch.stack([self._source(m, sources[i])[0] for i in todo])
                for i, z in zip(todo, self._run(m, x, "invert", self._ode_times(steps), progress, [0] * len(x))):
                    self._encoded[keys[i]] = z
            for k in keys:
                self._encoded.move_to_end(k)
            while len(self._encoded) > ENCODED_KEPT:
                self._encoded.popitem(last=False)
            return np.stack([self._encoded[k] for k in keys])

    def decode(self, name: str, noise: np.ndarray, steps: int | None = None, progress=None) -> np.ndarray:
        """The sounds `encode` found these noises for (DDIM on the same times)."""
        with self.lock:
            m = self.get(name)
            x = torch.from_numpy(np.ascontiguousarray(noise, dtype=np.float32))
            return self._run(m, x, "vsampler", self._ode_times(steps), progress, [0] * len(x))

    def morph(self, name: str, a: np.ndarray, b: np.ndarray, position: float = 0.5, count: int = 1,
              steps: int | None = None, sources: tuple[str, str] = ("", ""), progress=None) -> list[OneShot]:
        """Sounds between `a` and `b`: both encoded, their noises slerped, decoded. One at `position` (0 gives
        back `a`, 1 `b`), or with count > 1 that many evenly between them, the ends left out."""
        if not 0.0 <= position <= 1.0:
            raise ValueError("position must be between 0 and 1")
        if count < 1:
            raise ValueError("count must be at least 1")
        positions = [position] if count == 1 else [(k + 1) / (count + 1) for k in range(count)]
        with self.lock:
            m = self.get(name)
            ends = torch.from_numpy(self.encode(name, np.stack([a, b]), steps, progress))
            x = torch.cat([sampling.slerp(ends[:1], ends[1:], p) for p in positions])
            audio = self.decode(name, x.numpy(), steps, progress)
            backend, precision, cfg = m.backend, m.precision, m.entry.config
        used = steps or ENCODE_STEPS
        return [OneShot(y, name, 0, "vsampler", "logsnr", used, cfg.sample_rate, "morph", source=sources[0] or None,
                        source_b=sources[1] or None, position=p, backend=backend, precision=precision)
                for y, p in zip(audio, positions)]

    def tweak(self, name: str, seed: int, amount: float, count: int = 1, steps: int | None = None,
              sampler: str | None = None, schedule: str | None = None, progress=None) -> list[OneShot]:
        """Close relatives of the sound `seed` makes: its noise turned by amount * 90 degrees towards the noise
        of seed + 1 + k for variant k (amount 0: the seed's own sound, 1: seed + 1 + k's)."""
        if not (0.0 <= amount <= 1.0) or math.isnan(amount):
            raise ValueError("amount must be between 0 and 1")
        check_seed(seed)
        with self.lock:
            m = self.get(name)
            steps, sampler, schedule = self._settings(m, steps, sampler, schedule)
            cfg = m.entry.config
            others = self._seeds((seed + 1) % (MAX_SEED + 1), count)
            fresh = sampling.noise(others, cfg.channels, cfg.length)
            x = sampling.nudged(sampling.noise([seed], cfg.channels, cfg.length).expand_as(fresh), fresh, amount)
            audio = self._run(m, x, sampler, sampling.times_for(schedule, steps), progress, [seed] * count,
                              towards=(others, amount))
            backend, precision = m.backend, m.precision
        return [OneShot(y, name, seed, sampler, schedule, steps, cfg.sample_rate, "tweak", amount=amount, variant=k,
                        backend=backend, precision=precision) for k, y in enumerate(audio)]

    def repaint(self, name: str, source: np.ndarray, start: float, end: float, strength: float = 1.0,
                count: int = 1, seed: int | None = None, steps: int | None = None, sampler: str | None = None,
                schedule: str | None = None, source_name: str | None = None, progress=None) -> list[OneShot]:
        """Remake `source` between `start` and `end` seconds and keep the rest (sample for sample, before
        post-processing). `strength` below 1 starts from the noised source, as a variation does: the new
        part then keeps some of the old one."""
        if not (0.0 < strength <= 1.0) or math.isnan(strength):
            raise ValueError("strength must be above 0 and at most 1")
        with self.lock:
            m = self.get(name)
            steps, sampler, schedule = self._settings(m, steps, sampler, schedule)
            cfg = m.entry.config
            x0, gain = self._source(m, source)
            mask = region_mask(cfg.length, cfg.sample_rate, start, end)
            seeds = self._seeds(seed, count)
            x = sampling.noised(x0.expand(len(seeds), -1, -1), sampling.noise(seeds, cfg.channels, cfg.length),
                                strength)
            used = math.ceil(steps * strength)
            keep = x0.to(self.device), mask.to(self.device)
            audio = self._run(m, x, sampler, sampling.times_for(schedule, used, strength), progress, seeds,
                              wrap=lambda net: sampling.keep_region(net, *keep))
            backend, precision = m.backend, m.precision
        src = str(Path(source_name)) if source_name else None
        return [OneShot(y / gain, name, s, sampler, schedule, used, cfg.sample_rate, "repaint", strength, src,
                        backend, precision, start=start, end=end) for y, s in zip(audio, seeds)]

    @staticmethod
    def _seeds(seed: int | None, count: int) -> list[int]:
        if count < 1:
            raise ValueError("count must be at least 1")
        base = random_seed() if seed is None or seed < 0 else check_seed(seed)
        return [(base + i) % (MAX_SEED + 1) for i in range(count)]


def checked_precision(net: torch.nn.Module, entry: ModelEntry, device: torch.device, dtype: torch.dtype,
                      why: str) -> tuple[torch.dtype | None, str]:
    """`dtype`, or fp32 when one forward pass under its autocast fails or is not finite on this GPU (bf16
    on an MPS of macOS 13, fp16 overflowing in a model trained in fp32), with the reason."""
    x = sampling.noise([0], entry.config.channels, entry.config.length).to(device)
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype):
            ok = all(bool(torch.isfinite(net(x, torch.full((1,), t, device=device))).all()) for t in (0.98, 0.05))
        problem = "" if ok else "gave non-finite outputs"
    except Exception as e:  # e.g. "MPS does not support this dtype"
        problem = f"failed ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    if not problem:
        return dtype, why
    name = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))
    log.warning("model %s: %s on %s %s; running in fp32", entry.name, name, device.type, problem)
    return None, f"{name} {problem} on {device.type}; fp32"


def model_level_gain(source: np.ndarray, sample_rate: int) -> float:
    """The gain that brings `source` to TRAINING_LUFS, the level every training file was brought to (1 for
    silence)."""
    level = loudness(np.asarray(source, dtype=np.float32), sample_rate)
    return 10 ** ((TRAINING_LUFS - level) / 20) if math.isfinite(level) else 1.0


def _nudged_draw(base, other, amount: float) -> torch.Tensor:
    return sampling.nudged(base(), other(), amount)


def region_mask(length: int, sample_rate: int, start: float, end: float) -> torch.Tensor:
    """1 where a repaint keeps the source, 0 where it remakes it, ramps of REPAINT_RAMP_S inside the region."""
    seconds = length / sample_rate
    if not (0.0 <= start < end) or math.isnan(end) or start >= seconds:
        raise ValueError(f"the region must start at 0 s or later, before {seconds:.3f} s, and end after its start")
    a, b = round(start * sample_rate), min(length, round(end * sample_rate))
    mask = torch.ones(length)
    mask[a:b] = 0.0
    ramp = min(round(REPAINT_RAMP_S * sample_rate), (b - a) // 2)
    if ramp and a > 0:
        mask[a:a + ramp] = torch.linspace(1.0, 0.0, ramp + 2)[1:-1]
    if ramp and b < length:
        mask[b - ramp:b] = torch.linspace(0.0, 1.0, ramp + 2)[1:-1]
    return mask
