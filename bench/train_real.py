"""Train the drum classes on the real-drum corpus, judging snapshots as it goes: one prepared run for a GPU
that a time limit may cut short, and that continues where it stopped when run again (on a GPU or a CPU).

    python bench/real_drums.py data/real                      # the corpus (CPU side, once)
    python bench/train_real.py data/real runs/real            # every class, fine-tuned from the bundled models
    python bench/train_real.py data/real runs/real --classes snare,hat --steps 4000 --minutes 2 --batch 32
    python bench/train_real.py data/real runs/real --from-scratch --preset cpu-small

Per class: the training split's one-shots of the class (perc: toms, hand drums, cowbells, wood) go into
OUT/data/CLASS; the run folder is OUT/CLASS (checkpoint, log, snapshots/); every --judge-every steps a
snapshot is written and judged by the quality report against the held-out real kits (16 one-shots, fixed
seeds), and OUT/learning_curve.csv gets a row (class, step, seconds, class share, tail dB, >8 kHz dB, decay,
diversity, Frechet). A class gets at most --minutes of training per invocation; then its run checkpoints
and the next class starts, so a cut-short run keeps everything it had. The figures are printed beside the
real kits' own.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tad_daemon.limits import DRUM_CLASSES  # noqa: E402

KINDS = {"kick": ("kick",), "snare": ("snare",), "hat": ("closed-hat", "open-hat"),
         "perc": ("tom", "hand-drum", "cowbell", "wood")}  # bench/real_drums.py's CLASS_OF_KIND, by class
CURVE_FIELDS = ("class", "step", "train_seconds", "called", "tail_db", "high_band_db", "decay_ms", "diversity",
                "frechet", "clicks_per_oneshot", "snapshot")


def class_data(corpus: Path, out: Path, kind: str, semitones: tuple[float, ...] = ()) -> Path:
    """The training split's one-shots of `kind` copied into one folder (the trainer reads one folder), with
    a retuned copy of each per entry of `semitones`: a drum tuned up is shorter and brighter, as a tighter
    head is, which stretches a class with few recordings (the soundfonts share a handful of hi-hats)."""
    import soundfile as sf
    import soxr

    folder = out / "data" / kind
    folder.mkdir(parents=True, exist_ok=True)
    for sub in KINDS[kind]:
        for f in sorted((corpus / "train" / sub).glob("*.flac")):
            target = folder / f"{sub}-{f.name}"
            if not target.exists():
                shutil.copyfile(f, target)
            for st in semitones:
                tuned = folder / f"{sub}-{f.stem}-tuned{st:+g}.flac"
                if not tuned.exists():
                    audio, rate = sf.read(f, always_2d=True)
                    # played 2^(st/12) times faster: resampled to fewer samples, read at the same rate
                    sf.write(tuned, soxr.resample(audio, rate, rate / 2 ** (st / 12)), rate)
    return folder


def judge_snapshot(path: Path, kind: str, count: int, seed: int, device: str) -> dict:
    from tad_daemon.engine import Engine
    from tad_daemon.models.registry import read_entry
    from tad_daemon.quality.evaluate import evaluate_model

    engine = Engine(device, "fp32", backend="torch")
    engine.load(read_entry(path))
    return evaluate_model(engine, read_entry(path).name, count, seed=seed).__dict__


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--classes", default=",".join(DRUM_CLASSES))
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps per class in all")
    p.add_argument("--batch", type=int, default=8, help="one-shots per optimiser step")
    p.add_argument("--micro-batch", type=int, default=0, help="per forward pass (default: the batch, or 4 on a CPU)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--from-scratch", action="store_true", help="start from --preset, not the bundled model")
    p.add_argument("--preset", default="cpu-micro")
    p.add_argument("--minutes", type=float, default=0.0, help="training time per class and invocation; 0: no limit")
    p.add_argument("--judge-every", type=int, default=500, help="steps between judged snapshots")
    p.add_argument("--judge-count", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--tune", action="append", default=[], metavar="CLASS=SEMITONES,...",
                   help="add retuned copies of a class's one-shots, e.g. hat=-3,-1.5,1.5,3 (repeatable)")
    args = p.parse_args()

    import torch

    from tad_daemon.models.modelfile import SUFFIX
    from tad_daemon.models.registry import BUNDLED
    from tad_daemon.training.settings import TrainConfig
    from tad_daemon.training.train import train

    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    micro = args.micro_batch or (args.batch if cuda else min(4, args.batch))
    curve = args.out / "learning_curve.csv"
    args.out.mkdir(parents=True, exist_ok=True)
    tunings = {}
    for spec in args.tune:
        kind, _, steps = spec.partition("=")
        try:
            tunings[kind] = tuple(float(v) for v in steps.split(","))
        except ValueError:
            sys.exit(f"--tune {spec}: expected CLASS=SEMITONES,... (numbers)")
    judged = set()
    if curve.exists():
        with open(curve, newline="") as f:
            judged = {(r["class"], int(r["step"])) for r in csv.DictReader(f)}
    for kind in args.classes.split(","):
        if kind not in KINDS:
            sys.exit(f"unknown class {kind!r} ({', '.join(KINDS)})")
        data = class_data(args.corpus, args.out, kind, tunings.get(kind, ()))
        cfg = TrainConfig(
            name=f"{kind}-real", data=str(data), out=str(args.out / kind), kind=kind,
            base="" if args.from_scratch else str(BUNDLED / f"{kind}{SUFFIX}"), preset=args.preset,
            license="MIT (FluidR3_GM, MuseScore_General) and CC0 (sonic-pi-samples): see data/real/LICENSES.md",
            description=f"{kind}s of the real-drum corpus (bench/real_drums.py), training split",
            steps=args.steps, micro_batch=micro, accumulation=max(1, args.batch // micro), lr=args.lr,
            augment_gain_db=3.0, augment_flip=True, device=args.device, seed=1,
            checkpoint_every=args.judge_every, checkpoint_minutes=2.0, snapshot_every=args.judge_every)
        started = time.monotonic()
        result = train(cfg, resume=True,
                       stop=lambda t0=started: bool(args.minutes) and time.monotonic() - t0 > 60 * args.minutes)
        print(f"{kind}: {result.state} at step {result.step} of {args.steps} "
              f"({time.monotonic() - started:.0f} s this invocation)", flush=True)
        snapshots = sorted((args.out / kind / "snapshots").glob(f"*{SUFFIX}"))
        final = args.out / kind / f"{kind}-real{SUFFIX}"
        for snap in snapshots + ([final] if final.exists() else []):
            step = int(snap.stem.rsplit("step", 1)[1]) if "step" in snap.stem else args.steps
            if (kind, step) in judged:
                continue
            r = judge_snapshot(snap, kind, args.judge_count, 10000, "cuda" if cuda else "cpu")
            row = {"class": kind, "step": step, "train_seconds": round(time.monotonic() - started),
                   "called": r["class_consistency"], **{k: r[k] for k in CURVE_FIELDS[4:-1]}, "snapshot": snap.name}
            new = not curve.exists()
            with open(curve, "a", newline="") as f:
                writer = csv.DictWriter(f, CURVE_FIELDS)
                if new:
                    writer.writeheader()
                writer.writerow(row)
            judged.add((kind, step))
            print(f"  step {step:6d}: called {kind} {r['class_consistency']:.0%} ({r['real_consistency']:.0%}), "
                  f"tail {r['tail_db']:.1f} ({r['real_tail_db']:.1f}) dB, >8 kHz {r['high_band_db']:.1f} "
                  f"({r['real_high_band_db']:.1f}) dB, decay {r['decay_ms']:.0f} ({r['real_decay_ms']:.0f}) ms, "
                  f"diversity {r['diversity']:.0%}, Frechet {r['frechet']:.1f}x  (real kits in brackets)", flush=True)


if __name__ == "__main__":
    main()
