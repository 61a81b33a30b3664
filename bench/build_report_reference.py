"""Build the quality report's classifier and reference statistics (shipped in tad_daemon/quality/reference/).

    PYTHONPATH=. python bench/build_report_reference.py [--per-class 300] [--seed 7]

Trained on the procedural corpus plus the CC0 one-shots of Debian's sonic-pi-samples where installed
(augmented). Prints the classifier's accuracy on a fresh procedural set and, by class, on the real files.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tad_daemon.quality import DrumClassifier, augment, extract_batch  # noqa: E402
from tad_daemon.quality.reference import load_real  # noqa: E402
from tad_daemon.quality.report import REPORT_CLASSIFIER, REPORT_REFERENCE, Reference  # noqa: E402
from tad_daemon.synth import CLASSES, render_batch  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--augment", type=int, default=6, help="augmented copies of each real one-shot")
    args = p.parse_args()

    feats, labels = [], []
    for kind in CLASSES:
        feats.append(extract_batch(render_batch(kind, args.per_class, args.seed)))
        labels += [kind] * args.per_class
    real, real_labels, _ = load_real()
    print(f"procedural: {args.per_class} per class; real CC0 one-shots: {len(real)}")
    rng = np.random.default_rng(args.seed)
    real_feats = extract_batch(real) if len(real) else np.zeros((0, feats[0].shape[1]))
    aug = [extract_batch([augment(a, rng) for _ in range(args.augment)]) for a in real]
    x = np.concatenate(feats + [real_feats] + aug)
    y = labels + list(real_labels) + [c for c in real_labels for _ in range(args.augment)]
    clf = DrumClassifier().fit(x, y, classes=CLASSES)
    clf.save(REPORT_CLASSIFIER)
    base = np.concatenate(feats + [real_feats])
    Reference.fit(clf.embed(base), labels + list(real_labels)).save(REPORT_REFERENCE)
    print(f"wrote {REPORT_CLASSIFIER} and {REPORT_REFERENCE}")

    for kind in CLASSES:  # a fresh procedural set the classifier has not seen
        acc = np.mean(clf.predict(extract_batch(render_batch(kind, 100, args.seed + 1000))) == kind)
        print(f"  fresh procedural {kind:5s} {acc:.0%}")
    if len(real):
        pred = clf.predict(real_feats)  # seen in training: an upper bound, printed as a sanity check
        for kind in CLASSES:
            mask = np.array(real_labels) == kind
            print(f"  real (training files) {kind:5s} {np.mean(pred[mask] == kind):.0%} of {mask.sum()}")


if __name__ == "__main__":
    main()
