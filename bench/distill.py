"""A distilled student against its teacher, on this CPU: the quality report's figures (the same seeds, each
beside the held-out real drums'), the distance to the teacher's 250-step reference from the same noise, and
the time of one one-shot, teacher and student timed in turns.

    python bench/distill.py TEACHER STUDENT [-n 32] [--seed 10000] [--repeats 7] [--noises 3]

TEACHER and STUDENT are model names or files. Four rows: the teacher at its default settings, the teacher
with the seed's VSampler at 50 steps, the teacher with the student's sampler and steps (what the student
saves over simply taking fewer steps), the student. "to ref." is the multi-resolution STFT distance to the
teacher's DPM-Solver++(2M) at 250 steps (Karras schedule), as bench/samplers.py measures it. Time is request
to raw audio for one one-shot (no pool, no file), ONNX Runtime where the engine picks it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import common  # (first: the machine's setup, threads and OMP)
import torch

from tad_daemon.engine import Engine
from tad_daemon.models.registry import model_folders, read_entry, scan
from tad_daemon.quality.evaluate import evaluate_model


def entry_of(name: str):
    if name.endswith(".safetensors"):
        return read_entry(Path(name))
    entries, _ = scan(model_folders(None))
    return entries[name]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("teacher")
    p.add_argument("student")
    p.add_argument("-n", type=int, default=32)
    p.add_argument("--seed", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--noises", type=int, default=3, help="noises for the distance to the 250-step reference")
    args = p.parse_args()
    engine = Engine("cpu", backend="auto", cache_dir=Path(tempfile.gettempdir()) / "tad-bench-distill")
    teacher, student = entry_of(args.teacher), entry_of(args.student)
    if teacher.name == student.name:
        raise SystemExit("teacher and student need different names")
    for e in (teacher, student):
        print(f"{e.name}: {engine.load(e, wait=True).describe()}")
    s = student.config
    rows = [(teacher.name, None, None, None), (teacher.name, 50, "vsampler", "linear"),
            (teacher.name, s.default_steps, s.default_sampler, s.default_schedule), (student.name, None, None, None)]
    times: dict[int, list[float]] = {i: [] for i in range(len(rows))}
    for r in range(args.repeats + 1):  # in turns; the first round warms up
        for i, (name, steps, sampler, schedule) in enumerate(rows):
            start = time.perf_counter()
            engine.generate(name, 1, args.seed + r, steps, sampler, schedule)
            if r:
                times[i].append(time.perf_counter() - start)
    seeds = [args.seed + 500 + i for i in range(args.noises)]
    reference = [torch.from_numpy(o.audio) for o in engine.generate(teacher.name, args.noises, seeds[0], 250,
                                                                    "dpmpp-2m", "karras")]
    print(f"\n{'':28s}{'called':>8s}{'tail dB':>9s}{'decay ms':>9s}{'divers.':>8s}{'Frechet':>8s}"
          f"{'to ref.':>8s}{'s/shot':>8s}{'x':>6s}")
    base = statistics.median(times[0])
    real = None
    for i, (name, steps, sampler, schedule) in enumerate(rows):
        rep = evaluate_model(engine, name, args.n, steps, sampler, args.seed, schedule=schedule)
        real = rep
        outs = engine.generate(name, args.noises, seeds[0], steps, sampler, schedule)
        distance = statistics.mean(common.mrstft(torch.from_numpy(o.audio), r) for o, r in zip(outs, reference))
        label = f"{name} {rep.sampler} {rep.steps}"
        t = statistics.median(times[i])
        print(f"{label:28s}{rep.class_consistency:8.0%}{rep.tail_db:9.1f}{rep.decay_ms:9.0f}{rep.diversity:8.0%}"
              f"{rep.frechet:7.1f}x{distance:8.3f}{t:8.3f}{base / t:6.1f}")
    print(f"{'real drums (held out)':28s}{real.real_consistency:8.0%}{real.real_tail_db:9.1f}"
          f"{real.real_decay_ms:9.0f}{1:8.0%}{1:7.1f}x")


if __name__ == "__main__":
    main()
