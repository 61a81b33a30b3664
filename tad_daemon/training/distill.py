"""Progressive distillation (Salimans and Ho 2022, made for v-prediction): a student that needs half the
teacher's sampling steps, round after round, until it needs `student_steps`.

    tad-daemon distill kick --steps 4                      # queued in the daemon, like a fine-tune
    python -m tad_daemon.training.distill run.json         # a DistillConfig as JSON (what the queue runs)

Each round starts the student from the teacher's weights and trains it so that one DDIM step of the student
on the grid t = w(i/N) lands where two DDIM steps of the teacher on the grid of 2N land (w: GRIDS, quadratic
by default: the last step starts from little noise); the round's student (its EMA weights) is the next
round's teacher. The result samples with the seed's VSampler (DDIM) on the same grid in `student_steps` steps
and is a model file like any other.

Data: a folder of sound files, or (by default) one-shots the teacher makes itself with its own default
sampler, so a model can be distilled without the files it was trained on. The run folder holds what
train.py's does (checkpoint.pt, data.safetensors, train.log, the model, its card and loss curve) and
resumes the same way after any kill; rounds/NAME-Nsteps.safetensors keeps each round's student.
"""

from __future__ import annotations

import collections
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from tad_daemon import sampling
from tad_daemon.limits import TRAINING_LUFS
from tad_daemon.models.modelfile import SUFFIX, ModelConfig, read_weights, save_model
from tad_daemon.models.network import build_unet, parameter_count
from tad_daemon.models.registry import ModelEntry
from tad_daemon.names import check_name
from tad_daemon.training import checkpoint as ckpt
from tad_daemon.training import run
from tad_daemon.training.dataset import Dataset, DataSummary, load_cache, prepare, save_cache
from tad_daemon.training.recipe import EMA, checkpoint_blocks
from tad_daemon.training.run import TrainResult
from tad_daemon.training.settings import (
    PRECISIONS,
    DistillConfig,
    TrainError,
    check_teacher,
    event,
    hms,
    round_count,
)

log = logging.getLogger("tad_daemon.training")


def check(cfg: DistillConfig) -> None:
    try:
        check_name(cfg.name)
    except ValueError as e:
        raise TrainError(str(e)) from None
    for key in ("student_steps", "teacher_steps", "steps", "micro_batch", "accumulation", "samples",
                "checkpoint_every", "log_every"):
        if getattr(cfg, key) < 1:
            raise TrainError(f"{key} must be at least 1")
    round_count(cfg.student_steps, cfg.teacher_steps)
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise TrainError("lr must be a positive number")
    if cfg.schedule not in GRIDS:
        raise TrainError(f"schedule must be one of {', '.join(GRIDS)}")
    if cfg.precision not in PRECISIONS:
        raise TrainError(f"precision must be one of {', '.join(PRECISIONS)}")


# The students' time grids, as t = grid(u) for u evenly spaced from 1 to 0 (sampling.py's schedules of the
# same names): any such grid of n steps holds every other time of the grid of 2n, so the rounds nest.
GRIDS = {"linear": lambda u: u, "quadratic": lambda u: u * u}


