"""Training and fine-tuning in one loop (after nanoGPT's train.py): every knob is a field of `TrainConfig`
(training/settings.py).

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

import collections
import contextlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from tad_daemon.models.modelfile import SUFFIX, ModelConfig, read_weights, save_model
from tad_daemon.models.network import KindUNet, build_unet, parameter_count
from tad_daemon.models.presets import LENGTH, PRESETS, architecture, downsampling
from tad_daemon.models.registry import ModelEntry
from tad_daemon.names import check_name
from tad_daemon.training import checkpoint as ckpt
from tad_daemon.training import run
from tad_daemon.training.dataset import Dataset, DataSummary, augment, load_cache, prepare, save_cache
from tad_daemon.training.recipe import EMA, checkpoint_blocks, v_loss
from tad_daemon.training.run import TrainResult, log
from tad_daemon.training.settings import PRECISIONS, TrainConfig, TrainError, event, hms

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


def new_model(cfg: TrainConfig) -> dict:
    """Architecture, length and base model (name, file, config) of a new run."""
    base = run.resolve_base(cfg.base, cfg.models_dir, cfg.bundled) if cfg.base else None
    arch = dict(base.config.arch) if base else dict(cfg.arch) or architecture(cfg.preset)
    if cfg.kinds and arch.get("kinds", cfg.kinds) != cfg.kinds:
        raise TrainError(f"the base model makes {', '.join(arch['kinds'])}; it cannot learn other kinds")
    if cfg.kinds:
        for kind in cfg.kinds:
            check_name(kind, "kind")
        arch["kinds"] = list(cfg.kinds)
    if arch.get("kinds") and model_kind(cfg, base, arch) not in [*arch["kinds"], "kit"]:
        raise TrainError(f"kind {cfg.kind!r} is not one the model makes ({', '.join(arch['kinds'])})")
    length = cfg.length or (base.config.length if base else LENGTH)
    if length % downsampling(arch):
        raise TrainError(f"length {length} is not a multiple of the architecture's downsampling "
                         f"({downsampling(arch)})")
    described = ({"name": base.name, "path": str(base.path), "config": base.config.to_json(), "kind": base.kind}
                 if base else {})
    return {"arch": arch, "length": length, "base": described}


def model_kind(cfg: TrainConfig, base: ModelEntry | None, arch: dict) -> str:
    """The kind the new model says it makes: the configured one; "kit" (every kind it knows) for a new model
    of several kinds; else the base model's; else "kit" or "custom"."""
    if cfg.kind:
        return cfg.kind
    if base and not cfg.kinds:
        return base.kind  # a kind of a model of several kinds (--base clap): that kind
    return "kit" if arch.get("kinds") else "custom"


def load_data(cfg: TrainConfig, out: Path, length: int, ranks: run.Ranks, resuming: bool,
              kinds: list[str] | None = None, kind: str = "") -> Dataset:
    """Rank 0 prepares the set (or reads the cache of this run when resuming) and shares it. With `kinds`,
    every file is labelled with its kind (or `kind`) and velocity."""
    state = None
    if ranks.main:
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
    state = run.broadcast_state(state, ranks)
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


def lr_at(cfg: TrainConfig, step: int) -> float:
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr


def model_config(cfg: TrainConfig, arch: dict, base: ModelEntry | None, data: Dataset, step: int,
                 losses: list[float], ranks: run.Ranks, dtype: torch.dtype | None, params: int,
                 seconds: float) -> ModelConfig:
    """The model file's config: architecture and defaults from the base model (if any), and what the
    training was (base, data summary, steps, final loss, date, device, recipe)."""
    license_ = cfg.license
    if base and base.config.license not in (cfg.license, "unspecified"):
        license_ = f"data: {cfg.license}; base model {base.name}: {base.config.license}"
    training = run.training_record(cfg, base, data, step, losses, str(ranks.device), ranks.world, dtype, params,
                                   seconds)
    training["augment"] = {"gain_db": cfg.augment_gain_db, "flip": cfg.augment_flip, "shift_ms": cfg.augment_shift_ms}
    kind = model_kind(cfg, base, arch)
    preset = base.config.preset if base else None if cfg.arch else cfg.preset
    # A fine-tune of a model of several kinds offers what its base offered, and the kind it was trained on.
    offers = []
    if base and base.config.offers:
        offers = [k for k in arch.get("kinds") or [] if k in base.config.offers or k == kind]
    return ModelConfig(
        arch=arch, preset=preset, kind=kind, length=data.audio.shape[-1],
        license=license_, source="trained", description=cfg.description,
        default_steps=base.config.default_steps if base else 12,
        default_sampler=base.config.default_sampler if base else "dpmpp-2m",
        default_schedule=base.config.default_schedule if base else "", training=training,
        guidance=base.config.guidance if base else 1.0, offers=offers)


