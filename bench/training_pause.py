"""Generation latency while a fine-tune runs on the same CPU: with the trainer running alongside, and with
the trainer suspended for each generation (the runner's `hold`, what the daemon does by default on a CPU).

    python bench/training_pause.py                    # cpu-small models (random weights: timing only)
    python bench/training_pause.py --gens 10 --out out/   # writes out/training-pause.json

One process generates (the daemon's engine, one one-shot at the model's default 12 steps); the runner trains
a cpu-small model from scratch in its subprocess, as a queued job. Cases, one after the other in one run:
  idle         no training
  shared       training alongside, the trainer with torch's default threads (all cores)
  shared-1     training alongside, the trainer limited to one thread
  paused       training alongside, suspended (SIGSTOP) while each one-shot is made
For each: median and worst generation latency, and the trainer's optimiser steps per minute meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tad_daemon.config import load_config  # noqa: E402
from tad_daemon.engine import Engine  # noqa: E402
from tad_daemon.models.modelfile import ModelConfig, save_model  # noqa: E402
from tad_daemon.models.network import build_unet  # noqa: E402
from tad_daemon.models.presets import architecture  # noqa: E402
from tad_daemon.models.registry import read_entry  # noqa: E402
from tad_daemon.training.queue import JobQueue  # noqa: E402
from tad_daemon.training.runner import Runner  # noqa: E402


def corpus(folder: Path, n: int = 16) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(30000) / 44100
    for i in range(n):
        x = np.sin(2 * np.pi * (45 + 5 * i) * t) * np.exp(-t * 12) + 0.2 * rng.standard_normal(len(t)) * np.exp(-t * 90)
        sf.write(folder / f"kick{i:02d}.wav", (0.5 * x).astype(np.float32), 44100)
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cpu-small")
    p.add_argument("--gens", type=int, default=6, help="one-shots per case")
    p.add_argument("--threads", type=int, default=0, help="generation threads (0: torch's default)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tad-pause-"))
    os.environ["TAD_DAEMON_HOME"] = str(home)
    torch.manual_seed(0)
    arch = architecture(args.preset)
    path = save_model(home / "models" / "gen.safetensors", build_unet(arch).state_dict(),
                      ModelConfig(arch=arch, preset=args.preset, source="bench"))
    engine = Engine("cpu", "auto", args.threads or None)
    engine.load(read_entry(path))
    data = corpus(home / "data-kicks")

    def generate(runner: Runner | None, hold: bool) -> float:
        t0 = time.perf_counter()
        if hold:
            with runner.hold():
                engine.generate("gen", 1)
        else:
            engine.generate("gen", 1)
        return time.perf_counter() - t0

    def steps_of(runner: Runner, job_id: str) -> int:
        return runner.queue.get(job_id).step

    engine.generate("gen", 1)  # warm-up
    rows = []
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# generation latency, {args.preset}, {torch.get_num_threads()} generation threads, "
          f"{os.cpu_count()} CPUs, load average {load:.1f} at start")
    print(f"{'case':10s} {'median s':>9s} {'worst s':>8s} {'ratio':>6s} {'train steps/min':>16s}", flush=True)
    for case in ("idle", "shared", "shared-1", "paused"):
        runner, job = None, None
        if case != "idle":
            cfg = load_config(overrides={"training.device": "cpu", "training.threads": 1 if case == "shared-1" else 0,
                                         "training.pause_for_generation": "never"})
            runner = Runner(JobQueue(home / f"jobs-{case}.sqlite"), cfg)
            runner.pause_for_generation = case == "paused"
            runner.start()
            job = runner.submit(f"bench-{case}", str(data), steps=1_000_000, now=True,
                                settings={"micro_batch": 1, "accumulation": 1, "checkpoint_every": 1_000_000})
            deadline = time.monotonic() + 300
            while steps_of(runner, job.id) < 3 and time.monotonic() < deadline:  # the trainer is up and running
                time.sleep(0.2)
        t0, s0 = time.perf_counter(), steps_of(runner, job.id) if runner else 0
        secs = [generate(runner, case == "paused") for _ in range(args.gens)]
        spent = time.perf_counter() - t0
        rate = 60 * (steps_of(runner, job.id) - s0) / spent if runner else 0.0
        if runner:
            runner.cancel(job.id)
            runner.close()
        row = dict(case=case, median_s=statistics.median(secs), worst_s=max(secs), seconds=secs,
                   train_steps_per_min=rate)
        rows.append(row)
        ratio = row["median_s"] / rows[0]["median_s"]
        print(f"{case:10s} {row['median_s']:9.2f} {row['worst_s']:8.2f} {ratio:6.2f} {rate:16.1f}", flush=True)
    print("ratio: median latency against idle (same run). train steps/min: one-shot optimiser steps (micro-batch 1)"
          " made while the one-shots were generated")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "training-pause.json").write_text(json.dumps(dict(
            preset=args.preset, gens=args.gens, generation_threads=torch.get_num_threads(), cpus=os.cpu_count(),
            load_at_start=load, date=time.strftime("%Y-%m-%d %H:%M"), rows=rows), indent=2))


if __name__ == "__main__":
    main()
