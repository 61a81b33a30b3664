"""The diffusion engine: models loaded on one device, turning (model, seed, steps) into raw one-shots.

Every sound operation (generate, vary, morph, tweak, repaint, kit, encode, decode) has the same shape: under
the engine's lock, the model and the settings it samples with (`_use`), a batch of starting points, one
sampling run (`_run`), and the one-shots with what made them (`Use.shots`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from tad_daemon import sampling
from tad_daemon.audio.folder import kit_name, stamp
from tad_daemon.audio.post import loudness
from tad_daemon.limits import LAYERS, MAX_LAYERS, MAX_SEED, MAX_STEPS, MAX_TAKES, TRAINING_LUFS
from tad_daemon.models import onnxrt
from tad_daemon.models.device import autocast_dtype, pick_device
from tad_daemon.models.graphs import GraphedNet
from tad_daemon.models.registry import ModelEntry, load_net
from tad_daemon.names import unknown_model
from tad_daemon.oneshot import OneShot
from tad_daemon.seeds import check_seed, format_turns, seeds_from

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
ENCODE_STEPS = 30  # encode and morph: the round trip's error falls with steps (docs/daw.md)
ENCODED_KEPT = 16  # encoded sounds remembered (256 kB each)
REPAINT_RAMP_S = 0.005  # the remade region fades in and out over this, inside it: no seam, the kept part exact
TAKE_AMOUNT = 0.15  # how far a round-robin take is from the seed's own sound (tweak's amount)


@dataclass
class LoadedModel:
    entry: ModelEntry
    net: torch.nn.Module | onnxrt.OnnxNet  # called as net(x_t, t, **conditioning) -> v either way
    dtype: torch.dtype | None  # autocast dtype, None for fp32
    backend: str = "torch"  # "onnx" once the ONNX Runtime net has replaced the torch one
    why: str = ""  # why this backend and precision (for the log and `tad-daemon status`)
    file: tuple = ()  # the model file's (modification time, size) when it was read

    def __post_init__(self) -> None:
        self.file = self.file or _file_key(self.entry.path)

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


@dataclass
class Use:
    """A loaded model and the settings one request samples it with."""

    model: LoadedModel
    steps: int
    sampler: str
    schedule: str

    @property
    def config(self):
        return self.model.entry.config

    def times(self, steps: int | None = None, t_start: float = 1.0) -> list[float]:
        return sampling.times_for(self.schedule, steps or self.steps, t_start)

    def condition(self, seeds: list[int], velocity: float | list[float] | None = None,
                  blend: dict[str, float] | None = None) -> Condition:
        """What a model of several kinds is given for each item: the name's kind (a mixture's: chosen by the
        item's seed), `blend`'s kinds mixed in by weight, and the velocity (None: a full hit). A model of one
        kind takes none of it: velocity then only sets the level (finishing), and a blend is refused."""
        velocities = list(velocity) if isinstance(velocity, list) else [velocity] * len(seeds)
        kinds, made, offered = self.model.entry.kinds, self.config.arch.get("kinds") or [], self.config.offered
        if not kinds:
            if blend:
                raise ValueError(f"model {self.model.entry.name} makes one kind of drum: it has nothing to blend")
            return Condition(None, [None] * len(seeds), velocities)
        for kind in blend or {}:
            if kind not in offered:
                raise ValueError(f"blend: model {self.model.entry.name} makes no {kind!r} (it makes "
                                 f"{', '.join(offered)})")
        drums = [kinds[s % len(kinds)] for s in seeds]
        weights = torch.zeros(len(seeds), len(made))
        for i, drum in enumerate(drums):
            weights[i, made.index(drum)] = 1.0 - sum((blend or {}).values())
            for kind, weight in (blend or {}).items():
                weights[i, made.index(kind)] += weight
        level = torch.tensor([1.0 if v is None else v for v in velocities])
        return Condition({"kinds": weights, "velocity": level}, drums, velocities)

    def shots(self, audio: np.ndarray, seeds: list[int], made: str, steps: int | None = None,
              cond: Condition | None = None, **fields) -> list[OneShot]:
        """One OneShot per item of `audio`, saying what made it (`fields`: the operation's own, the same for
        all; `cond`: each item's kind and velocity)."""
        m = self.model
        cond = cond or Condition(None, [None] * len(seeds), [None] * len(seeds))
        blend = fields.pop("blend", None) or None
        return [OneShot(a, m.entry.name, s, self.sampler, self.schedule, self.steps if steps is None else steps,
                        self.config.sample_rate, made, backend=m.backend, precision=m.precision, drum=drum,
                        velocity=v, blend=blend, **fields)
                for a, s, drum, v in zip(audio, seeds, cond.drums, cond.velocities)]


@dataclass
class Condition:
    """A batch's conditioning: the net's inputs (None for a model of one kind), each item's kind and velocity."""

    inputs: dict[str, torch.Tensor] | None
    drums: list[str | None]
    velocities: list[float | None]

    def part(self, start: int, stop: int) -> dict[str, torch.Tensor]:
        return {k: v[start:stop] for k, v in self.inputs.items()} if self.inputs else {}


def _file_key(path: Path) -> tuple:
    try:
        st = Path(path).stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return ()


def batch_limits(device: torch.device) -> tuple[int, int]:
    """(one-shots of one request that go through the net at once, one-shots of waiting requests merged into
    one batch) on `device`. On a GPU a batch costs little more than one: 16 and 16. On a CPU a batch of a few
    is a little cheaper per one-shot than singles and a batch of 8 dearer than 4 (bench/cpu.py, batch): a
    request's own one-shots go 4 at a time; but waiting requests are not merged (1), as every one of them
    would wait for the whole batch (bench/latency.py). The figures: docs/benchmarks.md."""
    return (4, 1) if device.type == "cpu" else (16, 16)


def pick_backend(requested: str, device: torch.device, cache_dir: Path | None) -> tuple[str, str]:
    """What `requested` (auto, torch or onnx) comes to here, and why: 'auto' stays 'auto' (measured per model,
    see onnxrt.Exports) on a CPU where ONNX Runtime is installed and exports have a cache folder; else
    'torch'. A request for onnx that cannot be met falls back to torch with a log line.
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


class EncodedSounds:
    """The noises the latest sounds were encoded into, by (model, the sound's hash, steps): turning a morph's
    position dial then only decodes."""

    def __init__(self, kept: int = ENCODED_KEPT):
        self.kept = kept
        self._noises: OrderedDict[tuple, np.ndarray] = OrderedDict()

    @staticmethod
    def key(model: str, sound: np.ndarray, steps: int) -> tuple:
        return model, hashlib.sha1(np.ascontiguousarray(sound, np.float32).tobytes()).hexdigest(), steps

    def get(self, key: tuple) -> np.ndarray | None:
        if key in self._noises:
            self._noises.move_to_end(key)
        return self._noises.get(key)

    def put(self, key: tuple, noise: np.ndarray) -> None:
        self._noises[key] = noise
        while len(self._noises) > self.kept:
            self._noises.popitem(last=False)

    def forget(self, model: str) -> None:
        for key in [k for k in self._noises if k[0] == model]:
            del self._noises[key]

    def clear(self) -> None:
        self._noises.clear()


class Engine:
    """Owns the device. Not thread-safe by design beyond the lock: one worker thread should drive it.

    With the ONNX Runtime backend, `load` takes the model's ONNX net from the cache (a second or two); when
    there is none yet, the model serves at once on torch while the ONNX net is exported in a background
    thread (seconds to minutes, once per model file) and swapped in when ready; `load(entry, wait=True)`
    waits for it.
    """

    def __init__(self, device: str = "auto", precision: str = "auto", threads: int | None = None,
                 backend: str = "auto", cache_dir: str | Path | None = None, steps: int | None = None,
                 sampler: str | None = None, cuda_graphs: bool = True, guidance: float | None = None):
        """`steps` and `sampler`: what a request that names none gets (generate.steps and generate.sampler);
        None: each model's own default. Resolved here alone. `cuda_graphs`: torch nets on a CUDA device
        replay their forward from graphs (models/graphs.py). `guidance`: a model of several kinds' guidance
        scale in place of its own (bench/kit_report.py measures it)."""
        if threads:
            torch.set_num_threads(threads)
        self.device = pick_device(device)
        self.precision = precision
        self.steps, self.sampler, self.guidance = steps, sampler, guidance
        self.chunk = batch_limits(self.device)[0]  # one-shots per pass through the net
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.cache_dir = Path(cache_dir) if cache_dir else None  # where ONNX exports are kept
        self.backend, self._torch_why = pick_backend(backend, self.device, self.cache_dir)
        self.exports = onnxrt.Exports(self.cache_dir, self.backend, precision) if self.backend != "torch" else None
        self.models: dict[str, LoadedModel] = {}
        self.lock = threading.RLock()
        self.encoded = EncodedSounds()

    # -- models --------------------------------------------------------------------------------------
    def load(self, entry: ModelEntry, wait: bool = False) -> LoadedModel:
        same = self._loaded_file(entry)
        if same is not None:  # another name of a file already loaded (a model of several kinds): one net
            return self._keep(replace(same, entry=entry))
        if self.exports:
            choice, why, onnx_net = self.exports.cached(entry, torch.get_num_threads())
            if onnx_net is not None:  # from the cache, the torch net is not even read: less memory
                return self._keep(LoadedModel(entry, onnx_net, None, "onnx", why))
            if choice is not None:  # torch was measured faster: no ONNX session at all
                return self._keep(self._torch(entry, self._dtype(choice), why))
        why = self._torch_why if not self.exports else "until its ONNX export is made and timed"
        loaded = self._keep(self._torch(entry, self._dtype(), why))
        if self.exports:
            self.exports.start(entry, loaded.net, torch.get_num_threads(),
                               still_wanted=lambda: self._is_loaded(loaded),
                               done=partial(self._switch, loaded), wait=wait)
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

    def _keep(self, loaded: LoadedModel) -> LoadedModel:
        with self.lock:
            self.encoded.forget(loaded.entry.name)
            self.models[loaded.entry.name] = loaded
        log.info("model %s runs on %s", loaded.entry.name, loaded.describe())
        return loaded

    def _loaded_file(self, entry: ModelEntry) -> LoadedModel | None:
        """A loaded model read from the same file as `entry`, unchanged since."""
        with self.lock:
            return next((m for m in self.models.values() if m.entry.path == entry.path
                         and m.file == _file_key(entry.path)), None)

    def _sharing(self, m: LoadedModel) -> list[LoadedModel]:
        """The loaded models that share `m`'s net: the names of one file."""
        return [other for other in self.models.values() if other.net is m.net]

    def _is_loaded(self, m: LoadedModel) -> bool:
        with self.lock:
            return bool(self._sharing(m))

    def _switch(self, m: LoadedModel, choice: str, why: str, onnx_net: onnxrt.OnnxNet) -> None:
        """An export is done: run the model (every name of its file) the fastest way measured, if it is still
        loaded."""
        with self.lock:
            for loaded in self._sharing(m):
                if choice == "onnx-fp32":
                    loaded.net, loaded.backend = onnx_net, "onnx"  # the torch net is freed here
                else:
                    loaded.dtype = self._dtype(choice)
                loaded.why = why
        log.info("model %s runs on %s", m.entry.name, m.describe())

    def preparing(self) -> int:
        """Models being exported to ONNX Runtime and timed (running on torch meanwhile)."""
        return self.exports.pending() if self.exports else 0

    def wait_prepared(self, stop: threading.Event, timeout: float) -> None:
        if self.exports:
            self.exports.wait(stop, timeout)

    def close(self, timeout: float = 120.0) -> None:
        """Start no more ONNX exports and wait for the one running (see onnxrt.Exports.close)."""
        if self.exports:
            self.exports.close(timeout)

    def unload(self, name: str) -> bool:
        with self.lock:
            self.encoded.forget(name)
            return self.models.pop(name, None) is not None

    def get(self, name: str) -> LoadedModel:
        with self.lock:
            if name not in self.models:
                raise KeyError(unknown_model(name, self.models, "loaded"))
            return self.models[name]

    # -- sampling ------------------------------------------------------------------------------------
    @contextmanager
    def _use(self, name: str, steps: int | None = None, sampler: str | None = None, schedule: str | None = None):
        """The opening every sound operation shares: under the lock, the model and the settings it samples
        with (the request's, else the configuration's, else the model's own)."""
        with self.lock:
            m = self.get(name)
            yield Use(m, *self._settings(m, steps, sampler, schedule))

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

    def _net_fn(self, m: LoadedModel, cond: dict[str, torch.Tensor]):
        """The model as the samplers call it, `net(x, t)`, given `cond` (a model of several kinds' inputs)."""
        device_type = self.device.type
        cond = {k: v.to(self.device) for k, v in cond.items()}

        def net(x: torch.Tensor, t: torch.Tensor, cond: dict[str, torch.Tensor] = cond) -> torch.Tensor:
            if m.backend == "onnx":
                try:
                    return m.net(x, t, **cond)
                except Exception as e:  # e.g. out of memory for a huge batch: torch may still manage
                    log.error("model %s: ONNX Runtime failed (%s); going back to torch", m.entry.name, e)
                    m.net, m.backend, m.why = load_net(m.entry, self.device), "torch", f"ONNX Runtime failed ({e})"
            if m.graphs:
                return m.net(x, t, **cond)
            with torch.autocast(device_type, dtype=m.dtype or torch.float32, enabled=m.dtype is not None):
                return m.net(x, t, **cond)

        scale = self.guidance if self.guidance is not None else m.entry.config.guidance
        if scale == 1.0 or "kinds" not in cond:
            return net
        # Classifier-free guidance: the conditioned velocity pushed away from the unconditioned one (no kind,
        # velocity unknown: what the model learned from the condition-dropped steps), one batch for both.
        both = {"kinds": torch.cat([cond["kinds"], torch.zeros_like(cond["kinds"])]),
                "velocity": torch.cat([cond["velocity"], torch.full_like(cond["velocity"], -1.0)])}

        def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            conditioned, free = net(torch.cat([x, x]), torch.cat([t, t]), both).float().chunk(2)
            return free + scale * (conditioned - free)

        return guided

    def _run(self, m: LoadedModel, x: torch.Tensor, sampler: str, times: list[float], progress,
             seeds: list[int], cond: Condition, wrap=None,
             towards: list[tuple[list[int], float | torch.Tensor]] = ()) -> np.ndarray:
        """Sample `x` (a batch started at times[0]) in chunks, each item given its `cond`; `wrap(net)` alters
        the network (repaint), sampler "invert" runs the deterministic sampler backwards (encode). `towards`,
        turn after turn (seeds, amount, or one amount per item): a stochastic sampler's fresh noise is nudged
        towards those seeds' as its starting noise was (tweak, layers)."""
        outs = []
        done = 0
        for chunk in x.split(self.chunk):
            net = self._net_fn(m, cond.part(done, done + len(chunk)))
            net = wrap(net) if wrap else net
            noise = sampling.step_noise(seeds[done:done + len(chunk)], *chunk.shape[1:])
            for seeds_to, amount in towards:
                other = sampling.step_noise(seeds_to[done:done + len(chunk)], *chunk.shape[1:])
                amount = amount[done:done + len(chunk)] if torch.is_tensor(amount) else amount
                noise = partial(_nudged_draw, noise, other, amount)

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

    # -- the sound operations ------------------------------------------------------------------------
    # Each takes `velocity` (0..1; None: a full hit) and `blend` ({kind: weight}) where it makes new sounds:
    # a model of several kinds is conditioned on them; a model of one kind takes the velocity as a level.
    def generate(self, name: str, count: int = 1, seed: int | None = None, steps: int | None = None,
                 sampler: str | None = None, schedule: str | None = None, progress=None,
                 seeds: list[int] | None = None, velocity: float | None = None,
                 blend: dict[str, float] | None = None) -> list[OneShot]:
        """`count` one-shots in one batch; item i uses seed + i, so each file can be remade on its own.

        `seeds` (one per one-shot) replaces `count` and `seed`: the daemon batches requests that way.
        """
        with self._use(name, steps, sampler, schedule) as use:
            seeds = [check_seed(s) for s in seeds] if seeds else seeds_from(seed, count)
            cond = use.condition(seeds, velocity, blend)
            x = sampling.noise(seeds, use.config.channels, use.config.length)
            audio = self._run(use.model, x, use.sampler, use.times(), progress, seeds, cond)
            return use.shots(audio, seeds, "generate", cond=cond, blend=blend)

    def vary(self, name: str, source: np.ndarray, strength: float, count: int = 1, seed: int | None = None,
             steps: int | None = None, sampler: str | None = None, schedule: str | None = None,
             source_name: str | None = None, progress=None, velocity: float | None = None,
             blend: dict[str, float] | None = None) -> list[OneShot]:
        """SDEdit: noise `source` (channels x frames) to t = strength and sample back from there to 0.

        Runs ceil(steps * strength) steps: a light touch needs few.
        """
        if not (0.0 <= strength <= 1.0) or math.isnan(strength):
            raise ValueError("strength must be between 0 and 1")
        with self._use(name, steps, sampler, schedule) as use:
            seeds = seeds_from(seed, count)
            cond = use.condition(seeds, velocity, blend)
            x0, gain = self._source(use, source)
            eps = sampling.noise(seeds, use.config.channels, use.config.length)
            x = sampling.noised(x0.expand_as(eps), eps, strength)
            used = math.ceil(use.steps * strength)
            audio = x.numpy() if used == 0 else self._run(use.model, x, use.sampler, use.times(used, strength),
                                                          progress, seeds, cond)
            return use.shots(audio / gain, seeds, "vary", used, cond, strength=strength, source=_name(source_name),
                             blend=blend)

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
            ends = torch.from_numpy(self.encode(name, np.stack([a, b]), steps, progress))
            x = torch.cat([sampling.slerp(ends[:1], ends[1:], p) for p in positions])
            audio = self.decode(name, x.numpy(), steps, progress)
            use = Use(self.get(name), steps or ENCODE_STEPS, "vsampler", "logsnr")
            shots = use.shots(audio, [0] * len(audio), "morph", cond=use.condition([0] * len(audio)),
                              source=sources[0] or None, source_b=sources[1] or None)
            return [replace(shot, position=p) for shot, p in zip(shots, positions)]

    def tweak(self, name: str, seed: int, amount: float, count: int = 1, steps: int | None = None,
              sampler: str | None = None, schedule: str | None = None, progress=None,
              velocity: float | None = None, blend: dict[str, float] | None = None,
              turns: tuple[tuple[int, float], ...] = ()) -> list[OneShot]:
        """Close relatives of the sound `seed` makes: its noise turned by amount * 90 degrees towards the noise
        of seed + 1 + k for variant k (amount 0: the seed's own sound, 1: seed + 1 + k's). With `turns` (a
        relative's own, parse_turns), relatives of that relative: its noise, turned again towards seeds of
        their own. Each one-shot's `turns` says how to make relatives of it in turn."""
        if not (0.0 <= amount <= 1.0) or math.isnan(amount):
            raise ValueError("amount must be between 0 and 1")
        check_seed(seed)
        with self._use(name, steps, sampler, schedule) as use:
            c = use.config
            cond = use.condition([seed] * count, velocity, blend)
            others = seeds_from(_next_seed(seed, turns), count)
            fresh = sampling.noise(others, c.channels, c.length)
            base = sampling.noise([seed], c.channels, c.length)
            for other, turned in turns:
                base = sampling.nudged(base, sampling.noise([other], c.channels, c.length), turned)
            x = sampling.nudged(base.expand_as(fresh), fresh, amount)
            towards = [([other] * count, turned) for other, turned in turns] + [(others, amount)]
            audio = self._run(use.model, x, use.sampler, use.times(), progress, [seed] * count, cond, towards=towards)
            return [replace(shot, variant=k, turns=format_turns((*turns, (others[k], amount)))) for k, shot in
                    enumerate(use.shots(audio, [seed] * count, "tweak", cond=cond, amount=amount, blend=blend))]

    def repaint(self, name: str, source: np.ndarray, start: float, end: float, strength: float = 1.0,
                count: int = 1, seed: int | None = None, steps: int | None = None, sampler: str | None = None,
                schedule: str | None = None, source_name: str | None = None, progress=None) -> list[OneShot]:
        """Remake `source` between `start` and `end` seconds and keep the rest (sample for sample, before
        post-processing). `strength` below 1 starts from the noised source, as a variation does: the new
        part then keeps some of the old one."""
        if not (0.0 < strength <= 1.0) or math.isnan(strength):
            raise ValueError("strength must be above 0 and at most 1")
        with self._use(name, steps, sampler, schedule) as use:
            c = use.config
            x0, gain = self._source(use, source)
            end = min(end, c.length / c.sample_rate)  # past the end is the end (1e308 too: no overflow)
            mask = region_mask(c.length, c.sample_rate, start, end)
            seeds = seeds_from(seed, count)
            cond = use.condition(seeds)
            x = sampling.noised(x0.expand(len(seeds), -1, -1), sampling.noise(seeds, c.channels, c.length), strength)
            used = math.ceil(use.steps * strength)
            keep = x0.to(self.device), mask.to(self.device)
            audio = self._run(use.model, x, use.sampler, use.times(used, strength), progress, seeds, cond,
                              wrap=lambda net: sampling.keep_region(net, *keep))
            return use.shots(audio / gain, seeds, "repaint", used, cond, strength=strength,
                             source=_name(source_name), start=start, end=end)

    def kit(self, names: list[str] | tuple[str, ...], seed: int | None = None, steps: int | None = None,
            sampler: str | None = None, progress=None, velocity: float | None = None) -> list[OneShot]:
        """One one-shot of each model in `names`, all from one seed, filed together in one kit folder."""
        seed = seeds_from(seed, 1)[0]
        folder = f"kits/{kit_name(seed)}"
        with self.lock:
            return [replace(self.generate(name, 1, seed, steps, sampler, progress=progress, velocity=velocity)[0],
                            made="kit", folder=folder) for name in names]

    def layers(self, name: str, velocities: int = LAYERS, takes: int = 1, seed: int | None = None,
               steps: int | None = None, sampler: str | None = None, blend: dict[str, float] | None = None,
               amount: float = TAKE_AMOUNT, progress=None) -> list[OneShot]:
        """One drum as a sampler instrument: `velocities` layers, soft to hard (layer i of N made at velocity
        (i + 1) / N, the top of its range), each in `takes` round-robin takes: take 0 the seed's own sound,
        take k a close relative (its noise turned by `amount` towards seed + k's, as tweak does). All from
        one seed, in one folder."""
        if not (1 <= velocities <= MAX_LAYERS and 1 <= takes <= MAX_TAKES):
            raise ValueError(f"velocities must be between 1 and {MAX_LAYERS}, round robins between 1 and {MAX_TAKES}")
        seed = seeds_from(seed, 1)[0]
        items = [((i + 1) / velocities, k) for i in range(velocities) for k in range(takes)]
        with self._use(name, steps, sampler) as use:
            c = use.config
            seeds = [seed] * len(items)
            cond = use.condition(seeds, [v for v, _ in items], blend)
            others = [(seed + k) % (MAX_SEED + 1) for _, k in items]  # take 0 is turned by 0: the seed's own
            amounts = torch.tensor([amount if k else 0.0 for _, k in items])
            base = sampling.noise([seed], c.channels, c.length).expand(len(items), -1, -1)
            x = sampling.nudged(base, sampling.noise(others, c.channels, c.length), amounts)
            audio = self._run(use.model, x, use.sampler, use.times(), progress, seeds, cond,
                              towards=[(others, amounts)])
            folder = f"layers/{stamp()}_{name}_s{seed}"
            return [replace(shot, take=k, folder=folder) for shot, (_, k) in zip(
                use.shots(audio, seeds, "layers", cond=cond, amount=amount, blend=blend), items)]

    # -- encode and decode (morph is built on them) --------------------------------------------------------------
    @staticmethod
    def _source(use: Use, source: np.ndarray) -> tuple[torch.Tensor, float]:
        """A source sound at the level the model learned (and the gain that took it there): a quiet real drum
        is as strange to a model as a distorted one (docs/daw.md, section 4: the round trip of held-out real
        drums, as they came and at that level)."""
        c = use.config
        if source.shape != (c.channels, c.length):
            raise ValueError(f"source must be {c.channels} x {c.length} samples")
        gain = model_level_gain(source, c.sample_rate)
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
        with self._use(name) as use:
            keys = [self.encoded.key(name, s, steps or ENCODE_STEPS) for s in sources]
            todo = [i for i, k in enumerate(keys) if self.encoded.get(k) is None]
            if todo:
                x = torch.stack([self._source(use, sources[i])[0] for i in todo])
                for i, z in zip(todo, self._run(use.model, x, "invert", self._ode_times(steps), progress,
                                                [0] * len(x), use.condition([0] * len(x)))):
                    self.encoded.put(keys[i], z)
            return np.stack([self.encoded.get(k) for k in keys])

    def decode(self, name: str, noise: np.ndarray, steps: int | None = None, progress=None) -> np.ndarray:
        """The sounds `encode` found these noises for (DDIM on the same times)."""
        with self._use(name) as use:
            x = torch.from_numpy(np.ascontiguousarray(noise, dtype=np.float32))
            return self._run(use.model, x, "vsampler", self._ode_times(steps), progress, [0] * len(x),
                             use.condition([0] * len(x)))


def _name(path: str | None) -> str | None:
    return str(Path(path)) if path else None


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


def _next_seed(seed: int, turns: tuple[tuple[int, float], ...]) -> int:
    """The first seed a tweak turns towards: seed + 1 for the seed's own sound (its variant k: seed + 1 + k),
    one drawn from the whole recipe for a relative's, so its relatives head away from its siblings'."""
    if not turns:
        return (seed + 1) % (MAX_SEED + 1)
    mixed = np.random.SeedSequence([seed, *[other for other, _ in turns]]).generate_state(1)[0]
    return int(mixed) % (MAX_SEED + 1)


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
