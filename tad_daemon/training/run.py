"""What a training run and a distillation run share: the run folder (lock, log, checkpoint, finished model),
the processes (one, or one per GPU under torchrun), the data stream's order and random numbers, the optimiser,
and the command-line entry the job queue starts. train.py and distill.py hold their loops; this holds the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from tad_daemon.models.device import pick_device
from tad_daemon.models.modelfile import SUFFIX, ModelConfig, save_model
from tad_daemon.models.network import KindUNet
from tad_daemon.models.registry import ModelEntry, model_folders, read_entry, scan
from tad_daemon.names import unknown_model
from tad_daemon.training import checkpoint as ckpt
from tad_daemon.training.dataset import Dataset
from tad_daemon.training.report import loss_curve, model_card
from tad_daemon.training.settings import TrainError, changed_settings, event, settings_from

log = logging.getLogger("tad_daemon.training")


@dataclass
class TrainResult:
    state: str  # done, stopped
    step: int
    model: Path | None = None
    final_loss: float | None = None
    events: list = field(default_factory=list)


# -- the run folder ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def run_folder(out: Path, main: bool = True):
    """The run folder, locked (one process trains in it at a time) and logged to (train.log); rank 0 only."""
    if not main:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    with ckpt.RunLock(out):
        handler = logging.FileHandler(out / "train.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        try:
            yield
        finally:
            log.removeHandler(handler)
            handler.close()


def read_checkpoint(out: Path, cfg, resume: bool, processes: int | None = None) -> dict | None:
    """The checkpoint a run continues from, or None for a new run; TrainError when there is one that must
    not be continued (`resume` off, settings a resumed run cannot take, another number of processes)."""
    ckpt.remove_partial_files(out)
    path = out / "checkpoint.pt"
    if not path.is_file():
        return None
    if not resume:
        raise TrainError(f"{out} holds a checkpoint: resume it, or choose another run folder")
    state = ckpt.load_checkpoint(path)
    changed = changed_settings(type(cfg), state["config"], cfg)
    if not changed and processes is not None and state["processes"] != processes:
        changed = [f"processes ({state['processes']} before)"]
    if changed:
        raise TrainError(f"cannot resume {out}: settings differ from the checkpoint's ({', '.join(changed)})")
    return state


def resolve_base(base: str, models_dir: str, bundled: bool = True) -> ModelEntry:
    """A model file path, or a model name in the models folders (the bundled ones too, unless `bundled` is
    off as the configuration's models.bundled may say)."""
    path = Path(base).expanduser()
    if path.suffix == SUFFIX and path.is_file():
        try:
            return read_entry(path)
        except ValueError as e:
            raise TrainError(f"base model {base}: {e}") from None
    entries, _ = scan(model_folders(models_dir or None, bundled))
    if base not in entries:
        raise TrainError(unknown_model(base, entries, role="base"))
    return entries[base]


def write_model(out: Path, name: str, weights: dict, config: ModelConfig, losses: list[float], title: str,
                data: Dataset, emit: Callable[[dict], None], events: list) -> TrainResult:
    """A finished run's model file, loss curve and card in its run folder, and the `model` event."""
    model_path = save_model(out / f"{name}{SUFFIX}", weights, config)
    picture = loss_curve(losses, out / f"{name}-loss.png", title)
    card = model_card(out / f"{name}.md", name, asdict(config), config.training, data.summary.lines(), picture.name)
    final, step = config.training["final_loss"], config.training["steps"]
    log.info("finished: %s (final loss %.4g)", model_path, final)
    emit(event("model", path=str(model_path), card=str(card), picture=str(picture), final_loss=final, step=step))
    return TrainResult("done", step, model_path, final, events)


def training_record(cfg, base: ModelEntry | None, data: Dataset, step: int, losses: list[float], device: str,
                    processes: int, dtype: torch.dtype | None, params: int, seconds: float) -> dict:
    """What a run was, for the model file's header and card (`cfg`: a TrainConfig or a DistillConfig)."""
    last = losses[-min(len(losses), 50):] or [float("nan")]
    return {
        "base": base.name if base else "", "base_source": base.config.source if base else "",
        "data": data.summary.short(), "steps": step, "final_loss": sum(last) / len(last),
        "final_loss_steps": len(last), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device, "precision": precision_name(dtype), "parameters": params, "hours": seconds / 3600,
        "batch": cfg.micro_batch * cfg.accumulation, "micro_batch": cfg.micro_batch, "accumulation": cfg.accumulation,
        "processes": processes, "lr": cfg.lr, "betas": list(cfg.betas), "eps": cfg.eps,
        "weight_decay": cfg.weight_decay, "grad_clip": cfg.grad_clip, "ema_beta": cfg.ema_beta,
        "ema_power": cfg.ema_power, "seed": cfg.seed, "data_license": cfg.license,
    }


# -- processes ---------------------------------------------------------------------------------------------------
@dataclass
class Ranks:
    """This process's place among the run's processes: rank 0 of 1, or one of WORLD_SIZE under torchrun."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_ranks(requested: str) -> Ranks:
    """One process, or one of WORLD_SIZE under torchrun (nccl between GPUs, gloo between CPU processes)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks(device=pick_device(requested))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(rank, world, device)


def broadcast_state(state: dict | None, ranks: Ranks) -> dict:
    """Rank 0's `state` (tensors and plain values) on every rank, serialised with torch.save and read back
    with weights_only=True: only rank 0 needs the data folder and the run folder."""
    if ranks.world == 1:
        return state
    comm = ranks.device if ranks.device.type == "cuda" else torch.device("cpu")
    if ranks.main:
        buf = io.BytesIO()
        torch.save(state, buf)
        payload = torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8).to(comm)
        size = torch.tensor([payload.numel()], dtype=torch.int64, device=comm)
    else:
        size = torch.zeros(1, dtype=torch.int64, device=comm)
    dist.broadcast(size, 0)
    if not ranks.main:
        payload = torch.empty(int(size.item()), dtype=torch.uint8, device=comm)
    dist.broadcast(payload, 0)
    if ranks.main:
        return state
    return torch.load(io.BytesIO(payload.cpu().numpy().tobytes()), map_location="cpu", weights_only=True)


