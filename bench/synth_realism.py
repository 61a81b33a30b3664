"""How real do the synthesiser's drums look? Real CC0 one-shots (Debian's sonic-pi-samples) against ours.

    PYTHONPATH=. python bench/synth_realism.py [--per-class 100] [--seed 0] [--naive] [--json FILE]

Measures, per class (kick, snare, hat, perc):
  real CV      a classifier trained on real one-shots (augmented), tested on held-out real files (5 folds):
               the ceiling of what features + classifier can do on real data;
  real->synth  trained on all real one-shots (augmented), share of synthetic one-shots given their class;
  synth->real  trained on synthetic one-shots only, share of real files given their class;
  discrim.     accuracy of a real-vs-synthetic classifier (repeated 5-fold CV; 50% = indistinguishable);
  features     real and synthetic mean +- std of a few telling features.
`--naive` measures textbook drums instead (sine-sweep kick, sine+white-noise snare, white-noise hat,
sine-blip perc): the baseline the synthesiser has to beat.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # shared 2-core machines: one thread

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from tad_daemon.quality import DrumClassifier, augment, extract_batch, feature_names  # noqa: E402
from tad_daemon.quality.reference import load_real  # noqa: E402
from tad_daemon.synth import CLASSES, dsp, item_rng, pick_variant, render  # noqa: E402

# Perc variants with no counterpart among the CC0 references (no claps, shakers or tambourines there): a
# classifier trained on those references cannot know them, so they are also left out of one summary line.
UNREFERENCED = ("perc/clap", "perc/shaker", "perc/tambourine")

KEY_FEATURES = (
    "centroid_s1",
    "centroid_s3",
    "flatness_s1",
    "pitch_15ms",
    "pitch_120ms",
    "pitch_drop",
    "env_40ms",
    "env_130ms",
    "env_350ms",
    "decay_24db",
    "zcr_early",
)


def naive_render(kind: str, rng: np.random.Generator, sr: int = 44100, n: int = 32768) -> np.ndarray:
    """Textbook drums: what a first synthesiser does (10 of 40 kicks in the first listening test)."""
    t = dsp.times(n, sr)
    if kind == "kick":  # pitch-swept sine + band-noise click + saturation
        x = np.sin(dsp.glide_phase(t, rng.uniform(45, 65), rng.uniform(3, 6), 0.02)) * dsp.decay(t, 0.1)
        x += 0.3 * dsp.filt(dsp.noise(rng, n), "bandpass", (1000, 5000), sr) * dsp.decay(t, 0.003)
        x = np.tanh(2.0 * x)
    elif kind == "snare":  # sine tone + white noise
        x = np.sin(2 * np.pi * rng.uniform(160, 250) * t) * dsp.decay(t, 0.05)
        x += 0.7 * dsp.noise(rng, n) * dsp.decay(t, rng.uniform(0.04, 0.1))
    elif kind == "hat":  # high-passed white noise
        x = dsp.filt(dsp.noise(rng, n), "highpass", 7000, sr) * dsp.decay(t, rng.uniform(0.02, 0.2))
    else:  # sine blip
        x = np.sin(2 * np.pi * rng.uniform(150, 1200) * t) * dsp.decay(t, rng.uniform(0.03, 0.2))
    x = x / np.abs(x).max() * 0.7
    fade = np.ones(n)
    fade[-1000:] = np.linspace(1, 0, 1000)
    return np.stack([x * fade, x * fade]).astype(np.float32)


def synth_set(per_class: int, seed: int, naive: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, classes and variants of `per_class` one-shots per class (as write_corpus makes them)."""
    audio, labels, variants = [], [], []
    for kind in CLASSES:
        for i in range(per_class):
            rng = item_rng(seed, i, kind)
            variant = "naive" if naive else pick_variant(kind, rng)
            audio.append(naive_render(kind, rng) if naive else render(kind, rng, variant))
            labels.append(kind)
            variants.append(f"{kind}/{variant}")
    return extract_batch(audio), np.array(labels), np.array(variants)


def recall(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {c: float(np.mean(pred[y == c] == c)) if np.any(y == c) else float("nan") for c in CLASSES}


def confusion(y: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, int]]:
    return {c: {p: int(np.sum((y == c) & (pred == p))) for p in CLASSES} for c in CLASSES}


