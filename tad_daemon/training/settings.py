"""Training's contract: what a training or distillation run is asked to do (its settings, their defaults and
limits) and what it reports while it runs (its events). Torch-free: the runner, the CLI and the daemon's
configuration read it without loading torch; train.py and distill.py run what it describes.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields

from tad_daemon.limits import TRAINING_LUFS

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MAX_STEPS = 1_000_000  # optimiser steps of a training job, or of one round of a distillation
CHECKPOINT_MINUTES = 10.0  # a run also checkpoints this often, whatever its step count

# Progressive distillation: the student's sampling steps unless asked otherwise, the first teacher's DDIM
# steps (the student's times a power of two) and optimiser steps per halving.
DISTILL_STEPS = 4
DISTILL_TEACHER_STEPS = 64
DISTILL_ROUND_STEPS = 1000
MAX_STUDENT_STEPS = 256
MAX_TEACHER_STEPS = 1024


class TrainError(ValueError):
    """A training that cannot start or go on, with the reason."""


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
    bundled: bool = True  # whether `base` may name a bundled model (the configuration's models.bundled)
    length: int = 0  # samples per one-shot; 0: the base model's, else 32768 (the seed's)
    kind: str = ""  # drum kind stored in the model (kick, snare, hat, perc, custom...); "": the base's or custom
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
    checkpoint_minutes: float = CHECKPOINT_MINUTES  # also checkpoint when this much time has passed; 0: off
    snapshot_every: int = 0  # steps between snapshot models of the EMA weights; 0: none
    log_every: int = 10  # steps between log lines

    # Settings that may change between a run and its resumption without changing what is computed.
    RESUMABLE = ("steps", "checkpoint_every", "checkpoint_minutes", "snapshot_every", "log_every", "threads", "device",
                 "out", "models_dir", "bundled", "data", "license", "description", "kind")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return settings_from(cls, d, "training")


@dataclass
class DistillConfig:
    name: str  # the student's name: NAME.safetensors
    teacher: str  # a model name in the models folders, or a model file
    out: str  # run folder
    models_dir: str = ""
    bundled: bool = True  # whether `teacher` may name a bundled model
    data: str = ""  # folder of sound files; "": one-shots made by the teacher
    samples: int = 256  # one-shots the teacher makes when `data` is ""
    # -- the distillation
    student_steps: int = DISTILL_STEPS  # sampling steps of the final student
    teacher_steps: int = DISTILL_TEACHER_STEPS  # DDIM steps of the first teacher: student_steps times 2, 4, 8...
    steps: int = DISTILL_ROUND_STEPS  # optimiser steps per round
    # The students' time grid: quadratic (dense near the clean end: its 4-step snare's tail 12 dB quieter and
    # called a snare twice as often as on the seed's linear grid; docs/training.md, "Distilling") or linear.
    schedule: str = "quadratic"
    micro_batch: int = 4
    accumulation: int = 2
    lr: float = 1e-4  # the seed's training rate
    betas: tuple[float, float] = (0.95, 0.999)
    eps: float = 1e-6
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_beta: float = 0.995
    ema_power: float = 0.7
    ema_inv_gamma: float = 1.0
    license: str = ""  # "": the teacher's
    description: str = ""
    # -- system
    device: str = "auto"
    precision: str = "auto"
    threads: int = 0
    seed: int = 0
    low_memory: bool = False
    checkpoint_every: int = 100
    checkpoint_minutes: float = CHECKPOINT_MINUTES
    log_every: int = 10

    RESUMABLE = ("checkpoint_every", "checkpoint_minutes", "log_every", "threads", "device", "out", "models_dir",
                 "bundled", "data", "license", "description")

    @classmethod
    def from_dict(cls, d: dict) -> DistillConfig:
        return settings_from(cls, d, "distillation")

    @property
    def rounds(self) -> int:
        return round_count(self.student_steps, self.teacher_steps)


def settings_from(cls, d: dict, what: str):
    """A config dataclass from JSON: unknown keys refused with their names, betas a tuple."""
    unknown = set(d) - set(cls.__dataclass_fields__)
    if unknown:
        raise TrainError(f"unknown {what} settings: {', '.join(sorted(unknown))}")
    d = dict(d)
    if "betas" in d:
        d["betas"] = tuple(d["betas"])
    return cls(**d)


def changed_settings(cls, old: dict, new) -> list[str]:
    """The settings of `new` (a config) that differ from a checkpoint's `old` ones and that a resumed run
    cannot take (those outside cls.RESUMABLE)."""
    import json

    return [f.name for f in fields(cls) if f.name not in cls.RESUMABLE
            and json.dumps(old.get(f.name)) != json.dumps(getattr(new, f.name))]


# What the runner sets in every job's config; a queued job's own settings may set any other field.
RUNNER_SETS = {"name", "data", "out", "models_dir", "bundled", "steps", "device", "threads", "checkpoint_minutes",
               "base", "teacher"}


def defaults(cls) -> dict:
    """Each setting of `cls` that has a default, and its default (what a command's options start from)."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def check_teacher(name: str, arch: dict) -> None:
    """A teacher distillation can take; ValueError with the reason."""
    if arch.get("kinds"):  # distill.py's loop passes no kind or velocity to the net
        raise ValueError(f"{name!r} is a model of several kinds ({', '.join(arch['kinds'])}): distilling one is not "
                         f"supported yet; distil a model of one kind")


def job_settings(cls) -> set[str]:
    """The settings a queued job of `cls` (TrainConfig or DistillConfig) may carry."""
    return {f.name for f in fields(cls)} - RUNNER_SETS


def round_count(student_steps: int, teacher_steps: int) -> int:
    """How many halvings lead from the teacher's steps to the student's; ValueError if no whole number does."""
    ratio = teacher_steps / max(student_steps, 1)
    if student_steps < 1 or teacher_steps > MAX_TEACHER_STEPS or ratio < 2 or ratio != 2 ** round(math.log2(ratio)):
        raise TrainError(f"teacher_steps ({teacher_steps}) must be the student's steps ({student_steps}) "
                         f"times 2, 4, 8, ... and at most {MAX_TEACHER_STEPS}")
    return round(math.log2(ratio))


def default_teacher_steps(student_steps: int) -> int:
    """The first teacher's steps for a student of `student_steps`: the fewest of its powers-of-two multiples
    that reach DISTILL_TEACHER_STEPS (64 for a 4-step student, 96 for a 3-step one)."""
    teacher = 2 * student_steps
    while teacher < DISTILL_TEACHER_STEPS:
        teacher *= 2
    return teacher


# -- what a run reports: one JSON object per line on stdout (`python -m tad_daemon.training.train CONFIG`),
# read by the runner (queue state, OSC broadcasts) and drawn by the CLI. Each event: its name and its fields.
EVENTS = {
    "data": ("summary", "lines"),  # the data set, as DataSummary's fields and as lines to show
    "teacher_oneshots": ("done", "total"),  # a distillation without data: the teacher's one-shots so far
    "start": ("step", "total", "resumed", "parameters", "files", "device", "description"),
    "step": ("step", "total", "loss", "eta", "seconds_per_step", "grad_norm", "lr", "ema_decay"),
    "checkpoint": ("step", "path"),
    "snapshot": ("step", "path"),  # an EMA model written while running (a distillation: a round's student)
    "stopped": ("step",),  # checkpointed and stopped on request: run again to resume
    "model": ("path", "card", "picture", "final_loss", "step"),  # finished: the model file and its card
    "error": ("message",),  # the run cannot start or go on
}


def event(name: str, **values) -> dict:
    """An event as it goes on the wire, checked against EVENTS."""
    if set(values) != set(EVENTS[name]):
        raise ValueError(f"event {name}: fields {sorted(values)}, expected {sorted(EVENTS[name])}")
    return {"event": name, **values}


def hms(seconds: float) -> str:
    """A duration as H:MM:SS (an ETA, a run's length)."""
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
