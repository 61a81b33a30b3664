"""Training from the command line: `train-local` trains here and now (no daemon); `train`, `distill`, `jobs`
and `cancel` queue and follow jobs in the running daemon (no torch: these start fast)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from tad_daemon.cli.common import Failure, config_option, load
from tad_daemon.cli.daemon import client_options, client_target
from tad_daemon.kinds import MODEL_KINDS
from tad_daemon.limits import MAX_SEED
from tad_daemon.models.presets import PRESETS  # plain data, no torch
from tad_daemon.protocol.table import read_reply
from tad_daemon.training.settings import (
    DISTILL_ROUND_STEPS,
    DISTILL_STEPS,
    DISTILL_TEACHER_STEPS,
    MAX_STUDENT_STEPS,
    MAX_TEACHER_STEPS,
    PRECISIONS,
    TrainConfig,
    defaults,
    hms,
)

TRAIN = defaults(TrainConfig)  # the options' defaults are the contract's


def progress_text(step: int, total: int, loss: float, eta: float, seconds_per_step: float | None = None) -> str:
    """A training's progress in one line: a bar, the step, the loss, the pace and the time left."""
    done = step / max(total, 1)
    bar = "#" * int(30 * done) + "." * (30 - int(30 * done))
    pace = f"  {seconds_per_step:.2f} s/step" if seconds_per_step is not None else ""
    return f"[{bar}] step {step}/{total}  loss {loss:.4f}{pace}  ETA {hms(eta)}"