def fit(x: np.ndarray, y: np.ndarray, hidden: int = 32) -> DrumClassifier:
    return DrumClassifier(hidden=hidden, l2=1e-3, seed=0).fit(x, y, classes=CLASSES)


def real_cv(f_real: np.ndarray, f_aug: np.ndarray, y: np.ndarray, folds: int = 5) -> np.ndarray:
    """Predictions for every real file from a classifier that never saw it (nor its augmentations)."""
    fold = np.arange(len(y)) % folds
    np.random.default_rng(1).shuffle(fold)
    pred = np.empty(len(y), dtype=object)
    k = f_aug.shape[1]
    for i in range(folds):
        tr = fold != i
        x = np.concatenate([f_real[tr], f_aug[tr].reshape(-1, f_real.shape[1])])
        clf = fit(x, np.concatenate([y[tr], np.repeat(y[tr], k)]))
        pred[~tr] = clf.predict(f_real[~tr])
    return pred.astype(str)


def discriminator(f_real: np.ndarray, f_synth: np.ndarray, repeats: int = 4, folds: int = 5) -> float:
    """Balanced accuracy of telling real from synthetic by cross-validation (0.5: indistinguishable)."""
    x = np.concatenate([f_real, f_synth])
    y = np.array(["real"] * len(f_real) + ["synth"] * len(f_synth))
    scores = []
    for r in range(repeats):
        rng = np.random.default_rng(100 + r)
        fold = np.concatenate(
            [
                rng.permutation(np.arange(len(f_real)) % folds),
                rng.permutation(np.arange(len(f_synth)) % folds),
            ]
        )
        pred = np.empty(len(y), dtype=object)
        for i in range(folds):
            tr = fold != i
            clf = DrumClassifier(hidden=0, l2=1e-1, seed=0).fit(x[tr], y[tr], classes=("real", "synth"))
            pred[~tr] = clf.predict(x[~tr])
        scores.append(0.5 * (np.mean(pred[y == "real"] == "real") + np.mean(pred[y == "synth"] == "synth")))
    return float(np.mean(scores))


