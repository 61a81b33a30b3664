"""How few sampling steps each model needs: the quality report against steps, on the held-out real kits and
the same seeds, beside a many-step reference, and the fewest steps whose every figure is within the noise.

    python bench/steps.py                                   # the bundled kick, snare, hat, perc
    python bench/steps.py snare --steps 6,8,10,12,15 --reference 50 -n 64 --json out/steps.json
    python bench/steps.py --write                           # and store each choice in its model file

Each model runs on its own sampler and schedule (the model file's). The noise of a figure is two bootstrap
standard deviations of the reference's figure over its one-shots (resampled with replacement, 200 times),
at least FLOORS; a step count passes when no figure is worse than the reference's by more than that (better
is fine). The chosen count is the fewest that passes, and every larger count of the list passes too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# figure: (+1 if higher is worse, -1 if lower is worse), and the least difference counted as worse
WORSE = {"class_consistency": -1, "tail_db": +1, "diversity": -1, "frechet": +1, "clicks_per_oneshot": +1}
FLOORS = {"class_consistency": 0.02, "tail_db": 0.5, "diversity": 0.02, "frechet": 0.05, "clicks_per_oneshot": 0.05}
BOOTSTRAP = 200


def figures(engine, name: str, kind: str, count: int, seed: int, steps: int) -> tuple[dict, object, object, float]:
    """The report's figures at `steps`, and the processed and raw one-shots (for the bootstrap)."""
    import numpy as np

    from tad_daemon.audio.post import PostProcess, postprocess
    from tad_daemon.quality.report import judge

    started = time.perf_counter()
    shots = engine.generate(name, count, seed, steps)
    seconds = (time.perf_counter() - started) / count
    raw = np.stack([s.audio for s in shots])
    processed = np.stack([postprocess(a, PostProcess(), s.sample_rate) for a, s in zip(raw, shots)])
    return {k: float(v) for k, v in judge(processed, raw, kind).items() if k in WORSE}, processed, raw, seconds


def noise(processed, raw, kind: str, seed: int = 0) -> dict:
    import numpy as np

    from tad_daemon.quality.report import judge

    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(raw), len(raw))
        draws.append(judge(processed[i], raw[i], kind))
    return {k: max(2 * float(np.nanstd([d[k] for d in draws])), FLOORS[k]) for k in WORSE}


def worse_by(candidate: dict, reference: dict, tolerance: dict) -> dict:
    """The figures where `candidate` is worse than `reference` by more than `tolerance`, and by how much."""
    out = {}
    for k, sign in WORSE.items():
        gap = sign * (candidate[k] - reference[k])
        if gap == gap and gap > tolerance[k]:
            out[k] = round(gap, 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", default=["kick", "snare", "hat", "perc"],
                   help="bundled model names or model files")
    p.add_argument("--steps", default="4,6,8,10,12,15,20")
    p.add_argument("--reference", type=int, default=50)
    p.add_argument("-n", "--count", type=int, default=64)
    p.add_argument("--seed", type=int, default=20000)
    p.add_argument("--json", type=Path)
    p.add_argument("--write", action="store_true", help="store each chosen count as its model file's default")
    args = p.parse_args()

    from tad_daemon.engine import Engine
    from tad_daemon.models.registry import BUNDLED, read_entry

    engine = Engine("cpu", "fp32")
    counts = sorted(int(s) for s in args.steps.split(","))
    results = {}
    for model in args.models:
        path = Path(model) if model.endswith(".safetensors") else BUNDLED / f"{model}.safetensors"
        entry = read_entry(path)
        engine.load(entry)
        c = entry.config
        print(f"{entry.name} ({entry.kind}): {c.default_sampler} {c.default_schedule}, default {c.default_steps} "
              f"steps, reference {args.reference}", flush=True)
        ref, processed, raw, ref_s = figures(engine, entry.name, entry.kind, args.count, args.seed, args.reference)
        tol = noise(processed, raw, entry.kind)
        rows = {args.reference: {**ref, "seconds": ref_s, "worse": {}}}
        print(f"  {'steps':>5} " + " ".join(f"{k[:12]:>12}" for k in WORSE) + "   s/shot  worse than the reference",
              flush=True)
        print(f"  {'noise':>5} " + " ".join(f"{tol[k]:12.3f}" for k in WORSE), flush=True)
        for steps in [*counts, args.reference]:
            if steps != args.reference:
                got, _, _, seconds = figures(engine, entry.name, entry.kind, args.count, args.seed, steps)
                rows[steps] = {**got, "seconds": seconds, "worse": worse_by(got, ref, tol)}
            r = rows[steps]
            print(f"  {steps:5d} " + " ".join(f"{r[k]:12.3f}" for k in WORSE) +
                  f"  {r['seconds']:7.3f}  {r['worse'] or ''}", flush=True)
        passing = [s for s in counts if all(not rows[t]["worse"] for t in counts if t >= s)]
        chosen = passing[0] if passing else args.reference
        print(f"  fewest steps within the noise: {chosen} (was {c.default_steps})", flush=True)
        results[entry.name] = {"sampler": c.default_sampler, "schedule": c.default_schedule,
                               "default_was": c.default_steps, "chosen": chosen, "noise": tol,
                               "rows": {str(k): v for k, v in rows.items()}}
        if args.write and chosen != c.default_steps:
            write_default_steps(path, chosen, args.reference, args.count)
        engine.unload(entry.name)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


def write_default_steps(path: Path, steps: int, reference: int, count: int) -> None:
    """The model file again, its default steps set to `steps` and the choice recorded in its header."""
    from dataclasses import replace

    import torch

    from tad_daemon.models.modelfile import read_config, read_weights, save_model

    config = read_config(path)
    weights = read_weights(path)
    dtype = torch.float16 if any(t.dtype == torch.float16 for t in weights.values()) else None
    training = {**config.training, "default_steps_chosen": {
        "steps": steps, "by": f"bench/steps.py: every figure of the quality report within the noise of {reference} "
                              f"steps, {count} seeds, held-out real kits"}}
    save_model(path, weights, replace(config, default_steps=steps, training=training), dtype=dtype)
    print(f"  {path}: default steps {steps}", flush=True)


if __name__ == "__main__":
    main()