def any_rank(flags: list[bool], ranks: Ranks) -> list[bool]:
    """Each flag true on every rank if it is true on one (so all ranks stop or checkpoint at the same step)."""
    if ranks.world == 1:
        return flags
    comm = ranks.device if ranks.device.type == "cuda" else torch.device("cpu")
    t = torch.tensor([int(f) for f in flags], device=comm)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


# -- precision and the optimiser ----------------------------------------------------------------------------------
def amp_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    if precision == "auto":
        if device.type != "cuda":
            return None  # CPU: fp32 (bf16 is emulated on most CPUs, and fp32 keeps resumption bit-exact)
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def precision_name(dtype: torch.dtype | None) -> str:
    return str(dtype).replace("torch.", "") if dtype else "fp32"


def make_optimizer(net: torch.nn.Module, cfg, device: torch.device) -> torch.optim.AdamW:
    """AdamW as the seed sets it. Fused on CUDA: faster, and without the foreach variant's temporary copies
    of the state; one tensor at a time in low-memory mode elsewhere, for the same reason. A KindUNet's new
    embeddings (they start at zero and have far to go) learn `cfg.condition_lr_scale` times faster."""
    groups = [{"params": list(net.parameters()), "scale": 1.0}]
    if isinstance(net, KindUNet):
        new = {id(p) for p in (net.kind_embedding, *net.velocity_embedding.parameters())}
        groups = [{"params": [p for p in net.parameters() if id(p) not in new], "scale": 1.0},
                  {"params": [p for p in net.parameters() if id(p) in new], "scale": cfg.condition_lr_scale}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                             weight_decay=cfg.weight_decay, fused=device.type == "cuda" or None,
                             foreach=False if cfg.low_memory and device.type != "cuda" else None)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("scale", 1.0)  # no scale: a checkpoint from before the groups


# -- the data stream: which files each micro-batch holds, and its random numbers ---------------------------------
def data_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The files' order in an epoch: a permutation drawn from (seed, epoch) alone, so any step's batch is
    known from the step number."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def stream_position(step: int, micro: int, mb: int, accum: int, ranks: Ranks) -> int:
    """Where one micro-batch of this rank starts in the data stream (the epochs' orders one after another):
    an optimiser step takes mb * accum * world items, ranks interleaved micro-batch by micro-batch."""
    return step * mb * accum * ranks.world + (micro * ranks.world + ranks.rank) * mb


