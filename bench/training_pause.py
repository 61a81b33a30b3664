"""Generation latency while a fine-tune runs on the same CPU: with the trainer running alongside, and with
the trainer suspended for each generation (the runner's `hold`, what the daemon does by default on a CPU).

    python bench/training_pause.py                    # cpu-small models (random weights: timing only)
    python bench/training_pause.py --gens 10 --out out/   # writes out/training-pause.json

One process generates (the daemon's engine, one one-shot at the model's default 12 steps); the runner trains
a cpu-small model from scratch in its subprocess, as a queued job, with its defaults (half the cores, nice
10). Cases:
  idle     before the job starts
  shared   the job training alongside
  paused   the job suspended (SIGSTOP) while each one-shot is made (the daemon's default on a CPU)
`shared` and `paused` alternate one-shot by one-shot, so a change in the machine's other load affects both
alike; their ratio is the figure to read.
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
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# generation latency, {args.preset}, {torch.get_num_threads()} generation threads, "
          f"{os.cpu_count()} CPUs, load average {load:.1f} at start", flush=True)
    secs = {"idle": [generate(None, False) for _ in range(args.gens)], "shared": [], "paused": []}
    cfg = load_config(overrides={"training.device": "cpu", "training.pause_for_generation": "always"})
    runner = Runner(JobQueue(home / "jobs.sqlite"), cfg)
    runner.start()
    job = runner.submit("bench", str(data), steps=1_000_000, now=True,
                        settings={"micro_batch": 1, "accumulation": 1, "checkpoint_every": 1_000_000})
    deadline = time.monotonic() + 300
    while steps_of(runner, job.id) < 3 and time.monotonic() < deadline:  # the trainer is up and running
        time.sleep(0.2)
    t0, s0 = time.perf_counter(), steps_of(runner, job.id)
    for i in range(args.gens):
        for case in ("shared", "paused") if i % 2 == 0 else ("paused", "shared"):
            secs[case].append(generate(runner, case == "paused"))
    rate = 60 * (steps_of(runner, job.id) - s0) / (time.perf_counter() - t0)
    runner.cancel(job.id)
    runner.close()
    rows = []
    print(f"{'case':8s} {'median s':>9s} {'worst s':>8s} {'ratio':>6s}")
    for case, values in secs.items():
        row = dict(case=case, median_s=statistics.median(values), worst_s=max(values), seconds=values)
        rows.append(row)
        ratio = row["median_s"] / statistics.median(secs["paused"])
        print(f"{case:8s} {row['median_s']:9.2f} {row['worst_s']:8.2f} {ratio:6.2f}")
    print(f"ratio: median latency against paused (same run). The trainer made {rate:.1f} optimiser steps "
          f"(micro-batch 1) a minute meanwhile, nearly all while not paused.")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "training-pause.json").write_text(json.dumps(dict(
            preset=args.preset, gens=args.gens, generation_threads=torch.get_num_threads(), cpus=os.cpu_count(),
            load_at_start=load, train_steps_per_min=rate, date=time.strftime("%Y-%m-%d %H:%M"), rows=rows),
            indent=2))


if __name__ == "__main__":
    main()
