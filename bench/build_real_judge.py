"""Build the quality report's yardstick from the real-drum corpus (shipped in tad_daemon/quality/reference/).

    python bench/real_drums.py data/real          # first: render and split the real kits
    python bench/build_real_judge.py data/real    # then: the classifier and the held-out kits' statistics

The classifier learns every drum kind (tad_daemon/kinds.py) from the training split only (plus augmented
copies); everything the report compares against is the held-out split, whose recordings no model and no
classifier here has seen. Prints the held-out figures per kind: what "real-drum level" means on this
yardstick.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tad_daemon.kinds import KINDS  # noqa: E402
from tad_daemon.quality import DrumClassifier, augment, extract_batch  # noqa: E402
from tad_daemon.quality.measures import measure  # noqa: E402
from tad_daemon.quality.report import (  # noqa: E402
    REAL_CLASSIFIER,
    REAL_KITS,
    REFERENCE,
    RealKits,
    frechet,
    kit_halves,
    mean_pairwise_distance,
)

DIMS = 6  # PCA dimensions of the Fréchet space: the held-out kits hold 9-50 sounds per class
EXAMPLES = 3  # real sounds per class shipped for the report's picture


def load(corpus: Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    audio, labels, splits, groups = [], [], [], []
    with open(corpus / "manifest.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["kind"] not in KINDS:
                continue
            x, rate = sf.read(corpus / row["file"], dtype="float32", always_2d=True)
            assert rate == 44100, row["file"]
            audio.append(x.T)
            labels.append(row["kind"])
            splits.append(row["split"])
            groups.append(row["group"])
    return audio, np.array(labels), np.array(splits), np.array(groups)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", type=Path, help="the folder bench/real_drums.py wrote")
    p.add_argument("--augment", type=int, default=4, help="augmented copies of each training one-shot")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()

    audio, labels, splits, groups = load(args.corpus)
    train, held = splits == "train", splits == "heldout"
    feats = extract_batch(audio)
    rng = np.random.default_rng(args.seed)
    copies = [augment(a, rng) for a, t in zip(audio, train) if t for _ in range(args.augment)]
    x = np.concatenate([feats[train], extract_batch(copies)])
    y = list(labels[train]) + [c for c in labels[train] for _ in range(args.augment)]
    clf = DrumClassifier(hidden=32, l2=0.1, seed=args.seed).fit(x, y, classes=KINDS)

    emb = clf.embed(feats)
    mean = emb[train].mean(axis=0)
    _, _, vt = np.linalg.svd(emb[train] - mean, full_matrices=False)
    components = vt[:DIMS]
    held_audio = np.stack([a for a, h in zip(audio, held) if h])
    examples, example_labels = [], []
    for kind in KINDS:  # one sound from each of several recording groups
        seen = set()
        for i in np.flatnonzero(held & (labels == kind)):
            if groups[i] not in seen and len(seen) < EXAMPLES:
                seen.add(groups[i])
                examples.append(np.round(audio[i].mean(axis=0) * 32767).astype(np.int16))
                example_labels.append(kind)
    kits = RealKits(mean, components, (emb[held] - mean) @ components.T, labels[held], groups[held],
                    clf.predict(feats[held]), measure(held_audio), np.stack(examples), np.array(example_labels))
    REFERENCE.mkdir(exist_ok=True)
    clf.save(REAL_CLASSIFIER)
    kits.save(REAL_KITS)
    shutil.copyfile(args.corpus / "LICENSES.md", REFERENCE / "NOTICE.md")
    print(f"wrote {REAL_CLASSIFIER}, {REAL_KITS} and {REFERENCE / 'NOTICE.md'}")
    print(f"training split: {train.sum()} one-shots (+{len(copies)} augmented); held out: {held.sum()}")
    print("kind        held-out  groups  called its kind  tail dB  >8 kHz dB  decay ms  kit-to-kit Frechet  diversity")
    for kind in KINDS:
        m = kits.of(kind)
        a, b = kit_halves(kits.groups[m])
        floor = frechet(kits.z[m][a], kits.z[m][b]) if min(a.sum(), b.sum()) >= 2 else float("nan")
        if not m.any():
            print(f"{kind:11s} {0:8d}  (none held out: the corpus has one recording group of it)")
            continue
        print(f"{kind:11s} {m.sum():8d}  {len(set(kits.groups[m])):6d}  {np.mean(kits.predicted[m] == kind):15.0%}  "
              f"{np.median(kits.measures['tail_db'][m]):7.1f}  {np.median(kits.measures['high_band_db'][m]):9.1f}  "
              f"{np.median(kits.measures['decay_ms'][m]):8.0f}  {floor:18.2f}  "
              f"{mean_pairwise_distance(kits.z[m]):9.2f}")


if __name__ == "__main__":
    main()
