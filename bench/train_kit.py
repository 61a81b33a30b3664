"""Train the kit model: one U-Net for every drum kind, conditioned on kind and velocity, started from the
bundled models' weights, on the real-drum corpus. Resumable: run it again and it continues where it stopped.

    python bench/real_drums.py data/real                             # the corpus (needs fluidsynth)
    nice -n 19 python bench/train_kit.py data/real runs/kit          # prepare, then train (hours on a CPU)
    python bench/train_kit.py data/real runs/kit --minutes 20        # at most 20 minutes this time
    python bench/train_kit.py data/real runs/kit --base FILE         # a new run from FILE (e.g. the shipped kit)
    python bench/train_kit.py data/real runs/kit --save-progress     # the latest snapshot -> PROGRESS (commit it)
    cp bench/kit/progress.safetensors MODELS/drums.safetensors       # try it: every kind a model name

What it prepares in OUT (once): OUT/data/KIND/*.flac, the training split of each kind (retuned copies of
the thin kinds' one-shots, THIN below; synthesised ones of the thinnest, SYNTH_BELOW), with
OUT/data/labels.csv giving each file's velocity (the rendered MIDI velocity / 127; sonic-pi's one-shots:
unknown). The model starts from PROGRESS when there is one (the committed weights of the last run: a new
machine goes on from there), else from the bundled snare (--base another file): the mean of the bundled
models' weights, which worked for the kick's two stages, is no working model here (measured: every one-shot a
clap-like burst that never decays; they were fine-tuned too far apart). The run folder is OUT/run
(checkpoint, log, snapshots/ every --snapshot-every steps, judged with bench/kit_report.py).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tad_daemon.kinds import KINDS  # noqa: E402

# Kinds with few recordings in the corpus get retuned copies: a drum tuned up is shorter and brighter, as a
# tighter head or a smaller cymbal is. Semitones per copy.
THIN = (-3.0, -1.5, 1.5, 3.0)
PROGRESS = ROOT / "bench" / "kit" / "progress.safetensors"  # the run's latest EMA weights, fp16, one file
CURVE = ROOT / "bench" / "kit" / "curve.csv"  # bench/kit_report.py's judgement of each snapshot and kind
# The guidance scale PROGRESS samples with (docs/models.md, "One model for every kind"): at step 5,500 scale 2
# took the names the judge calls right half the time or more from 5 of 16 to 7, kick 31 -> 94 %, tom 50 -> 88 %.
GUIDANCE = 2.0
# PROGRESS offers the kinds the judge calls right this often at GUIDANCE, but none the bundled models make
# under their names (a models-folder file takes a bundled name's place: it would hide a better model).
OFFER_CALLED = 0.75
BUNDLED_KINDS = ("kick", "snare", "closed-hat")  # the bundled kick, snare and hat ("hat" is closed hats)
THIN_BELOW = 80  # one-shots in the training split
# Kinds with fewer recording groups than this also get one-shots of the procedural synthesiser
# (tad_daemon/synth, docs/synth.md): its variants of the kind, SYNTH_COUNT of them, velocity unknown.
SYNTH_BELOW = 5
SYNTH_COUNT = 48
SYNTH_VARIANTS = {"rim": ("perc", ("rim",)), "clap": ("perc", ("clap", "snap")), "cowbell": ("perc", ("cowbell",)),
                  "wood": ("perc", ("clave", "woodblock")), "shaker": ("perc", ("shaker",)),
                  "tambourine": ("perc", ("tambourine",)), "tom": ("perc", ("tom", "808_tom")),
                  "hand-drum": ("perc", ("conga", "bongo", "tabla")), "closed-hat": ("hat", ("closed", "pedal")),
                  "open-hat": ("hat", ("open", "808_open")), "crash": ("hat", ("crash",)), "ride": ("hat", ("ride",)),
                  "kick": ("kick", ()), "snare": ("snare", ())}


def kit_data(corpus: Path, folder: Path) -> dict[str, int]:
    """The training split by kind, in `folder`/KIND/, with labels.csv; returns the count per kind."""
    import soundfile as sf
    import soxr

    with open(corpus / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train" and r["kind"] in KINDS]
    counts = {k: sum(r["kind"] == k for r in rows) for k in KINDS}
    groups = {k: len({r["group"] for r in rows if r["kind"] == k}) for k in KINDS}
    labels = []
    for kind in (k for k in KINDS if groups[k] < SYNTH_BELOW):
        import numpy as np

        from tad_daemon.synth import render

        cls, variants = SYNTH_VARIANTS[kind]
        for i in range(SYNTH_COUNT):
            rel = f"{kind}/synth-{i:03d}.flac"
            if not (folder / rel).exists():
                rng = np.random.default_rng([7, KINDS.index(kind), i])
                variant = variants[i % len(variants)] if variants else None
                (folder / kind).mkdir(parents=True, exist_ok=True)
                sf.write(folder / rel, render(cls, rng, variant).T, 44100, subtype="PCM_24")
            labels.append((rel, kind, ""))
    for r in rows:
        src = corpus / r["file"]
        velocity = f"{int(r['velocity']) / 127:.4f}" if r["velocity"] else ""
        tunings = THIN if counts[r["kind"]] < THIN_BELOW else ()
        for st in (0.0, *tunings):
            rel = f"{r['kind']}/{src.stem}{f'-tuned{st:+g}' if st else ''}.flac"
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                if st:
                    audio, rate = sf.read(src, always_2d=True)
                    # played 2^(st/12) times faster: resampled to fewer samples, read at the same rate
                    sf.write(target, soxr.resample(audio, rate, rate / 2 ** (st / 12)), rate, subtype="PCM_24")
                else:
                    shutil.copyfile(src, target)
            labels.append((rel, r["kind"], velocity))
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "kind", "velocity"])
        w.writerows(labels)
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--base", type=Path, help="start from this model file (default: the bundled snare)")
    p.add_argument("--run", default="run", help="run folder under OUT")
    p.add_argument("--steps", type=int, default=40000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--balance", type=float, default=0.5)
    p.add_argument("--dropout", type=float, default=0.1, help="share trained without kind and velocity")
    p.add_argument("--condition-lr", type=float, default=100.0,
                   help="the kind and velocity embeddings' learning rate, x --lr (they start at zero, and the time "
                        "features they join are ~10x their size after 2,000 steps at 10x)")
    p.add_argument("--minutes", type=float, default=0.0, help="stop (checkpointed) after this long; 0: never")
    p.add_argument("--snapshot-every", type=int, default=500)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--save-progress", action="store_true",
                   help=f"write the run's latest snapshot to {PROGRESS.relative_to(ROOT)} in fp16, and stop")
    args = p.parse_args()
    if args.save_progress:
        save_progress(args.out / args.run / "snapshots")
        return

    from tad_daemon.models.registry import BUNDLED
    from tad_daemon.training.settings import TrainConfig
    from tad_daemon.training.train import train

    data = args.out / "data"
    if not (data / "labels.csv").exists():
        counts = kit_data(args.corpus, data)
        print("training split by kind:", ", ".join(f"{k} {n}" for k, n in counts.items()), flush=True)
    base = args.base or (PROGRESS if PROGRESS.exists() else BUNDLED / "snare.safetensors")
    cfg = TrainConfig(
        name="kit", data=str(data), out=str(args.out / args.run), base=str(base), kinds=list(KINDS), kind="kit",
        license="MIT (FluidR3_GM, MuseScore_General) and CC0 (sonic-pi-samples): see data/real/LICENSES.md",
        description="every drum kind of the real-drum corpus (bench/real_drums.py), training split",
        steps=args.steps, micro_batch=args.batch, accumulation=1, lr=args.lr, balance=args.balance,
        condition_dropout=args.dropout, condition_lr_scale=args.condition_lr, augment_gain_db=3.0, augment_flip=True,
        device=args.device, seed=1,
        threads=args.threads, checkpoint_every=args.snapshot_every, checkpoint_minutes=10.0,
        snapshot_every=args.snapshot_every, log_every=50)
    started = time.monotonic()
    result = train(cfg, resume=True,
                   stop=lambda: bool(args.minutes) and time.monotonic() - started > 60 * args.minutes)
    print(f"kit: {result.state} at step {result.step} of {args.steps} ({time.monotonic() - started:.0f} s)")


def save_progress(snapshots: Path) -> None:
    """The latest snapshot, in fp16, replacing PROGRESS (what a run on another machine starts from), sampling
    with GUIDANCE and offering the kinds its judgement in CURVE passed (OFFER_CALLED)."""
    import torch

    from tad_daemon.models.manage import bundled_names
    from tad_daemon.models.modelfile import read_config, read_weights, save_model
    from tad_daemon.models.registry import ModelEntry, kind_entries

    latest = max(snapshots.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
    with open(CURVE, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["snapshot"] == latest.name and float(r["guidance"]) == GUIDANCE]
    if not rows:
        sys.exit(f"{latest.name} is not judged at guidance {GUIDANCE:g} yet: python bench/kit_report.py {latest} "
                 f"--guidance {GUIDANCE:g} --curve {CURVE.relative_to(ROOT)}")
    passed = {r["kind"] for r in rows if float(r["called"]) >= OFFER_CALLED} - set(BUNDLED_KINDS)
    config = read_config(latest)
    config = replace(config, guidance=GUIDANCE, offers=[k for k in config.arch["kinds"] if k in passed])
    names = set(kind_entries(ModelEntry("drums", PROGRESS, config)))
    if not config.offers or names & bundled_names():
        sys.exit(f"{latest.name}: offers {config.offers or 'nothing'}, names {sorted(names)}: none may be a "
                 f"bundled name and one at least is needed")
    save_model(PROGRESS, read_weights(latest), config, dtype=torch.float16)
    print(f"{latest} -> {PROGRESS} ({PROGRESS.stat().st_size / 1e6:.1f} MB), offering {', '.join(config.offers)}")


if __name__ == "__main__":
    main()
