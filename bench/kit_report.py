"""Judge a model of several kinds (the kit model) kind by kind against the held-out real kits, beside the
bundled one-kind models on the kinds they make, on the same seeds: what the kit issue's tables hold.

    python bench/kit_report.py runs/kit/run/snapshots/kit-step004000.safetensors
    python bench/kit_report.py KIT.safetensors --kinds kick,snare,closed-hat -n 64 --compare
    python bench/kit_report.py runs/kit/run/snapshots --curve bench/kit/curve.csv   # every snapshot, once each
    python bench/kit_report.py KIT.safetensors --guidance 2          # guidance scale in place of the model's own

Each row: called its kind (the real held-out drums' own in brackets), tail level, decay, diversity as a share
of the real drums' and Frechet distance as a multiple of kit-to-kit (n/a where the held-out kind is a single
recording group: no two halves to compare), clicks per raw one-shot. Seeds from --seed, default settings of
the model (or --sampler/--steps), post-processing on.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIELDS = ("called", "real_called", "tail_db", "real_tail_db", "decay_ms", "real_decay_ms", "diversity", "frechet",
          "clicks_per_oneshot")


def judged(engine, name: str, kind: str, count: int, seed: int, **settings) -> dict:
    from tad_daemon.quality.evaluate import evaluate_model

    r = evaluate_model(engine, name, count, seed=seed, **settings)
    return {"called": r.class_consistency, "real_called": r.real_consistency, "tail_db": r.tail_db,
            "real_tail_db": r.real_tail_db, "decay_ms": r.decay_ms, "real_decay_ms": r.real_decay_ms,
            "diversity": r.diversity, "frechet": r.frechet, "clicks_per_oneshot": r.clicks_per_oneshot,
            "predicted": r.predicted, "seconds": r.seconds_per_oneshot}


def row(label: str, r: dict) -> str:
    def pct(v):
        return "  n/a" if v != v else f"{v:5.0%}"

    frechet = "  n/a" if r["frechet"] != r["frechet"] else f"{r['frechet']:4.1f}x"
    return (f"{label:24s} {pct(r['called'])} ({pct(r['real_called']).strip():>4s})  {r['tail_db']:6.1f} "
            f"({r['real_tail_db']:6.1f})  {r['decay_ms']:5.0f} ({r['real_decay_ms']:5.0f})  {pct(r['diversity'])}  "
            f"{frechet}  {r['clicks_per_oneshot']:4.1f}")


HEADER = (f"{'model: kind':24s} called (real)  tail dB (real)  decay ms (real)  div.  Frechet clicks")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="a kit model file, or a folder of snapshots (with --curve)")
    p.add_argument("--kinds", help="comma-separated (default: every kind the model makes)")
    p.add_argument("-n", "--count", type=int, default=32)
    p.add_argument("--seed", type=int, default=10000)
    p.add_argument("--sampler")
    p.add_argument("--steps", type=int)
    p.add_argument("--guidance", type=float, help="guidance scale in place of the model's own (1: none)")
    p.add_argument("--compare", action="store_true", help="also the bundled one-kind models, same seeds")
    p.add_argument("--curve", type=Path, help="append a row per snapshot and kind to this CSV")
    args = p.parse_args()

    import torch

    from tad_daemon.engine import Engine
    from tad_daemon.models.registry import BUNDLED, kind_entries, read_entry

    torch.set_num_threads(2)
    files = sorted(args.model.glob("*.safetensors")) if args.model.is_dir() else [args.model]
    done = set()
    if args.curve and args.curve.exists():
        with open(args.curve, newline="") as f:
            done = {(r["snapshot"], r["kind"], float(r["guidance"])) for r in csv.DictReader(f)}
    settings = {"sampler": args.sampler, "steps": args.steps}
    print(HEADER)
    for file in files:
        entries = kind_entries(read_entry(file))
        kinds = args.kinds.split(",") if args.kinds else [k for k in entries if k != file.stem]
        engine = Engine("cpu", "fp32", backend="torch", guidance=args.guidance)
        for name in kinds:
            guidance = entries[name].config.guidance if args.guidance is None else args.guidance
            if (file.name, name, guidance) in done:
                continue
            engine.load(entries[name])
            started = time.monotonic()
            r = judged(engine, name, name, args.count, args.seed, **settings)
            print(row(f"{file.stem}: {name}", r), f"  {time.monotonic() - started:.0f} s", flush=True)
            if args.curve:
                new = not args.curve.exists()
                with open(args.curve, "a", newline="") as f:
                    w = csv.DictWriter(f, ("snapshot", "kind", "guidance", *FIELDS))
                    if new:
                        w.writeheader()
                    w.writerow({"snapshot": file.name, "kind": name, "guidance": guidance, **{k: r[k] for k in FIELDS}})
            if args.compare and (BUNDLED / f"{name}.safetensors").exists():
                one = Engine("cpu", "fp32", backend="torch")
                one.load(read_entry(BUNDLED / f"{name}.safetensors"))
                print(row(f"bundled: {name}", judged(one, name, name, args.count, args.seed, **settings)), flush=True)


if __name__ == "__main__":
    main()