class StatusLine:
    """A one-line progress bar on a terminal; on a file (a background run's log), a line every `every` steps."""

    def __init__(self, every: int, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = every
        self.shown = 0.0

    def step(self, e: dict) -> None:
        text = progress_text(e["step"], e["total"], e["loss"], e["eta"], e["seconds_per_step"])
        if self.tty:
            now = time.monotonic()
            if now - self.shown > 0.2 or e["step"] == e["total"]:
                self.stream.write("\r" + text)
                self.stream.flush()
                self.shown = now
        elif e["step"] % self.every == 0 or e["step"] == e["total"]:
            self.stream.write(text + "\n")
            self.stream.flush()

    def line(self, text: str) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")
            self.shown = 0.0
        self.stream.write(text + "\n")
        self.stream.flush()


def install(model: Path, models_dir: Path) -> Path:
    """Copy a finished model into the models folder atomically (a daemon watching it loads it)."""
    from tad_daemon.atomic import atomic_copy

    models_dir.mkdir(parents=True, exist_ok=True)
    return atomic_copy(model, models_dir / model.name)


@click.command("train-local")
@click.argument("name")
@click.argument("dataset_dir", type=click.Path())
@click.option("--preset", type=click.Choice(list(PRESETS)), default=TRAIN["preset"], show_default=True,
              help="Architecture when training from scratch.")
@click.option("--base", help="Fine-tune this model (a name from `tad-daemon models`, or a model file).")
@click.option("--steps", type=click.IntRange(1), default=TRAIN["steps"], show_default=True, help="Optimiser steps.")
@click.option("--batch", "micro_batch", type=click.IntRange(1), default=TRAIN["micro_batch"], show_default=True,
              help="One-shots per forward pass (memory grows with it).")
@click.option("--accum", "accumulation", type=click.IntRange(1),
              help="Micro-batches per optimiser step (default: what makes an effective batch of 32).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=TRAIN["lr"], show_default=True)
@click.option("--out", type=click.Path(file_okay=False),
              help="Run folder (default: <data folder>/runs/NAME): checkpoints, log, model, card, loss curve.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--threads", type=click.IntRange(0), help="CPU threads (default: the configuration's).")
@click.option("--device", help="auto, cpu, cuda, cuda:1, mps (default: the configuration's).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=TRAIN["precision"], show_default=True,
              help="auto: bf16 (or fp16) mixed precision on CUDA, fp32 elsewhere.")
@click.option("--low-memory", is_flag=True,
              help="Gradient checkpointing, EMA on the CPU, lean optimiser; micro-batch 1 unless --batch is given.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=TRAIN["seed"], show_default=True)
@click.option("--length", type=click.IntRange(0), default=0,
              help="Samples per one-shot (default: the base's, or 32768).")
@click.option("--kind", type=click.Choice(MODEL_KINDS),
              help="Drum kind stored in the model (default: the base model's, or custom); for a model of several "
                   "kinds, the kind of every file of DATASET_DIR.")
@click.option("--license", "license_", default=TRAIN["license"], show_default=True,
              help="License of the training data (stored in the model file and card).")
@click.option("--description", default="")
@click.option("--augment-gain", type=click.FloatRange(0), default=0.0, help="Random gain within +-DB (0: off).")
@click.option("--augment-flip", is_flag=True, help="Flip the polarity of half of the one-shots.")
@click.option("--augment-shift", type=click.FloatRange(0), default=0.0, help="Delay the start by up to MS (0: off).")
@click.option("--grad-clip", type=click.FloatRange(0), default=TRAIN["grad_clip"], show_default=True, help="0: off.")
@click.option("--checkpoint-every", type=click.IntRange(1), default=TRAIN["checkpoint_every"], show_default=True,
              help="Steps.")
@click.option("--checkpoint-minutes", type=click.FloatRange(0), default=TRAIN["checkpoint_minutes"], show_default=True,
              help="Also checkpoint when this much time has passed since the last one (0: off).")
@click.option("--snapshot-every", type=click.IntRange(0), default=0, show_default=True,
              help="Write a model of the EMA weights every N steps into RUN/snapshots (0: off).")
@click.option("--log-every", type=click.IntRange(1), default=TRAIN["log_every"], show_default=True, help="Steps.")
@click.option("--install", "install_", is_flag=True, help="Copy the finished model into the models folder.")
@click.option("--json", "as_json", is_flag=True, help="Progress as JSON lines on stdout (for programs).")
@config_option
def train_local(name, dataset_dir, preset, base, steps, micro_batch, accumulation, lr, out, resume, threads,
                device, precision, low_memory, seed, length, kind, license_, description, augment_gain,
                augment_flip, augment_shift, grad_clip, checkpoint_every, checkpoint_minutes, snapshot_every,
                log_every, install_, as_json, config_file):
    """Train a model NAME on the sound files in DATASET_DIR, here and now (no daemon needed).

    Kill it at any time (Ctrl-C saves a checkpoint first) and run the same command with --resume to
    go on where it was. Exit codes: 0 finished, 1 failed, 2 bad input, 3 stopped (resumable).

    \b
      tad-daemon train-local my-kicks ~/Samples/Kicks --base kick --steps 2000 --license CC0-1.0
      tad-daemon train-local kick ./corpus/kick --preset cpu-small --steps 100000 --snapshot-every 2000
    """
    cfg = load(config_file, **{"device.device": device, "device.threads": threads})
    from tad_daemon.names import NameError_, check_name

    try:
        check_name(name)
    except NameError_ as e:
        raise Failure(str(e), 2) from None
    if low_memory and not _given("micro_batch"):
        micro_batch = 1
    if accumulation is None:
        accumulation = max(1, 32 // micro_batch)
    run = Path(out).expanduser() if out else cfg.path("paths.data") / "runs" / name
    from tad_daemon.training.dataset import DatasetError
    from tad_daemon.training.run import EXIT_STOPPED, stop_on_signals
    from tad_daemon.training.settings import TrainConfig, TrainError
    from tad_daemon.training.train import train

    tc = TrainConfig(
        name=name, data=str(Path(dataset_dir).expanduser().resolve()), out=str(run), preset=preset,
        base=base or "", models_dir=str(cfg.path("paths.models")), length=length, kind=kind or "",
        license=license_, description=description, augment_gain_db=augment_gain, augment_flip=augment_flip,
        augment_shift_ms=augment_shift, steps=steps, micro_batch=micro_batch, accumulation=accumulation, lr=lr,
        grad_clip=grad_clip, device=cfg["device.device"], precision=precision, threads=cfg["device.threads"],
        seed=seed, low_memory=low_memory, checkpoint_every=checkpoint_every, checkpoint_minutes=checkpoint_minutes,
        snapshot_every=snapshot_every,
        log_every=log_every)
    status = StatusLine(log_every)

    def show(event: dict) -> None:
        if as_json:
            click.echo(json.dumps(event))
            sys.stdout.flush()
        elif event["event"] == "step":
            status.step(event)
        elif event["event"] == "data":
            for line in event["lines"]:
                status.line(line)
        elif event["event"] == "start":
            verb = "resuming" if event["resumed"] else "starting"
            status.line(f"{event['description']}; {verb} at step {event['step']} of {event['total']}")
            status.line(f"run folder: {run} (log: {run / 'train.log'})")
        elif event["event"] in ("snapshot", "model"):
            status.line(f"{event['event']}: {event['path']}")
        elif event["event"] == "stopped":
            status.line(f"stopped at step {event['step']}; run again with --resume to continue")

    try:
        result = train(tc, resume=resume, progress=show, stop=stop_on_signals())
    except (TrainError, DatasetError) as e:
        _fail(as_json, str(e), 2)
    except (ValueError, RuntimeError, OSError) as e:
        _fail(as_json, str(e), 1)
    if result.state != "done":
        sys.exit(EXIT_STOPPED)
    if result.model is None:  # not rank 0 under torchrun: rank 0 writes and reports the model
        return
    if install_:
        target = install(result.model, cfg.path("paths.models"))
        if as_json:
            show({"event": "installed", "path": str(target)})
        else:
            status.line(f"installed: {target}")
    if not as_json:
        click.echo(result.model)


def _given(param: str) -> bool:
    ctx = click.get_current_context()
    return ctx.get_parameter_source(param) not in (click.core.ParameterSource.DEFAULT, None)


def _fail(as_json: bool, message: str, code: int):
    if as_json:
        click.echo(json.dumps({"event": "error", "message": message}))
        sys.exit(code)
    raise Failure(message, code)




# -- talking to the running daemon: train, jobs, cancel (no torch: these start fast) -------------------------
def _call(target: tuple[str, int], address: str, *args, timeout: float = 30.0) -> list:
    """Send a request; its replies by name, each with its "address" (raises Failure with the daemon's reason
    on /tad/fail, exit 3 when no daemon answers)."""
    from tad_daemon.protocol.client import FAILED, OK, request

    replies, errors = [], []
    code = request(address, list(args), *target, timeout, replies.append, errors.append)
    if code == FAILED:
        raise Failure(str(read_reply(replies[-1].address, replies[-1].args).get("message", "failed")), 1)
    if code != OK:
        raise Failure(errors[-1] if errors else f"no reply to {address}", 3)
    return [dict(read_reply(r.address, r.args), address=r.address) for r in replies]


def _target(config_file, host, port) -> tuple[str, int]:
    return client_target(load(config_file), host, port)


@click.command()
@click.argument("name")
@click.argument("dataset_dir", type=click.Path())
@click.option("--base", default="", help="Start from this model (default: from scratch on training.preset).")
@click.option("--steps", type=click.IntRange(0), default=0, help="Optimiser steps (default: training.steps).")
@click.option("--now", is_flag=True, help="Start as soon as the queue is free, not in the night window.")
@click.option("--follow/--no-follow", default=None,
              help="Show a progress bar until the job ends (default: with --now).")
@client_options
def train(name, dataset_dir, base, steps, now, follow, host, port, config_file):
    """Queue a fine-tune NAME on the sound files in DATASET_DIR in the running daemon.

    The job runs in the night window (training.night_start to training.night_end) unless --now; the new
    model is loaded by the daemon when it is done. Exit codes: 0 queued (or, following, finished),
    1 refused or failed, 3 no daemon.

    \b
      tad-daemon train my-kicks ~/Samples/Kicks --base kick
      tad-daemon train my-snares ./snares --base snare --steps 500 --now
    """
    dataset = os.path.abspath(os.path.expanduser(dataset_dir))
    _queue(_target(config_file, host, port), now if follow is None else follow,
           "/tad/train", name, dataset, base, steps, int(now))


@click.command()
@click.argument("model")
@click.option("--steps", type=click.IntRange(1, MAX_STUDENT_STEPS), default=DISTILL_STEPS, show_default=True,
              help="Sampling steps of the student.")
@click.option("--name", help="The student's name (default: MODEL-STEPSstep, e.g. snare-4step).")
@click.option("--dataset", "dataset_dir", type=click.Path(),
              help="Learn from these sound files (default: one-shots the teacher makes itself).")
@click.option("--teacher-steps", type=click.IntRange(0, MAX_TEACHER_STEPS), default=0,
              help="DDIM steps of the first teacher: STEPS times 2, 4, 8... (default: the first of those that "
                   f"reaches {DISTILL_TEACHER_STEPS}: {DISTILL_TEACHER_STEPS} for 4 steps, 96 for 3).")
@click.option("--train-steps", type=click.IntRange(0), default=0,
              help=f"Optimiser steps per halving (default: {DISTILL_ROUND_STEPS}).")
@click.option("--now", is_flag=True, help="Start as soon as the queue is free, not in the night window.")
@click.option("--replace", is_flag=True, help="Replace an installed model of the student's name when done.")
@click.option("--follow/--no-follow", default=None,
              help="Show a progress bar until the job ends (default: with --now).")
@client_options
def distill(model, steps, name, dataset_dir, teacher_steps, train_steps, now, replace, follow, host, port,
            config_file):
    """Queue a distillation of MODEL into a student that samples in --steps steps, in the running daemon.

    Progressive distillation: each round halves the steps (64 -> 32 -> 16 -> 8 -> 4 by default), each
    student learning to do in one step what its teacher does in two. The job runs in the night window
    unless --now, resumes after any stop, and the daemon loads the student when it is done: generate
    with it like any model. Exit codes as for `tad-daemon train`.

    \b
      tad-daemon distill snare                      # snare-4step, tonight
      tad-daemon distill my-kicks --steps 2 --now
    """
    name = name or f"{Path(model).stem if model.endswith('.safetensors') else model}-{steps}step"
    dataset = os.path.abspath(os.path.expanduser(dataset_dir)) if dataset_dir else ""
    if model.endswith(".safetensors"):
        model = os.path.abspath(os.path.expanduser(model))
    options = [f"{k}={v}" for k, v in (("train_steps", train_steps), ("teacher_steps", teacher_steps),
                                         ("replace", int(replace))) if v]
    _queue(_target(config_file, host, port), now if follow is None else follow,
           "/tad/distill", name, model, steps, int(now), dataset, *options)


def _queue(target: tuple[str, int], follow: bool, address: str, *args) -> None:
    """Send a request that queues a job; with `follow`, show its progress until it ends."""
    from tad_daemon.protocol.client import Broadcasts

    listener = None
    try:
        if follow:
            listener = Broadcasts(*target)
            _call(target, "/tad/notify", 1, listener.port)
        queued = _call(target, address, *args, timeout=120)[-1]
        click.echo(f"job {queued['job_id']} ({queued['name']}): {queued['state']}")
        if listener:
            _follow(target, listener, str(queued["job_id"]), str(queued["name"]))
    finally:
        if listener:
            try:
                _call(target, "/tad/notify", 0, listener.port, timeout=2.0)
            except Failure:
                pass  # the daemon forgets a registration anyway once sends to it fail
            listener.close()


def _follow(target: tuple[str, int], listener, job_id: str, name: str, load_timeout: float = 120.0) -> None:
    """Progress bar from the daemon's broadcasts until the job has failed or been cancelled, or is done and
    its model loaded (the daemon loads it just after the job ends: a request sent at once would not find it)."""
    tty = sys.stderr.isatty()
    renewed = time.monotonic()
    finished_at, loaded = None, False
    try:
        while not (finished_at and loaded):
            if finished_at and time.monotonic() - finished_at > load_timeout:
                click.echo(f"the daemon has not loaded {name} yet (tad-daemon models)", err=True)
                return
            if time.monotonic() - renewed > 600:  # registrations expire after an hour without renewal
                _call(target, "/tad/notify", 1, listener.port)
                renewed = time.monotonic()
            msg = listener.receive(1.0 if finished_at else 5.0)
            if msg is None:
                continue
            news = read_reply(msg.address, msg.args)
            if msg.address == "/tad/model/added" and news.get("name") == name:
                loaded = True
            if news.get("job_id") != job_id:
                continue
            if msg.address == "/tad/progress":
                text = progress_text(news["step"], news["total"], news["loss"], news["eta_seconds"])
                click.echo(("\r" + text) if tty else text, err=True, nl=not tty)
            elif msg.address == "/tad/job/state":
                state, message = news["state"], news["message"]
                click.echo(("\n" if tty else "") + f"job {job_id}: {state}" + (f" ({message})" if message else ""),
                           err=True)
                if state == "done":
                    finished_at = time.monotonic()
                if state in ("failed", "cancelled"):
                    raise Failure(f"job {job_id} {state}" + (f": {message}" if message else ""), 1)
        click.echo(f"model {name} loaded: tad-daemon send /tad/generate {name}", err=True)
    except KeyboardInterrupt:
        click.echo(f"\nstopped following; job {job_id} goes on in the daemon (tad-daemon jobs)", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job.")
@client_options
def jobs(as_json, host, port, config_file):
    """List the running daemon's training jobs (unfinished ones and the latest finished)."""
    rows = [r for r in _call(_target(config_file, host, port), "/tad/jobs") if r["address"] == "/tad/job"]
    if as_json:
        for r in rows:
            click.echo(json.dumps({"id": r["job_id"], "name": r["name"], "state": r["state"], "step": r["step"],
                                   "total": r["total"], "loss": r["loss"]}))
        return
    if not rows:
        click.echo("no training jobs")
        return
    table = [("ID", "NAME", "STATE", "STEP", "LOSS")] + [
        (str(r["job_id"]), r["name"], r["state"], f"{r['step']}/{r['total']}",
         f"{r['loss']:.4f}" if r["step"] else "-") for r in rows]
    widths = [max(len(r[c]) for r in table) for c in range(5)]
    for r in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


@click.command()
@click.argument("job")
@client_options
def cancel(job, host, port, config_file):
    """Cancel training job JOB (its id from `tad-daemon jobs`); a running one is stopped at once."""
    done = _call(_target(config_file, host, port), "/tad/cancel", job)[-1]
    click.echo(f"job {done['job_id']}: {done['state']}")


COMMANDS = [train_local, train, distill, jobs, cancel]
