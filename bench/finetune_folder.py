"""Does a fine-tune on "my folder" land in the folder's neighbourhood? Held-out real kits stand in for a
producer's folder: the base model never saw them, and neither did the judge's classifier.

    python bench/finetune_folder.py data/real kick --groups "gm:Power Kick,gm:Power Kick 2,gm:Power Kick 3"
    python bench/finetune_folder.py data/real kick --steps 1200 --lr 3e-4 --every 300 --out runs/folder-kick

The folder's one-shots are copied to OUT/folder and the bundled model of the kind (or --base) is fine-tuned
on them with the daemon's recipe (TrainConfig's defaults; --lr, --batch, --accumulation, --steps change it),
a snapshot every --every steps. Each snapshot, and the base before it, makes --count one-shots (same seeds),
judged in the judge's feature space (the space its Frechet distance and diversity use): the mean distance
from each one-shot to the folder's centre, beside the folder's own one-shots' mean distance to it (where a
sound "from the folder" sits), and the one-shots' spread (mean pairwise distance) beside the folder's.
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


def embedded(audio) -> object:
    """One-shots (n, 2, length), post-processed, in the judge's PCA space."""
    from tad_daemon.quality.features import extract_batch
    from tad_daemon.quality.report import shipped_classifier, shipped_kits

    return shipped_kits().project(shipped_classifier().embed(extract_batch(audio)))


def measure(z, centre) -> tuple[float, float]:
    import numpy as np

    from tad_daemon.quality.report import mean_pairwise_distance

    return float(np.linalg.norm(z - centre, axis=1).mean()), mean_pairwise_distance(z)


def made_by(model: Path, count: int, seed: int):
    import numpy as np

    from tad_daemon.audio.post import PostProcess, postprocess
    from tad_daemon.engine import Engine
    from tad_daemon.models.registry import read_entry

    engine = Engine("cpu", "fp32", backend="torch")
    entry = read_entry(model)
    engine.load(entry)
    shots = engine.generate(entry.name, count, seed)
    return np.stack([postprocess(s.audio, PostProcess(), s.sample_rate) for s in shots])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", type=Path)
    p.add_argument("kind")
    p.add_argument("--groups", help="held-out recording groups to use, comma-separated (default: every held-out "
                                    "group of the kind with 4 or more one-shots)")
    p.add_argument("--base", type=Path, help="the model to fine-tune (default: the bundled model of the kind)")
    p.add_argument("--out", type=Path, default=Path("runs/folder"))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--every", type=int, default=150)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch", type=int, default=8, help="micro-batch")
    p.add_argument("--accumulation", type=int, default=1)
    p.add_argument("-n", "--count", type=int, default=32)
    p.add_argument("--seed", type=int, default=30000)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()

    from tad_daemon.audio.load import load_oneshot
    from tad_daemon.models.registry import BUNDLED
    from tad_daemon.training.settings import TrainConfig
    from tad_daemon.training.train import train

    with open(args.corpus / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "heldout" and r["kind"] == args.kind]
    if args.groups:
        wanted = set(args.groups.split(","))
    else:
        sizes = {g: sum(r["group"] == g for r in rows) for g in {r["group"] for r in rows}}
        wanted = {g for g, n in sizes.items() if n >= 4}
    rows = [r for r in rows if r["group"] in wanted]
    if not rows:
        sys.exit(f"no held-out {args.kind} in groups {sorted(wanted)}")
    folder = args.out / "folder"
    folder.mkdir(parents=True, exist_ok=True)
    for r in rows:
        shutil.copyfile(args.corpus / r["file"], folder / Path(r["file"]).name)
    import numpy as np

    from tad_daemon.audio.post import PostProcess, postprocess

    own = embedded(np.stack([postprocess(load_oneshot(args.corpus / r["file"]), PostProcess()) for r in rows]))
    centre = own.mean(axis=0)
    own_distance, own_spread = measure(own, centre)
    print(f"my folder: {len(rows)} held-out {args.kind} one-shots ({', '.join(sorted(wanted))}); its own one-shots "
          f"sit {own_distance:.2f} from its centre, {own_spread:.2f} from each other", flush=True)

    base = args.base or BUNDLED / f"{args.kind}.safetensors"
    settings = {"lr": args.lr} if args.lr else {}
    cfg = TrainConfig(name=f"my-{args.kind}", data=str(folder), out=str(args.out / "run"), base=str(base),
                      steps=args.steps, micro_batch=args.batch, accumulation=args.accumulation,
                      snapshot_every=args.every, checkpoint_every=args.every, threads=args.threads, device="cpu",
                      **settings)
    print(f"recipe: lr {cfg.lr}, batch {cfg.micro_batch} x {cfg.accumulation}, EMA {cfg.ema_beta}, augment gain "
          f"{cfg.augment_gain_db} dB, {args.steps} steps", flush=True)
    print(f"{'model':28s} {'to centre':>9s} {'spread':>7s}   (folder: {own_distance:.2f}, {own_spread:.2f})",
          flush=True)
    d, s = measure(embedded(made_by(base, args.count, args.seed)), centre)
    print(f"{'base ' + base.name:28s} {d:9.2f} {s:7.2f}", flush=True)
    started = time.monotonic()
    train(cfg, resume=True)
    minutes = (time.monotonic() - started) / 60
    final = args.out / "run" / f"{cfg.name}.safetensors"
    for snap in [*sorted((args.out / "run" / "snapshots").glob("*.safetensors")), final]:
        d, s = measure(embedded(made_by(snap, args.count, args.seed)), centre)
        print(f"{snap.stem:28s} {d:9.2f} {s:7.2f}", flush=True)
    print(f"training: {minutes:.1f} min for {args.steps} steps of {cfg.micro_batch * cfg.accumulation}", flush=True)


if __name__ == "__main__":
    main()