def distill_loss(student: torch.nn.Module, teacher: torch.nn.Module, x0: torch.Tensor, n: int,
                 gen: torch.Generator, grid: str = "linear") -> torch.Tensor:
    """One batch of progressive distillation onto a student of `n` steps (Salimans and Ho, algorithm 2).

    t = w(i/n) for a random i in 1..n (w: the grid); z_t = alpha x0 + sigma noise. Two teacher DDIM steps
    (t -> w((i - 1/2)/n) -> w((i - 1)/n)) give z'', and x~ is the clean sound from which one DDIM step lands
    exactly on z''. The student predicts v; its loss is on the clean-sound estimate, weighted by max(SNR, 1)
    ("truncated SNR"), which in v is mean(max(alpha^2, sigma^2) (v - v~)^2) with v~ = (alpha z_t - x~) / sigma.
    """
    b = x0.shape[0]
    i = torch.randint(1, n + 1, (b,), device=x0.device, generator=gen)
    noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=gen)
    w = GRIDS[grid]
    t, t_mid, t_next = w(i.float() / n), w((i.float() - 0.5) / n), w((i.float() - 1.0) / n)
    shape = (b, *([1] * (x0.ndim - 1)))

    def a_s(time: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angle = (time * math.pi / 2).view(shape)
        return torch.cos(angle), torch.sin(angle)

    a, s = a_s(t)
    z = a * x0 + s * noise
    with torch.no_grad():
        z_target = z
        for t_from, t_to in ((t, t_mid), (t_mid, t_next)):
            a_f, s_f = a_s(t_from)
            a_t, s_t = a_s(t_to)
            v = teacher(z_target, t_from).float()
            z_target = a_t * (a_f * z_target - s_f * v) + s_t * (s_f * z_target + a_f * v)
        a_n, s_n = a_s(t_next.clamp(min=0))
        x_target = (z_target - (s_n / s) * z) / (a_n - (s_n / s) * a)
        v_target = (a * z - x_target) / s
    v_hat = student(z, t).float()
    return (torch.maximum(a**2, s**2) * (v_hat - v_target) ** 2).mean()


@torch.no_grad()
def teacher_oneshots(net: torch.nn.Module, config: ModelConfig, count: int, seed: int, device: torch.device,
                     batch: int = 8, progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """`count` one-shots from the teacher's own default sampler, steps and schedule (seeds seed, seed+1...),
    at the model's level (the training loudness): the data a model without its files is distilled on."""
    sampler = config.default_sampler
    schedule = config.default_schedule or sampling.OWN_SCHEDULE[sampler]
    times = sampling.times_for(schedule, config.default_steps)
    out = []
    for first in range(0, count, batch):
        seeds = list(range(seed + first, seed + min(count, first + batch)))
        x = sampling.noise(seeds, config.channels, config.length).to(device)
        noise = sampling.step_noise(seeds, config.channels, config.length)
        out.append(sampling.run(sampler, net, x, times, None, noise).float().cpu())
        if progress:
            progress(first + len(seeds))
    return torch.cat(out)


def distill(cfg: DistillConfig, resume: bool = True, progress: Callable[[dict], None] | None = None,
            stop: Callable[[], bool] | None = None) -> TrainResult:
    """Distil as `cfg` says, in its run folder; events and stopping as train.train."""
    check(cfg)
    out = Path(cfg.out).expanduser().resolve()
    events: list = []

    def emit(e: dict) -> None:
        if e["event"] != "step":
            events.append(e)
        if progress:
            progress(e)

    with run.run_folder(out):
        return _distill(cfg, resume, out, emit, stop or (lambda: False), events)


def _distill(cfg: DistillConfig, resume: bool, out: Path, emit, stop, events) -> TrainResult:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = run.start_ranks(cfg.device).device
    state = run.read_checkpoint(out, cfg, resume)

    # The teacher: from its file in a new run; from the checkpoint (the current round's teacher) when resuming.
    if state:
        teacher_entry = ModelEntry(state["teacher_name"], Path(state["teacher_path"]),
                                   ModelConfig.from_json(state["teacher_config"]))
    else:
        teacher_entry = run.resolve_base(cfg.teacher, cfg.models_dir, cfg.bundled)
        try:
            check_teacher(teacher_entry.name, teacher_entry.config.arch)
        except ValueError as e:
            raise TrainError(str(e)) from None
        teacher_weights = {k: v.float() if v.is_floating_point() else v
                           for k, v in read_weights(teacher_entry.path).items()}
    teacher_config, teacher_name = teacher_entry.config, teacher_entry.name
    torch.manual_seed(cfg.seed)
    teacher = build_unet(teacher_config.arch).to(device)
    student = build_unet(teacher_config.arch).to(device)
    teacher.load_state_dict(state["teacher"] if state else teacher_weights)
    teacher.eval().requires_grad_(False)

    data = _data(cfg, out, teacher, teacher_config, device, emit, resuming=state is not None)
    emit(event("data", summary=asdict(data.summary), lines=data.summary.lines()))
    for line in data.summary.lines():
        log.info(line)

    dtype = run.amp_dtype(device, cfg.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    total = cfg.rounds * cfg.steps
    step, losses, elapsed = 0, [], 0.0  # step counts over all rounds
    if state:
        student.load_state_dict(state["student"])
        step, losses, elapsed = int(state["step"]), state["losses"].tolist(), float(state["elapsed"])
    else:
        student.load_state_dict(teacher.state_dict())
    student.train()
    if cfg.low_memory:
        checkpoint_blocks(student)
    optimizer = run.make_optimizer(student, cfg, device)
    ema = EMA(student, cfg.ema_beta, cfg.ema_power, cfg.ema_inv_gamma,
              device=torch.device("cpu") if cfg.low_memory else None)
    if state:
        optimizer.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        if state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        ckpt.set_global_rng_state(state["rng"])
        del state

    params = parameter_count(student)
    n_files = data.audio.shape[0]
    describe = (f"{cfg.name}: distilling {teacher_name} from {cfg.teacher_steps} to {cfg.student_steps} steps in "
                f"{cfg.rounds} rounds of {cfg.steps} steps, {params / 1e6:.2f} M parameters, {n_files} one-shots, "
                f"batch {cfg.micro_batch * cfg.accumulation}, {device}, {run.precision_name(dtype)}")
    log.info("%s %s at step %d of %d", describe, "resuming" if step else "starting", step, total)
    emit(event("start", step=step, total=total, resumed=bool(step), parameters=params, files=n_files,
               device=str(device), description=describe))

    orders: dict = {}
    gen = torch.Generator(device)
    run_start = last_save = time.perf_counter()
    recent = collections.deque([run_start], maxlen=21)

    while step < total:
        n = cfg.teacher_steps >> (step // cfg.steps + 1)  # this round's student steps
        loss_sum = 0.0
        for micro in range(cfg.accumulation):
            position = (step * cfg.accumulation + micro) * cfg.micro_batch
            idx = run.micro_batch_indices(position, cfg.micro_batch, n_files, cfg.seed, orders)
            gen.manual_seed(run.random_key(cfg.seed, position, 1))
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = distill_loss(student, teacher, data.audio[idx].to(device), n, gen, cfg.schedule)
            scaler.scale(loss / cfg.accumulation).backward()
            loss_sum += float(loss.detach())
        scaler.unscale_(optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.grad_clip or math.inf))
        if math.isfinite(grad_norm) or scaler.is_enabled():
            scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        ema.update(student)
        losses.append(loss_sum / cfg.accumulation)
        step += 1
        if not math.isfinite(losses[-1]) and not scaler.is_enabled():
            raise TrainError(f"distillation diverged at step {step} (loss {losses[-1]}); try a lower lr")
        recent.append(time.perf_counter())
        mean = (recent[-1] - recent[0]) / (len(recent) - 1)
        emit(event("step", step=step, total=total, loss=losses[-1], eta=mean * (total - step), seconds_per_step=mean,
                   grad_norm=grad_norm, lr=cfg.lr, ema_decay=ema.decay()))
        if step % cfg.log_every == 0 or step == total:
            log.info("step %d/%d (student of %d steps) loss %.5f  %.2f s/step  ETA %s", step, total, n,
                     losses[-1], mean, hms(mean * (total - step)))
        if step % cfg.steps == 0:  # a round ends: its student (EMA) is the next teacher and starting point
            student_config = _student_config(cfg, teacher_entry, n, data, step, losses,
                                             device, dtype, params, elapsed + time.perf_counter() - run_start)
            path = save_model(out / "rounds" / f"{cfg.name}-{n}steps{SUFFIX}", ema.weights, student_config)
            emit(event("snapshot", step=step, path=str(path)))
            log.info("round done: a student of %d steps (%s)", n, path)
            teacher.load_state_dict(ema.weights)
            student.load_state_dict(ema.weights)
            optimizer = run.make_optimizer(student, cfg, device)
            ema = EMA(student, cfg.ema_beta, cfg.ema_power, cfg.ema_inv_gamma,
                      device=torch.device("cpu") if cfg.low_memory else None)
        late = bool(cfg.checkpoint_minutes) and time.perf_counter() - last_save >= 60 * cfg.checkpoint_minutes
        stopped = stop()
        if step % cfg.checkpoint_every == 0 or step % cfg.steps == 0 or stopped or late:
            last_save = time.perf_counter()
            ckpt.save_checkpoint(out / "checkpoint.pt", {
                "config": asdict(cfg), "step": step, "teacher_name": teacher_name,
                "teacher_path": str(teacher_entry.path), "teacher_config": teacher_config.to_json(),
                "elapsed": elapsed + time.perf_counter() - run_start, "teacher": teacher.state_dict(),
                "student": student.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {}, "losses": torch.tensor(losses),
                "rng": ckpt.global_rng_state()})
            log.info("checkpoint at step %d", step)
            emit(event("checkpoint", step=step, path=str(out / "checkpoint.pt")))
        if stopped and step < total:
            log.info("stopped at step %d; resume to continue", step)
            emit(event("stopped", step=step))
            return TrainResult("stopped", step, events=events)

    seconds = elapsed + time.perf_counter() - run_start
    config = _student_config(cfg, teacher_entry, cfg.student_steps, data, step, losses, device, dtype, params,
                             seconds)
    title = (f"{cfg.name}: {teacher_name} distilled to {cfg.student_steps} steps, {params / 1e6:.1f} M parameters\n"
             f"{cfg.rounds} rounds of {cfg.steps} steps, batch {cfg.micro_batch * cfg.accumulation}, {device}")
    return run.write_model(out, cfg.name, teacher.state_dict(), config, losses, title, data, emit, events)


def _data(cfg: DistillConfig, out: Path, teacher: torch.nn.Module, teacher_config: ModelConfig,
          device: torch.device, emit, resuming: bool) -> Dataset:
    """The prepared folder, or the teacher's own one-shots; cached in the run folder either way."""
    cache = out / "data.safetensors"
    if resuming and cache.is_file():
        return load_cache(cache)
    if cfg.data:
        data = prepare(cfg.data, teacher_config.length, TRAINING_LUFS)
    else:
        log.info("making %d one-shots with the teacher (%s, %d steps)", cfg.samples,
                 teacher_config.default_sampler, teacher_config.default_steps)
        audio = teacher_oneshots(teacher, teacher_config, cfg.samples, cfg.seed, device,
                                 progress=lambda done: emit(event("teacher_oneshots", done=done,
                                                                  total=cfg.samples)))
        data = Dataset(audio, DataSummary(f"(none: {cfg.samples} one-shots made by the teacher)", teacher_config.length,
                                          files=cfg.samples, seconds=cfg.samples * teacher_config.length
                                          / teacher_config.sample_rate))
    save_cache(cache, data)
    return data


def _student_config(cfg: DistillConfig, teacher: ModelEntry, steps: int, data: Dataset, step: int,
                    losses: list[float], device: torch.device, dtype: torch.dtype | None, params: int,
                    seconds: float) -> ModelConfig:
    """The student's model file config: the teacher's, sampling with the VSampler (DDIM) on the distillation's
    grid in `steps` steps, and what the distillation was."""
    t = teacher.config
    training = run.training_record(cfg, teacher, data, step, losses, str(device), 1, dtype, params, seconds)
    training |= {"data_license": cfg.license or t.license,
                 "distilled": {"method": "progressive distillation", "teacher": teacher.name,
                               "teacher_steps": cfg.teacher_steps, "student_steps": steps,
                               "steps_per_round": cfg.steps, "grid": cfg.schedule}}
    return ModelConfig(
        arch=t.arch, preset=t.preset, kind=t.kind, length=t.length, license=cfg.license or t.license,
        source="trained", description=cfg.description or f"{teacher.name} distilled to {steps} steps",
        default_steps=steps, default_sampler="vsampler", default_schedule=cfg.schedule, training=training,
        guidance=t.guidance, offers=t.offers)


def main(argv: list[str] | None = None) -> int:
    """`python -m tad_daemon.training.distill CONFIG.json`: progress as JSON lines on stdout (as train.py)."""
    return run.main(argv, DistillConfig, distill)


if __name__ == "__main__":
    sys.exit(main())