def micro_batch_indices(start: int, mb: int, n: int, seed: int, orders: dict,
                        times: np.ndarray | None = None) -> list[int]:
    """The files of the micro-batch that starts at `start` in the stream (`orders` caches an epoch's order).

    `times` (see train.repeats) puts file i in each epoch times[i] times; by default once."""
    items = np.arange(n) if times is None else np.repeat(np.arange(n), times)
    out = []
    for i in range(start, start + mb):
        epoch = i // len(items)
        if epoch not in orders:
            orders.clear()
            orders[epoch] = items[data_order(seed, epoch, len(items))]
        out.append(int(orders[epoch][i % len(items)]))
    return out


def random_key(seed: int, position: int, stream: int) -> int:
    """The seed of a micro-batch's random numbers (augmentation: stream 0; diffusion times and noise: 1).

    Drawn from (seed, stream position) alone, so a resumed run draws what an uninterrupted one would, and
    N processes draw what one process accumulating N micro-batches would."""
    return int(np.random.SeedSequence([seed, position, stream]).generate_state(1, np.uint64)[0] >> 1)


# -- the entry the job queue starts ---------------------------------------------------------------------------------
EXIT_STOPPED = 3  # stopped by a signal after writing a checkpoint: run it again to resume
EXIT_BUSY = 4  # another process holds the run folder: nothing was done, run it again once that one has gone


def main(argv: list[str] | None, config_class, run: Callable) -> int:
    """`python -m tad_daemon.training.train CONFIG.json` (or .distill): `run` (train or distill) on the config
    in the file, its events as JSON lines on stdout (rank 0). Exit 0 done, 1 failed, 2 bad config, 3 stopped,
    4 the run folder is busy."""
    p = argparse.ArgumentParser(description=f"Run what a {config_class.__name__} JSON file describes.")
    p.add_argument("config")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--stop-file", help="checkpoint and stop (exit code 3) once this file exists")
    p.add_argument("--exit-with-parent", type=int, metavar="PID",
                   help="exit at once when the parent process PID has gone (stdin reaches end-of-file)")
    p.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by N (POSIX)")
    args = p.parse_args(argv)
    if args.nice and hasattr(os, "nice"):
        os.nice(args.nice)
    if args.exit_with_parent:
        exit_with_parent(args.exit_with_parent)
    try:
        cfg = settings_from(config_class, json.loads(Path(args.config).read_text(encoding="utf-8")),
                            "distillation" if config_class.__name__.startswith("Distill") else "training")
    except (OSError, ValueError, TypeError) as e:
        print(json.dumps(event("error", message=f"{args.config}: {e}")), flush=True)
        return 2

    def show(e: dict) -> None:
        print(json.dumps(e), flush=True)

    signalled = stop_on_signals()
    stop_file = Path(args.stop_file) if args.stop_file else None

    def stop() -> bool:  # a file works everywhere, Windows included, where there is no SIGTERM to catch
        return signalled() or (stop_file is not None and stop_file.exists())

    try:
        result = run(cfg, resume=not args.no_resume, progress=show, stop=stop)
    except ckpt.RunFolderBusy as e:
        show(event("error", message=str(e)))
        return EXIT_BUSY
    except (ValueError, RuntimeError, OSError) as e:  # TrainError, DatasetError, bad model files, disk full
        show(event("error", message=str(e)))
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0 if result.state == "done" else EXIT_STOPPED


def exit_with_parent(parent: int) -> None:
    """End this process when its parent (the daemon) dies, even while the parent has it stopped (SIGSTOP,
    while a request generates): there no thread of ours runs, so on Linux the kernel's parent-death signal
    does it; everywhere, a thread exits at the end of stdin, and a daemon that starts again ends a trainer
    left stopped in a run folder (Runner: lock_holder)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        if ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL) == 0 and os.getppid() != parent:
            os._exit(EXIT_STOPPED)  # it died before the signal was asked for
    threading.Thread(target=_exit_at_end_of_input, daemon=True).start()


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
