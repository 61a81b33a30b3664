"""Training and fine-tuning in one loop (after nanoGPT's train.py): every knob is a field of `TrainConfig`.

    tad-daemon train-local my-kicks ~/Samples/Kicks --base kick --steps 2000
    python -m tad_daemon.training.train run.json                # a TrainConfig as JSON (what the queue runs)
    torchrun --nproc-per-node 4 -m tad_daemon.training.train run.json   # DDP: one process per GPU

The run folder (`out`) holds everything a run needs to resume after any kill:
    checkpoint.pt      training state (weights, EMA, optimiser, loss scaler, step, losses, random states),
                       replaced atomically every `checkpoint_every` steps and at the end
    data.safetensors   the prepared data set, so a resumed run trains on exactly the same data
    train.log          the log; snapshots/NAME-stepNNNNNN.safetensors: EMA models written while it runs
    NAME.safetensors   the finished model (EMA weights), NAME.md its card, NAME-loss.png its loss curve
Resuming continues the same data order, optimiser and EMA state and random numbers: on the CPU a resumed
run ends with the same weights, bit for bit, as one that was never interrupted. The data order and every
random number depend only on the seed and the position in the data stream, so N processes under torchrun
compute what one process accumulating N micro-batches computes.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from tad_daemon.limits import TRAINING_LUFS
from tad_daemon.models.device import pick_device
from tad_daemon.models.modelfile import SUFFIX, ModelConfig, read_weights, save_model
from tad_daemon.models.network import KindUNet, build_unet, parameter_count
from tad_daemon.models.presets import LENGTH, PRESETS, architecture, downsampling
from tad_daemon.models.registry import ModelEntry, model_folders, read_entry, scan
from tad_daemon.names import check_name
from tad_daemon.training import checkpoint as ckpt
from tad_daemon.training.dataset import Dataset, augment, load_cache, prepare, save_cache
from tad_daemon.training.recipe import EMA, checkpoint_blocks, v_loss
from tad_daemon.training.report import loss_curve, model_card

log = logging.getLogger("tad_daemon.training")

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    name: str  # the model's name: NAME.safetensors
    data: str  # folder of sound files (searched recursively)
    out: str  # run folder
    # -- model: a preset from scratch, or fine-tune a model (a name in the models folders, or a model file)
    preset: str = "cpu-small"
    arch: dict = field(default_factory=dict)  # a full U-Net architecture instead of a preset (see presets.py)
    base: str = ""
    models_dir: str = ""  # where `base` names are looked up, after the bundled models
    length: int = 0  # samples per one-shot; 0: the base model's, else 32768 (the seed's)
    kind: str = ""  # drum class stored in the model (kick, snare, hat, perc, custom); "": the base's or custom
    # -- a model of several kinds (KindUNet): what it makes, and how its data is labelled (dataset.label_of)
    kinds: list = field(default_factory=list)  # a new such model's kinds; empty: the base's (or a one-kind model)
    condition_dropout: float = 0.1  # share of one-shots trained without their kind, and without their velocity
    balance: float = 0.0  # 0: every file as often; 1: every kind as often (rare kinds' files repeated)
    condition_lr_scale: float = 10.0  # the kind and velocity embeddings' learning rate, x lr
    license: str = "unspecified"  # license of the training data; goes into the model file and card
    description: str = ""
    # -- data
    loudness_lufs: float = TRAINING_LUFS  # the seed normalises every file to -20 LUFS
    augment_gain_db: float = 0.0  # random gain within +-dB; 0: off
    augment_flip: bool = False  # polarity flip half of the time
    augment_shift_ms: float = 0.0  # delay the start by up to this much; 0: off
    # -- optimisation (the seed's recipe: AdamW, EMA, effective batch 32)
    steps: int = 1000  # optimiser steps
    micro_batch: int = 4  # one-shots per forward/backward pass, per process
    accumulation: int = 8  # micro-batches per optimiser step, over all processes: batch = micro_batch * accumulation
    lr: float = 1e-4
    betas: tuple[float, float] = (0.95, 0.999)
    eps: float = 1e-6
    weight_decay: float = 1e-3
    warmup_steps: int = 0  # linear learning-rate warm-up; the seed uses none
    grad_clip: float = 1.0  # max gradient norm; 0: off (the seed does not clip, see docs/training.md)
    ema_beta: float = 0.995
    ema_power: float = 0.7
    ema_inv_gamma: float = 1.0
    ema_update_every: int = 1  # optimiser steps between EMA updates
    # -- system
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    precision: str = "auto"  # auto: bf16 (fp16 + loss scaling where bf16 is missing) on CUDA, fp32 elsewhere
    threads: int = 0  # CPU threads; 0: torch's default
    seed: int = 0
    low_memory: bool = False  # gradient checkpointing, EMA kept on the CPU, lean optimiser (see docs)
    checkpoint_every: int = 100  # steps
    checkpoint_minutes: float = 0.0  # also checkpoint when this much time has passed since the last one; 0: off
    snapshot_every: int = 0  # steps between snapshot models of the EMA weights; 0: none
    log_every: int = 10  # steps between log lines

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return settings_from(cls, d, "training")


def settings_from(cls, d: dict, what: str):
    """A config dataclass from JSON: unknown keys refused with their names, betas a tuple."""
    unknown = set(d) - set(cls.__dataclass_fields__)
    if unknown:
        raise TrainError(f"unknown {what} settings: {', '.join(sorted(unknown))}")
    d = dict(d)
    if "betas" in d:
        d["betas"] = tuple(d["betas"])
    return cls(**d)


# Settings that may change between a run and its resumption without changing what is computed.
RESUMABLE_CHANGES = {"steps", "checkpoint_every", "checkpoint_minutes", "snapshot_every", "log_every", "threads",
                     "device", "out", "models_dir", "data", "license", "description", "kind"}


class TrainError(ValueError):
    """A training that cannot start or go on, with the reason."""


@dataclass
class TrainResult:
    state: str  # done, stopped
    step: int
    model: Path | None = None
    final_loss: float | None = None
    events: list = field(default_factory=list)


# -- setting up ---------------------------------------------------------------------------------------

def check(cfg: TrainConfig) -> None:
    try:
        check_name(cfg.name)
    except ValueError as e:
        raise TrainError(str(e)) from None
    if not cfg.base and not cfg.arch and cfg.preset not in PRESETS:
        raise TrainError(f"unknown preset {cfg.preset!r} (known: {', '.join(PRESETS)})")
    for key in ("steps", "micro_batch", "accumulation", "checkpoint_every", "log_every", "ema_update_every"):
        if getattr(cfg, key) < 1:
            raise TrainError(f"{key} must be at least 1")
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise TrainError("lr must be a positive number")
    if cfg.precision not in PRECISIONS:
        raise TrainError(f"precision must be one of {', '.join(PRECISIONS)}")
    if not 0 <= cfg.condition_dropout < 1 or not 0 <= cfg.balance <= 1:
        raise TrainError("condition_dropout must be within 0..1 (below 1), balance within 0..1")
    if min(cfg.grad_clip, cfg.snapshot_every, cfg.warmup_steps, cfg.length, cfg.checkpoint_minutes) < 0:
        raise TrainError("grad_clip, snapshot_every, warmup_steps, length and checkpoint_minutes cannot be negative")


def resolve_base(base: str, models_dir: str) -> ModelEntry:
    """A model file path, or a model name in the models folders (bundled, then the user's)."""
    path = Path(base).expanduser()
    if path.suffix == SUFFIX and path.is_file():
        try:
            return read_entry(path)
        except ValueError as e:
            raise TrainError(f"base model {base}: {e}") from None
    entries, _ = scan(model_folders(models_dir or None))
    if base not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise TrainError(f"unknown base model {base!r} (installed: {known})")
    return entries[base]


def new_model(cfg: TrainConfig) -> dict:
    """Architecture, length and base model (name, file, config) of a new run."""
    base = resolve_base(cfg.base, cfg.models_dir) if cfg.base else None
    arch = dict(base.config.arch) if base else dict(cfg.arch) or architecture(cfg.preset)
    if cfg.kinds and arch.get("kinds", cfg.kinds) != cfg.kinds:
        raise TrainError(f"the base model makes {', '.join(arch['kinds'])}; it cannot learn other kinds")
    if cfg.kinds:
        for kind in cfg.kinds:
            check_name(kind, "kind")
        arch["kinds"] = list(cfg.kinds)
    if arch.get("kinds") and (cfg.kind or (base.config.kind if base else "kit")) not in [*arch["kinds"], "kit"]:
        raise TrainError(f"kind {cfg.kind!r} is not one the model makes ({', '.join(arch['kinds'])})")
    length = cfg.length or (base.config.length if base else LENGTH)
    if length % downsampling(arch):
        raise TrainError(f"length {length} is not a multiple of the architecture's downsampling "
                         f"({downsampling(arch)})")
    described = {"name": base.name, "path": str(base.path), "config": base.config.to_json()} if base else {}
    return {"arch": arch, "length": length, "base": described}


def amp_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    if precision == "auto":
        if device.type != "cuda":
            return None  # CPU: fp32 (bf16 is emulated on most CPUs, and fp32 keeps resumption bit-exact)
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@dataclass
class Processes:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_processes(requested: str) -> Processes:
    """One process, or one of WORLD_SIZE under torchrun (nccl between GPUs, gloo between CPU processes)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Processes(device=pick_device(requested))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(rank, world, device)


def broadcast_state(state: dict | None, procs: Processes) -> dict:
    """Rank 0's `state` (tensors and plain values) on every rank, serialised with torch.save and read back
    with weights_only=True: only rank 0 needs the data folder and the run folder."""
    if procs.world == 1:
        return state
    comm = procs.device if procs.device.type == "cuda" else torch.device("cpu")
    if procs.main:
        buf = io.BytesIO()
        torch.save(state, buf)
        payload = torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8).to(comm)
        size = torch.tensor([payload.numel()], dtype=torch.int64, device=comm)
    else:
        size = torch.zeros(1, dtype=torch.int64, device=comm)
    dist.broadcast(size, 0)
    if not procs.main:
        payload = torch.empty(int(size.item()), dtype=torch.uint8, device=comm)
    dist.broadcast(payload, 0)
    if procs.main:
        return state
    return torch.load(io.BytesIO(payload.cpu().numpy().tobytes()), map_location="cpu", weights_only=True)


def any_rank(flags: list[bool], procs: Processes) -> list[bool]:
    """Each flag true on every rank if it is true on one (so all ranks stop or checkpoint at the same step)."""
    if procs.world == 1:
        return flags
    comm = procs.device if procs.device.type == "cuda" else torch.device("cpu")
    t = torch.tensor([int(f) for f in flags], device=comm)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def load_data(cfg: TrainConfig, out: Path, length: int, procs: Processes, resuming: bool,
              kinds: list[str] | None = None, kind: str = "") -> Dataset:
    """Rank 0 prepares the set (or reads the cache of this run when resuming) and shares it. With `kinds`,
    every file is labelled with its kind (or `kind`) and velocity."""
    state = None
    if procs.main:
        cache = out / "data.safetensors"
        if resuming and cache.is_file():
            data = load_cache(cache)
        else:
            data = prepare(cfg.data, length, cfg.loudness_lufs, kinds, kind)
            save_cache(cache, data)
        if data.audio.shape[-1] != length:
            raise TrainError(f"{cache}: prepared for {data.audio.shape[-1]} samples, not {length}")
        state = {"audio": data.audio, "summary": json.dumps(asdict(data.summary)), "kinds": data.kinds,
                 "velocity": data.velocity, "kind_names": data.kind_names}
    state = broadcast_state(state, procs)
    from tad_daemon.training.dataset import DataSummary

    return Dataset(state["audio"], DataSummary(**json.loads(state["summary"])), state["kinds"], state["velocity"],
                   state["kind_names"])


def repeats(data: Dataset, balance: float) -> np.ndarray:
    """How many times each file is in an epoch: 1, or for a labelled set with `balance` b, about
    (largest kind's count / the file's kind's count) ** b, so rare kinds are heard more often."""
    if data.kinds is None or balance == 0:
        return np.ones(data.audio.shape[0], dtype=np.int64)
    counts = np.bincount(data.kinds.numpy(), minlength=len(data.kind_names)).astype(np.float64)
    factor = np.round((counts.max() / np.maximum(counts, 1)) ** balance)
    return factor[data.kinds.numpy()].astype(np.int64)


def conditioning(data: Dataset, idx: list[int], dropout: float, gen: torch.Generator) -> dict:
    """The `kinds` (one-hot) and `velocity` a KindUNet is given for these files, each dropped (all-zero
    kinds; velocity -1) for a share `dropout` of them, so the model also learns "any kind" (guidance)."""
    b = len(idx)
    kinds = torch.nn.functional.one_hot(data.kinds[idx], len(data.kind_names)).float()
    kinds = kinds * (torch.rand(b, 1, generator=gen) >= dropout)
    velocity = torch.where(torch.rand(b, generator=gen) >= dropout, data.velocity[idx], -1.0)
    return {"kinds": kinds, "velocity": velocity}


def data_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The files' order in an epoch: a permutation drawn from (seed, epoch) alone, so any step's batch is
    known from the step number."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def stream_position(step: int, micro: int, mb: int, accum: int, procs: Processes) -> int:
    """Where one micro-batch of this rank starts in the data stream (the epochs' orders one after another):
    an optimiser step takes mb * accum * world items, ranks interleaved micro-batch by micro-batch."""
    return step * mb * accum * procs.world + (micro * procs.world + procs.rank) * mb


def micro_batch_indices(start: int, mb: int, n: int, seed: int, orders: dict,
                        times: np.ndarray | None = None) -> list[int]:
    """The files of the micro-batch that starts at `start` in the stream (`orders` caches an epoch's order).

    `times` (see `repeats`) puts file i in each epoch times[i] times; by default once."""
    items = np.arange(n) if times is None else np.repeat(np.arange(n), times)
    out = []
    for i in range(start, start + mb):
        epoch = i // len(items)
        if epoch not in orders:
            orders.clear()
            orders[epoch] = items[data_order(seed, epoch, len(items))]
        out.append(int(orders[epoch][i % len(items)]))
    return out


def make_optimizer(net: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW as the seed sets it. Fused on CUDA: faster, and without the foreach variant's temporary copies
    of the state; one tensor at a time in low-memory mode elsewhere, for the same reason."""
    groups = [{"params": list(net.parameters()), "scale": 1.0}]
    if isinstance(net, KindUNet):  # the new embeddings start at zero and have far to go: a faster rate
        new = {id(p) for p in (net.kind_embedding, *net.velocity_embedding.parameters())}
        groups = [{"params": [p for p in net.parameters() if id(p) not in new], "scale": 1.0},
                  {"params": [p for p in net.parameters() if id(p) in new], "scale": cfg.condition_lr_scale}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                             weight_decay=cfg.weight_decay, fused=device.type == "cuda" or None,
                             foreach=False if cfg.low_memory and device.type != "cuda" else None)


def random_key(seed: int, position: int, stream: int) -> int:
    """The seed of a micro-batch's random numbers (augmentation: stream 0; diffusion times and noise: 1).

    Drawn from (seed, stream position) alone, so a resumed run draws what an uninterrupted one would, and
    N processes draw what one process accumulating N micro-batches would."""
    return int(np.random.SeedSequence([seed, position, stream]).generate_state(1, np.uint64)[0] >> 1)


def lr_at(cfg: TrainConfig, step: int) -> float:
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr


def log_to(out: Path) -> logging.Handler:
    handler = logging.FileHandler(out / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


# -- the loop -------------------------------------------------------------------------------------------

def train(cfg: TrainConfig, resume: bool = True, progress: Callable[[dict], None] | None = None,
          stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train as `cfg` says, in its run folder. With `resume`, a checkpoint there is continued; without,
    one there is an error. `progress` receives events (dicts, see docs/training.md); `stop` is asked after
    every step and, when true, the run checkpoints and returns ("stopped")."""
    check(cfg)
    procs = start_processes(cfg.device)
    out = Path(cfg.out).expanduser().resolve()
    events: list = []

    def emit(event: dict) -> None:
        if procs.main:
            if event["event"] != "step":
                events.append(event)
            if progress:
                progress(event)

    lock = contextlib.nullcontext()
    if procs.main:
        out.mkdir(parents=True, exist_ok=True)
        lock = ckpt.RunLock(out)
    with lock:
        handler = log_to(out) if procs.main else None
        try:
            return _train(cfg, resume, procs, out, emit, stop or (lambda: False), events)
        finally:
            if handler:
                log.removeHandler(handler)
                handler.close()


def _train(cfg: TrainConfig, resume: bool, procs: Processes, out: Path, emit, stop, events) -> TrainResult:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = procs.device
    if cfg.accumulation % procs.world:
        raise TrainError(f"accumulation {cfg.accumulation} must be a multiple of the {procs.world} processes")
    accum = cfg.accumulation // procs.world  # per process; the effective batch stays micro_batch * accumulation

    # Resume?
    state = None
    if procs.main:
        ckpt.remove_partial_files(out)
        path = out / "checkpoint.pt"
        if path.is_file():
            if not resume:
                raise TrainError(f"{out} holds a checkpoint: resume it, or choose another run folder")
            state = ckpt.load_checkpoint(path)
            changed = [k for k, v in asdict(cfg).items()
                       if k not in RESUMABLE_CHANGES and json.dumps(state["config"].get(k)) != json.dumps(v)]
            if changed or state["processes"] != procs.world:
                what = ", ".join(changed) or f"processes ({state['processes']} before)"
                raise TrainError(f"cannot resume {out}: settings differ from the checkpoint's ({what})")
    state = broadcast_state(state, procs)
    resuming = state is not None

    # Model: a preset from scratch, or a base model's architecture and weights. Rank 0 reads them (DDP then
    # gives every rank rank 0's weights); a resumed run takes them from its checkpoint, so it does not
    # depend on the base model file any more.
    model_setup = None
    if procs.main:
        if resuming and "arch" in state:
            model_setup = {k: state[k] for k in ("arch", "length", "base")}
        else:  # a new run, or a checkpoint written before checkpoints held these
            model_setup = new_model(cfg)
    model_setup = broadcast_state(model_setup, procs)
    arch, length = model_setup["arch"], model_setup["length"]
    base = None
    if model_setup["base"]:
        b = model_setup["base"]
        base = ModelEntry(b["name"], Path(b["path"]), ModelConfig.from_json(b["config"]))
    torch.manual_seed(cfg.seed)
    net = build_unet(arch)
    if base and procs.main and not resuming:
        weights = {k: v.float() if v.is_floating_point() else v for k, v in read_weights(base.path).items()}
        # A base of one kind becomes the U-Net of a new model of several (its embeddings start at zero).
        target = net.net if isinstance(net, KindUNet) and "kind_embedding" not in weights else net
        target.load_state_dict(weights, strict=True)
    net.to(device).train()

    kind = cfg.kind or (base.config.kind if base else "")
    data = load_data(cfg, out, length, procs, resuming, arch.get("kinds"), kind)
    if procs.main:
        for line in data.summary.lines():
            log.info(line)
        emit({"event": "data", "summary": asdict(data.summary), "lines": data.summary.lines()})

    ema = EMA(net, cfg.ema_beta, cfg.ema_power, cfg.ema_inv_gamma, cfg.ema_update_every,
              device=torch.device("cpu") if cfg.low_memory else None) if procs.main else None
    if cfg.low_memory:
        checkpoint_blocks(net)
    optimizer = make_optimizer(net, cfg, device)
    dtype = amp_dtype(device, cfg.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    model = net
    if procs.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    # The loop's own random numbers, seeded per micro-batch (random_key): augmentation on the CPU,
    # diffusion times and noise on the device.
    aug_gen, noise_gen = torch.Generator(), torch.Generator(device)
    losses: list[float] = []
    step, elapsed = 0, 0.0
    if resuming:
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        if ema:
            ema.load_state_dict(state["ema"])
        ckpt.set_global_rng_state(state["rng"])
        losses = state["losses"].tolist()
        step, elapsed = int(state["step"]), float(state["elapsed"])
        del state

    params = parameter_count(net)
    n = data.audio.shape[0]
    times = repeats(data, cfg.balance)
    if data.kinds is not None:
        counts = ", ".join(f"{k} {c}" for k, c in data.kind_counts().items())
        log.info("kinds: %s; %d files an epoch (balance %.2f)", counts, int(times.sum()), cfg.balance)
    shift = round(cfg.augment_shift_ms * 44.1)
    what = f"fine-tuning {base.name}" if base else f"{'custom' if cfg.arch else cfg.preset} from scratch"
    describe = (f"{cfg.name}: {what}, "
                f"{params / 1e6:.2f} M parameters, {n} files, batch {cfg.micro_batch * cfg.accumulation} "
                f"({cfg.micro_batch} x {accum} x {procs.world} processes), {device}, "
                f"{str(dtype).replace('torch.', '') if dtype else 'fp32'}"
                f"{', low-memory' if cfg.low_memory else ''}")
    log.info("%s %s at step %d of %d", describe, "resuming" if resuming else "starting", step, cfg.steps)
    emit({"event": "start", "step": step, "total": cfg.steps, "resumed": resuming, "parameters": params,
          "files": n, "device": str(device), "description": describe})

    orders: dict = {}
    run_start = time.perf_counter()
    last_save = run_start
    recent_times = collections.deque([run_start], maxlen=21)  # the last 20 steps set the pace (and the ETA)
    stopped = False

    def save_state() -> None:
        nonlocal last_save
        last_save = time.perf_counter()
        if not procs.main:
            return
        ckpt.save_checkpoint(out / "checkpoint.pt", {
            "config": asdict(cfg), "processes": procs.world, "step": step, **model_setup,
            "elapsed": elapsed + time.perf_counter() - run_start,
            "net": net.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {}, "losses": torch.tensor(losses),
            "rng": ckpt.global_rng_state()})
        log.info("checkpoint at step %d", step)
        emit({"event": "checkpoint", "step": step, "path": str(out / "checkpoint.pt")})

    while step < cfg.steps:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(cfg, step) * group.get("scale", 1.0)  # no scale: a checkpoint from before
        loss_sum = torch.zeros((), device=device)
        for micro in range(accum):
            position = stream_position(step, micro, cfg.micro_batch, accum, procs)
            idx = micro_batch_indices(position, cfg.micro_batch, n, cfg.seed, orders, times)
            aug_gen.manual_seed(random_key(cfg.seed, position, 0))
            noise_gen.manual_seed(random_key(cfg.seed, position, 1))
            x = augment(data.audio[idx], aug_gen, cfg.augment_gain_db, cfg.augment_flip, shift).to(device)
            cond = {} if data.kinds is None else {
                k: v.to(device) for k, v in conditioning(data, idx, cfg.condition_dropout, aug_gen).items()}
            sync = procs.world == 1 or micro == accum - 1  # DDP averages gradients once per optimiser step
            with contextlib.nullcontext() if sync else model.no_sync():
                with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    loss = v_loss(model, x, noise_gen, **cond)
                scaler.scale(loss / accum).backward()
            loss_sum += loss.detach().float()
        scaler.unscale_(optimizer)
        # Clipping bounds the step after a rare huge gradient (a batch of near-silent clips at t ~ 0, an fp16
        # overflow that slipped through), which would otherwise also inflate Adam's second moment for ~1000
        # steps; with the norm always computed, it is also logged.
        grad_norm = float(torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip or math.inf))
        if math.isfinite(grad_norm) or scaler.is_enabled():
            scaler.step(optimizer)  # with fp16 the scaler skips steps whose gradients overflowed
        else:
            log.warning("step %d: gradient is not finite; step skipped", step + 1)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if ema:
            ema.update(net)
        if procs.world > 1:
            dist.all_reduce(loss_sum, op=dist.ReduceOp.SUM)
        loss_value = float(loss_sum) / (accum * procs.world)
        losses.append(loss_value)
        step += 1

        recent_times.append(time.perf_counter())
        mean = (recent_times[-1] - recent_times[0]) / (len(recent_times) - 1)
        eta = mean * (cfg.steps - step)
        emit({"event": "step", "step": step, "total": cfg.steps, "loss": loss_value, "eta": eta,
              "seconds_per_step": mean, "grad_norm": grad_norm, "lr": lr_at(cfg, step - 1),
              "ema_decay": ema.decay() if ema else None})
        if step % cfg.log_every == 0 or step == cfg.steps:
            recent = losses[-cfg.log_every:]
            log.info("step %d/%d loss %.4f (mean of %d: %.4f) grad-norm %.3g  %.2f s/step  ETA %s",
                     step, cfg.steps, loss_value, len(recent), sum(recent) / len(recent), grad_norm, mean,
                     format_seconds(eta))
        if not math.isfinite(loss_value) and not scaler.is_enabled():
            raise TrainError(f"training diverged at step {step} (loss {loss_value}); try a lower lr")
        late = bool(cfg.checkpoint_minutes) and time.perf_counter() - last_save >= 60 * cfg.checkpoint_minutes
        stopped, late = any_rank([stop(), late], procs)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or stopped or late:
            save_state()
        if procs.main and cfg.snapshot_every and step % cfg.snapshot_every == 0 and step < cfg.steps:
            snap = out / "snapshots" / f"{cfg.name}-step{step:06d}{SUFFIX}"
            save_model(snap, ema.weights, model_config(cfg, arch, base, data, step, losses, procs, dtype,
                                                       params, elapsed + time.perf_counter() - run_start))
            emit({"event": "snapshot", "step": step, "path": str(snap)})
        if stopped:
            log.info("stopped at step %d; resume to continue", step)
            emit({"event": "stopped", "step": step})
            return TrainResult("stopped", step, events=events)

    if procs.world > 1:
        dist.barrier()
    if not procs.main:
        return TrainResult("done", step)
    if not losses:
        raise TrainError("no training steps were run")
    seconds = elapsed + time.perf_counter() - run_start
    config = model_config(cfg, arch, base, data, step, losses, procs, dtype, params, seconds)
    title = (f"{cfg.name}: {what}, {params / 1e6:.1f} M parameters\n{n} files, batch "
             f"{cfg.micro_batch * cfg.accumulation}, {step} steps, {procs.device}")
    return write_model(out, cfg.name, ema.weights, config, losses, title, data, emit, events)


def write_model(out: Path, name: str, weights: dict, config: ModelConfig, losses: list[float], title: str,
                data: Dataset, emit: Callable[[dict], None], events: list) -> TrainResult:
    """A finished run's model file, loss curve and card in its run folder, and the `model` event."""
    model_path = save_model(out / f"{name}{SUFFIX}", weights, config)
    picture = loss_curve(losses, out / f"{name}-loss.png", title)
    card = model_card(out / f"{name}.md", name, asdict(config), config.training, data.summary.lines(), picture.name)
    final, step = config.training["final_loss"], config.training["steps"]
    log.info("finished: %s (final loss %.4g)", model_path, final)
    emit({"event": "model", "path": str(model_path), "card": str(card), "picture": str(picture),
          "final_loss": final, "step": step})
    return TrainResult("done", step, model_path, final, events)


def model_config(cfg: TrainConfig, arch: dict, base: ModelEntry | None, data: Dataset, step: int,
                 losses: list[float], procs: Processes, dtype: torch.dtype | None, params: int,
                 seconds: float) -> ModelConfig:
    """The model file's config: architecture and defaults from the base model (if any), and what the
    training was (base, data summary, steps, final loss, date, device, recipe)."""
    license_ = cfg.license
    if base and base.config.license not in (cfg.license, "unspecified"):
        license_ = f"data: {cfg.license}; base model {base.name}: {base.config.license}"
    training = training_record(cfg, base, data, step, losses, procs, dtype, params, seconds) | {
        "augment": {"gain_db": cfg.augment_gain_db, "flip": cfg.augment_flip, "shift_ms": cfg.augment_shift_ms}}
    kind = cfg.kind or (base.config.kind if base else "kit" if arch.get("kinds") else "custom")
    preset = base.config.preset if base else None if cfg.arch else cfg.preset
    return ModelConfig(
        arch=arch, preset=preset, kind=kind, length=data.audio.shape[-1],
        license=license_, source="trained", description=cfg.description,
        default_steps=base.config.default_steps if base else 12,
        default_sampler=base.config.default_sampler if base else "dpmpp-2m",
        default_schedule=base.config.default_schedule if base else "", training=training)


def training_record(cfg, base: ModelEntry | None, data: Dataset, step: int, losses: list[float],
                    procs: Processes, dtype: torch.dtype | None, params: int, seconds: float) -> dict:
    """What a run was, for the model file's header and card (`cfg`: a TrainConfig or a DistillConfig)."""
    last = losses[-min(len(losses), 50):] or [float("nan")]
    return {
        "base": base.name if base else "", "base_source": base.config.source if base else "",
        "data": data.summary.short(), "steps": step, "final_loss": sum(last) / len(last),
        "final_loss_steps": len(last), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(procs.device), "precision": str(dtype).replace("torch.", "") if dtype else "fp32",
        "parameters": params, "hours": seconds / 3600, "batch": cfg.micro_batch * cfg.accumulation,
        "micro_batch": cfg.micro_batch, "accumulation": cfg.accumulation,
        "processes": procs.world, "lr": cfg.lr, "betas": list(cfg.betas),
        "eps": cfg.eps, "weight_decay": cfg.weight_decay, "grad_clip": cfg.grad_clip, "ema_beta": cfg.ema_beta,
        "ema_power": cfg.ema_power, "seed": cfg.seed, "data_license": cfg.license,
    }


def format_seconds(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def main(argv: list[str] | None = None, config_class=TrainConfig, run: Callable = train) -> int:
    """`python -m tad_daemon.training.train CONFIG.json`: progress as JSON lines on stdout (rank 0).

    distill.py's main is this one with its own config and loop."""
    p = argparse.ArgumentParser(description=f"Run what a {config_class.__name__} JSON file describes.")
    p.add_argument("config")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--stop-file", help="checkpoint and stop (exit code 3) once this file exists")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="exit at once when stdin reaches end-of-file (the parent process has gone)")
    p.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by N (POSIX)")
    args = p.parse_args(argv)
    if args.nice and hasattr(os, "nice"):
        os.nice(args.nice)
    if args.exit_with_parent:
        threading.Thread(target=_exit_at_end_of_input, daemon=True).start()
    try:
        cfg = config_class.from_dict(json.loads(Path(args.config).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as e:
        print(json.dumps({"event": "error", "message": f"{args.config}: {e}"}), flush=True)
        return 2

    def show(event: dict) -> None:
        print(json.dumps(event), flush=True)

    signalled = stop_on_signals()
    stop_file = Path(args.stop_file) if args.stop_file else None

    def stop() -> bool:  # a file works everywhere, Windows included, where there is no SIGTERM to catch
        return signalled() or (stop_file is not None and stop_file.exists())

    try:
        result = run(cfg, resume=not args.no_resume, progress=show, stop=stop)
    except (ValueError, RuntimeError, OSError) as e:  # TrainError, DatasetError, bad model files, disk full
        show({"event": "error", "message": str(e)})
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0 if result.state == "done" else EXIT_STOPPED


EXIT_STOPPED = 3  # stopped by a signal after writing a checkpoint: run it again to resume


def _exit_at_end_of_input() -> None:
    """An orphaned trainer stops at once; the next run resumes from the last checkpoint (atomic, so even a
    checkpoint being written at this moment is safe: the old one stays until the new one is whole)."""
    while os.read(sys.stdin.fileno(), 4096):  # the raw descriptor: a buffered reader's lock, held by this
        pass  # thread, would stall the interpreter's exit
    os._exit(EXIT_STOPPED)


def stop_on_signals() -> Callable[[], bool]:
    """SIGINT and SIGTERM ask the loop to checkpoint and stop after the current step (a second one ends
    the process at once)."""
    import signal

    requested = []

    def handler(signum, _frame):
        if requested:
            raise KeyboardInterrupt
        requested.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return lambda: bool(requested)


if __name__ == "__main__":
    sys.exit(main())