# -- the run --------------------------------------------------------------------------------------------

def train(cfg: TrainConfig, resume: bool = True, progress: Callable[[dict], None] | None = None,
          stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train as `cfg` says, in its run folder. With `resume`, a checkpoint there is continued; without,
    one there is an error. `progress` receives events (training/settings.py EVENTS); `stop` is asked after
    every step and, when true, the run checkpoints and returns ("stopped")."""
    check(cfg)
    ranks = run.start_ranks(cfg.device)
    out = Path(cfg.out).expanduser().resolve()
    events: list = []

    def emit(e: dict) -> None:
        if ranks.main:
            if e["event"] != "step":
                events.append(e)
            if progress:
                progress(e)

    with run.run_folder(out, ranks.main):
        return _train(cfg, resume, ranks, out, emit, stop or (lambda: False), events)


def _train(cfg: TrainConfig, resume: bool, ranks: run.Ranks, out: Path, emit, stop, events) -> TrainResult:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = ranks.device
    if cfg.accumulation % ranks.world:
        raise TrainError(f"accumulation {cfg.accumulation} must be a multiple of the {ranks.world} processes")
    accum = cfg.accumulation // ranks.world  # per process; the effective batch stays micro_batch * accumulation
    state = run.broadcast_state(run.read_checkpoint(out, cfg, resume, ranks.world) if ranks.main else None, ranks)
    resuming = state is not None

    # The model: a preset from scratch, or a base model's architecture and weights. Rank 0 reads them (DDP then
    # gives every rank rank 0's weights); a resumed run takes them from its checkpoint, so it does not depend on
    # the base model file any more.
    model_setup = None
    if ranks.main:  # (a checkpoint from before checkpoints held the model's setup: from the config again)
        model_setup = {k: state[k] for k in ("arch", "length", "base")} if resuming and "arch" in state \
            else new_model(cfg)
    model_setup = run.broadcast_state(model_setup, ranks)
    arch, length, b = model_setup["arch"], model_setup["length"], model_setup["base"]
    base = ModelEntry(b["name"], Path(b["path"]), ModelConfig.from_json(b["config"]), b.get("kind", "")) if b else None
    torch.manual_seed(cfg.seed)
    net = build_unet(arch)
    if base and ranks.main and not resuming:
        weights = {k: v.float() if v.is_floating_point() else v for k, v in read_weights(base.path).items()}
        # A base of one kind becomes the U-Net of a new model of several (its embeddings start at zero).
        target = net.net if isinstance(net, KindUNet) and "kind_embedding" not in weights else net
        target.load_state_dict(weights, strict=True)
    net.to(device).train()

    data = load_data(cfg, out, length, ranks, resuming, arch.get("kinds"), model_kind(cfg, base, arch))
    if ranks.main:
        for line in data.summary.lines():
            log.info(line)
    emit(event("data", summary=asdict(data.summary), lines=data.summary.lines()))

    ema = EMA(net, cfg.ema_beta, cfg.ema_power, cfg.ema_inv_gamma, cfg.ema_update_every,
              device=torch.device("cpu") if cfg.low_memory else None) if ranks.main else None
    if cfg.low_memory:
        checkpoint_blocks(net)
    optimizer = run.make_optimizer(net, cfg, device)
    dtype = run.amp_dtype(device, cfg.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    model = net if ranks.world == 1 else torch.nn.parallel.DistributedDataParallel(
        net, device_ids=[device.index] if device.type == "cuda" else None)
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
        losses, step, elapsed = state["losses"].tolist(), int(state["step"]), float(state["elapsed"])
        del state

    params = parameter_count(net)
    n = data.audio.shape[0]
    times = repeats(data, cfg.balance)
    if data.kinds is not None:
        counts = ", ".join(f"{k} {c}" for k, c in data.kind_counts().items())
        log.info("kinds: %s; %d files an epoch (balance %.2f)", counts, int(times.sum()), cfg.balance)
    what = f"fine-tuning {base.name}" if base else f"{'custom' if cfg.arch else cfg.preset} from scratch"
    describe = (f"{cfg.name}: {what}, {params / 1e6:.2f} M parameters, {n} files, batch "
                f"{cfg.micro_batch * cfg.accumulation} ({cfg.micro_batch} x {accum} x {ranks.world} processes), "
                f"{device}, {run.precision_name(dtype)}{', low-memory' if cfg.low_memory else ''}")
    log.info("%s %s at step %d of %d", describe, "resuming" if resuming else "starting", step, cfg.steps)
    emit(event("start", step=step, total=cfg.steps, resumed=resuming, parameters=params, files=n,
               device=str(device), description=describe))

    # The loop's own random numbers, seeded per micro-batch (run.random_key): augmentation on the CPU,
    # diffusion times and noise on the device.
    aug_gen, noise_gen = torch.Generator(), torch.Generator(device)
    shift = round(cfg.augment_shift_ms * 44.1)
    orders: dict = {}
    run_start = last_save = time.perf_counter()
    recent_times = collections.deque([run_start], maxlen=21)  # the last 20 steps set the pace (and the ETA)
    while step < cfg.steps:
        run.set_lr(optimizer, lr_at(cfg, step))
        loss_sum = torch.zeros((), device=device)
        for micro in range(accum):
            position = run.stream_position(step, micro, cfg.micro_batch, accum, ranks)
            idx = run.micro_batch_indices(position, cfg.micro_batch, n, cfg.seed, orders, times)
            aug_gen.manual_seed(run.random_key(cfg.seed, position, 0))
            noise_gen.manual_seed(run.random_key(cfg.seed, position, 1))
            x = augment(data.audio[idx], aug_gen, cfg.augment_gain_db, cfg.augment_flip, shift).to(device)
            cond = {} if data.kinds is None else {
                k: v.to(device) for k, v in conditioning(data, idx, cfg.condition_dropout, aug_gen).items()}
            sync = ranks.world == 1 or micro == accum - 1  # DDP averages gradients once per optimiser step
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
        if ranks.world > 1:
            dist.all_reduce(loss_sum, op=dist.ReduceOp.SUM)
        loss_value = float(loss_sum) / (accum * ranks.world)
        losses.append(loss_value)
        step += 1

        recent_times.append(time.perf_counter())
        pace = (recent_times[-1] - recent_times[0]) / (len(recent_times) - 1)
        emit(event("step", step=step, total=cfg.steps, loss=loss_value, eta=pace * (cfg.steps - step),
                   seconds_per_step=pace, grad_norm=grad_norm, lr=lr_at(cfg, step - 1),
                   ema_decay=ema.decay() if ema else None))
        if step % cfg.log_every == 0 or step == cfg.steps:
            recent = losses[-cfg.log_every:]
            log.info("step %d/%d loss %.4f (mean of %d: %.4f) grad-norm %.3g  %.2f s/step  ETA %s", step,
                     cfg.steps, loss_value, len(recent), sum(recent) / len(recent), grad_norm, pace,
                     hms(pace * (cfg.steps - step)))
        if not math.isfinite(loss_value) and not scaler.is_enabled():
            raise TrainError(f"training diverged at step {step} (loss {loss_value}); try a lower lr")

        late = bool(cfg.checkpoint_minutes) and time.perf_counter() - last_save >= 60 * cfg.checkpoint_minutes
        stopped, late = run.any_rank([stop(), late], ranks)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or stopped or late:
            last_save = time.perf_counter()
            if ranks.main:
                ckpt.save_checkpoint(out / "checkpoint.pt", {
                    "config": asdict(cfg), "processes": ranks.world, "step": step, **model_setup,
                    "elapsed": elapsed + time.perf_counter() - run_start, "net": net.state_dict(),
                    "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict() if scaler.is_enabled() else {}, "losses": torch.tensor(losses),
                    "rng": ckpt.global_rng_state()})
                log.info("checkpoint at step %d", step)
                emit(event("checkpoint", step=step, path=str(out / "checkpoint.pt")))
        if ranks.main and cfg.snapshot_every and step % cfg.snapshot_every == 0 and step < cfg.steps:
            snap = out / "snapshots" / f"{cfg.name}-step{step:06d}{SUFFIX}"
            save_model(snap, ema.weights, model_config(cfg, arch, base, data, step, losses, ranks, dtype, params,
                                                       elapsed + time.perf_counter() - run_start))
            emit(event("snapshot", step=step, path=str(snap)))
        if stopped:
            log.info("stopped at step %d; resume to continue", step)
            emit(event("stopped", step=step))
            return TrainResult("stopped", step, events=events)

    if ranks.world > 1:
        dist.barrier()
    if not ranks.main:
        return TrainResult("done", step)
    if not losses:
        raise TrainError("no training steps were run")
    seconds = elapsed + time.perf_counter() - run_start
    config = model_config(cfg, arch, base, data, step, losses, ranks, dtype, params, seconds)
    title = (f"{cfg.name}: {what}, {params / 1e6:.1f} M parameters\n{n} files, batch "
             f"{cfg.micro_batch * cfg.accumulation}, {step} steps, {device}")
    return run.write_model(out, cfg.name, ema.weights, config, losses, title, data, emit, events)


def main(argv: list[str] | None = None) -> int:
    """`python -m tad_daemon.training.train CONFIG.json`: progress as JSON lines on stdout (rank 0)."""
    return run.main(argv, TrainConfig, train)


if __name__ == "__main__":
    sys.exit(main())