def summary(per_run: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, min and max over repeated synthetic sets, per class."""
    return {
        c: dict(
            mean=float(np.mean([r[c] for r in per_run])),
            min=float(np.min([r[c] for r in per_run])),
            max=float(np.max([r[c] for r in per_run])),
        )
        for c in CLASSES
    }


def cell(s: dict[str, float]) -> str:
    return f"{s['mean']:4.0%} ({s['min']:.0%}-{s['max']:.0%})" if s["max"] > s["min"] else f"{s['mean']:4.0%}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="synthetic sets (seeds seed, seed+1, ...)")
    ap.add_argument("--augment", type=int, default=8, help="augmented copies of every real file")
    ap.add_argument("--naive", action="store_true", help="measure textbook drums instead of the synthesiser")
    ap.add_argument("--json", default="runs/synth_realism.json")
    ap.add_argument(
        "--save-classifier",
        metavar="NPZ",
        help="also save the classifier trained on all real one-shots (e.g. tad_daemon/synth/reference/...)",
    )
    args = ap.parse_args()
    t0 = time.time()

    real, y_real, names = load_real()
    if len(real) == 0:
        raise SystemExit("no real references found: install Debian's sonic-pi-samples")
    y_real = np.array(y_real)
    f_real = extract_batch(real)
    rng = np.random.default_rng(args.seed)
    f_aug = np.stack([extract_batch([augment(a, rng) for _ in range(args.augment)]) for a in real])
    cv_pred = real_cv(f_real, f_aug, y_real)
    clf_real = fit(
        np.concatenate([f_real, f_aug.reshape(-1, f_real.shape[1])]),
        np.concatenate([y_real, np.repeat(y_real, args.augment)]),
    )

    if args.save_classifier:
        clf_real.save(args.save_classifier)
    r2s, s2r, disc, variants, missed, synth_feats, synth_labels = [], [], [], {}, {}, [], []
    conf = {c: dict.fromkeys(CLASSES, 0) for c in CLASSES}
    for r in range(args.repeats):
        f_synth, y_synth, v_synth = synth_set(args.per_class, args.seed + r, args.naive)
        r2s_pred = clf_real.predict(f_synth)
        s2r_pred = fit(f_synth, y_synth).predict(f_real)
        r2s.append(recall(y_synth, r2s_pred))
        for c, row in confusion(y_synth, r2s_pred).items():
            conf[c] = {p: conf[c][p] + k for p, k in row.items()}
        s2r.append(recall(y_real, s2r_pred))
        disc.append({c: discriminator(f_real[y_real == c], f_synth[y_synth == c]) for c in CLASSES})
        for v in set(v_synth.tolist()):
            ok, total = variants.get(v, (0, 0))
            variants[v] = (
                ok + int(np.sum(r2s_pred[v_synth == v] == v.split("/")[0])),
                total + int(np.sum(v_synth == v)),
            )
        for n, yy, p in zip(names, y_real, s2r_pred, strict=True):
            if yy != p:
                missed[n] = missed.get(n, 0) + 1
        synth_feats.append(f_synth)
        synth_labels.append(y_synth)
    f_synth, y_synth = np.concatenate(synth_feats), np.concatenate(synth_labels)

    names_f = feature_names()
    stats = {c: {} for c in CLASSES}
    for c in CLASSES:
        for feat in KEY_FEATURES:
            j = names_f.index(feat)
            r_, s_ = f_real[y_real == c, j], f_synth[y_synth == c, j]
            stats[c][feat] = dict(
                real_mean=float(r_.mean()),
                real_std=float(r_.std()),
                synth_mean=float(s_.mean()),
                synth_std=float(s_.std()),
            )

    result = dict(
        synth="naive" if args.naive else "tad_daemon.synth",
        per_class=args.per_class,
        seeds=list(range(args.seed, args.seed + args.repeats)),
        real_files={c: int(np.sum(y_real == c)) for c in CLASSES},
        real_cv=recall(y_real, cv_pred),
        real_cv_missed=[n for n, yy, p in zip(names, y_real, cv_pred, strict=True) if yy != p],
        real_to_synth=summary(r2s),
        synth_to_real=summary(s2r),
        discriminator=summary(disc),
        real_to_synth_confusion=conf,
        real_to_synth_variants={v: list(variants[v]) for v in sorted(variants)},
        synth_to_real_missed={n: f"{k}/{args.repeats}" for n, k in sorted(missed.items())},
        features=stats,
        seconds=round(time.time() - t0, 1),
    )

    print(f"{args.repeats} synthetic set(s) of {args.per_class} per class: mean (min-max)")
    head = ("class", "real", "real CV", "real->synth", "synth->real", "discrim.")
    print(f"{head[0]:6s} {head[1]:>5s} {head[2]:>8s} {head[3]:>16s} {head[4]:>16s} {head[5]:>16s}")
    for c in CLASSES:
        cells = [cell(result[k][c]) for k in ("real_to_synth", "synth_to_real", "discriminator")]
        print(
            f"{c:6s} {result['real_files'][c]:5d} {result['real_cv'][c]:8.0%} "
            + " ".join(f"{x:>16s}" for x in cells)
        )
    print("\nreal->synth confusion (rows: synthetic class, columns: predicted", ", ".join(CLASSES) + ")")
    for c in CLASSES:
        print(f"  {c:6s} " + " ".join(f"{conf[c][p]:5d}" for p in CLASSES))
    ok = sum(a for v, (a, b) in variants.items() if v.startswith("perc/") and v not in UNREFERENCED)
    total = sum(b for v, (a, b) in variants.items() if v.startswith("perc/") and v not in UNREFERENCED)
    result["real_to_synth_perc_referenced"] = ok / max(total, 1)
    print(f"real->synth perc without {', '.join(UNREFERENCED)}: {ok}/{total} = {ok / max(total, 1):.0%}")
    print("real->synth by variant (recognised/rendered):")
    print("  " + " ".join(f"{v}={a}/{b}" for v, (a, b) in result["real_to_synth_variants"].items()))
    print("synth->real misses (times missed):", result["synth_to_real_missed"])
    print("real CV misses:", result["real_cv_missed"])
    print("\nfeature means (real | synth), std in brackets; classes", ", ".join(CLASSES))
    for feat in KEY_FEATURES:
        row = " ".join(
            f"{stats[c][feat]['real_mean']:6.2f}({stats[c][feat]['real_std']:.2f})|"
            f"{stats[c][feat]['synth_mean']:6.2f}({stats[c][feat]['synth_std']:.2f})"
            for c in CLASSES
        )
        print(f"  {feat:12s} {row}")
    print(f"\n{result['seconds']} s")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
